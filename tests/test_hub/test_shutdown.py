"""A stopping hub (SIGTERM) finishes the messages it is handling: their replies are stored and
sent before the outbox and the database close; a turn slower than `shutdown_grace` is cut."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import pytest

from hub.app import Hub
from hub.messages import Inbound, Reply
from hub.ops.settings import ChannelConfig, Settings
from hub.ports import FlowResult, TurnContext
from hub.store import Database, Store
from hub.testing import TestBot
from nlu import IntentClassifier
from tests.flow_doubles import RunOnly


class SlowAction(RunOnly):
    """Flows whose one action takes `seconds` (an order service that is slow to answer)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.started = asyncio.Event()
        self.finished = False

    async def run(self, state: dict[str, Any], context: TurnContext) -> FlowResult:
        self.started.set()
        await asyncio.sleep(self.seconds)
        self.finished = True
        return FlowResult(handled=True, replies=(Reply(text="Order 12345678 has shipped."),))


def hub_for(settings: Settings, classifier: IntentClassifier, flows: SlowAction, **kw: Any) -> Hub:
    channels = [*settings.channels, ChannelConfig(name=TestBot.CHANNEL, type="memory")]
    return Hub(settings.model_copy(update={"channels": channels, **kw}), classifier, flows)


def customer_says(text: str) -> Inbound:
    return Inbound(channel=TestBot.CHANNEL, sender_id="u1", text=text, channel_message_id="m1")


async def test_stop_finishes_the_turn_under_way_and_sends_its_reply(
    settings: Settings, classifier: IntentClassifier, caplog: pytest.LogCaptureFixture
) -> None:
    flows = SlowAction(0.5)
    hub = hub_for(settings, classifier, flows)
    await hub.start()
    # the caller goes away mid-turn, as a channel's socket or poller does when the hub stops
    caller = asyncio.create_task(hub.receive(customer_says("where is my order 12345678")))
    await flows.started.wait()
    caller.cancel()
    with caplog.at_level(logging.WARNING):
        await hub.stop()

    assert flows.finished
    sent = hub.channels[TestBot.CHANNEL].sent_to("u1")  # type: ignore[attr-defined]
    assert [m.text for m in sent] == ["Order 12345678 has shipped."]
    db = Database(settings.database_url)
    try:
        store = Store(db)
        conversation = await store.contact_conversation(TestBot.CHANNEL, "u1")
        assert conversation is not None and conversation.id is not None
        messages = await store.messages(conversation.id, 0, 100)
    finally:
        await db.close()
    assert [(m.direction, m.text, m.delivery) for m in messages] == [
        ("in", "where is my order 12345678", None),
        ("out", "Order 12345678 has shipped.", "sent"),
    ]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not hub.turns


async def test_a_turn_longer_than_the_grace_is_cut_and_stop_returns(
    settings: Settings, classifier: IntentClassifier, caplog: pytest.LogCaptureFixture
) -> None:
    flows = SlowAction(30)
    hub = hub_for(settings, classifier, flows, shutdown_grace=0.3)
    await hub.start()
    caller = asyncio.create_task(hub.receive(customer_says("where is my order")))
    await flows.started.wait()
    started = time.monotonic()
    await hub.stop()
    assert time.monotonic() - started < 5
    assert not flows.finished
    assert "1 message(s) cut off" in caplog.text
    with contextlib.suppress(asyncio.CancelledError):
        await caller
