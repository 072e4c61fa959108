"""The admin API behind /admin: labels and counts, agents and teams, canned responses,
channels, the bot (files, reload) and the try-it chat; on SQLite and PostgreSQL where it
queries the store in new ways."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from flows import FlowEngine
from hub.ops.settings import ChannelConfig, Settings
from nlu import IntentClassifier
from tests.conftest import SHOP, client_for, create_agent, login, make_settings
from tests.test_hub.test_api import customer_says

V1 = "/api/v1"
Api = tuple[TestClient, dict[str, str]]


@pytest.fixture
def both(
    database_url: str, tmp_path: Path, classifier: IntentClassifier, flows: FlowEngine
) -> Iterator[Api]:
    """The app on SQLite and on PostgreSQL, with an admin (lin) and an agent (wang)."""
    settings = make_settings(database_url, tmp_path)
    create_agent(settings, role="admin")
    create_agent(settings, email="wang@example.com", role="agent", teams=["care"])
    with client_for(settings, classifier, flows) as client:
        yield client, login(client)


@pytest.fixture
def api(settings: Settings, classifier: IntentClassifier, flows: FlowEngine) -> Iterator[Api]:
    """The app on SQLite, with an admin (lin), an agent (wang) and a designer (zhao)."""
    create_agent(settings, role="admin")
    create_agent(settings, email="wang@example.com", role="agent", teams=["care"])
    create_agent(settings, email="zhao@example.com", role="designer")
    with client_for(settings, classifier, flows) as client:
        yield client, login(client)


def conversation_id(client: TestClient, auth: dict[str, str], sender: str) -> int:
    items = client.get(f"{V1}/conversations", params={"q": sender}, headers=auth).json()["items"]
    [item] = [i for i in items if i["contact"]["external_id"] == sender]
    return int(item["id"])


def wait_for(check: Any, what: str, seconds: float = 10.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} in {seconds} s")
        time.sleep(0.05)


# ---- auth and roles ---------------------------------------------------------------------

ROUTES = [
    ("get", "/conversations/counts", None),
    ("get", "/labels", None),
    ("put", "/conversations/1/labels", {"labels": []}),
    ("get", "/agents", None),
    ("post", "/agents", {}),
    ("patch", "/agents/1", {}),
    ("patch", "/me", {}),
    ("get", "/teams", None),
    ("post", "/teams", {"name": "x"}),
    ("delete", "/teams/x", None),
    ("get", "/canned", None),
    ("post", "/canned", {}),
    ("patch", "/canned/1", {}),
    ("delete", "/canned/1", None),
    ("get", "/channels", None),
    ("get", "/bot", None),
    ("post", "/bot/reload", {}),
    ("post", "/bot/try", {"text": "hi", "session": "s"}),
]

ADMIN_ONLY = [
    ("post", "/agents", {"email": "a@b.c", "name": "A", "password": "12345678"}),
    ("patch", "/agents/1", {"name": "x"}),
    ("post", "/teams", {"name": "sales"}),
    ("delete", "/teams/care", None),
    ("post", "/canned", {"short_code": "hi", "text": "Hello"}),
    ("patch", "/canned/1", {"text": "x"}),
    ("delete", "/canned/1", None),
]


def call(client: TestClient, method: str, path: str, body: Any, auth: dict[str, str]) -> Any:
    kwargs: dict[str, Any] = {"headers": auth}
    if body is not None:
        kwargs["json"] = body
    return client.request(method.upper(), V1 + path, **kwargs)


def test_every_route_needs_a_token(api: Api) -> None:
    client, _ = api
    for method, path, body in ROUTES:
        r = call(client, method, path, body, {})
        assert r.status_code == 401, (method, path, r.text)
        r = call(client, method, path, body, {"authorization": "Bearer forged.token.here"})
        assert r.status_code == 401, (method, path, r.text)


def test_admin_routes_refuse_agents_and_designers(api: Api) -> None:
    client, _ = api
    for email in ("wang@example.com", "zhao@example.com"):
        auth = login(client, email)
        for method, path, body in ADMIN_ONLY:
            r = call(client, method, path, body, auth)
            assert r.status_code == 403, (email, method, path, r.text)
            assert "needs role admin" in r.json()["detail"]
    reload = client.post(f"{V1}/bot/reload", json={}, headers=login(client, "wang@example.com"))
    assert reload.status_code == 403
    assert reload.json()["detail"].startswith("needs role admin or designer")


# ---- conversations: labels and counts -----------------------------------------------------


def test_labels_filter_counts_and_the_label_list(both: Api) -> None:
    client, auth = both
    customer_says(client, "ann", "hello")
    customer_says(client, "bob", "/human")
    customer_says(client, "cy", "/human")
    ann, bob, cy = (conversation_id(client, auth, s) for s in ("ann", "bob", "cy"))

    def put(cid: int, labels: list[Any]) -> Any:
        return client.put(f"{V1}/conversations/{cid}/labels", json={"labels": labels}, headers=auth)

    token = auth["authorization"].split()[1]
    with client.websocket_connect(f"{V1}/events?token={token}") as events:
        r = put(bob, [" vip ", "退货", "vip", "Late"])
        assert r.status_code == 200, r.text
        assert r.json()["labels"] == ["vip", "退货", "Late"] and r.json()["id"] == bob
        event = wait_for(
            lambda: (e := events.receive_json())["type"] == "conversation.updated" and e, "event"
        )
        assert event["conversation_id"] == bob and event["data"]["labels"] == [
            "vip",
            "退货",
            "Late",
        ]
    assert put(ann, ["vip"]).status_code == 200
    assert put(cy, ["vipx", "late"]).status_code == 200

    def listed(**params: Any) -> list[int]:
        r = client.get(f"{V1}/conversations", params=params, headers=auth)
        assert r.status_code == 200, r.text
        return sorted(i["id"] for i in r.json()["items"])

    assert listed(label="vip") == sorted([ann, bob])
    assert listed(label="退货") == [bob]
    assert listed(label="late") == [cy]  # exact, case and all
    assert listed(label="vi") == []
    assert listed(label="vip", status="pending") == [bob]
    labels = client.get(f"{V1}/labels", headers=auth).json()["items"]
    assert labels == sorted(["vip", "退货", "Late", "vipx", "late"])

    counts = client.get(f"{V1}/conversations/counts", headers=auth).json()
    assert counts == {"pending": 2, "mine": 0, "open": 0, "bot": 1, "snoozed": 0, "resolved": 0}
    client.post(f"{V1}/conversations/{bob}/messages", json={"text": "Lin here"}, headers=auth)
    counts = client.get(f"{V1}/conversations/counts", headers=auth).json()
    assert counts["mine"] == 1 and counts["open"] == 1 and counts["pending"] == 1
    wang = login(client, "wang@example.com")
    assert client.get(f"{V1}/conversations/counts", headers=wang).json()["mine"] == 0
    by_label = client.get(f"{V1}/conversations/counts", params={"label": "vip"}, headers=auth)
    assert by_label.json() == {
        "pending": 0,
        "mine": 1,
        "open": 1,
        "bot": 1,
        "snoozed": 0,
        "resolved": 0,
    }
    other = client.get(f"{V1}/conversations/counts", params={"channel": "web"}, headers=auth)
    assert sum(other.json().values()) == 0

    assert put(bob, []).json()["labels"] == []
    assert listed(label="退货") == []


@pytest.mark.parametrize(
    "labels",
    [["x" * 33], [""], ["   "], [f"l{i}" for i in range(21)], "vip", [1]],
)
def test_bad_labels_are_422(api: Api, labels: Any) -> None:
    client, auth = api
    customer_says(client, "dee", "hello")
    cid = conversation_id(client, auth, "dee")
    r = client.put(f"{V1}/conversations/{cid}/labels", json={"labels": labels}, headers=auth)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]
    r = client.put(f"{V1}/conversations/999/labels", json={"labels": []}, headers=auth)
    assert r.status_code == 404


def test_labels_change_is_audited(api: Api, settings: Settings) -> None:
    import asyncio

    from sqlmodel import select

    from hub.store import AuditLog, Database

    client, auth = api
    customer_says(client, "eve", "hello")
    cid = conversation_id(client, auth, "eve")
    client.put(f"{V1}/conversations/{cid}/labels", json={"labels": ["a"]}, headers=auth)

    async def rows() -> list[AuditLog]:
        db = Database(settings.database_url)
        try:
            async with db.read() as s:
                query = select(AuditLog).where(AuditLog.action == "labels")
                return list((await s.exec(query)).all())
        finally:
            await db.close()

    [row] = asyncio.run(rows())
    assert row.conversation_id == cid and row.data == {"source": [], "target": ["a"]}
    assert row.actor.startswith("agent:")


# ---- agents -----------------------------------------------------------------------------


def test_agents_list_create_update(both: Api) -> None:
    client, auth = both
    customer_says(client, "fay", "/human")
    cid = conversation_id(client, auth, "fay")
    client.post(f"{V1}/conversations/{cid}/messages", json={"text": "hi"}, headers=auth)
    items = client.get(f"{V1}/agents", headers=login(client, "wang@example.com")).json()["items"]
    lin = next(a for a in items if a["email"] == "lin@example.com")
    assert lin["open_count"] == 1 and lin["capacity"] == 10 and lin["active"] is True
    assert lin["language"] is None and "password_hash" not in lin

    body = {
        "email": "Mei@Example.com",
        "name": "Mei",
        "password": "long-enough",
        "role": "designer",
        "teams": ["care", "售后", "care"],
        "capacity": 5,
    }
    r = client.post(f"{V1}/agents", json=body, headers=auth)
    assert r.status_code == 201, r.text
    mei = r.json()
    assert mei["email"] == "mei@example.com" and mei["role"] == "designer"
    assert mei["teams"] == ["care", "售后"] and mei["capacity"] == 5
    assert client.post(f"{V1}/agents", json=body, headers=auth).status_code == 409
    login(client, "mei@example.com", "long-enough")

    r = client.patch(
        f"{V1}/agents/{mei['id']}",
        json={
            "role": "agent",
            "teams": [],
            "capacity": 20,
            "name": "Mei Li",
            "password": "new-password",
        },
        headers=auth,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["role"], r.json()["teams"], r.json()["capacity"], r.json()["name"]) == (
        "agent",
        [],
        20,
        "Mei Li",
    )
    login(client, "mei@example.com", "new-password")
    r = client.patch(f"{V1}/agents/{mei['id']}", json={"active": False}, headers=auth)
    assert r.json()["active"] is False
    bad = client.post(
        f"{V1}/auth/login", json={"email": "mei@example.com", "password": "new-password"}
    )
    assert bad.status_code == 401
    assert client.patch(f"{V1}/agents/999", json={"name": "x"}, headers=auth).status_code == 404


def test_the_last_active_admin_stays(both: Api) -> None:
    client, auth = both
    me = client.get(f"{V1}/me", headers=auth).json()
    for change in ({"role": "agent"}, {"active": False}):
        r = client.patch(f"{V1}/agents/{me['id']}", json=change, headers=auth)
        assert r.status_code == 409 and "no active admin" in r.json()["detail"], r.text
    assert client.get(f"{V1}/me", headers=auth).json()["role"] == "admin"
    wang = next(
        a for a in client.get(f"{V1}/agents", headers=auth).json()["items"] if a["role"] == "agent"
    )
    assert (
        client.patch(f"{V1}/agents/{wang['id']}", json={"role": "admin"}, headers=auth).json()[
            "role"
        ]
        == "admin"
    )
    r = client.patch(f"{V1}/agents/{me['id']}", json={"role": "agent"}, headers=auth)
    assert r.status_code == 200 and r.json()["role"] == "agent"


@pytest.mark.parametrize(
    "body",
    [
        {"email": "x@example.com", "name": "X", "password": "short"},
        {"email": "x@example.com", "name": "X", "password": "12345678", "role": "boss"},
        {"email": "not-an-email", "name": "X", "password": "12345678"},
        {"email": "x@example.com", "name": "X", "password": "12345678", "capacity": 0},
        {"email": "x@example.com", "name": "X", "password": "12345678", "capacity": 101},
        {"email": "x@example.com", "name": "X", "password": "12345678", "teams": ["a b"]},
        {"email": "x@example.com", "name": "", "password": "12345678"},
        {"email": "x@example.com", "password": "12345678"},
        {"email": "x@example.com", "name": "X", "password": "12345678", "colour": "red"},
    ],
)
def test_bad_agent_bodies_are_422(api: Api, body: dict[str, Any]) -> None:
    client, auth = api
    r = client.post(f"{V1}/agents", json=body, headers=auth)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]


def test_bad_agent_patches_are_422(api: Api) -> None:
    client, auth = api
    for body in ({"role": "boss"}, {"capacity": 0}, {"name": None}, {"password": "short"}):
        r = client.patch(f"{V1}/agents/1", json=body, headers=auth)
        assert r.status_code == 422, (body, r.text)


def test_me_works_without_any_admin(
    settings: Settings, classifier: IntentClassifier, flows: FlowEngine
) -> None:
    create_agent(settings, role="agent")
    with client_for(settings, classifier, flows) as client:
        r = client.patch(f"{V1}/me", json={"presence": "away"}, headers=login(client))
        assert r.status_code == 200 and r.json()["presence"] == "away", r.text


def test_me_changes_own_settings(api: Api) -> None:
    client, _ = api
    wang = login(client, "wang@example.com")
    r = client.patch(
        f"{V1}/me", json={"language": "zh", "presence": "online", "name": "Wang Wei"}, headers=wang
    )
    assert r.status_code == 200, r.text
    assert (r.json()["language"], r.json()["presence"], r.json()["name"]) == (
        "zh",
        "online",
        "Wang Wei",
    )
    assert client.get(f"{V1}/me", headers=wang).json()["language"] == "zh"
    assert (
        client.patch(f"{V1}/me", json={"language": None}, headers=wang).json()["language"] is None
    )
    assert client.patch(f"{V1}/me", json={}, headers=wang).json()["name"] == "Wang Wei"
    for body in (
        {"language": "fr"},
        {"presence": "busy"},
        {"password": "new-password"},  # without current_password
        {"current_password": "s3cret-pass"},
        {"password": "short", "current_password": "s3cret-pass"},
        {"role": "admin"},
    ):
        r = client.patch(f"{V1}/me", json=body, headers=wang)
        assert r.status_code == 422, (body, r.text)
    wrong = client.patch(
        f"{V1}/me", json={"password": "new-password", "current_password": "nope"}, headers=wang
    )
    assert wrong.status_code == 403 and "current_password" in wrong.json()["detail"]
    ok = client.patch(
        f"{V1}/me",
        json={"password": "new-password", "current_password": "s3cret-pass"},
        headers=wang,
    )
    assert ok.status_code == 200
    login(client, "wang@example.com", "new-password")


# ---- teams ------------------------------------------------------------------------------


def test_teams(both: Api) -> None:
    client, auth = both
    customer_says(client, "gus", "/human")
    cid = conversation_id(client, auth, "gus")
    client.post(f"{V1}/conversations/{cid}/assign", json={"team": "billing"}, headers=auth)
    r = client.post(f"{V1}/teams", json={"name": "售后-1"}, headers=auth)
    assert r.status_code == 201 and r.json()["name"] == "售后-1" and r.json()["created_at"]
    assert client.post(f"{V1}/teams", json={"name": "售后-1"}, headers=auth).status_code == 409
    teams = {t["name"]: t for t in client.get(f"{V1}/teams", headers=auth).json()["items"]}
    assert list(teams) == sorted(["售后-1", "care", "billing"])
    assert teams["care"] == {"name": "care", "agents": 1, "pending": 0, "open": 0}
    assert teams["billing"] == {"name": "billing", "agents": 0, "pending": 1, "open": 0}
    assert teams["售后-1"]["agents"] == 0

    busy = client.delete(f"{V1}/teams/care", headers=auth)
    assert busy.status_code == 409 and "wang@example.com" in busy.json()["detail"]
    assert client.delete(f"{V1}/teams/售后-1", headers=auth).status_code == 204
    assert client.delete(f"{V1}/teams/售后-1", headers=auth).status_code == 404
    names = [t["name"] for t in client.get(f"{V1}/teams", headers=auth).json()["items"]]
    assert "售后-1" not in names
    for name in ("", "a b", "x" * 65, "a/b"):
        r = client.post(f"{V1}/teams", json={"name": name}, headers=auth)
        assert r.status_code == 422, (name, r.text)
    assert "letters" in str(client.post(f"{V1}/teams", json={"name": "a b"}, headers=auth).json())


# ---- canned responses ---------------------------------------------------------------------


def test_canned_responses(both: Api) -> None:
    client, auth = both
    wang = login(client, "wang@example.com")
    assert client.get(f"{V1}/canned", headers=wang).json() == {"items": []}
    for code in ("thanks", "hello"):
        r = client.post(f"{V1}/canned", json={"short_code": code, "text": f"{code}!"}, headers=auth)
        assert r.status_code == 201, r.text
    dup = client.post(f"{V1}/canned", json={"short_code": "hello", "text": "x"}, headers=auth)
    assert dup.status_code == 409 and "hello" in dup.json()["detail"]
    items = client.get(f"{V1}/canned", headers=wang).json()["items"]
    assert [(c["short_code"], c["text"]) for c in items] == [
        ("hello", "hello!"),
        ("thanks", "thanks!"),
    ]
    hello, thanks = items
    r = client.patch(f"{V1}/canned/{hello['id']}", json={"text": "Hi there"}, headers=auth)
    assert r.json() == {"id": hello["id"], "short_code": "hello", "text": "Hi there"}
    clash = client.patch(f"{V1}/canned/{hello['id']}", json={"short_code": "thanks"}, headers=auth)
    assert clash.status_code == 409
    assert client.patch(f"{V1}/canned/999", json={"text": "x"}, headers=auth).status_code == 404
    assert client.delete(f"{V1}/canned/{thanks['id']}", headers=auth).status_code == 204
    assert client.delete(f"{V1}/canned/{thanks['id']}", headers=auth).status_code == 404
    assert [c["short_code"] for c in client.get(f"{V1}/canned", headers=auth).json()["items"]] == [
        "hello"
    ]
    for body in (
        {"short_code": "two words", "text": "x"},
        {"short_code": "", "text": "x"},
        {"short_code": "x" * 65, "text": "x"},
        {"short_code": "ok", "text": ""},
        {"short_code": "ok", "text": "x" * 5001},
    ):
        assert client.post(f"{V1}/canned", json=body, headers=auth).status_code == 422, body
    assert (
        client.patch(f"{V1}/canned/{hello['id']}", json={"text": None}, headers=auth).status_code
        == 422
    )


# ---- channels ---------------------------------------------------------------------------


def test_channels_show_status_errors_and_the_last_failed_delivery(
    settings: Settings, classifier: IntentClassifier, flows: FlowEngine
) -> None:
    settings = settings.model_copy(
        update={
            "channels": [
                *settings.channels,
                ChannelConfig(name="mp", type="wechat"),  # no credentials
                ChannelConfig(name="tg", type="telegram", enabled=False),
            ]
        }
    )
    create_agent(settings, role="admin")
    with client_for(settings, classifier, flows) as client:
        auth = login(client)
        channels = {
            c["name"]: c for c in client.get(f"{V1}/channels", headers=auth).json()["items"]
        }
        assert list(channels) == ["web", "rest", "mp", "tg"]
        assert channels["web"] == {
            "name": "web",
            "type": "web",
            "enabled": True,
            "status": "ok",
            "error": None,
            "last_error": None,
        }
        assert channels["mp"]["status"] == "error" and "app_secret" in channels["mp"]["error"]
        assert channels["tg"]["status"] == "disabled" and channels["tg"]["enabled"] is False

        # the REST channel has no callback_url: an agent's reply can't be delivered
        customer_says(client, "hal", "/human")
        cid = conversation_id(client, auth, "hal")
        sent = client.post(f"{V1}/conversations/{cid}/messages", json={"text": "hi"}, headers=auth)

        def failed() -> Any:
            rest = next(
                c
                for c in client.get(f"{V1}/channels", headers=auth).json()["items"]
                if c["name"] == "rest"
            )
            return rest["last_error"]

        last = wait_for(failed, "failed delivery")
        assert last["message_id"] == sent.json()["id"] and last["conversation_id"] == cid
        assert "callback_url" in last["error"] and last["at"]


# ---- the bot ----------------------------------------------------------------------------


def test_bot_shows_flows_intents_and_knowledge(api: Api) -> None:
    client, _ = api
    bot = client.get(f"{V1}/bot", headers=login(client, "wang@example.com")).json()
    assert bot["path"] == str(SHOP) and bot["errors"] == [] and bot["served_errors"] == []
    assert bot["reloads"] == 0 and bot["loaded_at"]
    greet = next(f for f in bot["flows"] if f["name"] == "greet")
    assert greet["intents"] == ["greet"] and greet["file"] == "flows/greetings.yml"
    assert greet["steps"] >= 1 and greet["line"] > 1 and isinstance(greet["description"], str)
    intents = {i["name"]: i["examples"] for i in bot["intents"]}
    assert intents["greet"] > 3 and "human" in intents
    assert bot["knowledge"] and all(
        {"id", "kind", "title", "languages", "file", "line"} <= set(k) for k in bot["knowledge"]
    )
    assert any(k["file"].startswith("knowledge/") for k in bot["knowledge"])


def test_try_it_talks_to_the_real_bot(api: Api) -> None:
    client, _ = api
    wang = login(client, "wang@example.com")

    def say(text: str, session: str = "s1") -> Any:
        return client.post(f"{V1}/bot/try", json={"text": text, "session": session}, headers=wang)

    r = say("hello")
    assert r.status_code == 200, r.text
    hello = r.json()
    assert hello["status"] == "bot" and hello["nlu"]["intent"] == "greet"
    assert [m["sender"] for m in hello["replies"]] == ["bot"]
    assert "Kefu Shop" in hello["replies"][0]["text"]

    human = say("/human").json()
    assert human["conversation_id"] == hello["conversation_id"]
    assert human["status"] == "pending" and human["nlu"]["intent"] == "human"
    assert [m["sender"] for m in human["replies"]] == ["system"]
    assert say("anyone?").json() == {
        "conversation_id": hello["conversation_id"],
        "status": "pending",
        "nlu": say("anyone?", "s9").json()["nlu"],
        "replies": [],
    }
    other = say("hello", "s2").json()
    assert other["conversation_id"] != hello["conversation_id"] and other["status"] == "bot"

    auth = login(client)
    item = client.get(f"{V1}/conversations/{hello['conversation_id']}", headers=auth).json()
    assert item["channel"] == "try-it" and item["contact"]["external_id"].endswith("-s1")
    for body in (
        {"text": "", "session": "s"},
        {"text": "   ", "session": "s"},
        {"text": "x" * 2001, "session": "s"},
        {"text": "hi", "session": "bad session"},
        {"text": "hi", "session": ""},
        {"text": "hi"},
    ):
        assert client.post(f"{V1}/bot/try", json=body, headers=wang).status_code == 422, body


@pytest.fixture
def bot_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "shop"
    shutil.copytree(SHOP, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def test_reload_keeps_the_last_good_bot_when_files_are_broken(
    sqlite_url: str, tmp_path: Path, bot_copy: Path, classifier: IntentClassifier, flows: FlowEngine
) -> None:
    settings = make_settings(sqlite_url, tmp_path)
    settings = settings.model_copy(
        update={"bot": settings.bot.model_copy(update={"path": bot_copy})}
    )
    create_agent(settings, role="admin")
    create_agent(settings, email="zhao@example.com", role="designer")
    with client_for(settings, classifier, flows) as client:
        designer = login(client, "zhao@example.com")
        r = client.post(f"{V1}/bot/reload", json={"force_train": True}, headers=designer)
        assert r.status_code == 200, r.text
        assert r.json()["ok"] is True and r.json()["errors"] == [] and r.json()["trained"] is True
        first = r.json()["loaded_at"]
        again = client.post(f"{V1}/bot/reload", json={}, headers=designer).json()
        assert again["ok"] is True and again["trained"] is False and again["loaded_at"] >= first

        greetings = bot_copy / "flows" / "greetings.yml"
        greetings.write_text(
            greetings.read_text("utf-8").replace("  greet:\n", "  greet:\n    bogus: 1\n", 1),
            "utf-8",
        )
        broken = client.post(f"{V1}/bot/reload", json={}, headers=designer)
        assert broken.status_code == 200, broken.text
        body = broken.json()
        assert body["ok"] is False and body["trained"] is False
        assert body["loaded_at"] == again["loaded_at"]
        assert any(
            e.startswith(f"{greetings}:") and "flows.greet.bogus" in e for e in body["errors"]
        ), body["errors"]
        assert all(
            e.split(":")[1].isdigit() for e in body["errors"] if e.startswith(str(greetings))
        )
        bot = client.get(f"{V1}/bot", headers=designer).json()
        assert bot["served_errors"] == body["errors"] and bot["errors"] == body["errors"]
        assert (
            client.post(f"{V1}/bot/reload", json={"force_train": True}, headers=designer).json()[
                "ok"
            ]
            is False
        )

        answer = client.post(
            f"{V1}/bot/try", json={"text": "hello", "session": "r"}, headers=designer
        ).json()
        assert answer["status"] == "bot" and "Kefu Shop" in answer["replies"][0]["text"]
        assert (
            client.post(f"{V1}/bot/reload", json={"force": 1}, headers=designer).status_code == 422
        )
