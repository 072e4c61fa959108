"""Customer satisfaction (CSAT): after an agent resolves a conversation the customer is asked
for a 1-5 rating in their language, with buttons (the REST channel, a real local server as the
client's callback) or numbered options (WeChat, against a local fake of its API); the answer
is stored with the agent, thanked, leaves the conversation resolved, reaches the events socket
and the summary report. Through the real API, on SQLite and PostgreSQL where the fixtures
allow."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from flows import FlowEngine
from hub.core.conversations import Conversations, Feature
from hub.features.csat.survey import payload, score_of
from hub.messages import Inbound, Status, utcnow
from hub.store import Conversation
from nlu import IntentClassifier
from tests.conftest import client_for, create_agent, login, make_settings
from tests.test_channels import fake_wechat
from tests.test_channels.conftest import Callback
from tests.test_channels.conftest import callback as callback  # a fixture
from tests.test_channels.kit_wechat import APP_ID, APP_SECRET, options, passive_reply, signed
from tests.test_channels.kit_wechat import text_xml as wechat_text
from tests.test_channels.support import receive, wait_for

V1 = "/api/v1"
WEBHOOK = "/webhooks/rest/webhook"
QUESTION_ZH = "您对本次服务满意吗？请打 1 到 5 分。"
QUESTION_EN = "How satisfied are you with the help you got? Please rate it from 1 to 5."
THANKS_ZH = "感谢您的评价！"
THANKS_EN = "Thank you for your rating!"
Api = tuple[TestClient, dict[str, str], int]  # client, admin auth, the admin's agent id


def make_rest_hub(
    database_url: str,
    tmp_path: Path,
    classifier: IntentClassifier,
    flows: FlowEngine,
    callback: Callback,
    **extra: Any,
) -> Iterator[Api]:
    rest = {"name": "rest", "type": "rest", "callback_url": callback.url}
    settings = make_settings(database_url, tmp_path, channels=[rest], **extra)
    lin = create_agent(settings, role="admin")
    with client_for(settings, classifier, flows) as client:
        yield client, login(client), lin


@pytest.fixture
def rest_hub(
    database_url: str,
    tmp_path: Path,
    classifier: IntentClassifier,
    flows: FlowEngine,
    callback: Callback,
) -> Iterator[Api]:
    """The demo bot on SQLite and PostgreSQL; REST customers' agent messages reach `callback`."""
    yield from make_rest_hub(database_url, tmp_path, classifier, flows, callback)


@pytest.fixture
def quiet_hub(
    sqlite_url: str,
    tmp_path: Path,
    classifier: IntentClassifier,
    flows: FlowEngine,
    callback: Callback,
) -> Iterator[Api]:
    """The same with CSAT turned off (`csat.enabled: false`)."""
    yield from make_rest_hub(
        sqlite_url, tmp_path, classifier, flows, callback, csat={"enabled": False}
    )


def says(client: TestClient, sender: str, text: str) -> list[dict[str, Any]]:
    r = client.post(WEBHOOK, json={"sender": sender, "message": text})
    assert r.status_code == 200, r.text
    replies: list[dict[str, Any]] = r.json()
    return replies


def the_conversation(client: TestClient, auth: dict[str, str], sender: str) -> dict[str, Any]:
    items = client.get(f"{V1}/conversations", params={"q": sender}, headers=auth).json()["items"]
    [item] = [i for i in items if i["contact"]["external_id"] == sender]
    cid = item["id"]
    r = client.get(f"{V1}/conversations/{cid}", headers=auth)
    assert r.status_code == 200, r.text
    conversation: dict[str, Any] = r.json()
    return conversation


def helped_and_resolved(client: TestClient, auth: dict[str, str], sender: str, ask: str) -> int:
    """The customer asks for a human, an agent answers and resolves; the conversation's id."""
    says(client, sender, ask)
    cid = int(the_conversation(client, auth, sender)["id"])
    r = client.post(f"{V1}/conversations/{cid}/messages", json={"text": "OK!"}, headers=auth)
    assert r.status_code == 201, r.text
    r = client.post(f"{V1}/conversations/{cid}/status", json={"status": "resolved"}, headers=auth)
    assert r.status_code == 200, r.text
    return cid


def drain(client: TestClient) -> None:
    client.portal.call(client.app.state.hub.outbox.drain)  # type: ignore[attr-defined,union-attr]


def questions(callback: Callback, sender: str) -> list[dict[str, Any]]:
    """The rating questions the REST client received for `sender` (the ones with buttons)."""
    return [
        item
        for body in callback.bodies()
        for item in body
        if item["recipient_id"] == sender and item.get("buttons")
    ]


def report(client: TestClient, auth: dict[str, str]) -> dict[str, Any]:
    r = client.get(f"{V1}/reports/summary", headers=auth)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_a_rest_customer_rates_with_a_button_and_is_thanked_in_chinese(
    rest_hub: Api, callback: Callback
) -> None:
    client, auth, lin = rest_hub
    cid = helped_and_resolved(client, auth, "u1", "我要转人工")

    [question] = wait_for(lambda: questions(callback, "u1"), "the rating question")
    assert question["text"] == QUESTION_ZH
    assert [b["title"] for b in question["buttons"]] == [
        "非常不满意",
        "不满意",
        "一般",
        "满意",
        "非常满意",
    ]
    assert [b["payload"] for b in question["buttons"]] == [payload(n) for n in range(1, 6)]

    token = auth["authorization"].removeprefix("Bearer ")
    with client.websocket_connect(f"{V1}/events?token={token}") as events:
        replies = says(client, "u1", question["buttons"][3]["payload"])  # 满意: 4
        rated = next(e for e in iter(lambda: receive(events), None) if e["type"] == "csat.rated")

    assert replies == [{"recipient_id": "u1", "text": THANKS_ZH}]
    assert rated == {
        "type": "csat.rated",
        "conversation_id": cid,
        "data": {"score": 4, "agent_id": lin},
    }
    conversation = the_conversation(client, auth, "u1")
    assert conversation["status"] == "resolved"
    assert conversation["csat"]["score"] == 4 and conversation["csat"]["agent_id"] == lin

    body = report(client, auth)
    distribution = {"1": 0, "2": 0, "3": 0, "4": 1, "5": 0}
    assert body["csat"] == {"average": 4.0, "count": 1, "distribution": distribution}
    assert body["channels"]["rest"]["csat"]["average"] == 4.0
    # the rating is not an unrecognized message of the bot's
    assert body["unrecognized"] == [] and body["fallbacks"]["messages"] == 0


def test_a_typed_digit_rates_and_a_later_answer_replaces_the_first(
    rest_hub: Api, callback: Callback
) -> None:
    client, auth, _ = rest_hub
    helped_and_resolved(client, auth, "u2", "I want to talk to a human")
    [question] = wait_for(lambda: questions(callback, "u2"), "the rating question")
    assert question["text"] == QUESTION_EN

    assert says(client, "u2", "4") == [{"recipient_id": "u2", "text": THANKS_EN}]
    assert says(client, "u2", "2️⃣") == [{"recipient_id": "u2", "text": THANKS_EN}]

    conversation = the_conversation(client, auth, "u2")
    assert conversation["status"] == "resolved"
    assert conversation["csat"]["score"] == 2
    body = report(client, auth)
    assert body["csat"]["count"] == 1 and body["csat"]["average"] == 2.0


def test_anything_else_reopens_to_the_bot_and_closes_the_question(
    rest_hub: Api, callback: Callback
) -> None:
    client, auth, _ = rest_hub
    helped_and_resolved(client, auth, "u3", "I want to talk to a human")
    wait_for(lambda: questions(callback, "u3"), "the rating question")

    replies = says(client, "u3", "where is my order")
    assert "order number" in replies[-1]["text"], replies  # the bot has it again
    assert the_conversation(client, auth, "u3")["status"] == "bot"
    replies = says(client, "u3", "5")  # no longer a rating: the bot's conversation goes on
    assert all(r["text"] not in (THANKS_EN, THANKS_ZH) for r in replies), replies

    assert the_conversation(client, auth, "u3")["csat"] is None
    assert report(client, auth)["csat"]["count"] == 0


class HeldResolution(Feature):
    """Listed before CSAT: a resolution waits here (its status stored) until `go` is set."""

    def __init__(self) -> None:
        self.reached = threading.Event()  # the test's thread waits on it
        self.go = asyncio.Event()

    async def after_resolve(
        self, conversations: Conversations, conversation: Conversation, source: Status, actor: str
    ) -> None:
        self.reached.set()
        await self.go.wait()


def test_a_customer_writing_before_the_question_is_answered_and_not_asked(
    rest_hub: Api, callback: Callback
) -> None:
    """The customer writes after the agent resolved but before the question went out: the bot
    answers them, and the question is dropped rather than sent after that answer."""
    client, auth, _ = rest_hub
    says(client, "u8", "I want to talk to a human")
    cid = int(the_conversation(client, auth, "u8")["id"])
    r = client.post(f"{V1}/conversations/{cid}/messages", json={"text": "OK!"}, headers=auth)
    assert r.status_code == 201, r.text
    hub = client.app.state.hub  # type: ignore[attr-defined]
    held = HeldResolution()
    hub.conversations.features = (held, *hub.conversations.features)

    def resolve() -> None:
        r = client.post(
            f"{V1}/conversations/{cid}/status", json={"status": "resolved"}, headers=auth
        )
        assert r.status_code == 200, r.text

    resolving = threading.Thread(target=resolve)
    resolving.start()
    assert held.reached.wait(10), "the resolution never reached its side effects"
    replies = says(client, "u8", "where is my order")
    assert "order number" in replies[-1]["text"], replies  # the bot answers
    client.portal.call(held.go.set)  # type: ignore[union-attr]
    resolving.join(10)
    assert not resolving.is_alive()
    drain(client)

    assert questions(callback, "u8") == []
    conversation = the_conversation(client, auth, "u8")
    assert conversation["status"] == "bot" and conversation["csat"] is None


def test_an_answer_after_the_window_is_an_ordinary_message(
    rest_hub: Api, callback: Callback
) -> None:
    client, auth, _ = rest_hub
    cid = helped_and_resolved(client, auth, "u4", "I want to talk to a human")
    wait_for(lambda: questions(callback, "u4"), "the rating question")
    hub = client.app.state.hub  # type: ignore[attr-defined]

    async def two_days_later() -> None:
        conversation = await hub.store.get_conversation(cid)
        asked = {**conversation.flow_state["csat"]}
        asked["asked_at"] = (utcnow() - timedelta(hours=25)).isoformat()
        await hub.store.update_conversation(cid, flow_state={"csat": asked})

    client.portal.call(two_days_later)  # type: ignore[union-attr]
    replies = says(client, "u4", "4")
    assert all(r["text"] != THANKS_EN for r in replies), replies
    assert the_conversation(client, auth, "u4")["status"] == "bot"
    assert the_conversation(client, auth, "u4")["csat"] is None


def test_a_conversation_the_bot_alone_had_is_not_asked(rest_hub: Api, callback: Callback) -> None:
    client, auth, _ = rest_hub
    says(client, "u5", "hello")
    cid = the_conversation(client, auth, "u5")["id"]
    r = client.post(f"{V1}/conversations/{cid}/status", json={"status": "resolved"}, headers=auth)
    assert r.status_code == 200, r.text
    drain(client)
    assert questions(callback, "u5") == []
    assert says(client, "u5", "4") != [{"recipient_id": "u5", "text": THANKS_EN}]
    assert the_conversation(client, auth, "u5")["status"] == "bot"


def test_turned_off_no_question_is_sent(quiet_hub: Api, callback: Callback) -> None:
    client, auth, _ = quiet_hub
    helped_and_resolved(client, auth, "u6", "I want to talk to a human")
    drain(client)

    assert [item["text"] for body in callback.bodies() for item in body] == ["OK!"]
    says(client, "u6", "4")
    assert the_conversation(client, auth, "u6")["status"] == "bot"
    assert report(client, auth)["csat"]["count"] == 0


# ---- a channel without buttons: WeChat's numbered options ---------------------------------


@pytest.fixture
def wechat(
    database_url: str, tmp_path: Path, classifier: IntentClassifier, flows: FlowEngine
) -> Iterator[tuple[TestClient, dict[str, str], Any]]:
    """A WeChat official account (no buttons) against a local fake of WeChat's API."""
    with fake_wechat.running(APP_ID, APP_SECRET) as api:
        channel = {"name": "shop", "type": "wechat", **options(api.base)}
        settings = make_settings(database_url, tmp_path, channels=[channel])
        create_agent(settings, role="admin")
        with client_for(settings, classifier, flows) as client:
            yield client, login(client), api


def test_a_wechat_customer_rates_by_number_and_is_thanked_in_chinese(
    wechat: tuple[TestClient, dict[str, str], Any],
) -> None:
    client, auth, api = wechat

    def say(text: str, message_id: str) -> Any:
        response = client.post(
            "/channels/wechat/shop",
            content=(request := signed("shop", wechat_text("o-fan", text, message_id))).body,
            params=request.params,
        )
        return passive_reply(response)

    say("我要转人工", "7001")
    items = client.get(f"{V1}/conversations", params={"channel": "shop"}, headers=auth).json()
    cid = items["items"][0]["id"]
    r = client.post(f"{V1}/conversations/{cid}/messages", json={"text": "您好"}, headers=auth)
    assert r.status_code == 201, r.text
    r = client.post(f"{V1}/conversations/{cid}/status", json={"status": "resolved"}, headers=auth)
    assert r.status_code == 200, r.text
    drain(client)

    question = wait_for(lambda: api.texts_to("o-fan")[-1:], "the rating question")[0]
    assert question.startswith(QUESTION_ZH)
    assert "1. 非常不满意" in question and "4. 满意" in question and "5. 非常满意" in question
    assert question.endswith("请回复选项前的数字。")

    assert say("4", "7002").content == THANKS_ZH
    r = client.get(f"{V1}/conversations/{cid}", headers=auth)
    assert r.json()["status"] == "resolved"
    assert (
        r.json()["csat"]["score"] == 4
        and r.json()["csat"]["agent_id"] == r.json()["assignee"]["id"]
    )
    assert report(client, auth)["channels"]["shop"]["csat"]["count"] == 1


def test_what_counts_as_a_rating() -> None:
    def score(text: str, postback: str | None = None) -> int | None:
        return score_of(Inbound(channel="c", sender_id="s", text=text, postback=postback))

    assert [score(t) for t in ("1", " 5 ", "４", "3️⃣", payload(2))] == [1, 5, 4, 3, 2]
    assert score("满意", postback=payload(4)) == 4
    not_ratings = ["0", "6", "45", "4 stars", "four", "/csat", '/csat{"score": 9}', "/human"]
    assert [score(t) for t in not_ratings] == [None] * len(not_ratings)
    assert score('/csat{"score": "4"}') is None and score('/csat{"score": true}') is None
