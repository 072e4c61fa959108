"""The running core: store, bus, channels, outbox, conversations and the pipeline, started and
stopped together. `Core` is the `Receiver` every channel talks to (hub.ports).

It is given what it can't know: the channels (a function that builds them for it, since a
channel needs its receiver) and the features (class Feature), both chosen by the composition
root, hub/app.py."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import redis.asyncio as aioredis

from hub.core.bus import RELAY, InProcessBus, SubscriberLagged
from hub.core.conversations import Conversations, Feature
from hub.core.media import MediaStore
from hub.core.outbox import Outbox
from hub.core.pipeline import Bot, Pipeline
from hub.core.senders import SenderTokens
from hub.core.status import InvalidTransition
from hub.core.views import message_view
from hub.messages import Delivery, Event, Inbound, Outbound, Status, utcnow
from hub.ops import cluster
from hub.ops.metrics import Metrics
from hub.ops.ratelimit import PublicLimits, rate_limiter
from hub.ops.settings import Settings
from hub.ops.tasks import cancel
from hub.ports import (
    Bus,
    Channel,
    ChannelConfigError,
    Classifier,
    KnowledgeSearch,
    Receiver,
    Unavailable,
)
from hub.store import Database, Store

log = logging.getLogger(__name__)

TRY_IT = "try-it"  # the admin pages' try-it chat: a channel every hub has (hub/app.py adds it)


class RunningChannel(Channel, Protocol):
    """A channel as the running core sees it: hub.ports.Channel, started and stopped with the
    hub, and told what other processes relay to it (channels/base.py implements it)."""

    async def start(self) -> None:
        """Begin background work; ChannelConfigError: this channel can't work (the others
        do)."""
        ...

    async def stop(self) -> None: ...

    async def on_relay(self, data: dict[str, Any]) -> None: ...


# builds the hub's channels, each talking to the given receiver (hub/app.py's make_channels)
ChannelMaker = Callable[[Receiver], Mapping[str, RunningChannel]]


@dataclass(frozen=True)
class Infrastructure:
    """What the core and the features share: the database, Redis when configured (then the
    bus runs through it: several processes share the work, hub.ops.cluster), the customers'
    files."""

    db: Database
    store: Store
    redis: aioredis.Redis | None
    bus: Bus
    media: MediaStore

    @classmethod
    def connect(cls, settings: Settings) -> Infrastructure:
        db = Database(settings.database_url)
        redis = cluster.connect(settings.redis_url) if settings.redis_url else None
        bus = cluster.RedisBus(redis, settings.redis_prefix) if redis else InProcessBus()
        media = MediaStore(settings.data_dir / "media", settings.media_max_bytes)
        return cls(db, Store(db), redis, bus, media)


class Core:
    """The running hub's core (see the module's docstring)."""

    def __init__(
        self,
        settings: Settings,
        bot: Bot,
        infrastructure: Infrastructure,
        *,
        channels: ChannelMaker,
        features: Sequence[Feature] = (),
    ) -> None:
        self.settings = settings
        self.db, self.store = infrastructure.db, infrastructure.store
        self.redis, self.bus = infrastructure.redis, infrastructure.bus
        self.media = infrastructure.media
        redis, prefix = self.redis, settings.redis_prefix
        self.channels = channels(self)
        self.metrics = Metrics()
        self.claims = cluster.RedisClaims(redis, prefix) if redis is not None else None
        self.outbox = Outbox(
            self.store,
            self.bus,
            self.channels,
            metrics=self.metrics,
            claims=self.claims,
            pacer=cluster.RedisPacer(redis, prefix) if redis is not None else None,
        )
        self.features = tuple(features)
        self.conversations = Conversations(
            self.store, self.bus, self.outbox, self.channels, bot.language, self.features
        )
        self.pipeline = Pipeline(
            store=self.store,
            conversations=self.conversations,
            channels=self.channels,
            bot=bot,
            metrics=self.metrics,
            features=self.features,
            locks=cluster.RedisLocks(redis, prefix) if redis is not None else None,
        )
        # `limits:` on the public endpoints; tokens proving the widget's visitor ids
        self.limits = PublicLimits(settings.limits, rate_limiter(redis, prefix))
        self.senders = SenderTokens(settings.jwt_secret)
        self._tasks: list[asyncio.Task[None]] = []
        self.turns: set[asyncio.Future[list[Outbound]]] = set()  # messages being handled
        self.metrics.turns_in_progress.set_function(lambda: len(self.turns))
        self.channel_errors: dict[str, str] = {}  # channels that could not start, and why

    def use_bot(self, settings: Settings, bot: Bot) -> None:
        """Serve this bot from the next message on (the hot reload's swap)."""
        self.settings = settings
        self.pipeline.bot = bot
        self.conversations.default_language = bot.language
        for feature in self.features:
            feature.use_bot(settings)

    @property
    def classifier(self) -> Classifier:
        """The NLU of the bot being served."""
        return self.pipeline.bot.classifier

    @property
    def knowledge(self) -> KnowledgeSearch | None:
        """The bot's articles and FAQs (searched by the fallback and for agents)."""
        return self.pipeline.bot.fallback.base

    # ---- the Receiver port (what channels call) ----------------------------------------

    async def receive(
        self, inbound: Inbound, on_stored: Callable[[int], Awaitable[None]] | None = None
    ) -> list[Outbound]:
        # Each message is handled in a task of its own, which stop() waits for and which a
        # caller cancelled (a socket closed, a poller stopped) does not cut in half.
        started = time.perf_counter()
        turn = asyncio.ensure_future(self.pipeline.receive(inbound, on_stored))
        self.turns.add(turn)
        turn.add_done_callback(self.turns.discard)
        replies = await asyncio.shield(turn)
        self.metrics.turn_took(inbound.channel, time.perf_counter() - started)
        return replies

    async def history(self, channel: str, sender_id: str, after_id: int) -> list[Outbound]:
        conversation = await self.store.contact_conversation(channel, sender_id)
        if conversation is None or conversation.id is None:
            return []
        messages = await self.store.messages(conversation.id, after_id, 1000, private=False)
        return [await self.conversations.outbound(m, sender_id) for m in messages]

    async def current_conversation(self, channel: str, sender_id: str) -> int | None:
        conversation = await self.store.contact_conversation(channel, sender_id)
        return conversation.id if conversation else None

    async def publish(self, event: Event) -> None:
        await self.bus.publish(event)

    async def relay(self, channel: str, data: dict[str, Any]) -> None:
        if self.redis is None:
            await self.channels[channel].on_relay(data)
        else:
            relayed = Event(type=RELAY, conversation_id=0, data={"channel": channel, **data})
            await self.bus.publish(relayed)

    async def edit(self, channel: str, channel_message_id: str, text: str) -> bool:
        message = await self.store.update_inbound(channel, channel_message_id, text=text)
        if message is not None:
            await self.bus.publish(
                Event(
                    type="message.updated",
                    conversation_id=message.conversation_id,
                    data=message_view(message),
                )
            )
        return message is not None

    async def delete(self, channel: str, channel_message_id: str) -> bool:
        message = await self.store.update_inbound(channel, channel_message_id, deleted=True)
        if message is not None:
            await self.bus.publish(
                Event(
                    type="message.deleted",
                    conversation_id=message.conversation_id,
                    data={"id": message.id},
                )
            )
        return message is not None

    async def save_media(
        self, data: bytes, *, name: str | None = None, mime_type: str | None = None
    ) -> str:
        return await asyncio.to_thread(self.media.save, data, name, mime_type)

    async def conversation_of(self, channel: str, channel_message_id: str) -> int | None:
        return await self.store.conversation_of(channel, channel_message_id)

    async def load_state(self, channel: str, key: str) -> dict[str, Any] | None:
        return await self.store.load_state(channel, key)

    async def save_state(self, channel: str, key: str, value: dict[str, Any]) -> None:
        await self.store.save_state(channel, key, value)

    def sender_token(self, channel: str, sender_id: str) -> str:
        return self.senders.token(channel, sender_id)

    async def limited(self, rule: str, key: str) -> float | None:
        return await self.limits.limited(rule, key)

    def cap(self, rule: str) -> int | None:
        return self.limits.cap(rule)

    async def delivery_failed(self, message_id: int, error: str) -> bool:
        message = await self.store.get_message(message_id)
        if message is None or message.direction != "out":
            return False
        self.metrics.delivery_failed(message.channel)
        await self.outbox.record(message_id, message.conversation_id, Delivery.FAILED, error)
        return True

    # ---- life cycle ---------------------------------------------------------------------

    async def start(self) -> None:
        for name, channel in self.channels.items():
            try:
                await channel.start()
            except ChannelConfigError as e:
                # One half-configured channel doesn't take the others down; /readyz shows it.
                log.error("channel %s not started: %s", name, e)
                self.channel_errors[name] = str(e)
        if self.claims is not None:
            assert isinstance(self.bus, cluster.RedisBus)
            await self.bus.start()
            self._tasks.append(asyncio.create_task(self._relay_events()))
            self._tasks.append(asyncio.create_task(self.claims.keep()))
            self._tasks.append(asyncio.create_task(self._sweep_outbox()))
            self._tasks.append(asyncio.create_task(self._recover_turns(every=5.0, after=10.0)))
        else:
            resent = await self.conversations.resend_queued()
            if resent:
                log.info("outbox: %d queued messages from before the restart sent again", resent)
            self._tasks.append(asyncio.create_task(self._recover_turns(every=None, after=0.0)))
        self._tasks.append(asyncio.create_task(self._wake_snoozed()))
        for feature in self.features:
            await feature.start(self.conversations)

    async def stop(self) -> None:
        for task in self._tasks:
            await cancel(task)
        await self.finish_turns(self.settings.shutdown_grace)
        for channel in self.channels.values():
            await channel.stop()
        close = getattr(self.pipeline.bot.flows, "aclose", None)  # the flow engine's clients
        if close is not None:
            await close()
        await self.outbox.close()
        for feature in self.features:
            await feature.stop()
        if isinstance(self.bus, cluster.RedisBus):
            await self.bus.stop()
        if self.redis is not None:
            await self.redis.aclose()
        await self.db.close()

    async def finish_turns(self, grace: float) -> None:
        """Let the messages being handled finish and their replies go out, for up to `grace`
        seconds in all; a reply still queued then stays so in the store, and the next start
        sends it."""
        if not self.turns:
            return
        deadline = time.monotonic() + grace
        log.info("stopping: finishing %d message(s) being handled", len(self.turns))
        _, late = await asyncio.wait(set(self.turns), timeout=grace)
        for turn in late:
            turn.cancel()
        if late:
            log.warning("stopping: %d message(s) cut off after %.1f s", len(late), grace)
            await asyncio.wait(late)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.outbox.drain(), max(0.0, deadline - time.monotonic()))

    async def ready(self) -> dict[str, Any]:
        """What /readyz reports: each dependency ok or the error."""
        checks: dict[str, Any] = {"model": "ok" if self.classifier is not None else "missing"}
        try:
            await self.db.ping()
            checks["database"] = "ok"
        except Exception as e:
            checks["database"] = f"{type(e).__name__}: {e}"
        if self.redis is not None:
            try:
                await self.redis.ping()
                checks["redis"] = "ok"
                if isinstance(self.bus, cluster.RedisBus) and not self.bus.connected.is_set():
                    checks["redis"] = "reconnecting: the event stream is not read yet"
            except Exception as e:
                checks["redis"] = f"{type(e).__name__}: {e}"
        return checks

    # ---- background work ----------------------------------------------------------------

    async def _relay_events(self) -> None:
        """Hand events relayed by any process (this one too) to this process's channels."""
        while True:
            feed = self.bus.subscribe()
            try:
                async for event in feed:
                    if event.type != RELAY:
                        continue  # the agents' events: not for channels
                    channel = self.channels.get(event.data.get("channel", ""))
                    if channel is not None:
                        try:
                            await channel.on_relay(event.data)
                        except Exception:
                            log.exception("channel %s: relayed data not handled", channel.name)
            except SubscriberLagged:
                log.warning("channel relay fell behind or Redis reconnected; resubscribing")
            finally:
                await feed.aclose()

    async def _recover_turns(self, every: float | None, after: float) -> None:
        """Take the turns that a stopped or killed process left pending: once at start (one
        process), or every `every` seconds (several: another one may die)."""
        while True:
            with contextlib.suppress(Unavailable):  # the database is away: the next round
                before = utcnow() - timedelta(seconds=after)
                for message, contact in await self.store.unfinished_turns(before):
                    await self.pipeline.recover(message, contact)
                if every is None:
                    return
            await asyncio.sleep(every if every is not None else 5.0)

    async def _sweep_outbox(self, every: float = 5.0, after: float = 30.0) -> None:
        """Send what another process stored and left queued when it died (its claims lapsed)."""
        assert self.claims is not None
        while True:
            with contextlib.suppress(Unavailable):  # the database is away: the next sweep
                before = utcnow() - timedelta(seconds=after)
                queued = {m.id: m for m in await self.store.undelivered(before=before) if m.id}
                for message_id in await self.claims.sweepable(queued):
                    log.info("outbox: sending message %s another process left queued", message_id)
                    self.outbox.enqueue(await self.conversations.outbound(queued[message_id]))
            await asyncio.sleep(every)

    async def _wake_snoozed(self, every: float = 30.0) -> None:
        while True:
            with contextlib.suppress(Unavailable):  # the database is away: next time
                for conversation in await self.store.due_snoozes(utcnow()):
                    with contextlib.suppress(InvalidTransition):
                        await self.conversations.transition(
                            conversation, Status.OPEN, "system", reason="snooze ended"
                        )
            await asyncio.sleep(every)
