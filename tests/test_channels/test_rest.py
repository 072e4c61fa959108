"""The Rasa-compatible REST channel: POST /webhooks/rest/webhook (DESIGN.md section 4)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.ops.ratelimit import MemoryRateLimiter
from tests.test_channels.conftest import MakeHub
from tests.test_channels.support import (
    NOTICE_EN,
    conversation_of,
    conversations,
    has_cjk,
    messages,
)

WEBHOOK = "/webhooks/rest/webhook"


def say(client: TestClient, sender: str, message: str, **extra: Any) -> list[dict[str, Any]]:
    r = client.post(WEBHOOK, json={"sender": sender, "message": message, **extra})
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body, list), body
    return body


def test_hello_gets_the_greeting_with_buttons_in_rasas_shape(client: TestClient) -> None:
    replies = say(client, "u1", "hello")

    assert len(replies) == 1, replies
    reply = replies[0]
    assert reply["recipient_id"] == "u1"
    assert isinstance(reply["text"], str) and reply["text"]
    assert reply["buttons"], reply
    for button in reply["buttons"]:
        assert set(button) == {"title", "payload"}, button
        assert button["title"] and button["payload"].startswith("/")
    assert "/human" in [b["payload"] for b in reply["buttons"]]


def test_reply_without_buttons_has_no_buttons_key(client: TestClient) -> None:
    """Rasa leaves `buttons` out of a text-only reply; clients test for the key."""
    replies = say(client, "u1", "/thanks")
    assert replies and all(set(r) == {"recipient_id", "text"} for r in replies), replies


def test_intent_payload_with_entities_runs_the_order_flow(client: TestClient) -> None:
    replies = say(client, "u1", '/check_order{"order_id": "12345678"}')

    assert [r["recipient_id"] for r in replies] == ["u1"]
    assert "12345678" in replies[0]["text"]


def test_chinese_message_gets_a_chinese_reply(client: TestClient) -> None:
    replies = say(client, "u-zh", "你好")

    assert replies and has_cjk(replies[0]["text"]), replies
    assert all(has_cjk(b["title"]) for b in replies[0].get("buttons", [])), replies


def test_human_hands_off_then_the_bot_stays_silent(client: TestClient, auth: dict) -> None:
    say(client, "u1", "hello")
    assert [c["status"] for c in conversations(client, auth, status="pending")] == []

    replies = say(client, "u1", "/human")

    assert any(NOTICE_EN in r["text"] for r in replies), replies
    pending = conversations(client, auth, status="pending")
    assert [(c["channel"], c["contact"]["external_id"]) for c in pending] == [("rest", "u1")]
    assert pending[0]["handoff"]["reason"] == "customer_request"

    # A human has it now: the bot says nothing, and the message reaches the inbox.
    assert say(client, "u1", "is anybody there?") == []
    stored = messages(client, auth, pending[0]["id"])
    assert stored[-1]["sender"] == "contact" and stored[-1]["text"] == "is anybody there?"


def test_each_sender_has_its_own_conversation(client: TestClient, auth: dict) -> None:
    say(client, "alice", "hello")
    say(client, "bob", "/human")

    assert conversation_of(client, auth, "rest", "alice")["status"] == "bot"
    assert conversation_of(client, auth, "rest", "bob")["status"] == "pending"
    assert say(client, "alice", "/thanks") != []


MALFORMED = {
    "not json": (b"{sender: u1, message: hi", "json"),
    "missing sender": (json.dumps({"message": "hi"}).encode(), "sender"),
    "missing message": (json.dumps({"sender": "u1"}).encode(), "message"),
    "message not a string": (json.dumps({"sender": "u1", "message": 42}).encode(), "message"),
    "message a list": (json.dumps({"sender": "u1", "message": ["hi"]}).encode(), "message"),
    "sender empty": (json.dumps({"sender": "", "message": "hi"}).encode(), "sender"),
    "metadata not an object": (
        json.dumps({"sender": "u1", "message": "hi", "metadata": "x"}).encode(),
        "metadata",
    ),
    "a list, not an object": (b"[]", "object"),
    # what broke the widget's socket, tried here too: never a 500
    "nested 20000 deep": (
        b'{"sender": "u1", "message": "hi", "metadata": {"x": '
        + b"[" * 20_000
        + b"]" * 20_000
        + b"}}",
        "recursion",
    ),
    "a 5000-digit number": (
        b'{"sender": "u1", "message": "hi", "metadata": {"message_id": ' + b"7" * 5000 + b"}}",
        "number",
    ),
    # JSON can't carry them back out, and PostgreSQL refuses them
    "a number too large for a float": (
        b'{"sender": "u1", "message": "hi", "metadata": {"x": 1e999}}',
        "finite",
    ),
    "NaN": (b'{"sender": "u1", "message": "hi", "metadata": {"x": [NaN]}}', "finite"),
}


@pytest.mark.parametrize("body, hint", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_body_is_refused_and_stores_nothing(
    shared_hub: tuple[TestClient, dict], body: bytes, hint: str
) -> None:
    client, auth = shared_hub
    say(client, "u1", "hello")
    conversation = conversation_of(client, auth, "rest", "u1")
    before = messages(client, auth, conversation["id"])
    count = len(conversations(client, auth))

    r = client.post(WEBHOOK, content=body, headers={"content-type": "application/json"})

    assert r.status_code in (400, 422), r.text
    assert hint in r.text.lower(), f"the error should say what is wrong ({hint}): {r.text}"
    assert len(conversations(client, auth)) == count
    assert messages(client, auth, conversation["id"]) == before


def test_oversized_body_is_413_and_stores_nothing(make_hub: MakeHub) -> None:
    client, auth = make_hub(max_body_bytes=2000)
    small = {"sender": "u1", "message": "x" * 1500}
    big = {"sender": "u2", "message": "x" * 3000}  # under the message's own limit

    assert client.post(WEBHOOK, json=small).status_code == 200
    r = client.post(WEBHOOK, json=big)

    assert r.status_code == 413, r.text
    assert "2000" in r.json()["detail"]
    assert [c["contact"]["external_id"] for c in conversations(client, auth)] == ["u1"]


def test_oversized_chunked_body_is_413(make_hub: MakeHub) -> None:
    client, auth = make_hub(max_body_bytes=2000)
    big = json.dumps({"sender": "u2", "message": "x" * 3000}).encode()

    def chunks() -> Any:  # no Content-Length: Transfer-Encoding chunked
        for i in range(0, len(big), 500):
            yield big[i : i + 500]

    r = client.post(WEBHOOK, content=chunks(), headers={"content-type": "application/json"})

    assert conversations(client, auth) == []
    assert r.status_code == 413, r.text


def test_redelivery_with_the_same_message_id_answers_the_same_and_stores_once(
    client: TestClient, auth: dict
) -> None:
    body = {"sender": "u1", "message": "hello", "metadata": {"message_id": "m-1"}}
    first = client.post(WEBHOOK, json=body)
    second = client.post(WEBHOOK, json=body)

    assert first.status_code == second.status_code == 200
    assert first.json() and second.json() == first.json()
    stored = messages(client, auth, conversation_of(client, auth, "rest", "u1")["id"])
    assert [m["text"] for m in stored if m["sender"] == "contact"] == ["hello"]
    assert len([m for m in stored if m["sender"] == "bot"]) == 1, stored


def test_different_message_ids_are_different_messages(client: TestClient, auth: dict) -> None:
    for i in (1, 2):
        say(client, "u1", "hello", metadata={"message_id": f"m-{i}"})

    stored = messages(client, auth, conversation_of(client, auth, "rest", "u1")["id"])
    assert [m["text"] for m in stored if m["sender"] == "contact"] == ["hello", "hello"]


def test_message_ids_of_different_senders_do_not_collide(client: TestClient, auth: dict) -> None:
    alice = say(client, "alice", '/check_order{"order_id": "12345678"}', metadata={"message_id": 1})
    bob = say(client, "bob", "hello", metadata={"message_id": 1})

    assert "12345678" in alice[0]["text"]
    assert all("12345678" not in r["text"] for r in bob), f"bob got alice's answer: {bob}"
    assert "bob" in [c["contact"]["external_id"] for c in conversations(client, auth)]


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain"])
def test_json_body_without_json_content_type_is_accepted_like_rasa(
    client: TestClient, content_type: str
) -> None:
    body = json.dumps({"sender": "u1", "message": "hello"})
    r = client.post(WEBHOOK, content=body, headers={"content-type": content_type})

    assert r.status_code == 200, r.text
    assert r.json()[0]["recipient_id"] == "u1"


def test_a_payload_nested_too_deep_is_taken_as_text_not_a_500(client: TestClient) -> None:
    message = "/check_order" + '{"a":' * 1500 + "1" + "}" * 1500
    replies = say(client, "deep", message)
    assert replies and all("text" in reply for reply in replies)


def test_rasa_health_endpoint(client: TestClient) -> None:
    r = client.get("/webhooks/rest/")
    assert r.status_code == 200


def test_a_rest_channel_with_another_name_listens_at_its_own_path(make_hub: MakeHub) -> None:
    client, auth = make_hub(channels=[{"name": "partner", "type": "rest"}])

    r = client.post("/webhooks/partner/webhook", json={"sender": "p1", "message": "hello"})

    assert r.status_code == 200, r.text
    assert r.json()[0]["recipient_id"] == "p1"
    assert client.get("/webhooks/partner/").status_code == 200
    assert conversation_of(client, auth, "partner", "p1")["channel"] == "partner"
    # only the configured instance is served
    r = client.post(WEBHOOK, json={"sender": "p1", "message": "hello"})
    assert r.status_code == 404


def test_a_sender_over_the_limit_gets_429_with_retry_after_and_nothing_is_stored(
    client: TestClient, auth: dict
) -> None:
    """The defaults (config.yaml `limits.rest_messages`): 20 messages in 10 s per sender."""
    hub = client.app.state.hub  # type: ignore[attr-defined]
    hub.limits.limiter = MemoryRateLimiter(clock=lambda: 1000.0)  # however long the 20 turns take
    for i in range(20):
        say(client, "burst", f"hello {i}")
    r = client.post(WEBHOOK, json={"sender": "burst", "message": "one too many"})

    assert r.status_code == 429, r.text
    assert r.headers["retry-after"] == "10"
    assert "too many messages" in r.json()["detail"]
    stored = messages(client, auth, conversation_of(client, auth, "rest", "burst")["id"])
    said = [m["text"] for m in stored if m["sender"] == "contact"]
    assert len(said) == 20 and "one too many" not in said
    # the limit is per sender, not per address: others behind the same one still get answers
    assert say(client, "another", "hello")


def test_the_senders_limit_can_be_turned_off(make_hub: MakeHub) -> None:
    client, _ = make_hub(limits={"rest_messages": None})
    for i in range(21):
        say(client, "burst", f"/thanks {i}")
