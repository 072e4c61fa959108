"""Real hub processes (`python -m hub run`) over one PostgreSQL database and one Redis, for the
scale-out and fault tests: each process is started, stopped or killed like in production."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ROOT, _pg_clone, _pg_execute, need

KEFU = [sys.executable, "-m", "hub"]
REDIS = os.environ.get("KEFU_TEST_REDIS", "redis://127.0.0.1:6379/0")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_up() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=2).ping()
    except Exception as e:
        need("Redis", f"{REDIS}: {type(e).__name__}: {e}")


class TcpProxy:
    """A TCP proxy in a thread of the test process, between a hub process and a server
    (PostgreSQL), that a test can cut (the listener closed, every connection dropped: new ones
    are refused) and restore on the same port: an outage without touching the server."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        self.restore()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cut()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def restore(self) -> None:
        """Listen (again) on the same port."""

        async def listen() -> None:
            if self._server is None:
                self._server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port)

        self._run(listen())

    def cut(self) -> None:
        """Close the listener and every connection: connecting is refused until restore()."""

        async def close() -> None:
            server, self._server = self._server, None
            if server is not None:
                server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            self._writers.clear()

        self._run(close())

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))
        self._writers -= {writer, up_writer}


@dataclass
class HubProcess:
    """One `kefu run` on its own port."""

    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> HubProcess:
        return self.launch().wait_ready(timeout)

    def launch(self) -> HubProcess:
        """Start the process without waiting for it (start several, then wait_ready each)."""
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [*KEFU, "run", "--port", str(self.port)],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        return self

    def wait_ready(self, timeout: float = 90) -> HubProcess:
        assert self.process is not None, "launch() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the hub exited:\n{self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the hub was not ready in {timeout} s:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)

    def kill(self) -> None:
        """kill -9: no shutdown, no cleanup, as a crash or the OOM killer."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class Cluster:
    env: dict[str, str]
    folder: Path
    hubs: list[HubProcess] = field(default_factory=list)

    def hub(self, config: Path | None = None, **env: str) -> HubProcess:
        """A process (not started) of this cluster; `config`: a config.yaml of its own (its
        `bot.path` absolute, or relative to it); `env`: variables to override (REDIS_URL...)."""
        overrides = {"KEFU_CONFIG": str(config)} if config is not None else {}
        log_path = self.folder / f"hub{len(self.hubs)}.log"
        hub = HubProcess({**self.env, **overrides, **env}, log_path)
        self.hubs.append(hub)
        return hub

    def create_agent(self, email: str, password: str, role: str = "agent") -> None:
        subprocess.run(
            [*KEFU, "agent", "create", "--email", email, "--password", password, "--role", role],
            env=self.env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        )


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo bot's NLU model, trained once: every hub process started by a test loads it
    instead of training its own."""
    from hub.bot import train_classifier
    from hub.ops.settings import load_settings

    data = tmp_path_factory.mktemp("models")
    settings = load_settings(ROOT / "config.yaml").model_copy(update={"data_dir": data})
    train_classifier(settings)
    return data / "models"


@pytest.fixture
def cluster(pg_template: str, tmp_path: Path, trained_models: Path) -> Iterator[Cluster]:
    """Environment for hub processes sharing a fresh PostgreSQL database, a Redis key prefix
    of their own, a data folder (media, the trained model) and a secret key."""
    with new_cluster(pg_template, tmp_path, trained_models) as group:
        yield group


@contextlib.contextmanager
def new_cluster(pg_template: str, tmp_path: Path, trained_models: Path) -> Iterator[Cluster]:
    """The `cluster` fixture's cluster, for fixtures of other scopes."""
    redis_up()
    shutil.copytree(trained_models, tmp_path / "data" / "models")
    name, url = _pg_clone(pg_template)
    prefix = f"kefutest:{uuid.uuid4().hex[:8]}:"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": REDIS,
        "KEFU_REDIS_PREFIX": prefix,
        "KEFU_DATA_DIR": str(tmp_path / "data"),
        "KEFU_SECRET_KEY": uuid.uuid4().hex,
        "KEFU_CONFIG": str(ROOT / "config.yaml"),
    }
    group = Cluster(env, tmp_path)
    try:
        yield group
    finally:
        for hub in group.hubs:
            hub.kill()
        asyncio.run(_pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        import redis

        client = redis.Redis.from_url(REDIS)
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)


class RedisServer:
    """A private `redis-server` on a free port, without persistence, that a test can kill and
    start again (Redis restarted: everything in it lost)."""

    def __init__(self, folder: Path) -> None:
        self.binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not Path(self.binary).exists():
            need("redis-server", "not installed (apt-get install redis-server)")
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10) -> RedisServer:
        import redis

        options = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), *options, "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=1).ping()
                return self
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
