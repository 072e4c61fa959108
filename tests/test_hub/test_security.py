"""API tokens, login lockout (in process and in Redis), masked logs and the audit log API."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from flows import FlowEngine
from hub.features.access.lockout import (
    Limits,
    LoginGuard,
    MemoryLoginGuard,
    RedisLoginGuard,
    login_guard,
)
from hub.ops.redact import install, redact, secret_values
from hub.ops.settings import Settings
from hub.store import ApiToken, Database
from nlu import IntentClassifier
from tests.conftest import client_for, create_agent, login
from tests.test_hub.test_admin_api import conversation_id
from tests.test_hub.test_api import customer_says

V1 = "/api/v1"
REDIS = os.environ.get("KEFU_TEST_REDIS", "redis://127.0.0.1:6379/15")
Api = tuple[TestClient, dict[str, str]]


@pytest.fixture
def api(settings: Settings, classifier: IntentClassifier, flows: FlowEngine) -> Iterator[Api]:
    """The app with an admin (lin) and an agent (wang)."""
    create_agent(settings, role="admin")
    create_agent(settings, "wang@example.com", role="agent")
    with client_for(settings, classifier, flows) as client:
        yield client, login(client)


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


# ---- API tokens ---------------------------------------------------------------------------


def test_api_token_is_shown_once_and_acts_with_its_role(api: Api, settings: Settings) -> None:
    client, admin = api
    r = client.post(f"{V1}/tokens", json={"name": "CRM sync", "role": "agent"}, headers=admin)
    assert r.status_code == 201, r.text
    created = r.json()
    token = created["token"]
    assert token.startswith("kefu_") and len(token) > 40
    assert created["name"] == "CRM sync" and created["role"] == "agent"
    assert created["created_by"].startswith("agent:") and created["revoked_at"] is None
    [listed] = client.get(f"{V1}/tokens", headers=admin).json()["items"]
    assert "token" not in listed and listed["id"] == created["id"]

    # only the SHA-256 is stored
    async def rows() -> list[ApiToken]:
        db = Database(settings.database_url)
        try:
            async with db.read() as s:
                return list((await s.exec(select(ApiToken))).all())
        finally:
            await db.close()

    [row] = asyncio.run(rows())
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(row.model_dump())

    # works like a login of its role, on the same routes; the audit names the token
    me = client.get(f"{V1}/me", headers=bearer(token)).json()
    assert me["role"] == "agent" and me["name"] == "CRM sync" and me["id"] is None
    assert client.post(f"{V1}/canned", json={}, headers=bearer(token)).status_code == 403
    customer_says(client, "tok", "/human")
    cid = conversation_id(client, bearer(token), "tok")
    r = client.post(
        f"{V1}/conversations/{cid}/messages", json={"text": "Hi"}, headers=bearer(token)
    )
    assert r.status_code == 201, r.text
    audit = client.get(f"{V1}/audit", params={"conversation_id": cid}, headers=admin).json()
    actors = {(row["actor"], row["action"]) for row in audit["items"]}
    assert {(f"token:{created['id']}", "reply"), (f"token:{created['id']}", "status")} <= actors
    assert client.get(f"{V1}/tokens", headers=admin).json()["items"][0]["last_used_at"]
    with client.websocket_connect(f"{V1}/events?token={token}"):
        pass

    # revoked: refused at once, still listed
    assert client.delete(f"{V1}/tokens/{created['id']}", headers=admin).status_code == 204
    r = client.get(f"{V1}/conversations", headers=bearer(token))
    assert r.status_code == 401 and "revoked" in r.json()["detail"]
    [listed] = client.get(f"{V1}/tokens", headers=admin).json()["items"]
    assert listed["revoked_at"] is not None
    assert client.delete(f"{V1}/tokens/999", headers=admin).status_code == 404
    actions = [row["action"] for row in client.get(f"{V1}/audit", headers=admin).json()["items"]]
    assert "token.created" in actions and "token.revoked" in actions


def test_forged_and_bad_token_requests(api: Api) -> None:
    client, admin = api
    forged = bearer("kefu_" + "x" * 43)
    assert client.get(f"{V1}/conversations", headers=forged).status_code == 401
    for body in ({"name": "x", "role": "root"}, {"role": "agent"}, {"name": "", "role": "agent"}):
        assert client.post(f"{V1}/tokens", json=body, headers=admin).status_code == 422
    r = client.post(f"{V1}/tokens", json={"name": "ops", "role": "admin"}, headers=admin)
    token = bearer(r.json()["token"])
    # an admin token administers, but has no settings of its own
    assert client.get(f"{V1}/tokens", headers=token).status_code == 200
    assert client.patch(f"{V1}/me", json={"name": "x"}, headers=token).status_code == 403
    r = client.get(f"{V1}/conversations", params={"assignee": "me"}, headers=token)
    assert r.status_code == 422


# ---- login lockout ----------------------------------------------------------------------


def attempt(client: TestClient, email: str, password: str) -> Any:
    return client.post(f"{V1}/auth/login", json={"email": email, "password": password})


def check_lockout(client: TestClient, admin: dict[str, str]) -> None:
    """Five failures lock the email for 15 minutes, even for the right password; an audit
    row says so; other emails are not affected; a success forgets earlier failures."""
    for _ in range(4):
        assert attempt(client, "wang@example.com", "wrong").status_code == 401
    assert attempt(client, "wang@example.com", "s3cret-pass").status_code == 200
    for _ in range(4):
        assert attempt(client, "wang@example.com", "wrong").status_code == 401
    assert attempt(client, "WANG@example.com", "wrong").status_code == 401  # the fifth
    r = attempt(client, "wang@example.com", "s3cret-pass")
    assert r.status_code == 429, r.text
    assert 890 <= int(r.headers["retry-after"]) <= 900
    assert attempt(client, "lin@example.com", "s3cret-pass").status_code == 200
    rows = client.get(f"{V1}/audit", params={"action": "login.locked"}, headers=admin).json()
    [row] = rows["items"]
    assert row["data"]["email"] == "wang@example.com" and row["actor"] == "ip:testclient"


def check_ip_limit(client: TestClient, guard: LoginGuard) -> None:
    """20 attempts a minute from one address; then 429 whatever the email."""
    client.app.state.hub.logins = guard  # type: ignore[attr-defined]
    statuses = [attempt(client, f"nobody{i}@example.com", "x").status_code for i in range(20)]
    assert set(statuses) == {401}
    r = attempt(client, "lin@example.com", "s3cret-pass")
    assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 60


def test_login_lockout_in_process(api: Api) -> None:
    client, admin = api
    assert type(client.app.state.hub.logins) is MemoryLoginGuard  # type: ignore[attr-defined]
    check_lockout(client, admin)
    check_ip_limit(client, MemoryLoginGuard())


def test_login_lockout_in_redis(api: Api, redis_prefix: tuple[Any, str]) -> None:
    import redis.asyncio as aioredis

    client, admin = api
    _, prefix = redis_prefix
    hub = client.app.state.hub  # type: ignore[attr-defined]
    # a client of the app's own event loop (the TestClient's portal)
    portal = client.portal
    assert portal is not None
    redis = aioredis.from_url(REDIS, socket_timeout=2)  # connects in the app's loop, on use
    hub.logins = RedisLoginGuard(redis, prefix)
    try:
        check_lockout(client, admin)
        assert 0 < portal.call(redis.ttl, f"{prefix}login:locked:wang@example.com") <= 900
        check_ip_limit(client, RedisLoginGuard(redis, f"{prefix}again:"))
    finally:
        portal.call(redis.aclose)


async def test_processes_share_the_counts_in_redis(redis_prefix: tuple[Any, str]) -> None:
    redis, prefix = redis_prefix
    limits = Limits(failures=3, per_ip=100)
    one, two = RedisLoginGuard(redis, prefix, limits), RedisLoginGuard(redis, prefix, limits)
    assert await one.failed("a@x.cn") is False
    assert await two.failed("a@x.cn") is False
    assert await one.failed("a@x.cn") is True  # the third failure, counted across processes
    wait = await two.attempt("a@x.cn", "10.0.0.1")
    assert wait is not None and 0 < wait <= 900
    assert await two.attempt("b@x.cn", "10.0.0.1") is None
    assert type(login_guard(redis, prefix)) is RedisLoginGuard
    assert type(login_guard(None)) is MemoryLoginGuard


async def test_redis_down_lets_logins_through(caplog: pytest.LogCaptureFixture) -> None:
    import redis.asyncio as aioredis

    down = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    guard = RedisLoginGuard(down, "kefu-test:")
    try:
        assert await guard.attempt("a@x.cn", "10.0.0.1") is None
        assert await guard.failed("a@x.cn") is False
    finally:
        await down.aclose()
    assert "login throttling is off" in caplog.text


async def test_lock_and_windows_expire() -> None:
    now = [1000.0]
    guard = MemoryLoginGuard(Limits(per_ip=2), clock=lambda: now[0])
    for _ in range(4):
        assert await guard.failed("a@x.cn") is False
    now[0] += 15 * 60  # the failures' window ended: counting starts again
    for _ in range(4):
        assert await guard.failed("a@x.cn") is False
    assert await guard.failed("a@x.cn") is True
    assert await guard.attempt("a@x.cn", "ip1") == 900
    now[0] += 899
    assert await guard.attempt("a@x.cn", "ip2") == 1
    now[0] += 1
    assert await guard.attempt("a@x.cn", "ip3") is None
    assert await guard.attempt("b@x.cn", "ip3") is None
    assert await guard.attempt("c@x.cn", "ip3") == 60  # a third attempt from ip3
    now[0] += 60
    assert await guard.attempt("c@x.cn", "ip3") is None


# ---- masked logs --------------------------------------------------------------------------

SAMPLES = {
    "13812345678": "138****5678",
    "+86 13812345678": "138****5678",
    "+44 20 7946 0958": "+***58",
    "lin.wei@example.com": "l***@example.com",
    "11010519491231002X": "110*************2X",
    "Authorization: Bearer abc.def-ghi": "Authorization: Bearer ***",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl": "[jwt]",
    "kefu_Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA": "kefu_***",
}


@pytest.mark.parametrize(("raw", "masked"), SAMPLES.items())
def test_each_kind_is_masked_in_logs(
    raw: str, masked: str, caplog: pytest.LogCaptureFixture, settings: Settings
) -> None:
    install(settings)
    with caplog.at_level(logging.INFO):
        logging.getLogger("hub.test").info("customer said %s today", raw)
    assert caplog.records[-1].getMessage() == f"customer said {masked} today"
    assert raw not in caplog.text


def test_ordinary_numbers_and_text_stay() -> None:
    for text in ("order 12345678 shipped", "at 2026-12-01 10:00:00", "id 123456789012345678901"):
        assert redact(text) == text


def test_secret_settings_are_masked(caplog: pytest.LogCaptureFixture, settings: Settings) -> None:
    channels = [
        {"name": "tg", "type": "telegram", "token": "123456:AAH-telegram-token"},
        {"name": "mail", "type": "email", "imap": {"password": "mailbox-pass"}, "port": 993},
        {"name": "wx", "type": "wechat", "app_secret": "wx-app-secret", "app_id": "wx123"},
    ]
    configured = settings.model_copy(
        update={
            "channels": [*settings.channels, *(Settings(channels=channels).channels)],
            "redis_url": "redis://:redis-pass@127.0.0.1:6379/0",
        }
    )
    found = secret_values(configured)
    assert {"123456:AAH-telegram-token", "mailbox-pass", "wx-app-secret", "redis-pass"} <= found
    assert configured.secret_key in found and "wx123" not in found and "993" not in found
    install(configured)
    log = logging.getLogger("channels.test")
    with caplog.at_level(logging.INFO):
        log.info("key %s token %s", configured.secret_key, "123456:AAH-telegram-token")
        try:
            raise ValueError("login failed with mailbox-pass for lin@example.com")
        except ValueError:
            log.exception("imap")
    for secret in (configured.secret_key or "", "123456:AAH-telegram-token", "mailbox-pass"):
        assert secret not in caplog.text
    assert "lin@example.com" not in caplog.text and "l***@example.com" in caplog.text


def test_a_failed_login_logs_no_password(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    client, _ = api
    with caplog.at_level(logging.DEBUG):
        r = attempt(client, "wang@example.com", "Tr0ub4dor&3-guess")
    assert r.status_code == 401
    assert "Tr0ub4dor&3-guess" not in caplog.text
    assert "wang@example.com" not in caplog.text and "w***@example.com" in caplog.text


# ---- the audit log ------------------------------------------------------------------------


def test_audit_log_filters_and_pages(api: Api) -> None:
    client, admin = api
    customer_says(client, "aud", "/human")
    cid = conversation_id(client, admin, "aud")
    for labels in (["a"], ["b"], ["c"]):
        client.put(f"{V1}/conversations/{cid}/labels", json={"labels": labels}, headers=admin)
    client.post(f"{V1}/canned", json={"short_code": "hi", "text": "Hello"}, headers=admin)
    me = client.get(f"{V1}/me", headers=admin).json()["id"]

    def get(**params: Any) -> dict[str, Any]:
        r = client.get(f"{V1}/audit", params=params, headers=admin)
        assert r.status_code == 200, r.text
        return dict(r.json())

    page = get(action="labels", limit=2)
    assert [row["data"]["target"] for row in page["items"]] == [["c"], ["b"]]
    assert page["items"][0]["actor"] == f"agent:{me}" and page["items"][0]["conversation_id"] == cid
    rest = get(action="labels", limit=2, cursor=page["next_cursor"])
    assert [row["data"]["target"] for row in rest["items"]] == [["a"]] and not rest["next_cursor"]
    by_conversation = {row["action"] for row in get(conversation_id=cid)["items"]}
    assert by_conversation == {"labels", "status"}  # the bot's handoff is there too
    assert {row["actor"] for row in get(conversation_id=cid, actor="bot")["items"]} == {"bot"}
    assert [row["action"] for row in get(actor=f"agent:{me}", action="canned.created")["items"]]
    assert get(actor="agent:999")["items"] == []
    assert client.get(f"{V1}/audit", params={"cursor": "x"}, headers=admin).status_code == 422
    wang = login(client, "wang@example.com")
    assert client.get(f"{V1}/audit", headers=wang).status_code == 403
