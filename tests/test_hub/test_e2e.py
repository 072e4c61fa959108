"""End to end, against a real `kefu run` process: a widget customer talks to the bot, asks for
a human, an agent answers over the API while watching the events socket, the customer gets it
live, the bot stays silent, the agent resolves, and the bot answers the next message."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import need

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT.parent / "shared" / "checks" / "contract.py"
EMAIL, PASSWORD = "agent@example.com", "e2e-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("e2e")
    env = {
        **os.environ,
        "KEFU_DATA_DIR": str(data),
        "DATABASE_URL": f"sqlite+aiosqlite:///{data / 'kefu.db'}",
        "KEFU_CONFIG": str(ROOT / "config.yaml"),
    }
    env.pop("REDIS_URL", None)
    kefu = [sys.executable, "-m", "hub"]
    subprocess.run(
        [*kefu, "agent", "create", "--email", EMAIL, "--password", PASSWORD, "--role", "agent"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    port = free_port()
    log = open(data / "hub.log", "w")
    process = subprocess.Popen(
        [*kefu, "run", "--port", str(port)], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"kefu run exited: {(data / 'hub.log').read_text()}")
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError("kefu run did not become ready in 60 s")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()
    output = (data / "hub.log").read_text()
    assert "Traceback" not in output, output
    assert "Demo admin" not in output  # an agent existed: no demo admin was made


async def next_frame(ws: Any, pred: Callable[[dict[str, Any]], bool], wait_s: float = 5) -> Any:
    async def wait() -> Any:
        while True:
            frame = json.loads(await ws.recv())
            if pred(frame):
                return frame

    return await asyncio.wait_for(wait(), wait_s)


async def nothing(ws: Any, pred: Callable[[dict[str, Any]], bool], within: float) -> bool:
    try:
        await next_frame(ws, pred, within)
    except TimeoutError:
        return True
    return False


def is_message(sender: str) -> Callable[[dict[str, Any]], bool]:
    return lambda f: f.get("type") == "message" and f.get("sender") == sender


async def test_widget_customer_bot_handoff_agent_and_back(server: str) -> None:
    ws_base = server.replace("http", "ws")
    async with httpx.AsyncClient(base_url=server, timeout=10) as api:
        token = (
            await api.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
        ).json()["access_token"]
        auth = {"authorization": f"Bearer {token}"}
        async with (
            websockets.connect(f"{ws_base}/api/v1/events?token={token}") as events,
            websockets.connect(f"{ws_base}/channels/web/ws?visitor=e2e-visitor") as customer,
        ):
            hello = json.loads(await customer.recv())
            assert hello["type"] == "hello" and hello["visitor"] == "e2e-visitor"

            # The bot answers.
            await customer.send(json.dumps({"type": "message", "client_id": "c1", "text": "hello"}))
            ack = await next_frame(customer, lambda f: f["type"] == "ack")
            assert ack["client_id"] == "c1"
            greeting = await next_frame(customer, is_message("bot"))
            assert "Kefu Shop" in greeting["text"] and greeting["buttons"]

            # The customer asks for a human: told so, and the agents see it go pending.
            await customer.send(
                json.dumps({"type": "message", "client_id": "c2", "text": "转人工"})
            )
            notice = await next_frame(customer, is_message("system"))
            assert "人工" in notice["text"]
            change = await next_frame(events, lambda f: f["type"] == "conversation.status_changed")
            assert change["data"]["to"] == "pending"
            cid = change["conversation_id"]
            listed = (
                await api.get("/api/v1/conversations", params={"status": "pending"}, headers=auth)
            ).json()
            assert [c["id"] for c in listed["items"]] == [cid]

            # The agent answers; the customer gets it live.
            r = await api.post(
                f"/api/v1/conversations/{cid}/messages",
                json={"text": "您好，我是小林"},
                headers=auth,
            )
            assert r.status_code == 201
            live = await next_frame(customer, is_message("agent"))
            assert live["text"] == "您好，我是小林"

            # The customer writes; the agent sees it; the bot says nothing.
            await customer.send(json.dumps({"type": "message", "client_id": "c3", "text": "hello"}))
            seen = await next_frame(
                events,
                lambda f: (
                    f["type"] == "message.created"
                    and f["data"]["sender"] == "contact"
                    and f["data"]["text"] == "hello"
                    and f["data"]["id"] > int(ack["id"]) + 2
                ),
            )
            assert seen["conversation_id"] == cid
            assert await nothing(customer, is_message("bot"), within=1.5)

            # Resolved: the next message goes to the bot again.
            r = await api.post(
                f"/api/v1/conversations/{cid}/status", json={"status": "resolved"}, headers=auth
            )
            assert r.json()["status"] == "resolved"
            await customer.send(
                json.dumps(
                    {"type": "message", "client_id": "c4", "text": "how long does shipping take"}
                )
            )
            answer = await next_frame(customer, is_message("bot"))
            assert "delivery" in answer["text"].lower()
            conversation = (await api.get(f"/api/v1/conversations/{cid}", headers=auth)).json()
            assert conversation["status"] == "bot"


def test_shared_contract_check_holds(server: str) -> None:
    """The outside conformance script of ../shared/checks, run as its README says."""
    if not CONTRACT.exists():
        need("../shared/checks/contract.py", f"{CONTRACT} not found beside the repository")
    subprocess.run(
        [sys.executable, str(CONTRACT), "--base", server, "--email", EMAIL, "--password", PASSWORD],
        check=True,
        timeout=120,
    )
