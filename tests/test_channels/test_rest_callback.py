"""Agents' messages to a REST customer: POSTed to the channel's `callback_url` in Rasa's
shape (a real local HTTP server stands in for the client), or failed visibly without one."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.test_channels.conftest import Callback, MakeHub
from tests.test_channels.support import (
    agent_reply,
    conversation_of,
    message_by_id,
    wait_for,
)

WEBHOOK = "/webhooks/rest/webhook"


def hand_off(client: TestClient, auth: dict[str, str], sender: str = "u1") -> int:
    """The customer asks for a human; returns the (pending) conversation's id."""
    r = client.post(WEBHOOK, json={"sender": sender, "message": "/human"})
    assert r.status_code == 200, r.text
    conversation = conversation_of(client, auth, "rest", sender)
    assert conversation["status"] == "pending"
    return int(conversation["id"])


def settled(client: TestClient, auth: dict[str, str], cid: int, mid: int) -> dict[str, Any]:
    """The message once the outbox is done with it (delivery no longer queued)."""
    return wait_for(
        lambda: (m := message_by_id(client, auth, cid, mid))["delivery"] != "queued" and m,
        f"message {mid} to leave the outbox",
    )


def test_agent_reply_reaches_the_callback_in_rasas_shape(
    make_hub: MakeHub, callback: Callback
) -> None:
    client, auth = make_hub(
        channels=[{"name": "rest", "type": "rest", "callback_url": callback.url}]
    )
    cid = hand_off(client, auth)
    assert callback.bodies() == []  # the bot's replies went back in the webhook response

    sent = agent_reply(client, auth, cid, "Hi, this is Lin. How can I help?")

    assert settled(client, auth, cid, sent["id"])["delivery"] == "sent"
    expected = [{"recipient_id": "u1", "text": "Hi, this is Lin. How can I help?"}]
    assert callback.bodies() == [expected]
    assert callback.received[0]["path"] == "/bot"
    assert callback.received[0]["content_type"] == "application/json"


def test_private_note_never_reaches_the_callback(make_hub: MakeHub, callback: Callback) -> None:
    client, auth = make_hub(
        channels=[{"name": "rest", "type": "rest", "callback_url": callback.url}]
    )
    cid = hand_off(client, auth)

    note = agent_reply(client, auth, cid, "customer sounds upset", private=True)
    public = agent_reply(client, auth, cid, "Sorry for the wait!")

    # The outbox sends in order: once the public reply is out, the note would have been too.
    assert settled(client, auth, cid, public["id"])["delivery"] == "sent"
    assert [b[0]["text"] for b in callback.bodies()] == ["Sorry for the wait!"]
    assert message_by_id(client, auth, cid, note["id"])["delivery"] is None


def test_without_callback_url_the_agent_reply_fails_visibly(
    client: TestClient, auth: dict[str, str]
) -> None:
    cid = hand_off(client, auth)

    sent = agent_reply(client, auth, cid, "Hello from an agent")
    message = settled(client, auth, cid, sent["id"])

    assert message["delivery"] == "failed"
    assert "callback_url" in message["delivery_error"], message


def test_a_refusing_callback_fails_the_delivery_with_its_status(
    make_hub: MakeHub, callback: Callback
) -> None:
    client, auth = make_hub(
        channels=[{"name": "rest", "type": "rest", "callback_url": callback.url}]
    )
    callback.answers.append(404)  # a client error: retrying won't help
    cid = hand_off(client, auth)

    sent = agent_reply(client, auth, cid, "Hello?")
    message = settled(client, auth, cid, sent["id"])

    assert message["delivery"] == "failed"
    assert "404" in message["delivery_error"], message
    assert len(callback.received) == 1


def test_a_callback_server_error_is_retried_until_sent(
    make_hub: MakeHub, callback: Callback
) -> None:
    client, auth = make_hub(
        channels=[{"name": "rest", "type": "rest", "callback_url": callback.url}]
    )
    callback.answers.append(503)  # first attempt fails; the retry (after ~0.5 s) succeeds
    cid = hand_off(client, auth)

    sent = agent_reply(client, auth, cid, "Your refund is on its way")

    assert settled(client, auth, cid, sent["id"])["delivery"] == "sent"
    assert [r["status"] for r in callback.received] == [503, 200]
    assert callback.bodies()[1] == [{"recipient_id": "u1", "text": "Your refund is on its way"}]
