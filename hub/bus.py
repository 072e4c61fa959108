"""The in-process event bus: fan-out of events to every subscriber (agents' sockets).

A subscriber that falls too far behind is dropped rather than letting its queue grow without
bound; its socket closes and the client reconnects and reloads (the database has everything).
"""

from __future__ import annotations

import asyncio
import logging

from hub.messages import Event

log = logging.getLogger(__name__)


# Data one process hands to a channel's instance in every process (Receiver.relay); not an
# event for agents.
RELAY = "channel.relay"
RECONNECTED = "bus.reconnected"  # wakes a subscriber dropped when Redis came back
INTERNAL = frozenset({RELAY, RECONNECTED})  # never forwarded to agents' sockets


class SubscriberLagged(Exception):
    """The subscriber's queue overflowed; it missed events."""


class Subscription:
    """Events published from its creation on; iterate it, then `aclose()` it."""

    def __init__(self, bus: InProcessBus, size: int, local_only: bool = False) -> None:
        self._bus = bus
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=size)
        self.lagged = False
        self.local_only = local_only
        bus._subscribers.add(self)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        if self.lagged and self.queue.empty():
            raise SubscriberLagged()
        return await self.queue.get()

    async def aclose(self) -> None:
        self._bus._subscribers.discard(self)


class InProcessBus:
    def __init__(self, queue_size: int = 1000) -> None:
        self._subscribers: set[Subscription] = set()
        self._queue_size = queue_size

    async def publish(self, event: Event) -> None:
        await self.fan_out(event, remote=False)

    async def fan_out(self, event: Event, remote: bool) -> None:
        """Give the event to the subscribers (of this process's own events only, when it was
        published by another process)."""
        for sub in list(self._subscribers):
            if remote and sub.local_only:
                continue
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                sub.lagged = True
                self._subscribers.discard(sub)
                log.warning("dropped an event subscriber %d events behind", sub.queue.qsize())

    def subscribe(self, local_only: bool = False) -> Subscription:
        """Events published from now on; with `local_only`, only this process's own (work
        done once per event, such as outgoing webhooks, when several processes share events)."""
        return Subscription(self, self._queue_size, local_only)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)
