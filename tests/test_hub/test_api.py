"""The inbox API (DESIGN.md section 4), on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from flows import FlowEngine
from nlu import IntentClassifier
from tests.conftest import client_for, create_agent, login, make_settings, need


@pytest.fixture
def api(
    database_url: str, tmp_path: Path, classifier: IntentClassifier, flows: FlowEngine
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = make_settings(database_url, tmp_path)
    create_agent(settings, role="admin")
    create_agent(settings, email="wang@example.com", role="agent", teams=["care"])
    with client_for(settings, classifier, flows) as client:
        yield client, login(client)


def customer_says(client: TestClient, sender: str, text: str) -> list[dict[str, Any]]:
    r = client.post("/webhooks/rest/webhook", json={"sender": sender, "message": text})
    assert r.status_code == 200, r.text
    return r.json()


def conversation_of(client: TestClient, auth: dict[str, str], sender: str) -> dict[str, Any]:
    items = client.get("/api/v1/conversations", params={"q": sender}, headers=auth).json()["items"]
    [item] = [i for i in items if i["contact"]["external_id"] == sender]
    return item


def test_login(api: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = api
    r = client.post(
        "/api/v1/auth/login", json={"email": "LIN@example.com", "password": "s3cret-pass"}
    )
    assert r.status_code == 200 and r.json()["token_type"] == "bearer"
    for body in (
        {"email": "lin@example.com", "password": "wrong"},
        {"email": "nobody@example.com", "password": "s3cret-pass"},
    ):
        assert client.post("/api/v1/auth/login", json=body).status_code == 401
    assert client.post("/api/v1/auth/login", json={"email": "lin@example.com"}).status_code == 422


def test_invalid_body_with_a_lone_surrogate_is_422_not_500(
    api: tuple[TestClient, dict[str, str]],
) -> None:
    client, _ = api
    # Valid JSON that Python can decode but not encode back to UTF-8.
    r = client.post(
        "/api/v1/auth/login",
        content=b'{"email": "\\ud800"}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422
    assert any(error["loc"] == ["body", "password"] for error in r.json()["detail"])


@pytest.mark.parametrize(
    "path", ["/api/v1/conversations", "/api/v1/conversations/1", "/api/v1/conversations/1/messages"]
)
def test_401_without_a_valid_token(api: tuple[TestClient, dict[str, str]], path: str) -> None:
    client, _ = api
    assert client.get(path).status_code == 401
    assert (
        client.get(path, headers={"authorization": "Bearer forged.token.here"}).status_code == 401
    )


def test_list_get_and_messages(api: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = api
    customer_says(client, "alice", "hello")
    customer_says(client, "bob", "/human")
    listed = client.get("/api/v1/conversations", headers=auth).json()
    assert {i["contact"]["external_id"] for i in listed["items"]} == {"alice", "bob"}
    bob = conversation_of(client, auth, "bob")
    assert bob["status"] == "pending" and bob["channel"] == "rest"
    assert bob["handoff"]["reason"] == "customer_request" and bob["handoff"]["intent"] == "human"
    assert bob["last_message"]["sender"] == "system"
    pending = client.get("/api/v1/conversations", params={"status": "pending"}, headers=auth)
    assert [i["id"] for i in pending.json()["items"]] == [bob["id"]]
    assert client.get(f"/api/v1/conversations/{bob['id']}", headers=auth).json()["id"] == bob["id"]
    messages = client.get(f"/api/v1/conversations/{bob['id']}/messages", headers=auth).json()
    assert [m["sender"] for m in messages["items"]] == ["contact", "system"]
    assert messages["items"][0]["nlu"]["intent"] == "human"


def test_cursor_pagination(api: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = api
    for i in range(5):
        customer_says(client, f"c{i}", "hello")
    ids, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/conversations", params=params, headers=auth).json()
        ids += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(ids) == len(set(ids)) == 5
    bad = client.get("/api/v1/conversations", params={"cursor": "garbage"}, headers=auth)
    assert bad.status_code == 400


def test_agent_reply_takes_the_conversation_and_silences_the_bot(
    api: tuple[TestClient, dict[str, str]],
) -> None:
    client, auth = api
    customer_says(client, "carol", "/human")
    cid = conversation_of(client, auth, "carol")["id"]
    r = client.post(
        f"/api/v1/conversations/{cid}/messages", json={"text": "Hi, Lin here"}, headers=auth
    )
    assert r.status_code == 201 and r.json()["sender"] == "agent"
    conversation = client.get(f"/api/v1/conversations/{cid}", headers=auth).json()
    assert conversation["status"] == "open"
    assert conversation["assignee"]["email"] == "lin@example.com"
    assert customer_says(client, "carol", "hello") == []  # a human has it: the bot is quiet


def test_private_note_is_stored_never_sent(api: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = api
    customer_says(client, "dan", "/human")
    cid = conversation_of(client, auth, "dan")["id"]
    r = client.post(
        f"/api/v1/conversations/{cid}/messages", json={"text": "VIP", "private": True}, headers=auth
    )
    assert r.status_code == 201 and r.json()["private"] is True and r.json()["delivery"] is None
    conversation = client.get(f"/api/v1/conversations/{cid}", headers=auth).json()
    assert conversation["status"] == "pending"  # a note doesn't take the conversation
    assert conversation["last_message"]["text"] != "VIP"


def test_assign_and_status_changes(api: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = api
    customer_says(client, "erin", "/human")
    cid = conversation_of(client, auth, "erin")["id"]
    r = client.post(f"/api/v1/conversations/{cid}/assign", json={"team": "care"}, headers=auth)
    assert r.status_code == 200 and r.json()["team"] == "care" and r.json()["status"] == "pending"
    wang = client.get("/api/v1/conversations", headers=auth)  # any call; find wang's id by login
    wang_token = login(client, "wang@example.com")
    wang_id = client.get("/api/v1/me", headers=wang_token).json()["id"]
    r = client.post(f"/api/v1/conversations/{cid}/assign", json={"agent_id": wang_id}, headers=auth)
    assert r.json()["status"] == "open" and r.json()["assignee"]["id"] == wang_id
    mine = client.get("/api/v1/conversations", params={"assignee": "me"}, headers=wang_token)
    assert [i["id"] for i in mine.json()["items"]] == [cid]
    assert wang.status_code == 200

    def status(body: dict[str, Any]) -> Any:
        return client.post(f"/api/v1/conversations/{cid}/status", json=body, headers=auth)

    assert (
        status({"status": "snoozed", "snooze_until": "2099-01-01T09:00:00Z"})
        .json()["snooze_until"]
        .startswith("2099-01-01T09:00")
    )
    assert status({"status": "resolved"}).json()["resolved_at"]
    conflict = status({"status": "snoozed"})
    assert conflict.status_code == 409 and "resolved" in conflict.json()["detail"]
    assert status({"status": "resolved"}).status_code == 409
    assert status({"status": "bot"}).json()["status"] == "bot"
    replies = customer_says(client, "erin", "hello")
    assert replies and "Kefu Shop" in replies[0]["text"]


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("status", {"status": "closed"}, 422),
        ("status", {"status": "snoozed", "snooze_until": "2001-01-01T00:00:00Z"}, 422),
        ("status", {"status": "resolved", "snooze_until": "2099-01-01T00:00:00Z"}, 422),
        ("assign", {}, 422),
        ("assign", {"agent_id": 999}, 422),
        ("messages", {"text": ""}, 422),
        ("messages", {"text": "hi", "colour": "red"}, 422),
    ],
)
def test_bad_requests_say_what_is_wrong(
    api: tuple[TestClient, dict[str, str]], path: str, body: dict[str, Any], code: int
) -> None:
    client, auth = api
    customer_says(client, "fay", "/human")
    cid = conversation_of(client, auth, "fay")["id"]
    r = client.post(f"/api/v1/conversations/{cid}/{path}", json=body, headers=auth)
    assert r.status_code == code, r.text
    assert r.json()["detail"]


def test_unknown_conversation_is_404(api: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = api
    assert client.get("/api/v1/conversations/4242", headers=auth).status_code == 404
    r = client.post("/api/v1/conversations/4242/messages", json={"text": "x"}, headers=auth)
    assert r.status_code == 404 and "4242" in r.json()["detail"]
    assert client.get("/api/v1/conversations/abc", headers=auth).status_code == 422


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/conversations/{big}", None),
        ("GET", "/api/v1/conversations/{big}/messages", None),
        ("GET", "/api/v1/conversations/1/messages?after={big}", None),
        ("GET", "/api/v1/conversations?assignee={big}", None),
        ("POST", "/api/v1/conversations/{big}/messages", {"text": "x"}),
        ("POST", "/api/v1/conversations/{big}/status", {"status": "resolved"}),
        ("POST", "/api/v1/conversations/1/assign", {"agent_id": "{big}"}),
        ("PUT", "/api/v1/conversations/{big}/labels", {"labels": []}),
        ("GET", "/api/v1/conversations/{big}/suggestions", None),
        ("PATCH", "/api/v1/agents/{big}", {"name": "x"}),
        ("PATCH", "/api/v1/canned/{big}", {"text": "x"}),
        ("DELETE", "/api/v1/canned/{big}", None),
    ],
)
@pytest.mark.parametrize("big", [2**63, 2**31, -(2**63) - 1])
def test_an_id_beyond_the_id_columns_is_422_not_500(
    api: tuple[TestClient, dict[str, str]], method: str, path: str, body: Any, big: int
) -> None:
    """Found by fuzzing the API (test_fuzz_api.py): the driver raised OverflowError (SQLite)
    or DataError (PostgreSQL's int4) for an id no row can have."""
    client, auth = api
    customer_says(client, "ida", "hi")
    if body is not None:
        body = {k: big if v == "{big}" else v for k, v in body.items()}
    r = client.request(method, path.format(big=big), json=body, headers=auth)
    assert r.status_code == 422, r.text


def test_not_json_and_oversized_bodies(api: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = api
    r = client.post(
        "/api/v1/auth/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    big = {"email": "x@example.com", "password": "p" * 2_000_000}
    assert client.post("/api/v1/auth/login", json=big).status_code == 413


def test_health_and_readiness(api: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = api
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["database"] == "ok" and ready.json()["model"] == "ok"


def test_events_socket(api: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = api
    token = auth["authorization"].split()[1]
    with client.websocket_connect(f"/api/v1/events?token={token}") as events:
        customer_says(client, "gus", "/human")
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(
            e["type"] == "conversation.status_changed" for e in seen
        ):
            seen.append(events.receive_json())
    types = [e["type"] for e in seen]
    assert types[:2] == ["conversation.created", "message.created"]
    change = next(e for e in seen if e["type"] == "conversation.status_changed")
    assert (
        change["data"]["to"] == "pending"
        and change["conversation_id"] == seen[0]["conversation_id"]
    )


def test_events_socket_refuses_a_bad_token(api: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = api
    from starlette.websockets import WebSocketDisconnect

    with (
        pytest.raises(WebSocketDisconnect) as e,
        client.websocket_connect("/api/v1/events?token=nope"),
    ):
        pass
    assert e.value.code == 1008


def test_readiness_checks_redis_when_configured(
    settings: Any, classifier: IntentClassifier, flows: FlowEngine
) -> None:
    import os

    import redis

    url = os.environ.get("KEFU_TEST_REDIS", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url, socket_timeout=2).ping()
    except redis.RedisError as e:
        need("Redis", f"{url}: {e}")
    with client_for(settings.model_copy(update={"redis_url": url}), classifier, flows) as client:
        assert client.get("/readyz").json()["redis"] == "ok"
    down = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    with client_for(down, classifier, flows) as client:
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["ready"] is False
        assert "Error" in r.json()["redis"] and r.json()["database"] == "ok"
