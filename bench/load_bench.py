"""Load benchmark: simulated customers over REST and widget sockets, and a 1,000-socket broadcast.

Every target is started as subprocesses on free 127.0.0.1 ports and measured alone:

- `baseline`: bench/baseline_db_app.py, a bare FastAPI app doing one INSERT + COMMIT per message
  into SQLite (WAL), with the REST endpoint's and the widget socket's shapes;
- `hub (a)`: `kefu run`, the embedded default: one process, SQLite (WAL) in a temporary folder,
  the in-process bus, the demo bot;
- `hub (b)`: two `kefu run` processes on one temporary PostgreSQL database (created, then
  dropped) and Redis (a unique KEFU_REDIS_PREFIX, its keys deleted at the end); each customer
  talks to one of the two ports, half of them to each;
- `rasa`: Rasa 3.6's REST channel (`rasa run`, from .venv-rasa, see bench/rasa/load_bot.py) with
  a small bot on the demo bot's NLU data, when that venv exists.

Load: C customers for a warm-up, then a fixed measured window. Half use
`POST /webhooks/rest/webhook` (one keep-alive httpx connection each), half a widget WebSocket
`/channels/web/ws?visitor=...` (send a `message` frame, wait for its `ack`, then for the bot's
`message` frame); each sends its next message as soon as the answer came, in the demo-bot
English/Chinese mix of bench/rest_bench.py. Counted: messages sent, stored (a query of the
database at the end), answered, lost (sent, not stored), errors; msg/s and p50/p99 time to the
bot's answer in the window; server CPU; each server process's peak RSS (VmHWM).

Broadcast (hub targets): 1,000 sockets, half agents' event sockets (`/api/v1/events`) and half
widget sockets (tabs) of one visitor; an agent's reply to that visitor's conversation is one
`message.created` event for every agent socket and one `message` frame for every tab. Timed
from the reply's POST to the last socket's receipt, over several rounds.

    python bench/load_bench.py [--customers 32] [--duration 10] [--warmup 3] [--sockets 1000]
        [--targets baseline,hub-a,hub-b,rasa] [--no-write]

`make bench` / `kefu bench load` run this file from the repository root.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rasa_peer
import report as common
from rest_bench import SCRIPTS, Server, bench_config, fmt, free_port, kefu_argv, memory_mb

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
WEBHOOK = "/webhooks/rest/webhook"
WIDGET = "/channels/web/ws"
PG_ADMIN = os.environ.get("KEFU_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("KEFU_BENCH_REDIS", "redis://127.0.0.1:6379/0")
AGENT_EMAIL = "bench@example.com"
AGENT_PASSWORD = uuid.uuid4().hex
COUNT_INBOUND = "SELECT count(*) FROM message WHERE direction = 'in' AND channel IN ('rest', 'web')"

log = logging.getLogger("load_bench")


def raise_fd_limit(want: int) -> int:
    """Raise this process's soft open-files limit (children inherit it); returns the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


# ---- targets ----------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    label: str
    servers: list[Server]
    count_stored: Callable[[], Awaitable[int]]
    hub: bool = False
    cleanup: list[Callable[[], Any]] = field(default_factory=list)
    peak_after_load: list[float | None] = field(default_factory=list)
    note: str = ""

    @property
    def urls(self) -> list[str]:
        return [s.base_url for s in self.servers]

    def start(self, timeout: float = 180) -> None:
        for server in self.servers:
            print(f"starting {server.name} on {server.base_url} ...", file=sys.stderr)
            server.start(timeout=timeout)
            print(f"  ready in {server.startup_s:.1f} s", file=sys.stderr)

    def peaks(self) -> list[float | None]:
        return [memory_mb(s.proc.pid, "VmHWM") if s.proc else None for s in self.servers]

    def cpu(self) -> float:
        return sum(s.cpu() for s in self.servers)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        for step in reversed(self.cleanup):
            try:
                step()
            except Exception as e:  # cleanup goes on; say what was left behind
                print(f"  cleanup of {self.name} failed: {type(e).__name__}: {e}", file=sys.stderr)


def base_env() -> dict[str, str]:
    drop = ("REDIS_URL", "KEFU_CONFIG", "DATABASE_URL", "KEFU_REDIS_PREFIX", "KEFU_SECRET_KEY")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def kefu(env: dict[str, str], *args: str) -> None:
    """A `kefu` command (migrate, train, agent create) run to completion."""
    done = subprocess.run(
        [*kefu_argv(), *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        raise RuntimeError(f"kefu {' '.join(args[:2])} failed:\n{done.stdout}\n{done.stderr}")


def hub_env(tmp: Path, database_url: str, data_dir: Path) -> dict[str, str]:
    return {
        **base_env(),
        "DATABASE_URL": database_url,
        "KEFU_DATA_DIR": str(data_dir),
        "KEFU_SECRET_KEY": uuid.uuid4().hex + uuid.uuid4().hex,
        "KEFU_CONFIG": str(bench_config(tmp)),
    }


def prepare_hub_data(env: dict[str, str]) -> None:
    """Migrate, create the benchmark's agent and train the model once, before any process
    starts (two processes starting together would both migrate and train)."""
    kefu(env, "agent", "create", "--email", AGENT_EMAIL, "--password", AGENT_PASSWORD,
         "--role", "admin")  # fmt: skip
    kefu(env, "train")


def hub_server(name: str, env: dict[str, str], log_path: Path) -> Server:
    port = free_port()
    argv = [*kefu_argv(), "run", "--host", "127.0.0.1", "--port", str(port)]
    return Server(name, argv, env, "/readyz", log_path, port)


def baseline_target(tmp: Path) -> Target:
    port = free_port()
    db = tmp / "baseline.db"
    argv = [sys.executable, str(BENCH_DIR / "baseline_db_app.py"), "--db", str(db),
            "--port", str(port)]  # fmt: skip
    server = Server("baseline", argv, base_env(), "/healthz", tmp / "baseline.log", port)

    async def count() -> int:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
            return int((await client.get("/count")).json()["messages"])

    return Target("baseline", "baseline: FastAPI + one INSERT (SQLite WAL)", [server], count)


def hub_a_target(tmp: Path) -> Target:
    folder = tmp / "hub-a"
    folder.mkdir()
    db = folder / "kefu.db"
    env = hub_env(tmp, f"sqlite+aiosqlite:///{db}", folder / "data")
    prepare_hub_data(env)
    server = hub_server("hub-a", env, folder / "hub.log")

    async def count() -> int:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return int(conn.execute(COUNT_INBOUND).fetchone()[0])

    return Target("hub-a", "hub (a): 1 process, SQLite, in-process bus", [server], count, hub=True)


async def pg_execute(sql: str, database: str | None = None) -> Any:
    import asyncpg

    dsn = PG_ADMIN if database is None else PG_ADMIN.rsplit("/", 1)[0] + "/" + database
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def hub_b_target(tmp: Path) -> Target:
    import redis

    folder = tmp / "hub-b"
    folder.mkdir()
    redis.Redis.from_url(REDIS, socket_connect_timeout=2).ping()
    name = f"kefu_bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(pg_execute(f'CREATE DATABASE "{name}"'))
    prefix = f"kefubench:{uuid.uuid4().hex[:8]}:"

    def drop_database() -> None:
        asyncio.run(pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def delete_keys() -> None:
        client = redis.Redis.from_url(REDIS)
        keys = list(client.scan_iter(f"{prefix}*"))
        if keys:
            client.delete(*keys)

    url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    env = hub_env(tmp, f"{url}/{name}", folder / "data")
    env |= {"REDIS_URL": REDIS, "KEFU_REDIS_PREFIX": prefix}
    try:
        prepare_hub_data(env)
    except Exception:
        drop_database()
        raise
    servers = [hub_server(f"hub-b{i}", env, folder / f"hub{i}.log") for i in (1, 2)]

    async def count() -> int:
        return int(await pg_execute(COUNT_INBOUND, name))

    target = Target("hub-b", "hub (b): 2 processes, PostgreSQL + Redis", servers, count, hub=True)
    target.cleanup += [drop_database, delete_keys]
    return target


# ---- load -------------------------------------------------------------------------------------


@dataclass
class Load:
    target: str
    customers: int
    kinds: tuple[str, ...]
    sent: int = 0  # every message sent, warm-up included
    answered: int = 0  # every message the bot answered, warm-up included
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"rest": [], "ws": []})
    errors: int = 0  # measured window
    empty: int = 0  # measured window: `[]` (a human has the conversation) or a handoff notice
    elapsed: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    stored: int | None = None
    error_samples: list[str] = field(default_factory=list)

    def error(self, measured: bool, what: str) -> None:
        if measured:
            self.errors += 1
            if len(self.error_samples) < 3:
                self.error_samples.append(what)

    @property
    def all_latencies(self) -> list[float]:
        return self.latencies["rest"] + self.latencies["ws"]

    @property
    def rate(self) -> float:
        return len(self.all_latencies) / self.elapsed if self.elapsed else 0.0

    @property
    def lost(self) -> int | None:
        return None if self.stored is None else self.sent - self.stored


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile, in ms."""
    if not values:
        return float("nan")
    data = sorted(values)
    return data[min(len(data) - 1, max(0, round(q / 100 * len(data) + 0.5) - 1))] * 1000


@dataclass
class Window:
    measure_from: float
    stop_at: float
    timeout: float

    def measured(self, t: float) -> bool:
        return self.measure_from <= t < self.stop_at


async def rest_customer(url: str, load: Load, cid: int, lang: str, window: Window) -> None:
    script = SCRIPTS[lang]
    generation, i = 0, cid // 2
    sender = f"{load.target}-r{cid}-{generation}"
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=url, timeout=window.timeout, limits=limits) as client:
        while (started := time.perf_counter()) < window.stop_at:
            text = script[i % len(script)]
            i += 1
            load.sent += 1
            measured = window.measured(started)
            try:
                response = await client.post(WEBHOOK, json={"sender": sender, "message": text})
            except httpx.HTTPError as e:
                load.error(measured, f"rest: {type(e).__name__}: {e}")
                await asyncio.sleep(0.01)
                continue
            latency = time.perf_counter() - started
            if response.status_code != 200:
                load.error(measured, f"rest: HTTP {response.status_code}: {response.text[:200]}")
                continue
            if not response.json():  # handed off: carry on as a new customer
                generation += 1
                sender = f"{load.target}-r{cid}-{generation}"
                load.empty += measured
                continue
            load.answered += 1
            if measured:
                load.latencies["rest"].append(latency)


async def widget_turn(ws: ClientConnection, text: str, client_id: str, wait_s: float) -> str:
    """Send one message frame; return the sender of the first bot (or system) message frame
    stored after it: its id is not below the message's own id, which the ack carries. A frame
    answering the previous message (a second reply) has a lower id and is skipped."""
    await ws.send(json.dumps({"type": "message", "client_id": client_id, "text": text}))
    ack_id: int | None = None
    early: list[dict[str, Any]] = []
    async with asyncio.timeout(wait_s):
        while True:
            frame = json.loads(await ws.recv())
            kind = frame.get("type")
            if kind == "ack" and frame.get("client_id") == client_id:
                ack_id = int(frame["id"])
                frames = early
            elif kind == "message" and frame.get("sender") in ("bot", "system"):
                if ack_id is None:
                    early.append(frame)
                    continue
                frames = [frame]
            elif kind == "error":
                raise RuntimeError(f"error frame: {frame.get('error')}")
            else:
                continue
            for f in frames:
                if f.get("type") == "message" and int(f["id"]) >= ack_id:
                    return str(f["sender"])


async def ws_customer(url: str, load: Load, cid: int, lang: str, window: Window) -> None:
    script = SCRIPTS[lang]
    generation, i = 0, cid // 2
    base = url.replace("http://", "ws://", 1)
    while time.perf_counter() < window.stop_at:
        visitor = f"{load.target}-w{cid}-{generation}"
        generation += 1  # a new visitor after a handoff or a failure
        try:
            async with connect(
                f"{base}{WIDGET}?visitor={visitor}", open_timeout=window.timeout, ping_interval=None
            ) as ws:
                hello = json.loads(await asyncio.wait_for(ws.recv(), window.timeout))
                if hello.get("type") != "hello":
                    raise RuntimeError(f"first frame not hello: {hello}")
                while (started := time.perf_counter()) < window.stop_at:
                    text = script[i % len(script)]
                    i += 1
                    load.sent += 1
                    measured = window.measured(started)
                    try:
                        sender = await widget_turn(ws, text, f"c-{i}", window.timeout)
                    except TimeoutError:
                        load.error(measured, f"ws: no answer within {window.timeout:g} s")
                        break
                    latency = time.perf_counter() - started
                    if sender == "system":  # a handoff notice: the bot is done with this one
                        load.empty += measured
                        break
                    load.answered += 1
                    if measured:
                        load.latencies["ws"].append(latency)
        except (OSError, WebSocketException, RuntimeError, ValueError, TimeoutError) as e:
            load.error(window.measured(time.perf_counter()), f"ws: {type(e).__name__}: {e}")
            await asyncio.sleep(0.05)


async def run_load(
    target: Target, customers: int, warmup: float, duration: float, wait_s: float, rest_only: bool
) -> Load:
    kinds = ("rest",) if rest_only else ("rest", "ws")
    load = Load(target.name, customers, kinds)
    urls = target.urls
    before = await target.count_stored()
    start = time.perf_counter()
    window = Window(start + warmup, start + warmup + duration, wait_s)
    tasks = []
    for cid in range(customers):
        kind = kinds[cid % len(kinds)]
        lang = ("en", "zh")[(cid // 2) % 2]
        url = urls[(cid // 4) % len(urls)]
        run = rest_customer if kind == "rest" else ws_customer
        tasks.append(asyncio.create_task(run(url, load, cid, lang, window)))
    await asyncio.sleep(max(0.0, window.measure_from - time.perf_counter()))
    cpu0, client0 = target.cpu(), time.process_time()
    await asyncio.sleep(max(0.0, window.stop_at - time.perf_counter()))
    load.server_cpu = target.cpu() - cpu0
    load.client_cpu = time.process_time() - client0
    load.elapsed = duration
    # the last messages are answered (or time out) after the window; then count what is stored
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=wait_s + 30)
    await asyncio.sleep(0.5)  # an inbound row commits before its answer; this is margin only
    load.stored = await target.count_stored() - before
    return load


# ---- broadcast --------------------------------------------------------------------------------


@dataclass
class Broadcast:
    target: str
    agents: int
    widgets: int
    rounds: list[dict[str, float]] = field(default_factory=list)  # seconds per round
    missed: int = 0
    note: str = ""

    def median(self, key: str) -> float:
        values = [r[key] for r in self.rounds if key in r]
        return statistics.median(values) * 1000 if values else float("nan")


async def login(url: str) -> str:
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        response = await client.post(
            "/api/v1/auth/login", json={"email": AGENT_EMAIL, "password": AGENT_PASSWORD}
        )
        response.raise_for_status()
        return str(response.json()["access_token"])


async def open_sockets(uris: list[str], parallel: int = 50) -> list[ClientConnection]:
    gate = asyncio.Semaphore(parallel)

    async def one(uri: str) -> ClientConnection:
        async with gate:
            return await connect(uri, open_timeout=30, ping_interval=None, max_queue=None)

    return list(await asyncio.gather(*(one(u) for u in uris)))


async def wait_for(ws: ClientConnection, match: Callable[[dict[str, Any]], bool]) -> float:
    while True:
        if match(json.loads(await ws.recv())):
            return time.perf_counter()


async def run_broadcast(target: Target, sockets: int, rounds: int, wait_s: float) -> Broadcast:
    urls = target.urls
    wss = [u.replace("http://", "ws://", 1) for u in urls]
    token = await login(urls[0])
    visitor = f"bcast-{uuid.uuid4().hex[:8]}"
    result = Broadcast(target.name, sockets // 2, sockets - sockets // 2)
    # the visitor's conversation, from one message of its first tab
    first = (await open_sockets([f"{wss[0]}{WIDGET}?visitor={visitor}"]))[0]
    hello = json.loads(await first.recv())
    await widget_turn(first, "hi", "c-1", wait_s)
    # the visitor's other tabs prove it with the token of its first hello
    tab = f"{WIDGET}?visitor={visitor}&token={hello['token']}"
    async with connect(f"{wss[0]}{tab}", ping_interval=None) as second:
        conversation_id = json.loads(await second.recv())["conversation_id"]  # its hello
    async with httpx.AsyncClient(base_url=urls[0], timeout=wait_s) as api:
        auth = {"authorization": f"Bearer {token}"}
        agent_uris = [f"{wss[i % len(wss)]}/api/v1/events?token={token}" for i in range(
            result.agents)]  # fmt: skip
        widget_uris = [f"{wss[i % len(wss)]}{tab}" for i in range(result.widgets - 1)]
        print(f"  opening {sockets} sockets ...", file=sys.stderr)
        agents = await open_sockets(agent_uris)
        widgets = [first, *await open_sockets(widget_uris)]
        try:
            for w in widgets[1:]:
                await asyncio.wait_for(w.recv(), wait_s)  # hello: the tab is registered
            await asyncio.sleep(1.0)  # agents' subscriptions start right after the handshake
            for n in range(rounds):
                marker = f"broadcast {n} {uuid.uuid4().hex[:6]}"

                def agent_got(e: dict[str, Any], marker: str = marker) -> bool:
                    return e.get("type") == "message.created" and (
                        (e.get("data") or {}).get("text") == marker
                    )

                def tab_got(f: dict[str, Any], marker: str = marker) -> bool:
                    return f.get("type") == "message" and f.get("text") == marker

                waits = [asyncio.create_task(wait_for(ws, agent_got)) for ws in agents]
                waits += [asyncio.create_task(wait_for(ws, tab_got)) for ws in widgets]
                await asyncio.sleep(0.2)  # every reader is waiting before the event
                t0 = time.perf_counter()
                response = await api.post(
                    f"/api/v1/conversations/{conversation_id}/messages",
                    json={"text": marker},
                    headers=auth,
                )
                response.raise_for_status()
                done, pending = await asyncio.wait(waits, timeout=wait_s)
                for task in pending:
                    task.cancel()
                result.missed += len(pending)
                times = [t.result() - t0 for t in waits if t in done and not t.exception()]
                got_agents = [t.result() - t0 for t in waits[: len(agents)] if t in done]
                got_tabs = [t.result() - t0 for t in waits[len(agents) :] if t in done]
                result.rounds.append(
                    {
                        "all": max(times) if not pending else float("nan"),
                        "p50": statistics.median(times),
                        "agents": max(got_agents),
                        "tabs": max(got_tabs),
                    }
                )
                print(
                    f"  round {n + 1}: all {1000 * max(times):.0f} ms "
                    f"(agents {1000 * max(got_agents):.0f}, tabs {1000 * max(got_tabs):.0f}), "
                    f"{len(pending)} missed",
                    file=sys.stderr,
                )
                await asyncio.sleep(0.5)
        finally:
            await asyncio.gather(*(ws.close() for ws in agents + widgets), return_exceptions=True)
    return result


# ---- report -----------------------------------------------------------------------------------


def load_table(loads: list[Load], targets: dict[str, Target]) -> str:
    base = next((x for x in loads if x.target == "baseline" and len(x.kinds) == 2), None)
    rows = [
        "| target | customers | sent | stored | answered | lost | errors | msg/s | p50 ms "
        "| p99 ms | REST p50 / p99 ms | widget p50 / p99 ms | server CPU ms/msg "
        "| peak RSS MB | msg/s vs baseline |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for x in loads:
        t = targets[x.target]
        mix = "REST" if x.kinds == ("rest",) else "REST + widget"
        ratio = (
            f"{100 * x.rate / base.rate:.1f}%" if base and base.rate and len(x.kinds) == 2 else "-"
        )
        n = len(x.all_latencies)
        cpu = f"{1000 * x.server_cpu / n:.2f}" if n else "n/a"
        peaks = " + ".join(fmt(p, 0) for p in t.peak_after_load) or "n/a"
        rest = x.latencies["rest"]
        ws = x.latencies["ws"]
        rows.append(
            f"| {t.label} | {x.customers} ({mix}) | {x.sent:,} "
            f"| {'n/a' if x.stored is None else f'{x.stored:,}'} | {x.answered:,} "
            f"| {'n/a' if x.lost is None else x.lost} | {x.errors} | {fmt(x.rate)} "
            f"| {fmt(pct(x.all_latencies, 50))} | {fmt(pct(x.all_latencies, 99))} "
            f"| {fmt(pct(rest, 50))} / {fmt(pct(rest, 99))} "
            f"| {'-' if not ws else f'{fmt(pct(ws, 50))} / {fmt(pct(ws, 99))}'} "
            f"| {cpu} | {peaks} | {ratio} |"
        )
    return "\n".join(rows)


def broadcast_table(casts: list[Broadcast], targets: dict[str, Target]) -> str:
    rows = [
        "| target | sockets (agents + tabs) | rounds | all delivered ms (median) | max ms "
        "| agents' last ms | tabs' last ms | p50 socket ms | missed |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for b in casts:
        worst = max((r["all"] for r in b.rounds), default=float("nan")) * 1000
        rows.append(
            f"| {targets[b.target].label} | {b.agents + b.widgets} ({b.agents} + {b.widgets}) "
            f"| {len(b.rounds)} | {fmt(b.median('all'))} | {fmt(worst)} "
            f"| {fmt(b.median('agents'))} | {fmt(b.median('tabs'))} | {fmt(b.median('p50'))} "
            f"| {b.missed} |"
        )
    return "\n".join(rows)


def report(
    loads: list[Load],
    casts: list[Broadcast],
    targets: dict[str, Target],
    skipped: dict[str, str],
    args: argparse.Namespace,
) -> str:
    ncpu = len(os.sched_getaffinity(0))
    mixed = {x.target: x for x in loads if len(x.kinds) == 2}
    rest = {x.target: x for x in loads if x.kinds == ("rest",)}
    summary = []
    base = mixed.get("baseline")
    for name in ("hub-a", "hub-b"):
        if name in mixed and base and base.rate:
            x = mixed[name]
            summary.append(
                f"{targets[name].label}: {fmt(x.rate, 0)} msg/s = "
                f"{100 * x.rate / base.rate:.0f}% of the baseline's {fmt(base.rate, 0)}"
            )
    if "rasa" in rest and "hub-a" in rest and rest["rasa"].rate:
        ratio = rest["hub-a"].rate / rest["rasa"].rate
        summary.append(
            f"REST only, {rest['rasa'].customers} customers: hub (a) "
            f"{fmt(rest['hub-a'].rate, 0)} msg/s, Rasa 3.6 {fmt(rest['rasa'].rate, 0)} msg/s "
            f"(hub / Rasa = {ratio:.2f})"
        )
    lines = [
        "### Load: simulated customers (REST + widget sockets) and a 1,000-socket broadcast",
        "",
        f"- Date: {common.now()}; command: `{common.command_line('load', 'bench/load_bench.py')}`",
        f"- Machine: {common.machine(args.loadavg)}",
        f"- Load: {args.customers} customers per target, half REST (`POST {WEBHOOK}`, one "
        "keep-alive connection each), half widget WebSockets (message frame -> ack -> the "
        "bot's message frame), each sending its next message as soon as the last was answered; "
        f"the English/Chinese demo-bot mix of bench/rest_bench.py; {args.warmup:g} s warm-up, "
        f"then {args.duration:g} s measured; {args.timeout:g} s answer timeout. Targets run one "
        f"after the other, alone; the load generator (one Python process, its CPU "
        f"{'/'.join(f'{100 * x.client_cpu / x.elapsed:.0f}%' for x in loads if x.elapsed)} "
        f"of a core per row) shares the {ncpu} cores with the servers (and, for (b), with "
        "PostgreSQL and Redis).",
        "- sent/stored/answered count every message of the run, warm-up included: stored is a "
        "count of the target's database after the run (inbound rows; the baseline's `GET "
        "/count`), lost = sent - stored. msg/s, p50/p99 (to the bot's answer: the REST "
        "response, or the widget's bot `message` frame) and errors are over the measured window. "
        "Server CPU is all the target's server processes (not PostgreSQL/Redis). Peak RSS: "
        "VmHWM of each server process after the load.",
        "- Baseline: bench/baseline_db_app.py, FastAPI + uvicorn, the same request body / "
        "frames, one `INSERT` + `COMMIT` per message into SQLite (WAL, synchronous=NORMAL) over "
        "one aiosqlite connection, a fixed reply; no NLU, flows, contacts or events.",
        f"- Summary: {'; '.join(summary) or 'n/a'}",
        "",
        load_table(loads, targets),
    ]
    if casts:
        lines += [
            "",
            f"Broadcast: {args.sockets} sockets opened against each hub target (for (b), "
            "alternately on its two processes): half agents' `/api/v1/events` sockets (one "
            "admin's token), half widget tabs of one visitor. An agent's reply "
            "(`POST /api/v1/conversations/{id}/messages` to the first process) is one "
            "`message.created` event to every agent socket and one `message` frame to every tab; "
            "timed from the POST to each socket's receipt (parsed by the same Python client "
            f"process), {args.rounds} rounds.",
            "",
            broadcast_table(casts, targets),
        ]
    notes = [f"- {t.label}: {t.note}" for t in targets.values() if t.note]
    notes += [f"- {name}: not measured: {why}" for name, why in skipped.items()]
    if notes:
        lines += ["", *notes]
    samples = [f"{x.target}: {e}" for x in loads for e in x.error_samples]
    if samples:
        lines += ["", "Errors seen (first few):", "", *[f"- `{s}`" for s in samples]]
    return "\n".join(lines) + "\n"


# ---- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="load_bench", description=__doc__.splitlines()[0])
    p.add_argument("--customers", type=int, default=32, help="simulated customers (default 32)")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds (default 10)")
    p.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds (default 3)")
    p.add_argument("--timeout", type=float, default=10.0, help="answer timeout s (default 10)")
    p.add_argument("--sockets", type=int, default=1000, help="broadcast sockets (default 1000)")
    p.add_argument("--rounds", type=int, default=5, help="broadcast rounds (default 5)")
    p.add_argument(
        "--targets",
        default="baseline,hub-a,hub-b,rasa",
        help="which targets (default baseline,hub-a,hub-b,rasa)",
    )
    p.add_argument(
        "--write",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="update the load-bench section of BENCHMARKS.md (default: yes)",
    )
    p.add_argument("--keep-tmp", action="store_true", help="keep the temporary folder (logs)")
    args = p.parse_args(argv)
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = set(args.targets) - {"baseline", "hub-a", "hub-b", "rasa"}
    if unknown or not args.targets:
        p.error(f"--targets: unknown {sorted(unknown)}")
    if args.customers < 2 or args.sockets < 2:
        p.error("--customers and --sockets need at least 2")
    return args


def make_target(name: str, tmp: Path, args: argparse.Namespace) -> Target:
    if name == "baseline":
        return baseline_target(tmp)
    if name == "hub-a":
        return hub_a_target(tmp)
    if name == "hub-b":
        return hub_b_target(tmp)
    server, note = rasa_peer.server(tmp, free_port())

    async def count() -> int:
        return rasa_peer.count_user_events(tmp)

    target = Target("rasa", "Rasa 3.6 REST channel", [server], count)
    target.note = note
    return target


async def measure(target: Target, args: argparse.Namespace) -> tuple[list[Load], Broadcast | None]:
    loads: list[Load] = []
    if target.name == "rasa":
        loads.append(
            await run_load(
                target, args.customers, args.warmup, args.duration, args.timeout, rest_only=True
            )
        )
    else:
        loads.append(
            await run_load(
                target, args.customers, args.warmup, args.duration, args.timeout, rest_only=False
            )
        )
        if target.name == "hub-a" and "rasa" in args.targets:  # the same load as Rasa's
            loads.append(
                await run_load(
                    target, args.customers, args.warmup, args.duration, args.timeout, True
                )
            )
    for x in loads:
        print(
            f"  {x.kinds}: {x.sent} sent, {x.stored} stored, {x.answered} answered, "
            f"{fmt(x.rate)} msg/s, p50 {fmt(pct(x.all_latencies, 50))} ms, "
            f"p99 {fmt(pct(x.all_latencies, 99))} ms, {x.errors} errors {x.error_samples[:1]}",
            file=sys.stderr,
        )
    target.peak_after_load = target.peaks()
    cast = None
    if target.hub and args.sockets:
        cast = await run_broadcast(target, args.sockets, args.rounds, args.timeout * 3)
    return loads, cast


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--"]:
        argv = argv[1:]
    args = parse_args(argv)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("websockets").setLevel(logging.WARNING)
    args.loadavg = os.getloadavg()
    # client sockets here, server sockets in the hubs (they inherit the limit)
    limit = raise_fd_limit(max(4096, 2 * args.sockets + 2 * args.customers + 512))
    if limit < args.sockets + args.customers + 100:
        print(f"open-files limit {limit} is too low for {args.sockets} sockets", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="kefu-load-"))
    targets: dict[str, Target] = {}
    skipped: dict[str, str] = {}
    loads: list[Load] = []
    casts: list[Broadcast] = []
    try:
        for name in args.targets:
            try:
                target = make_target(name, tmp, args)
            except (rasa_peer.Unavailable, OSError, RuntimeError, ImportError) as e:
                skipped[name] = str(e)
                print(f"{name}: skipped: {e}", file=sys.stderr)
                continue
            except Exception as e:  # PostgreSQL or Redis missing: (b) is skipped, named
                skipped[name] = f"{type(e).__name__}: {e}"
                print(f"{name}: skipped: {skipped[name]}", file=sys.stderr)
                continue
            targets[name] = target
            try:
                target.start()
                print(f"{name}: {args.customers} customers ...", file=sys.stderr)
                got, cast = asyncio.run(measure(target, args))
                loads += got
                if cast:
                    casts.append(cast)
                for server in target.servers:
                    if server.proc is None or server.proc.poll() is not None:
                        raise RuntimeError(f"{server.name} died:\n{server.log_tail()}")
            finally:
                target.stop()
    finally:
        if args.keep_tmp:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    section = report(loads, casts, targets, skipped, args)
    print(section)
    if args.write:
        common.write_section("load-bench", section)
        print(f"updated {common.RESULTS_FILE.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
