"""One customer across channels: contacts merged by a verified email or phone (a channel
vouches for it, the widget's identity signed by the site), merged and unmerged by admins, and
the inbox showing the customer's other contacts and their whole history, within what the
caller may see. On SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from flows import FlowEngine
from hub.messages import Inbound, Verified
from hub.ops.settings import Settings
from hub.store.persons import normalize_email, normalize_phone
from nlu import IntentClassifier
from tests.conftest import client_for, create_agent, login, make_settings
from tests.test_hub.test_admin_api import conversation_id
from tests.test_hub.test_personal_data import audit_rows

V1 = "/api/v1"
SECRET = "site-widget-secret-0123456789"
WS = "/channels/web/ws"


def sign(value: str, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()


@pytest.fixture
def settings_both(database_url: str, tmp_path: Path) -> Settings:
    channels = [
        {"name": "web", "type": "web", "identity_secret": SECRET},
        {"name": "rest", "type": "rest"},
    ]
    settings = make_settings(database_url, tmp_path, channels=channels)
    create_agent(settings, role="admin")
    create_agent(settings, email="wang@example.com", role="agent")
    create_agent(settings, email="zhou@example.com", role="agent", teams=["care"])
    return settings


@pytest.fixture
def hub(
    settings_both: Settings, classifier: IntentClassifier, flows: FlowEngine
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    with client_for(settings_both, classifier, flows) as client:
        yield client, login(client)


def vouched(client: TestClient, sender: str, text: str, **verified: str) -> None:
    """A message from a channel that vouches for the sender's email or phone (as the email
    channel does for an authenticated mail, Telegram for a shared contact card)."""
    app: Any = client.app
    inbound = Inbound(channel="rest", sender_id=sender, text=text, verified=Verified(**verified))
    client.portal.call(app.state.hub.receive, inbound)  # type: ignore[union-attr]


def widget_says(client: TestClient, visitor: str, text: str, **identity: str) -> dict[str, Any]:
    """The visitor identifies (when `identity` is given) and writes; returns the answer to
    the identify frame (or {})."""
    answer: dict[str, Any] = {}
    with client.websocket_connect(f"{WS}?visitor={visitor}") as ws:
        assert ws.receive_json()["type"] == "hello"
        if identity:
            ws.send_json({"type": "identify", **identity})
            answer = ws.receive_json()
        ws.send_json({"type": "message", "client_id": "c-1", "text": text})
        assert ws.receive_json()["type"] == "ack"
    return answer


def conversation(client: TestClient, auth: dict[str, str], sender: str) -> dict[str, Any]:
    r = client.get(f"{V1}/conversations/{conversation_id(client, auth, sender)}", headers=auth)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def history(client: TestClient, auth: dict[str, str], cid: int, **query: Any) -> Any:
    return client.get(f"{V1}/conversations/{cid}/history", params=query, headers=auth)


def others(view: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["channel"], c["external_id"]) for c in view["person"]["contacts"]]


def test_a_customer_writing_from_another_channel_with_a_verified_email_is_one_customer(
    hub: tuple[TestClient, dict[str, str]],
) -> None:
    client, admin = hub
    vouched(client, "wx-openid-1", "where is my order", email="Mei@Example.com")
    answer = widget_says(
        client, "v-mei", "it's me again", email="mei@example.com", hash=sign("mei@example.com")
    )
    assert answer == {"type": "identified", "email": "mei@example.com", "phone": None}

    web = conversation(client, admin, "v-mei")
    assert others(web) == [("rest", "wx-openid-1")]
    assert others(conversation(client, admin, "wx-openid-1")) == [("web", "v-mei")]
    assert web["person"]["id"] == conversation(client, admin, "wx-openid-1")["person"]["id"]

    r = history(client, admin, web["id"])
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    said = [(i["channel"], i["text"]) for i in items if i["sender"] == "contact"]
    assert said == [("rest", "where is my order"), ("web", "it's me again")]
    channels = [i["channel"] for i in items]
    assert channels == sorted(channels, key=["rest", "web"].index)  # the earlier one first
    assert {i["conversation_id"] for i in items} == {
        web["id"],
        conversation_id(client, admin, "wx-openid-1"),
    }
    assert any(i["sender"] == "bot" for i in items)  # the bot's answers are part of it
    times = [i["created_at"] for i in items]
    assert times == sorted(times)


def test_a_verified_phone_merges_and_a_third_contact_joins_the_same_customer(
    hub: tuple[TestClient, dict[str, str]],
) -> None:
    client, admin = hub
    vouched(client, "tg-1", "hi", phone="+86 138-0013-8000")
    widget_says(
        client, "v-phone", "hello", phone="+8613800138000", phone_hash=sign("+8613800138000")
    )
    vouched(client, "mail-1", "order 12345678?", email="li@example.com", phone="008613800138000")

    view = conversation(client, admin, "v-phone")
    assert sorted(others(view)) == [("rest", "mail-1"), ("rest", "tg-1")]
    ids = {conversation(client, admin, s)["person"]["id"] for s in ("tg-1", "v-phone", "mail-1")}
    assert ids == {conversation(client, admin, "tg-1")["contact"]["id"]}  # the first contact's


def test_a_widget_identity_with_a_wrong_hash_is_refused_and_not_merged(
    hub: tuple[TestClient, dict[str, str]],
) -> None:
    client, admin = hub
    vouched(client, "wx-2", "hello", email="an@example.com")
    answer = widget_says(
        client, "v-forger", "hi", email="an@example.com", hash=sign("an@example.com", "guess")
    )
    assert answer["type"] == "error" and "hash" in answer["error"]
    assert others(conversation(client, admin, "v-forger")) == []
    assert others(conversation(client, admin, "wx-2")) == []

    unsigned = widget_says(client, "v-unsigned", "hi", email="an@example.com")
    assert unsigned["type"] == "error"
    assert others(conversation(client, admin, "v-unsigned")) == []


def test_an_identity_in_the_sockets_url_is_taken_after_hello(
    hub: tuple[TestClient, dict[str, str]],
) -> None:
    client, admin = hub
    vouched(client, "wx-3", "hello", email="qi@example.com")
    url = f"{WS}?visitor=v-url&email=qi@example.com&hash={sign('qi@example.com')}"
    with client.websocket_connect(url) as ws:
        assert ws.receive_json()["type"] == "hello"
        assert ws.receive_json() == {"type": "identified", "email": "qi@example.com", "phone": None}
        ws.send_json({"type": "message", "client_id": "c-1", "text": "me again"})
        assert ws.receive_json()["type"] == "ack"
    assert others(conversation(client, admin, "v-url")) == [("rest", "wx-3")]


def test_admins_merge_and_unmerge_by_hand_and_agents_may_not(
    hub: tuple[TestClient, dict[str, str]],
) -> None:
    client, admin = hub
    agent = login(client, "wang@example.com")
    vouched(client, "a-1", "hello", email="one@example.com")
    vouched(client, "a-2", "hello", email="two@example.com")
    a1, a2 = (conversation(client, admin, s)["contact"]["id"] for s in ("a-1", "a-2"))

    body = {"with": a2}
    assert client.post(f"{V1}/contacts/{a1}/merge", json=body, headers=agent).status_code == 403
    r = client.post(f"{V1}/contacts/{a1}/merge", json=body, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["person_id"] == min(a1, a2)
    assert others(conversation(client, agent, "a-2")) == [("rest", "a-1")]
    [merged] = audit_rows(client.app.state.hub.settings, "contact.merged")  # type: ignore[attr-defined]
    assert merged.actor.startswith("agent:") and merged.data["other"] == a2

    assert client.post(f"{V1}/contacts/{a1}/unmerge", headers=agent).status_code == 403
    r = client.post(f"{V1}/contacts/{a1}/unmerge", headers=admin)
    assert r.status_code == 200, r.text
    assert others(conversation(client, admin, "a-2")) == []
    assert others(conversation(client, admin, "a-1")) == []
    assert len(audit_rows(client.app.state.hub.settings, "contact.unmerged")) == 1  # type: ignore[attr-defined]
    again = client.post(f"{V1}/contacts/{a1}/unmerge", headers=admin)
    assert again.status_code == 409 and "not merged" in again.json()["detail"]


def test_bad_merge_requests_say_what_is_wrong(hub: tuple[TestClient, dict[str, str]]) -> None:
    client, admin = hub
    vouched(client, "b-1", "hello", email="b@example.com")
    b1 = conversation(client, admin, "b-1")["contact"]["id"]
    cases = [
        ({"with": b1}, 422, "itself"),
        ({"with": 999_999}, 404, "not found"),
        ({"with": "x"}, 422, "with"),
        ({}, 422, "with"),
    ]
    for body, status, said in cases:
        r = client.post(f"{V1}/contacts/{b1}/merge", json=body, headers=admin)
        assert r.status_code == status, (body, r.text)
        assert said in r.text, r.text
    assert client.post(f"{V1}/contacts/999999/unmerge", headers=admin).status_code == 404
    bad = history(client, admin, conversation_id(client, admin, "b-1"), cursor="nonsense")
    assert bad.status_code == 422 and "cursor" in bad.text


def test_a_three_contact_customer_stays_one_when_one_leaves(
    hub: tuple[TestClient, dict[str, str]],
) -> None:
    client, admin = hub
    for sender in ("c-1", "c-2", "c-3"):
        vouched(client, sender, "hello", email="chen@example.com")
    first = conversation(client, admin, "c-1")["contact"]["id"]
    assert client.post(f"{V1}/contacts/{first}/unmerge", headers=admin).status_code == 200
    assert others(conversation(client, admin, "c-2")) == [("rest", "c-3")]
    remaining = conversation(client, admin, "c-2")["person"]["id"]
    assert remaining == conversation(client, admin, "c-2")["contact"]["id"]  # re-anchored
    assert others(conversation(client, admin, "c-1")) == []


def test_erasing_one_contact_leaves_the_customers_other_contacts(
    hub: tuple[TestClient, dict[str, str]],
) -> None:
    client, admin = hub
    vouched(client, "e-1", "my old account", email="er@example.com")
    widget_says(client, "v-er", "hello", email="er@example.com", hash=sign("er@example.com"))
    e1 = conversation(client, admin, "e-1")["contact"]["id"]
    web_id = conversation_id(client, admin, "v-er")

    r = client.delete(f"{V1}/contacts/{e1}", headers=admin)
    assert r.status_code == 200, r.text

    view = conversation(client, admin, "v-er")
    assert others(view) == [] and view["person"]["id"] == view["contact"]["id"]
    said = [i["text"] for i in history(client, admin, web_id).json()["items"]]
    assert "hello" in said and "my old account" not in said
    [contact] = client.get(f"{V1}/contacts", params={"q": "v-er"}, headers=admin).json()["items"]
    assert contact["email"] == "er@example.com" and contact["person_id"] is None


def test_the_history_shows_only_conversations_the_agent_may_see(
    hub: tuple[TestClient, dict[str, str]],
) -> None:
    client, admin = hub
    vouched(client, "s-1", "secret sales talk", email="sun@example.com")
    widget_says(client, "v-sun", "hello", email="sun@example.com", hash=sign("sun@example.com"))
    sales = conversation_id(client, admin, "s-1")
    r = client.post(f"{V1}/conversations/{sales}/assign", json={"team": "sales"}, headers=admin)
    assert r.status_code == 200, r.text

    care = login(client, "zhou@example.com")  # an agent of team care
    web_id = conversation_id(client, admin, "v-sun")
    said = [i["text"] for i in history(client, care, web_id).json()["items"]]
    assert "hello" in said and "secret sales talk" not in said
    assert history(client, care, sales).status_code == 404
    everything = [i["text"] for i in history(client, admin, web_id).json()["items"]]
    assert "secret sales talk" in everything


def test_the_history_pages_back_to_earlier_messages(
    hub: tuple[TestClient, dict[str, str]],
) -> None:
    client, admin = hub
    vouched(client, "p-1", "first", email="pa@example.com")
    widget_says(client, "v-pa", "second", email="pa@example.com", hash=sign("pa@example.com"))
    cid = conversation_id(client, admin, "v-pa")
    whole = [i["id"] for i in history(client, admin, cid).json()["items"]]
    pages: list[int] = []
    cursor = None
    while True:
        page = history(client, admin, cid, limit=2, **({"cursor": cursor} if cursor else {}))
        assert page.status_code == 200, page.text
        pages = [i["id"] for i in page.json()["items"]] + pages
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert pages == whole and len(whole) > 2


def test_emails_and_phones_are_normalized_before_they_are_compared() -> None:
    assert normalize_email("  Mei@Example.COM ") == "mei@example.com"
    assert normalize_email("not an email") is None
    assert normalize_phone("+86 138-0013-8000") == "+8613800138000"
    assert normalize_phone("0086 (138) 0013 8000") == "+8613800138000"
    assert normalize_phone("13800138000") is None  # no country code: can't be compared
    assert normalize_phone("+12") is None
