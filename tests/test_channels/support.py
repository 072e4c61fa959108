"""Helpers for the channel tests: WebSocket frames with a timeout (a missing frame fails the
test instead of hanging it), the inbox API's view of a customer's conversation, and polling."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import anyio
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession

NOTICE_EN = "I'm passing you to a human colleague"


def receive(ws: WebSocketTestSession, timeout: float = 5.0) -> dict[str, Any]:
    """The next server frame as JSON; TimeoutError when none comes within `timeout`."""

    async def next_message() -> Any:
        with anyio.fail_after(timeout):
            return await ws._send_rx.receive()  # starlette's own receive() has no timeout

    message = ws.portal.call(next_message)
    assert message["type"] == "websocket.send", f"socket closed by the server: {message}"
    return json.loads(message["text"])


def assert_silent(ws: WebSocketTestSession, within: float = 0.3) -> None:
    """No frame arrives within `within` seconds."""
    try:
        frame = receive(ws, within)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected frame: {frame}")


def hello(ws: WebSocketTestSession) -> dict[str, Any]:
    frame = receive(ws)
    assert frame["type"] == "hello", frame
    return frame


def conversations(client: TestClient, auth: dict[str, str], **query: str) -> list[dict[str, Any]]:
    r = client.get("/api/v1/conversations", params={"limit": "100", **query}, headers=auth)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def conversation_of(
    client: TestClient, auth: dict[str, str], channel: str, external_id: str
) -> dict[str, Any]:
    """The customer's conversation as the inbox shows it."""
    found = [
        c
        for c in conversations(client, auth, channel=channel)
        if c["contact"]["external_id"] == external_id
    ]
    assert len(found) == 1, f"{channel}/{external_id}: {found}"
    return found[0]


def messages(
    client: TestClient, auth: dict[str, str], conversation_id: int
) -> list[dict[str, Any]]:
    r = client.get(f"/api/v1/conversations/{conversation_id}/messages", headers=auth)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def agent_reply(
    client: TestClient,
    auth: dict[str, str],
    conversation_id: int,
    text: str,
    private: bool = False,
) -> dict[str, Any]:
    r = client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        json={"text": text, "private": private},
        headers=auth,
    )
    assert r.status_code == 201, r.text
    return r.json()


def wait_for(check: Callable[[], Any], what: str, timeout: float = 5.0) -> Any:
    """Poll `check` until it returns something truthy (the outbox is asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def message_by_id(
    client: TestClient, auth: dict[str, str], conversation_id: int, message_id: int
) -> dict[str, Any]:
    return next(m for m in messages(client, auth, conversation_id) if m["id"] == message_id)


def has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)
