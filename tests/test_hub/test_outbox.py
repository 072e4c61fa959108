"""The outbox: retries with backoff, visible failures, and nothing lost across a restart."""

from __future__ import annotations

import asyncio
import itertools
from typing import ClassVar

from channels.base import Capabilities, Channel
from channels.registry import register
from hub.app import Hub
from hub.messages import Delivery, Inbound, Outbound, Reply, Sender
from hub.ops.settings import ChannelConfig, Settings
from hub.ports import DeliveryError
from hub.testing import TestBot


class Flaky(Channel):
    type: ClassVar[str] = "flaky"
    capabilities: ClassVar[Capabilities] = Capabilities()
    failures: ClassVar[list[DeliveryError]] = []
    delivered: ClassVar[list[Outbound]] = []

    async def send(self, message: Outbound) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.delivered.append(message)


register("flaky", Flaky)


async def customer_says(hub: Hub, sender: str, text: str) -> int:
    """A message on the flaky channel `f`; returns its conversation id."""
    await hub.receive(Inbound(channel="f", sender_id=sender, text=text))
    await hub.outbox.drain()
    conversation_id = await hub.current_conversation("f", sender)
    assert conversation_id is not None
    return conversation_id


def with_flaky(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"channels": [*settings.channels, ChannelConfig(name="f", type="flaky")]}
    )


async def test_retryable_failures_are_retried_then_sent(settings, classifier, flows) -> None:  # type: ignore[no-untyped-def]
    Flaky.failures[:] = [DeliveryError("timeout"), DeliveryError("502 from platform")]
    Flaky.delivered.clear()
    async with TestBot.running(with_flaky(settings), classifier, flows) as bot:
        bot.hub.outbox.backoff = lambda n: 0.01
        await customer_says(bot.hub, "u1", "hello")
        for _ in range(100):
            message = await bot.hub.store.get_message(2)
            if message is not None and message.delivery == Delivery.SENT:
                break
            await asyncio.sleep(0.02)
        [sent] = Flaky.delivered
        assert message is not None and message.id == sent.message_id
        assert message.delivery == Delivery.SENT and message.attempts == 3
        assert message.delivery_error is None


async def test_a_permanent_failure_is_stored_for_the_agent(settings, classifier, flows) -> None:  # type: ignore[no-untyped-def]
    Flaky.failures[:] = [DeliveryError("outside the 48 h window", retryable=False)]
    Flaky.delivered.clear()
    async with TestBot.running(with_flaky(settings), classifier, flows) as bot:
        feed = bot.hub.bus.subscribe()
        conversation_id = await customer_says(bot.hub, "u2", "hello")
        messages = await bot.hub.store.messages(conversation_id)
        reply = messages[-1]
        assert reply.sender_type == Sender.BOT
        assert (
            reply.delivery == Delivery.FAILED and reply.delivery_error == "outside the 48 h window"
        )
        events = []
        while not feed.queue.empty():
            events.append(feed.queue.get_nowait())
        assert any(e.type == "message.delivery" and e.data["delivery"] == "failed" for e in events)


async def test_a_platform_that_keeps_failing_is_given_up_on_after_the_attempts(
    settings, classifier, flows
) -> None:  # type: ignore[no-untyped-def]
    """Retryable failures are retried `attempts` times (5), not forever: then the message is
    failed with the last error, and a platform that would take the sixth try never gets it."""
    Flaky.failures[:] = [DeliveryError(f"502 from platform (try {n})") for n in range(1, 8)]
    Flaky.delivered.clear()
    async with TestBot.running(with_flaky(settings), classifier, flows) as bot:
        bot.hub.outbox.backoff = lambda n: 0.01
        feed = bot.hub.bus.subscribe()
        conversation_id = await customer_says(bot.hub, "u4", "hello")
        reply = (await bot.hub.store.messages(conversation_id))[-1]
        assert reply.sender_type == Sender.BOT
        assert (reply.delivery, reply.delivery_error) == (
            Delivery.FAILED,
            "502 from platform (try 5)",
        )
        assert reply.attempts == 5
        assert Flaky.delivered == [] and len(Flaky.failures) == 2  # tries 6 and 7 never made
        events = []
        while not feed.queue.empty():
            events.append(feed.queue.get_nowait())
        failed = [e for e in events if e.type == "message.delivery" and e.data["id"] == reply.id]
        assert [e.data["delivery"] for e in failed] == ["failed"]


async def test_queued_messages_are_sent_after_a_restart(settings, classifier, flows) -> None:  # type: ignore[no-untyped-def]
    Flaky.failures[:] = []
    Flaky.delivered.clear()
    settings = with_flaky(settings)
    async with TestBot.running(settings, classifier, flows) as bot:
        conversation_id = await customer_says(bot.hub, "u3", "hello")
        conversation = await bot.hub.store.get_conversation(conversation_id)
        assert conversation is not None
        # As if the process died between storing a reply and sending it:
        stranded = await bot.hub.store.add_message(
            conversation, Sender.AGENT, "are you still there?"
        )
    assert [m.text for m in Flaky.delivered][-1] != "are you still there?"
    async with TestBot.running(settings, classifier, flows) as bot:
        await bot.hub.outbox.drain()
        assert Flaky.delivered[-1].message_id == stranded.id
        message = await bot.hub.store.get_message(stranded.id or 0)
        assert message is not None and message.delivery == Delivery.SENT


class Paced(Channel):
    """A platform that allows one message per recipient every 0.2 s and says 429 once."""

    type: ClassVar[str] = "paced"
    capabilities: ClassVar[Capabilities] = Capabilities(send_interval=0.2)
    sends: ClassVar[list[tuple[float, str, str]]] = []
    throttle_once: ClassVar[set[str]] = set()

    async def send(self, message: Outbound) -> None:
        import time

        if message.text in self.throttle_once:
            self.throttle_once.discard(message.text)
            raise DeliveryError("429 Too Many Requests", retry_after=0.6)
        self.sends.append((time.monotonic(), message.recipient_id, message.text))


register("paced", Paced)


async def test_pacing_per_recipient_order_and_retry_after(settings, classifier, flows) -> None:  # type: ignore[no-untyped-def]
    import time

    Paced.sends.clear()
    Paced.throttle_once = {"a2"}
    settings = settings.model_copy(
        update={"channels": [*settings.channels, ChannelConfig(name="p", type="paced")]}
    )
    async with TestBot.running(settings, classifier, flows) as bot:
        hub = bot.hub
        hub.outbox.backoff = lambda n: 3.0  # far from the 429's retry_after: which one was waited
        conversations = {}
        for who in ("a", "b"):
            await hub.receive(Inbound(channel="p", sender_id=who, text="/greet"))
            conversations[who] = await hub.store.get_conversation(
                await hub.current_conversation("p", who) or 0
            )
        await hub.outbox.drain()
        await asyncio.sleep(0.25)  # the greetings' pacing has passed
        Paced.sends.clear()
        started = time.monotonic()
        for i in (1, 2, 3):
            for who in ("a", "b"):
                await hub.conversations.post(
                    conversations[who],
                    Reply(text=f"{who}{i}", sender=Sender.AGENT),
                )
        await hub.outbox.drain()
    texts = {who: [t for _, r, t in Paced.sends if r == who] for who in ("a", "b")}
    assert texts == {"a": ["a1", "a2", "a3"], "b": ["b1", "b2", "b3"]}  # in order, a2 retried
    times = {who: [at for at, r, _ in Paced.sends if r == who] for who in ("a", "b")}
    gaps_b = [y - x for x, y in zip(times["b"], times["b"][1:], strict=False)]
    assert all(g >= 0.19 for g in gaps_b), gaps_b  # one per 0.2 s for a recipient
    gaps_a = [y - x for x, y in zip(times["a"], times["a"][1:], strict=False)]
    # a2 was tried 0.2 s after a1 and got the 429: it waited out its retry_after (0.6 s, so
    # 0.8 s after a1), not the backoff (3 s), nor just the next pacing slot (0.4 s after a1)
    assert 0.7 <= gaps_a[0] < 2.5, gaps_a
    assert times["b"][0] - started < 0.15  # b doesn't wait for a's pacing


class SharedLimit(Paced):
    """A platform whose rate limit covers a whole room ("room:thread" recipients share it)."""

    type: ClassVar[str] = "shared-limit"

    def rate_bucket(self, recipient_id: str) -> str:
        return recipient_id.split(":")[0]


register("shared-limit", SharedLimit)


async def test_recipients_in_one_rate_bucket_share_its_pace(settings, classifier, flows) -> None:  # type: ignore[no-untyped-def]
    Paced.sends.clear()
    Paced.throttle_once = set()
    settings = settings.model_copy(
        update={"channels": [*settings.channels, ChannelConfig(name="s", type="shared-limit")]}
    )
    async with TestBot.running(settings, classifier, flows) as bot:
        hub = bot.hub
        threads = ("room:1", "room:2", "other:1")
        conversations = {}
        for who in threads:
            await hub.receive(Inbound(channel="s", sender_id=who, text="/greet"))
            conversations[who] = await hub.store.get_conversation(
                await hub.current_conversation("s", who) or 0
            )
        await hub.outbox.drain()
        await asyncio.sleep(0.5)  # the greetings' pacing has passed
        Paced.sends.clear()
        for i in (1, 2):
            for who in threads:
                await hub.conversations.post(
                    conversations[who], Reply(text=f"{who}/{i}", sender=Sender.AGENT)
                )
        await hub.outbox.drain()
    room = [(at, text) for at, r, text in Paced.sends if r.startswith("room:")]
    assert len(room) == 4
    gaps = [y[0] - x[0] for x, y in itertools.pairwise(room)]
    assert all(g >= 0.19 for g in gaps), gaps  # one per 0.2 s for the room, across its threads
    for who in ("room:1", "room:2"):  # each thread still in order
        assert [t for _, r, t in Paced.sends if r == who] == [f"{who}/1", f"{who}/2"]
    other = [at for at, r, _ in Paced.sends if r == "other:1"]  # another room isn't held
    assert other[0] - room[0][0] < 0.15


class Slow(Channel):
    """A platform that takes a while to accept a message."""

    type: ClassVar[str] = "slow"
    started = asyncio.Event()
    delivered: ClassVar[list[Outbound]] = []

    async def send(self, message: Outbound) -> None:
        type(self).started.set()
        await asyncio.sleep(0.3)
        self.delivered.append(message)


register("slow", Slow)


async def test_a_send_under_way_at_shutdown_finishes_and_is_not_repeated(
    settings, classifier, flows
) -> None:  # type: ignore[no-untyped-def]
    Slow.delivered.clear()
    Slow.started = asyncio.Event()
    settings = settings.model_copy(
        update={"channels": [*settings.channels, ChannelConfig(name="s", type="slow")]}
    )
    async with TestBot.running(settings, classifier, flows) as bot:
        await bot.hub.receive(Inbound(channel="s", sender_id="u", text="/greet"))
        await asyncio.wait_for(Slow.started.wait(), 5)
    # stopped while the platform was taking the greeting
    [greeting] = Slow.delivered
    async with TestBot.running(settings, classifier, flows) as bot:
        message = await bot.hub.store.get_message(greeting.message_id)
        assert message is not None and message.delivery == Delivery.SENT
        await bot.hub.outbox.drain()
    assert len(Slow.delivered) == 1  # not sent again after the restart
