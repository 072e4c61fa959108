"""The outbox: every outgoing message is stored as `queued` first, then sent by its channel,
retried with backoff, and its delivery status stored (`sent`, or `failed` with the error, which
the agent sees). Queued messages left by a stopped process are sent when the next one starts.

One ordered queue per recipient (a chat, a Slack thread): a recipient's messages go out in the
order they were stored, a retry holds the ones after it, and recipients don't wait for each
other. Each channel's `send_interval` spaces two sends in one rate bucket (the platforms' rate
limits: a Telegram chat, a Slack channel with all its threads); a platform's `retry_after`
(Telegram's and Slack's 429) is waited out before the retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Protocol

from hub.messages import Delivery, Event, Outbound
from hub.ops import logs
from hub.ops.metrics import Metrics
from hub.ports import Bus, Channel, DeliveryError
from hub.store import Store

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (channel, recipient)


class Claims(Protocol):
    """Which process sends which message, when several share the database (hub.ops.cluster)."""

    def hold(self, message_id: int) -> None: ...

    async def take(self, message_id: int) -> bool: ...

    async def release(self, message_id: int) -> None: ...


class Pacer(Protocol):
    """Send slots of a rate bucket shared by several processes (hub.ops.cluster)."""

    async def wait(self, bucket: str, interval: float) -> float:
        """Take the bucket's next slot; the seconds until it comes."""
        ...


class Outbox:
    IDLE_SECONDS = 30.0  # a recipient's worker ends after this long with nothing to send

    def __init__(
        self,
        store: Store,
        bus: Bus,
        channels: Mapping[str, Channel],
        attempts: int = 5,
        backoff: Callable[[int], float] = lambda n: min(60.0, 0.5 * 2**n),
        metrics: Metrics | None = None,
        claims: Claims | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        self.store, self.bus, self.channels = store, bus, channels
        self.attempts, self.backoff = attempts, backoff
        self.metrics = metrics or Metrics()
        self._queues: dict[Key, asyncio.Queue[Outbound]] = {}
        self._next_slot: dict[Key, float] = {}  # by (channel, rate bucket): when a send may go
        self._tasks: set[asyncio.Task[None]] = set()
        self._sending: set[asyncio.Future[Any]] = set()  # sends under way
        # With several hub processes: which process sends which message (hub.ops.cluster)
        self.claims = claims
        self.pacer = pacer

    def enqueue(self, message: Outbound) -> None:
        """Queue a stored message behind the others for its recipient."""
        if self.claims is not None:
            self.claims.hold(message.message_id)
        key = (message.channel, message.recipient_id)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = asyncio.Queue()
            self._spawn(self._work(key, queue))
        queue.put_nowait(message)

    async def drain(self) -> None:
        """Wait until every queued message is sent or failed (tests, shutdown)."""
        while True:
            busy = [q for q in self._queues.values() if q._unfinished_tasks]  # type: ignore[attr-defined]
            if not busy:
                return
            await asyncio.gather(*(q.join() for q in busy))

    async def close(self, grace: float = 10.0) -> None:
        """Stop sending. Sends under way finish (up to `grace` seconds); what is still queued
        stays so in the store, and the next start sends it."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._sending:
            await asyncio.wait(set(self._sending), timeout=grace)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _work(self, key: Key, queue: asyncio.Queue[Outbound]) -> None:
        while True:
            try:
                message = await asyncio.wait_for(queue.get(), self.IDLE_SECONDS)
            except TimeoutError:
                if queue.empty():  # nothing came: end, and let a new worker start next time
                    self._queues.pop(key, None)
                    self._forget_slots()
                    return
                continue
            # the worker outlives the request that started it: log lines name this message's
            logs.request_id.set(None)
            logs.conversation_id.set(message.conversation_id)
            try:
                await self._deliver(message)
            except Exception:  # one bad message must not stop the recipient's queue
                log.exception("outbox: delivering message %s failed", message.message_id)
            finally:
                queue.task_done()

    async def _deliver(self, message: Outbound) -> None:
        if self.claims is None:
            await self._deliver_once(message)
        elif await self.claims.take(message.message_id):
            try:
                await self._deliver_once(message)
            finally:
                await self.claims.release(message.message_id)

    async def _deliver_once(self, message: Outbound) -> None:
        channel = self.channels.get(message.channel)
        if channel is None:
            error = f"channel {message.channel!r} is not configured (or disabled)"
            await self._set(message, Delivery.FAILED, error)
            return
        bucket = (message.channel, channel.rate_bucket(message.recipient_id))
        for attempt in range(self.attempts):
            await self._pace(bucket, channel.capabilities.send_interval)
            # Once a send has begun it runs to the end, and its outcome is stored, even when
            # the hub is stopping: a send cut off after the platform took it would be sent
            # again after the restart.
            attempt_task = asyncio.ensure_future(self._send_once(channel, message))
            self._sending.add(attempt_task)
            attempt_task.add_done_callback(self._sending.discard)
            failure = await asyncio.shield(attempt_task)
            if failure is None:
                return
            error, retryable, wait = failure
            if not retryable or attempt + 1 == self.attempts:
                break
            delay = wait if wait is not None else self.backoff(attempt)
            log.warning("outbox: %s; retry %d in %.1fs", error, attempt + 1, delay)
            await self.store.set_delivery(message.message_id, Delivery.QUEUED, error)
            await asyncio.sleep(delay)
        log.error("outbox: message %s failed: %s", message.message_id, error)
        await self._set(message, Delivery.FAILED, error)

    async def _send_once(
        self, channel: Channel, message: Outbound
    ) -> tuple[str, bool, float | None] | None:
        """One send; None when it went out (and is marked sent), else (error, retryable,
        retry_after)."""
        try:
            await channel.send(message)
        except DeliveryError as e:
            return str(e), e.retryable, e.retry_after
        except Exception as e:  # a bug or an unexpected platform answer: retry, then fail
            log.exception("outbox: channel %s raised", message.channel)
            return f"{type(e).__name__}: {e}", True, None
        await self._set(message, Delivery.SENT, None)
        self.metrics.message_out(message.channel)
        return None

    async def _pace(self, bucket: Key, interval: float) -> None:
        """Take the bucket's next send slot, `interval` seconds after the one before, and wait
        for it. Slots are taken in turn, so recipients sharing a bucket share its rate."""
        if interval <= 0:
            return
        if self.pacer is not None:  # several processes: the slots are shared through Redis
            await asyncio.sleep(await self.pacer.wait(f"{bucket[0]}:{bucket[1]}", interval))
            return
        now = time.monotonic()
        slot = max(now, self._next_slot.get(bucket, now))
        self._next_slot[bucket] = slot + interval
        if slot > now:
            await asyncio.sleep(slot - now)

    def _forget_slots(self) -> None:
        now = time.monotonic()
        for bucket in [b for b, slot in self._next_slot.items() if slot <= now]:
            del self._next_slot[bucket]

    async def _set(self, message: Outbound, delivery: Delivery, error: str | None) -> None:
        if delivery == Delivery.FAILED:
            self.metrics.delivery_failed(message.channel)
        await self.record(message.message_id, message.conversation_id, delivery, error)

    async def record(
        self, message_id: int, conversation_id: int, delivery: Delivery, error: str | None
    ) -> None:
        """Store a message's delivery status and tell the inbox."""
        await self.store.set_delivery(message_id, delivery, error)
        await self.bus.publish(
            Event(
                type="message.delivery",
                conversation_id=conversation_id,
                data={"id": message_id, "delivery": delivery.value, "error": error},
            )
        )
