"""kill -9 of a hub process in the middle of a bot turn and of an outbox send: after the restart
the turn completes once and the reply is sent once (real `kefu run` processes, SQLite, the
demo bot with its order lookup on an action server, and a REST channel with a callback URL)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import ROOT
from tests.test_hub.hubprocs import KEFU, HubProcess, free_port

EMAIL, PASSWORD = "agent@example.com", "crash-pass-1"


@dataclass
class Endpoint:
    """A local HTTP server whose first `hold` requests hang (the hub is killed meanwhile)
    and whose later ones are answered with `answer`; it records every request."""

    answer: dict[str, Any] | list[Any]
    hold: int = 1
    received: list[Any] = field(default_factory=list)
    answered: list[Any] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhook"

    def serve(self) -> ThreadingHTTPServer:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                endpoint.received.append(body)
                if len(endpoint.received) <= endpoint.hold:
                    endpoint.release.wait(30)  # hangs until the test ends
                    return
                data = json.dumps(endpoint.answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                endpoint.answered.append(body)

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


@pytest.fixture
def endpoints() -> Iterator[list[Endpoint]]:
    made: list[tuple[Endpoint, ThreadingHTTPServer]] = []

    class Made(list[Endpoint]):
        def add(self, endpoint: Endpoint) -> Endpoint:
            made.append((endpoint, endpoint.serve()))
            self.append(endpoint)
            return endpoint

    yield Made()
    for endpoint, server in made:
        endpoint.release.set()
        server.shutdown()
        server.server_close()


def hub_process(tmp_path: Path, trained_models: Path, config: dict[str, Any]) -> HubProcess:
    """`kefu run` on SQLite in tmp_path with this config (the demo bot's)."""
    data = tmp_path / "data"
    if not data.exists():
        shutil.copytree(trained_models, data / "models")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    env = {
        **os.environ,
        "KEFU_DATA_DIR": str(data),
        "DATABASE_URL": f"sqlite+aiosqlite:///{data / 'kefu.db'}",
        "KEFU_CONFIG": str(tmp_path / "config.yaml"),
        "KEFU_SECRET_KEY": "crash-test-key-" + "k" * 32,
    }
    env.pop("REDIS_URL", None)
    return HubProcess(env, tmp_path / "hub.log")


def create_agent(hub: HubProcess) -> None:
    subprocess.run(
        [*KEFU, "agent", "create", "--email", EMAIL, "--password", PASSWORD, "--role", "agent"],
        env=hub.env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )


def demo_config(**bot: Any) -> dict[str, Any]:
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["bot"] = {**config["bot"], "path": str(ROOT / "examples" / "shop"), **bot}
    config["channels"] = [c for c in config["channels"] if c["type"] in ("web", "rest")]
    return config


def messages(base: str, sender: str) -> list[dict[str, Any]]:
    with httpx.Client(base_url=base, timeout=10) as api:
        r = api.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
        auth = {"authorization": f"Bearer {r.json()['access_token']}"}
        (conversation,) = [
            c
            for c in api.get("/api/v1/conversations", headers=auth).json()["items"]
            if c["contact"]["external_id"] == sender
        ]
        url = f"/api/v1/conversations/{conversation['id']}/messages"
        return list(api.get(url, headers=auth).json()["items"])


def wait_for(check: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_killed_in_the_middle_of_a_turn_the_turn_completes_once_after_restart(
    tmp_path: Path, trained_models: Path, endpoints: Any
) -> None:
    slots = {"order_status": "shipped", "carrier": "sf", "eta": "2026-12-01"}
    actions = endpoints.add(
        Endpoint(
            answer={
                "events": [
                    {"event": "slot", "timestamp": None, "name": k, "value": v}
                    for k, v in slots.items()
                ],
                "responses": [],
            }
        )
    )
    hub = hub_process(
        tmp_path, trained_models, demo_config(action_endpoint=actions.url, action_timeout=60)
    )
    create_agent(hub)
    hub.start()

    # The customer asks for an order; the bot is waiting for the order system when the
    # process is killed. The customer's client gets no answer.
    body = {"sender": "ann", "message": "where is my order 12345678", "metadata": {}}
    body["metadata"] = {"message_id": f"m-{uuid.uuid4().hex[:6]}"}
    with pytest.raises(httpx.HTTPError):
        with httpx.Client(timeout=30) as http:

            def kill_when_asked() -> None:
                if wait_for(lambda: actions.received, 20):
                    hub.kill()

            threading.Thread(target=kill_when_asked, daemon=True).start()
            http.post(f"{hub.base}/webhooks/rest/webhook", json=body)
    assert len(actions.received) == 1 and not actions.answered

    # Restarted, the hub takes the turn again: the order system is asked once more, and the
    # customer's message has its answer, once.
    hub.start()
    assert wait_for(lambda: actions.answered, 20)
    shown = wait_for(
        lambda: [m for m in messages(hub.base, "ann") if m["sender"] == "bot"] or None, 20
    )
    history = messages(hub.base, "ann")
    assert [m["sender"] for m in history].count("contact") == 1
    assert any("12345678" in m["text"] for m in shown), shown

    # The customer's client retries the same message: the same answer, nothing new.
    r = httpx.post(f"{hub.base}/webhooks/rest/webhook", json=body, timeout=30)
    assert r.status_code == 200
    assert [m["text"] for m in r.json()] == [m["text"] for m in shown]
    assert len(actions.received) == 2  # the killed call and the one after the restart
    assert messages(hub.base, "ann") == history
    hub.stop()
    assert "Traceback" not in hub.log(), hub.log()


def test_killed_in_the_middle_of_a_send_the_reply_is_delivered_after_restart(
    tmp_path: Path, trained_models: Path, endpoints: Any
) -> None:
    callback = endpoints.add(Endpoint(answer={"ok": True}))
    config = demo_config()
    for channel in config["channels"]:
        if channel["type"] == "rest":
            channel["callback_url"] = callback.url
    hub = hub_process(tmp_path, trained_models, config)
    create_agent(hub)
    hub.start()
    r = httpx.post(
        f"{hub.base}/webhooks/rest/webhook", json={"sender": "bo", "message": "/human"}, timeout=30
    )
    assert r.status_code == 200

    # An agent's reply goes to the callback URL through the outbox; the platform hangs, and
    # the process is killed while the send is under way.
    with httpx.Client(base_url=hub.base, timeout=10) as api:
        login = api.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
        auth = {"authorization": f"Bearer {login.json()['access_token']}"}
        (conversation,) = api.get("/api/v1/conversations", headers=auth).json()["items"]
        sent = api.post(
            f"/api/v1/conversations/{conversation['id']}/messages",
            json={"text": "Lin here, I'm on it"},
            headers=auth,
        )
        assert sent.status_code == 201
    assert wait_for(lambda: callback.received, 10)
    hub.kill()

    # Restarted: the queued reply goes out; delivered once and marked sent.
    hub.start()
    assert wait_for(lambda: callback.answered, 20)
    time.sleep(1)
    assert [item["text"] for body in callback.answered for item in body] == ["Lin here, I'm on it"]
    (reply,) = [m for m in messages(hub.base, "bo") if m["sender"] == "agent"]
    assert reply["delivery"] == "sent"
    hub.stop()
    assert "Traceback" not in hub.log(), hub.log()
