"""The in-process event bus: fan-out of events to every subscriber (agents' sockets).

A subscriber that falls too far behind is dropped rather than letting its queue grow without
bound; its socket closes and the client reconnects and reloads (the database has everything).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from hub.messages import Event

if TYPE_CHECKING:
    from hub.ports import Bus
    from hub.ports import Subscription as AnySubscription

log = logging.getLogger(__name__)


# Data one process hands to a channel's instance in every process (Receiver.relay); not an
# event for agents.
RELAY = "channel.relay"
RECONNECTED = "bus.reconnected"  # wakes a subscriber dropped when Redis came back
# an agent's access changed (deactivated, password, role, teams, a logout; data: agent_id, or
# none for every agent): open events sockets check their agent again at once
AGENT_CHANGED = "bus.agent_changed"
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


async def follow(
    bus: Bus,
    first: AnySubscription,
    handle: Callable[[Event], Awaitable[object]],
    what: str,
) -> None:
    """Hand every event of `first` (a `local_only` subscription, made before anything it must
    see is published) to `handle`, one at a time, until cancelled. A failure to handle one is
    logged and the next goes on; when the bus drops this follower for lagging, it subscribes
    again (what was published meanwhile is missed, and logged)."""
    subscription = first
    try:
        while True:
            try:
                async for event in subscription:
                    try:
                        await handle(event)
                    except Exception:  # one bad event must not stop the others
                        log.exception("%s: event %s not handled", what, event.type)
            except SubscriberLagged:
                log.error("%s: the bus dropped this follower (too far behind); events missed", what)
                await subscription.aclose()
                subscription = bus.subscribe(local_only=True)
    finally:
        await subscription.aclose()


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
