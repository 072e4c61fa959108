"""Login tokens end when they should: logout revokes the one token, a password change or an
admin's reset or deactivation revokes all of the agent's earlier ones, and an open events
socket is closed (or stops sending) when its agent is deactivated, logged out or moved out of
a team."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from flows import FlowEngine
from hub.inbox import events
from hub.messages import utcnow
from hub.ops.settings import Settings
from hub.store import Database, Store
from hub.store.sessions import LoginTokens
from nlu import IntentClassifier
from tests.conftest import client_for, create_agent, login
from tests.test_hub.test_admin_api import conversation_id
from tests.test_hub.test_api import customer_says

V1 = "/api/v1"
Api = tuple[TestClient, dict[str, str], int]


@pytest.fixture
def api(settings: Settings, classifier: IntentClassifier, flows: FlowEngine) -> Iterator[Api]:
    """The app with an admin (lin) and an agent of team care (wang, whose id is given)."""
    create_agent(settings, role="admin")
    wang = create_agent(settings, "wang@example.com", role="agent", teams=["care"])
    with client_for(settings, classifier, flows) as client:
        yield client, login(client), wang


def me(client: TestClient, auth: dict[str, str]) -> Any:
    return client.get(f"{V1}/me", headers=auth)


def revoked_rows(settings: Settings) -> int:
    async def count() -> int:
        db = Database(settings.database_url)
        try:
            return await LoginTokens(db).count()
        finally:
            await db.close()

    return asyncio.run(count())


def test_logout_revokes_the_token_it_is_called_with(api: Api, settings: Settings) -> None:
    client, admin, _ = api
    laptop, phone = login(client, "wang@example.com"), login(client, "wang@example.com")
    assert laptop != phone  # each login is a token of its own
    r = client.post(f"{V1}/auth/logout", headers=laptop)
    assert r.status_code == 204, r.text
    r = me(client, laptop)
    assert r.status_code == 401 and "logged out" in r.json()["detail"]
    assert client.post(f"{V1}/auth/logout", headers=laptop).status_code == 401
    assert me(client, phone).status_code == 200  # the agent's other token still works
    assert client.post(f"{V1}/auth/logout").status_code == 401  # no token: nothing to revoke
    rows = client.get(f"{V1}/audit", params={"action": "auth.logout"}, headers=admin).json()
    assert len(rows["items"]) == 1 and rows["items"][0]["actor"].startswith("agent:")


def test_revoked_tokens_are_forgotten_once_expired(api: Api, settings: Settings) -> None:
    client, _, _ = api

    async def revoke_expired() -> None:
        db = Database(settings.database_url)
        try:
            await LoginTokens(db).revoke("old-jti", utcnow() - timedelta(minutes=1))
        finally:
            await db.close()

    asyncio.run(revoke_expired())
    assert revoked_rows(settings) == 1
    assert client.post(f"{V1}/auth/logout", headers=login(client)).status_code == 204
    assert revoked_rows(settings) == 1  # the expired one went, the new one is kept


def test_logout_with_an_api_token_revokes_it(api: Api) -> None:
    client, admin, _ = api
    r = client.post(f"{V1}/tokens", json={"name": "crm", "role": "agent"}, headers=admin)
    token = {"authorization": f"Bearer {r.json()['token']}"}
    assert client.post(f"{V1}/auth/logout", headers=token).status_code == 204
    assert client.get(f"{V1}/conversations", headers=token).status_code == 401
    [listed] = client.get(f"{V1}/tokens", headers=admin).json()["items"]
    assert listed["revoked_at"] is not None


def test_a_password_change_revokes_earlier_tokens(api: Api) -> None:
    client, _, _ = api
    first, second = login(client, "wang@example.com"), login(client, "wang@example.com")
    body = {"current_password": "s3cret-pass", "password": "a-new-passphrase"}
    r = client.patch(f"{V1}/me", json=body, headers=first)
    assert r.status_code == 200, r.text
    for old in (first, second):  # the tab that changed it and the agent's other devices
        r = me(client, old)
        assert r.status_code == 401 and "password" in r.json()["detail"]
    new = login(client, "wang@example.com", "a-new-passphrase")
    assert me(client, new).status_code == 200
    r = client.post(
        f"{V1}/auth/login", json={"email": "wang@example.com", "password": "s3cret-pass"}
    )
    assert r.status_code == 401


def test_the_password_change_answer_has_a_working_token(api: Api) -> None:
    client, _, _ = api
    old = login(client, "wang@example.com")
    body = {"current_password": "s3cret-pass", "password": "a-new-passphrase"}
    r = client.patch(f"{V1}/me", json=body, headers=old)
    assert r.status_code == 200, r.text
    new = {"authorization": f"Bearer {r.json()['access_token']}"}
    assert me(client, new).json()["email"] == "wang@example.com"
    assert me(client, old).status_code == 401
    # a change without a new password keeps the token, and gives none
    r = client.patch(f"{V1}/me", json={"presence": "online"}, headers=new)
    assert r.status_code == 200 and "access_token" not in r.json()
    assert me(client, new).status_code == 200


def test_an_admin_reset_or_deactivation_revokes_the_agents_tokens(api: Api) -> None:
    client, admin, wang = api
    token = login(client, "wang@example.com")
    r = client.patch(f"{V1}/agents/{wang}", json={"capacity": 3}, headers=admin)
    assert r.status_code == 200 and me(client, token).status_code == 200  # not a reset
    r = client.patch(f"{V1}/agents/{wang}", json={"password": "reset-by-admin"}, headers=admin)
    assert r.status_code == 200, r.text
    assert me(client, token).status_code == 401
    assert me(client, admin).status_code == 200  # the admin's own token is not touched

    token = login(client, "wang@example.com", "reset-by-admin")
    client.patch(f"{V1}/agents/{wang}", json={"active": False}, headers=admin)
    assert me(client, token).status_code == 401
    client.patch(f"{V1}/agents/{wang}", json={"active": True}, headers=admin)
    assert me(client, token).status_code == 401  # reactivating revives no old token
    assert me(client, login(client, "wang@example.com", "reset-by-admin")).status_code == 200


def test_tokens_without_a_version_or_id_are_refused(api: Api, settings: Settings) -> None:
    """A token issued before tokens could be revoked (no `jti`, no `ver`) must log in again."""
    client, _, wang = api
    now = utcnow()
    claims = {"sub": str(wang), "role": "agent", "iat": now, "exp": now + timedelta(hours=1)}
    secret = settings.jwt_secret()
    old = jwt.encode(claims, secret, algorithm="HS256")
    assert me(client, {"authorization": f"Bearer {old}"}).status_code == 401
    stale = jwt.encode({**claims, "jti": "x", "ver": 7}, secret, algorithm="HS256")
    assert me(client, {"authorization": f"Bearer {stale}"}).status_code == 401


async def test_the_revocation_records_on_both_databases(database_url: str) -> None:
    db = Database(database_url)
    try:
        store, tokens = Store(db), LoginTokens(db)
        await store.create_agent("lin@example.com", "Lin", "hash", role="admin")
        agent = await store.create_agent("mei@example.com", "Mei", "hash")
        assert agent.id is not None and agent.token_version == 0
        later = utcnow() + timedelta(hours=1)
        await tokens.revoke("gone", later)
        await tokens.revoke("gone", later)  # twice: still one row
        found, revoked = await tokens.agent(agent.id, "gone")
        assert found is not None and found.email == "mei@example.com" and revoked is True
        assert (await tokens.agent(agent.id, "other"))[1] is False
        assert await tokens.agent(999, "gone") == (None, False)
        assert await tokens.count() == 1
        changed = await store.update_agent(agent.id, password_hash="new-hash")
        assert changed is not None and changed.token_version == 1
        changed = await store.update_agent(agent.id, capacity=3, active=True)
        assert changed is not None and changed.token_version == 1  # nothing to revoke
        changed = await store.update_agent(agent.id, active=False)
        assert changed is not None and changed.token_version == 2
        await store.set_password_hash(agent.id, "rehashed")  # the same password, rehashed
        assert (await tokens.agent(agent.id, "x"))[0].token_version == 2  # type: ignore[union-attr]
    finally:
        await db.close()


# ---- the events socket --------------------------------------------------------------------


@pytest.fixture
def recheck_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sockets read their agent again before every event (no second of grace)."""
    monkeypatch.setattr(events, "RECHECK_EVERY", 0.0)


@pytest.fixture
def signal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sockets never read their agent again on their own: only the hub's signal of a change
    (bus.agent_changed) can make them, so a test shows the change acts at once."""
    monkeypatch.setattr(events, "RECHECK_EVERY", 3600.0)
    monkeypatch.setattr(events, "IDLE_RECHECK", 3600.0)


def care_conversation(client: TestClient, admin: dict[str, str], sender: str) -> int:
    customer_says(client, sender, "/human")
    cid = conversation_id(client, admin, sender)
    r = client.post(f"{V1}/conversations/{cid}/assign", json={"team": "care"}, headers=admin)
    assert r.status_code == 200, r.text
    return cid


def label(client: TestClient, admin: dict[str, str], cid: int, name: str) -> None:
    r = client.put(f"{V1}/conversations/{cid}/labels", json={"labels": [name]}, headers=admin)
    assert r.status_code == 200, r.text


def next_event(socket: Any, cid: int) -> dict[str, Any]:
    while True:
        event: dict[str, Any] = socket.receive_json()
        if event["conversation_id"] == cid and event["type"] == "conversation.updated":
            return event


def test_a_deactivated_agents_socket_is_closed(api: Api, signal_only: None) -> None:
    client, admin, wang = api
    cid = care_conversation(client, admin, "ev-deactivate")
    token = login(client, "wang@example.com")["authorization"].split()[1]
    with client.websocket_connect(f"{V1}/events?token={token}") as socket:
        label(client, admin, cid, "before")
        assert next_event(socket, cid)["data"]["labels"] == ["before"]
        r = client.patch(f"{V1}/agents/{wang}", json={"active": False}, headers=admin)
        assert r.status_code == 200, r.text
        label(client, admin, cid, "after")
        with pytest.raises(WebSocketDisconnect) as closed:
            next_event(socket, cid)
    assert closed.value.code == 1008  # the inbox takes it as "log in again"


def test_a_change_made_elsewhere_closes_the_socket_at_its_next_event(
    api: Api, settings: Settings, recheck_now: None
) -> None:
    """`kefu agent deactivate` in another process (no Redis: no signal reaches this one): the
    socket reads the agent again before its next event and closes instead of sending it."""
    client, admin, wang = api
    cid = care_conversation(client, admin, "ev-elsewhere")
    token = login(client, "wang@example.com")["authorization"].split()[1]
    with client.websocket_connect(f"{V1}/events?token={token}") as socket:

        async def deactivate() -> None:
            db = Database(settings.database_url)
            try:
                await Store(db).update_agent(wang, active=False)
            finally:
                await db.close()

        asyncio.run(deactivate())  # the database only, as another process would
        label(client, admin, cid, "after")
        with pytest.raises(WebSocketDisconnect) as closed:
            next_event(socket, cid)
    assert closed.value.code == 1008


def test_a_logged_out_token_closes_its_socket(api: Api, signal_only: None) -> None:
    client, admin, _ = api
    cid = care_conversation(client, admin, "ev-logout")
    auth = login(client, "wang@example.com")
    token = auth["authorization"].split()[1]
    with client.websocket_connect(f"{V1}/events?token={token}") as socket:
        assert client.post(f"{V1}/auth/logout", headers=auth).status_code == 204
        label(client, admin, cid, "after")
        with pytest.raises(WebSocketDisconnect) as closed:
            next_event(socket, cid)
    assert closed.value.code == 1008 and "logged out" in closed.value.reason


def test_an_agent_moved_out_of_a_team_stops_getting_its_events(api: Api, signal_only: None) -> None:
    client, admin, wang = api
    cid = care_conversation(client, admin, "ev-team")
    token = login(client, "wang@example.com")["authorization"].split()[1]
    with client.websocket_connect(f"{V1}/events?token={token}") as socket:
        # a change that doesn't change what they see keeps the socket going
        client.patch(f"{V1}/agents/{wang}", json={"capacity": 4}, headers=admin)
        label(client, admin, cid, "still-care")
        assert next_event(socket, cid)["data"]["labels"] == ["still-care"]
        r = client.patch(f"{V1}/agents/{wang}", json={"teams": ["sales"]}, headers=admin)
        assert r.status_code == 200, r.text
        label(client, admin, cid, "care-secret")
        with pytest.raises(WebSocketDisconnect) as closed:
            next_event(socket, cid)  # the care event is not sent: the socket closes first
    assert closed.value.code == events.ACCESS_CHANGED and "teams" in closed.value.reason
    # reconnected, they get only what sales may see
    with client.websocket_connect(f"{V1}/events?token={token}") as socket:
        label(client, admin, cid, "care-later")
        other = care_conversation(client, admin, "ev-team-2")
        client.post(f"{V1}/conversations/{other}/assign", json={"team": "sales"}, headers=admin)
        label(client, admin, other, "sales-now")
        event = socket.receive_json()
        while event["type"] != "conversation.updated":
            assert event["conversation_id"] != cid, event
            event = socket.receive_json()
        assert event["conversation_id"] == other


def test_an_idle_socket_is_closed_when_its_token_is_revoked(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, admin, wang = api
    monkeypatch.setattr(events, "IDLE_RECHECK", 0.1)
    token = login(client, "wang@example.com")["authorization"].split()[1]
    with client.websocket_connect(f"{V1}/events?token={token}") as socket:
        client.patch(f"{V1}/agents/{wang}", json={"password": "reset-by-admin"}, headers=admin)
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()  # no event comes: the periodic check closes it
    assert closed.value.code == 1008 and "password" in closed.value.reason
