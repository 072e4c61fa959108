"""The Slack channel's kit for the conformance test (tests/test_channels/kits.py): requests
signed as Slack signs them, events shaped as the Events API sends them, and the local fake
Slack (fake_slack.py) as the Web API.

A kit customer writes in a direct message: the DM channel's id is the customer's id, so
`texts_to(sender)` reads what was posted to that DM.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import zlib
from contextlib import AbstractContextManager
from typing import Any

from tests.test_channels.fake_slack import BOT_TOKEN, FakeSlack, fake_slack
from tests.test_channels.kits import Request

SIGNING_SECRET = "kit-signing-secret-0123456789abcdef"
TEAM = "T111"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's request signature: v0=HMAC-SHA256(secret, "v0:<timestamp>:<raw body>")."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed(
    path: str,
    body: bytes,
    *,
    secret: str = SIGNING_SECRET,
    timestamp: int | None = None,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> Request:
    """A POST as Slack makes it: the signature over this exact body, now (or `timestamp`)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return Request(
        method="POST",
        path=path,
        headers={
            "content-type": content_type,
            "x-slack-request-timestamp": ts,
            "x-slack-signature": signature(secret, ts, body),
            **(headers or {}),
        },
        body=body,
    )


def events_path(name: str) -> str:
    return f"/channels/slack/{name}/events"


def message_ts(message_id: str) -> str:
    """A stable Slack ts for a test's message id (Slack identifies a message by channel+ts)."""
    return f"1700000000.{zlib.crc32(message_id.encode()):010d}"


def dm_event(sender: str, text: str, message_id: str, team: str = TEAM) -> dict[str, Any]:
    """An Events API message.im event: `sender` writes in the DM channel `sender`."""
    ts = message_ts(message_id)
    return {
        "token": "verification-token",
        "team_id": team,
        "api_app_id": "A111",
        "event": {
            "client_msg_id": f"client-{message_id}",
            "type": "message",
            "text": text,
            "user": f"U-{sender}",
            "ts": ts,
            "team": team,
            "channel": sender,
            "event_ts": ts,
            "channel_type": "im",
        },
        "type": "event_callback",
        "event_id": f"Ev-{message_id}",
        "event_time": 1700000000,
        "authorizations": [
            {
                "team_id": team,
                "user_id": "W23456789",
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
    }


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


class SlackKit:
    type = "slack"

    def options(self, api_base: str) -> dict[str, Any]:
        return {"bot_token": BOT_TOKEN, "signing_secret": SIGNING_SECRET, "api_base": api_base}

    def fake_api(self) -> AbstractContextManager[FakeSlack]:
        return fake_slack()

    def message(self, name: str, sender: str, text: str, message_id: str) -> Request:
        return signed(events_path(name), body_of(dm_event(sender, text, message_id)))

    def forged(self, name: str, sender: str, text: str, message_id: str) -> Request:
        body = body_of(dm_event(sender, text, message_id))
        return signed(events_path(name), body, secret="not-the-signing-secret")

    def replies(self, response: Any, api: FakeSlack, sender: str) -> list[str]:
        # Slack gets an empty 200; the answers went out through chat.postMessage. The work
        # runs as the response's background task, which TestClient waits for.
        assert response.content in (b"", b"{}"), response.content
        return api.texts_to(sender)

    def verification(self, name: str, challenge: str) -> Request:
        body = {"token": "verification-token", "challenge": challenge, "type": "url_verification"}
        return signed(events_path(name), body_of(body))


KIT = SlackKit()
