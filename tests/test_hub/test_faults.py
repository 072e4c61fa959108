"""Faults, with real hub processes (hubprocs.py): what a customer, a platform and an agent see
when PostgreSQL is unreachable, when Redis restarts, and when a platform's API is slow.

- PostgreSQL cut off (a TCP proxy between the hub and the database, cut and restored):
  webhooks answer 503 with Retry-After so that the platform delivers again, /readyz says why,
  the inbox API answers 503 and sockets close with 1013; nothing is half written, and once the
  database is back the redelivered update is stored once and answered once.
- Redis restarted (a private redis-server killed and started again): a message still gets
  its answer while Redis is down; afterwards both processes are ready within seconds, the
  agents' sockets were closed with 1013 (the inbox reloads), and new ones get every event.
- A slow platform API (sendMessage takes 8 s): the webhook still answers at once; the reply
  goes out through the outbox and is marked sent.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
import yaml
from sqlalchemy.engine import make_url

from channels.telegram import SECRET_HEADER
from hub.ops.cluster import RedisLocks, connect
from tests.conftest import ROOT
from tests.test_channels.fake_telegram import FakeTelegram, running_fake
from tests.test_channels.kit_telegram import SECRET, TOKEN, text_update
from tests.test_hub.hubprocs import HubProcess, RedisServer, TcpProxy, free_port, new_cluster

EMAIL, PASSWORD = "agent@example.com", "faults-pass-1"
TELEGRAM = "/channels/telegram/tg"
REST = "/webhooks/rest/webhook"
UNAVAILABLE = {"detail": "database unavailable, retry later"}


@dataclass
class Processes:
    """The module's hub processes, started side by side (a start takes seconds):

    - `hub` reaches PostgreSQL through `proxy` and has a Telegram channel `tg` on the fake Bot
      API `api` (the PostgreSQL and the slow platform tests);
    - `a` and `b` share a database of their own and the private `redis` (the Redis test).
    """

    hub: HubProcess
    proxy: TcpProxy
    api: FakeTelegram
    a: HubProcess
    b: HubProcess
    redis: RedisServer


def write_config(folder: Path, api_base: str) -> Path:
    """The demo's config.yaml with a Telegram channel on the fake Bot API."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    bot = {**config["bot"], "path": str(ROOT / config["bot"]["path"])}
    channels = [
        {"name": "web", "type": "web"},
        {"name": "rest", "type": "rest"},
        {"name": "tg", "type": "telegram", "token": TOKEN, "secret_token": SECRET}
        | {"api_base": api_base},
    ]
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump({"bot": bot, "channels": channels}))
    return path


@pytest.fixture(scope="module")
def processes(
    pg_template: str, trained_models: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Processes]:
    proxied_folder, pair_folder = (tmp_path_factory.mktemp(n) for n in ("proxied", "pair"))
    with (
        new_cluster(pg_template, proxied_folder, trained_models) as proxied,
        new_cluster(pg_template, pair_folder, trained_models) as pair,
        running_fake(TOKEN) as api,
    ):
        database = make_url(proxied.env["DATABASE_URL"])
        redis = RedisServer(pair_folder).start()
        try:
            with TcpProxy(database.host or "127.0.0.1", database.port or 5432) as proxy:
                through_proxy = database.set(host="127.0.0.1", port=proxy.port)
                hubs = [
                    proxied.hub(
                        write_config(proxied_folder, api.base),
                        DATABASE_URL=through_proxy.render_as_string(hide_password=False),
                    ),
                    pair.hub(REDIS_URL=redis.url),
                    pair.hub(REDIS_URL=redis.url),
                ]
                for hub in hubs:
                    hub.launch()
                for cluster in (proxied, pair):  # while the processes start
                    cluster.create_agent(EMAIL, PASSWORD)
                for hub in hubs:
                    hub.wait_ready()
                yield Processes(hubs[0], proxy, api, hubs[1], hubs[2], redis)
        finally:
            redis.kill()


def post_update(hub: HubProcess, update: dict[str, Any]) -> httpx.Response:
    headers = {SECRET_HEADER: SECRET, "content-type": "application/json"}
    return httpx.post(
        f"{hub.base}{TELEGRAM}", content=json.dumps(update), headers=headers, timeout=30
    )


def login(base: str) -> dict[str, str]:
    r = httpx.post(f"{base}/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"authorization": f"Bearer {r.json()['access_token']}"}


def eventually(check: Callable[[], Any], within: float = 15, what: str = "") -> Any:
    """Poll `check` until it returns something truthy."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what or check}")
        time.sleep(0.1)


def ready_check(hub: HubProcess) -> Callable[[], bool]:
    return lambda: httpx.get(f"{hub.base}/readyz").status_code == 200


def history(hub: HubProcess, auth: dict[str, str], channel: str, external_id: str) -> list[Any]:
    """The messages of the customer's conversation, as the inbox API lists them."""
    listed = httpx.get(
        f"{hub.base}/api/v1/conversations", params={"channel": channel}, headers=auth
    )
    assert listed.status_code == 200, listed.text
    found = [c for c in listed.json()["items"] if c["contact"]["external_id"] == external_id]
    assert len(found) == 1, found
    url = f"{hub.base}/api/v1/conversations/{found[0]['id']}/messages"
    return list(httpx.get(url, headers=auth).json()["items"])


async def closed_with(url: str) -> int:
    """The close code of a socket the server closes at once (or refuses: 403)."""
    try:
        async with websockets.connect(url, open_timeout=15) as ws:
            async with asyncio.timeout(15):
                while True:
                    await ws.recv()
    except websockets.ConnectionClosed as e:
        return e.rcvd.code if e.rcvd else 1006
    except websockets.InvalidStatus as e:
        return e.response.status_code
    raise AssertionError("the socket stayed open")


def test_postgresql_unreachable_answers_503_and_loses_nothing(processes: Processes) -> None:
    hub, proxy, api = processes.hub, processes.proxy, processes.api
    auth = login(hub.base)
    update = text_update(5551, "hello", "pg-down-1")
    rest = {"sender": "pg-rest", "message": "hello", "metadata": {"message_id": "pg-rest-1"}}
    mark = len(hub.log())

    proxy.cut()
    try:
        # Webhooks: 503 with Retry-After, so that the platform delivers again.
        for r in (httpx.post(f"{hub.base}{REST}", json=rest, timeout=30), post_update(hub, update)):
            assert r.status_code == 503, r.text
            assert r.json() == UNAVAILABLE
            assert r.headers["retry-after"] == "5"
        # Readiness says why; the inbox API answers 503 too.
        ready = httpx.get(f"{hub.base}/readyz", timeout=30)
        assert ready.status_code == 503 and not ready.json()["ready"]
        assert "ConnectionRefusedError" in ready.json()["database"], ready.json()
        r = httpx.get(f"{hub.base}/api/v1/conversations", headers=auth, timeout=30)
        assert (r.status_code, r.json()) == (503, UNAVAILABLE)
        # Sockets: the widget's is closed with 1013 (try again later), the agents' refused.
        token = auth["authorization"].split()[1]
        assert asyncio.run(closed_with(f"{hub.ws}/channels/web/ws?visitor=v-pg-1")) == 1013
        assert asyncio.run(closed_with(f"{hub.ws}/api/v1/events?token={token}")) == 403
        time.sleep(6)  # an outage longer than the background loops' rounds (5 s)
    finally:
        proxy.restore()

    # The process lives on, and is ready again at once.
    eventually(ready_check(hub), 10, "ready")
    # Telegram delivers the update again (twice, even): stored once, answered once.
    for _ in range(2):
        assert post_update(hub, update).status_code == 200
    eventually(lambda: api.texts_to(5551), 15, "the answer on Telegram")
    r = httpx.post(f"{hub.base}{REST}", json=rest, timeout=30)
    assert r.status_code == 200 and r.json(), r.text

    for channel, customer in (("tg", "5551"), ("rest", "pg-rest")):
        messages = history(hub, auth, channel, customer)
        assert [m["direction"] for m in messages].count("in") == 1, messages
    outgoing = [m for m in history(hub, auth, "tg", "5551") if m["direction"] == "out"]
    eventually(lambda: len(api.texts_to(5551)) == len(outgoing), 15, "every reply sent once")
    time.sleep(0.5)
    assert len(api.texts_to(5551)) == len(outgoing)

    # One line per refused request, no traceback.
    log = hub.log()[mark:]
    assert "Traceback" not in log, log
    assert log.count("ConnectionRefusedError") <= 10, log


def test_a_slow_platform_api_doesnt_hold_the_webhook(processes: Processes) -> None:
    hub, api = processes.hub, processes.api
    api.slow("sendMessage", 8.0)
    started = time.monotonic()
    r = post_update(hub, text_update(5552, "hello", "slow-1"))
    assert r.status_code == 200, r.text
    assert time.monotonic() - started < 2  # Telegram has its answer; the reply is queued

    call = eventually(lambda: api.calls_of("sendMessage", ok_only=False), 10, "sendMessage")[0]
    eventually(lambda: api.texts_to(5552), 20, "the slow sendMessage answered")
    assert time.monotonic() - call.at >= 7.9
    auth = login(hub.base)

    def sent() -> bool:
        out = [m for m in history(hub, auth, "tg", "5552") if m["direction"] == "out"]
        return bool(out) and out[0]["delivery"] == "sent"

    eventually(sent, 10, "the reply marked sent")


# ---- Redis restarted ---------------------------------------------------------------------


async def frame(ws: Any, pred: Callable[[dict[str, Any]], bool], wait_s: float = 15) -> Any:
    async with asyncio.timeout(wait_s):
        while True:
            data = json.loads(await ws.recv())
            if pred(data):
                return data


def test_redis_restarted_processes_reconnect_and_lose_nothing(processes: Processes) -> None:
    a, b = processes.a, processes.b
    asyncio.run(redis_restart(a, b, processes.redis))
    for hub in (a, b):
        hub.stop()
        assert "Traceback" not in hub.log(), hub.log()


async def redis_restart(a: HubProcess, b: HubProcess, redis: RedisServer) -> None:
    auth = await asyncio.to_thread(login, b.base)
    token = auth["authorization"].split()[1]
    events = f"{b.ws}/api/v1/events?token={token}"
    async with (
        websockets.connect(events) as feed,
        websockets.connect(f"{a.ws}/channels/web/ws?visitor=v-redis-1") as widget,
        httpx.AsyncClient(timeout=30) as http,
    ):
        await frame(widget, lambda f: f["type"] == "hello")
        await widget.send(json.dumps({"type": "message", "client_id": "c1", "text": "hi"}))
        await frame(widget, lambda f: f["type"] == "message" and f["sender"] == "bot")
        await frame(feed, lambda e: e["type"] == "conversation.created")

        redis.kill()
        # Redis down: a message is still stored and answered (bus and locks fall back to
        # this process; the outbox is in the database).
        started = time.monotonic()
        body = {"sender": "r-down", "message": "hello", "metadata": {"message_id": "r-1"}}
        down = await http.post(f"{a.base}{REST}", json=body)
        assert down.status_code == 200 and down.json(), down.text
        assert time.monotonic() - started < 10
        ready = (await http.get(f"{a.base}/readyz")).json()
        assert ready["redis"] != "ok" and ready["database"] == "ok", ready
        redis.start()

        # Both processes are ready again within seconds.
        for hub in (a, b):
            await asyncio.to_thread(eventually, ready_check(hub), 15, "ready")
        # The agent's socket was closed with 1013: the inbox reconnects and reloads.
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await frame(feed, lambda e: False, 15)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013

        async with websockets.connect(events) as feed:
            # A message on A is answered, and B's new socket sees it.
            await widget.send(json.dumps({"type": "message", "client_id": "c2", "text": "hi"}))
            await frame(widget, lambda f: f["type"] == "ack" and f["client_id"] == "c2")
            await frame(widget, lambda f: f["type"] == "message" and f["sender"] == "bot")
            said = await frame(
                feed,
                lambda e: e["type"] == "message.created" and e["data"]["sender"] == "contact",
            )
            conversation_id = said["conversation_id"]
            # Handed to a human; the agent's reply on B reaches the widget on A.
            await widget.send(json.dumps({"type": "postback", "payload": "/human"}))
            await frame(
                feed,
                lambda e: (
                    e["type"] == "conversation.status_changed" and e["data"]["to"] == "pending"
                ),
            )
            r = await http.post(
                f"{b.base}/api/v1/conversations/{conversation_id}/messages",
                json={"text": "Lin here, after the Redis restart"},
                headers=auth,
            )
            assert r.status_code == 201, r.text
            reply = await frame(widget, lambda f: f["type"] == "message" and f["sender"] == "agent")
            assert reply["text"] == "Lin here, after the Redis restart"

        # The message stored while Redis was down is there, answered once.
        listed = await http.get(
            f"{b.base}/api/v1/conversations", params={"channel": "rest"}, headers=auth
        )
        [conversation] = [
            c for c in listed.json()["items"] if c["contact"]["external_id"] == "r-down"
        ]
        url = f"{b.base}/api/v1/conversations/{conversation['id']}/messages"
        messages = (await http.get(url, headers=auth)).json()["items"]
        assert [m["direction"] for m in messages].count("in") == 1
        answered = [m["text"] for m in down.json()]
        assert [m["text"] for m in messages if m["direction"] == "out"] == answered


async def test_without_redis_a_turn_waits_for_the_lock_a_bounded_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """RedisLocks with Redis down: the first turn waits DOWN_WAIT for it, then goes on under
    the process's lock (a warning, once); the next ones don't wait; one key's turns stay in
    order."""
    locks = RedisLocks(connect(f"redis://127.0.0.1:{free_port()}/0"))  # nothing listens
    order: list[str] = []

    async def turn(name: str) -> None:
        async with locks.hold(("web", "v1")):
            order.append(f"{name} in")
            await asyncio.sleep(0.05)
            order.append(f"{name} out")

    started = time.monotonic()
    await turn("first")
    assert locks.DOWN_WAIT <= time.monotonic() - started < locks.DOWN_WAIT + 3
    started = time.monotonic()
    await asyncio.gather(turn("second"), turn("third"))
    assert time.monotonic() - started < 1
    assert order == [f"{n} {s}" for n in ("first", "second", "third") for s in ("in", "out")]
    warnings = [r for r in caplog.records if "turns are locked in this process" in r.message]
    assert len(warnings) == 1
    await locks.client.aclose()
