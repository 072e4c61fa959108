"""The outbox: every outgoing message is stored as `queued` first, then sent by its channel,
retried with backoff, and its delivery status stored (`sent`, or `failed` with the error, which
the agent sees). Queued messages left by a stopped process are sent when the next one starts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from hub.messages import Delivery, Event, Outbound
from hub.ports import Bus, Channel, DeliveryError
from hub.store import Store

log = logging.getLogger(__name__)


class Outbox:
    def __init__(
        self,
        store: Store,
        bus: Bus,
        channels: Mapping[str, Channel],
        attempts: int = 5,
        backoff: Callable[[int], float] = lambda n: min(60.0, 0.5 * 2**n),
    ) -> None:
        self.store, self.bus, self.channels = store, bus, channels
        self.attempts, self.backoff = attempts, backoff
        self._queues: dict[str, asyncio.Queue[tuple[Outbound, int]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def enqueue(self, message: Outbound, attempt: int = 0) -> None:
        """Queue a stored message for its channel (one ordered queue per channel)."""
        queue = self._queues.get(message.channel)
        if queue is None:
            queue = self._queues[message.channel] = asyncio.Queue()
            self._spawn(self._work(message.channel, queue))
        queue.put_nowait((message, attempt))

    async def drain(self) -> None:
        """Wait until every queue is empty (tests, shutdown)."""
        for queue in list(self._queues.values()):
            await queue.join()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _work(self, channel_name: str, queue: asyncio.Queue[tuple[Outbound, int]]) -> None:
        while True:
            message, attempt = await queue.get()
            try:
                await self._deliver(message, attempt)
            except Exception:  # one bad message must not stop the channel's queue
                log.exception("outbox: delivering message %s failed", message.message_id)
            finally:
                queue.task_done()

    async def _deliver(self, message: Outbound, attempt: int) -> None:
        channel = self.channels.get(message.channel)
        error: str | None = None
        retryable = False
        if channel is None:
            error = f"channel {message.channel!r} is not configured (or disabled)"
        else:
            try:
                await channel.send(message)
            except DeliveryError as e:
                error, retryable = str(e), e.retryable
            except Exception as e:  # a bug or an unexpected platform answer: retry, then fail
                log.exception("outbox: channel %s raised", message.channel)
                error, retryable = f"{type(e).__name__}: {e}", True
        if error is None:
            await self._set(message, Delivery.SENT, None)
        elif retryable and attempt + 1 < self.attempts:
            delay = self.backoff(attempt)
            log.warning("outbox: %s; retry %d in %.1fs", error, attempt + 1, delay)
            await self.store.set_delivery(message.message_id, Delivery.QUEUED, error)
            asyncio.get_running_loop().call_later(delay, self.enqueue, message, attempt + 1)
        else:
            log.error("outbox: message %s failed: %s", message.message_id, error)
            await self._set(message, Delivery.FAILED, error)

    async def _set(self, message: Outbound, delivery: Delivery, error: str | None) -> None:
        await self.store.set_delivery(message.message_id, delivery, error)
        await self.bus.publish(
            Event(
                type="message.delivery",
                conversation_id=message.conversation_id,
                data={"id": message.message_id, "delivery": delivery.value, "error": error},
            )
        )
