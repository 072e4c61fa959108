"""Several hub processes over one PostgreSQL and one Redis (`REDIS_URL` set).

The database stays the truth: every message, conversation and delivery status is written there
first. Redis coordinates the processes:

- `RedisBus`: events go into one stream (`<prefix>events`, capped); every process reads it and
  fans out to its own subscribers (agents' sockets, the channel relay), so an agent connected to
  process B sees what a customer did on process A, in one order for all. If Redis is down,
  events still reach this process's subscribers, and they are told to reload once it is back.
- `RedisLocks`: one conversation's turns never interleave, whichever process takes them. If
  Redis is down, a turn waits for it at most `DOWN_WAIT` seconds, then goes on under this
  process's lock alone (a warning is logged once per outage): customers keep being answered,
  and the database's unique (channel, message id) still stores a redelivery once.
- `RedisClaims`: an outgoing message is sent by one process. The process that stored it holds its
  claim (renewed while it is queued or being sent); a process that dies lets its claims expire,
  and another process's sweep sends what it left queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Hashable, Iterable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from hub.core.bus import RECONNECTED, InProcessBus
from hub.core.locks import KeyedLocks
from hub.messages import Event
from hub.ops.tasks import cancel

log = logging.getLogger(__name__)

PROCESS_ID = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"

# Release a lock only if it is still ours (a lock that expired may be someone else's by now).
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
# Extend our claims; take the ones nobody holds (after a Redis restart they are all gone).
_RENEW = """
local n = 0
for i, key in ipairs(KEYS) do
  local owner = redis.call('get', key)
  if owner == false or owner == ARGV[1] then
    redis.call('set', key, ARGV[1], 'EX', ARGV[2])
    n = n + 1
  end
end
return n
"""


def connect(url: str) -> aioredis.Redis:
    return aioredis.from_url(
        url, socket_connect_timeout=2, socket_timeout=10, health_check_interval=15
    )


class RedisBus(InProcessBus):
    """The bus of a hub process among several: publish into a Redis stream; a reader task
    delivers every event of the stream (this process's too) to the local subscribers."""

    MAXLEN = 10_000  # the stream keeps about this many events (a reconnecting reader's margin)

    def __init__(self, client: aioredis.Redis, prefix: str = "kefu:", queue_size: int = 1000):
        super().__init__(queue_size)
        self.client = client
        self.stream = f"{prefix}events"
        self._reader: asyncio.Task[None] | None = None
        self._last_id = "$"
        self.connected = asyncio.Event()
        self.origin = f"{PROCESS_ID}:{secrets.token_hex(3)}"  # tells this bus's own events

    async def start(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            # Start after the newest event: a process that starts has nothing to catch up on.
            newest: Any = await self.client.xrevrange(self.stream, count=1)
            self._last_id = newest[0][0].decode() if newest else "0-0"
        self._reader = asyncio.create_task(self._read())

    async def stop(self) -> None:
        if self._reader is not None:
            await cancel(self._reader)

    async def publish(self, event: Event) -> None:
        body = json.dumps({"event": event.model_dump(mode="json"), "from": self.origin})
        try:
            await self.client.xadd(self.stream, {"e": body}, maxlen=self.MAXLEN, approximate=True)
        except (RedisError, OSError) as e:
            # Redis is down: this process's subscribers still get it; the others reload
            # from the database once their reader is back (see _read).
            log.warning("bus: Redis unreachable (%s); event %s delivered locally", e, event.type)
            await super().publish(event)

    async def _read(self) -> None:
        failures = 0
        while True:
            try:
                if failures:
                    # Back: drop the subscribers before reading (the events read next reach
                    # their new subscriptions), not after a read that may bring events.
                    await self.client.ping()
                    log.info("bus: Redis is back; subscribers reload what they missed")
                    self._drop_subscribers()  # they may have missed events: reconnect, reload
                    failures = 0
                self.connected.set()
                answer: Any = await self.client.xread({self.stream: self._last_id}, block=5000)
                for _, entries in answer or []:
                    for entry_id, fields in entries:
                        self._last_id = entry_id.decode()
                        await self._deliver(fields)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as e:
                self.connected.clear()
                failures += 1
                if failures == 1:
                    log.warning("bus: lost Redis (%s); reconnecting", e)
                await asyncio.sleep(min(5.0, 0.1 * 2**failures))

    async def _deliver(self, fields: dict[bytes, bytes]) -> None:
        try:
            body = json.loads(fields[b"e"])
            event = Event.model_validate(body["event"])
        except (KeyError, ValueError) as e:
            log.error("bus: an unreadable event in %s: %s", self.stream, e)
            return
        await self.fan_out(event, remote=body.get("from") != self.origin)

    def _drop_subscribers(self) -> None:
        """Tell subscribers to other processes' events that they may have missed some. Those
        of this process's own events only missed nothing: while Redis was away, this
        process's events were delivered here directly."""
        for sub in list(self._subscribers):
            if sub.local_only:
                continue
            sub.lagged = True  # its iterator raises SubscriberLagged: the socket closes
            self._subscribers.discard(sub)
            with contextlib.suppress(asyncio.QueueFull):
                sub.queue.put_nowait(_WAKE)  # wake a subscriber waiting on an empty queue


# Put in a dropped subscriber's queue so that its waiting iterator wakes and raises.
_WAKE = Event(type=RECONNECTED, conversation_id=0)


class RedisLocks(KeyedLocks):
    """Per-key locks held across processes: the local lock first (no Redis round trips for
    turns waiting in this process), then the Redis one, kept alive while it is held."""

    TTL_MS = 10_000  # a dead process's locks lapse this soon; held ones are renewed
    DOWN_WAIT = 2.0  # how long a turn waits for an unreachable Redis before going on alone

    def __init__(self, client: aioredis.Redis, prefix: str = "kefu:") -> None:
        super().__init__()
        self.client = client
        self.prefix = f"{prefix}lock:"
        self.down = False  # Redis was unreachable at the last try: don't wait for it again

    @contextlib.asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        async with super().hold(key):
            name = self.prefix + json.dumps(key, default=str, ensure_ascii=False)
            token = secrets.token_hex(8)
            if not await self._acquire(name, token):
                yield  # Redis is down: this process's lock alone
                return
            keeper = asyncio.create_task(self._keep(name, token))
            try:
                yield
            finally:
                await cancel(keeper)
                with contextlib.suppress(RedisError, OSError):
                    await self.client.eval(_RELEASE, 1, name, token)

    async def _acquire(self, name: str, token: str) -> bool:
        """Take the Redis lock (waiting while another process holds it, up to its TTL);
        False when Redis stays unreachable for DOWN_WAIT seconds (at once if it already was)."""
        delay = 0.005
        deadline = time.monotonic() + (0 if self.down else self.DOWN_WAIT)
        while True:
            try:
                if await self.client.set(name, token, nx=True, px=self.TTL_MS):
                    if self.down:
                        log.info("locks: Redis is back; turns are locked across processes again")
                    self.down = False
                    return True
            except (RedisError, OSError) as e:
                if time.monotonic() >= deadline:
                    if not self.down:
                        log.warning(
                            "locks: Redis unreachable (%s); turns are locked in this process "
                            "only until it is back",
                            e,
                        )
                    self.down = True
                    return False
            await asyncio.sleep(delay)
            delay = min(0.1, delay * 2)

    async def _keep(self, name: str, token: str) -> None:
        while True:
            await asyncio.sleep(self.TTL_MS / 3000)
            with contextlib.suppress(RedisError, OSError):
                if await self.client.get(name) == token.encode():
                    await self.client.pexpire(name, self.TTL_MS)


class RedisClaims:
    """Which process sends which outgoing message. Claims last `ttl` seconds and are renewed
    every ttl/3 while held, so a dead process's claims lapse within `ttl`."""

    def __init__(self, client: aioredis.Redis, prefix: str = "kefu:", ttl: int = 30) -> None:
        self.client = client
        self.prefix = f"{prefix}claim:"
        self.ttl = ttl
        self.held: set[int] = set()
        self.owner = f"{PROCESS_ID}:{secrets.token_hex(3)}"  # this hub's claims

    def _key(self, message_id: int) -> str:
        return f"{self.prefix}{message_id}"

    async def take(self, message_id: int) -> bool:
        """Claim a message; True when it is ours (newly or already)."""
        try:
            got = await self.client.set(self._key(message_id), self.owner, nx=True, ex=self.ttl)
            if not got and await self.client.get(self._key(message_id)) != self.owner.encode():
                return False
        except (RedisError, OSError) as e:
            # Without Redis nobody can claim: this process sends what it stored itself
            # (sweeps of other processes' messages wait for Redis; see `sweepable`).
            log.warning("outbox: Redis unreachable (%s); sending message %s", e, message_id)
        self.held.add(message_id)
        return True

    def hold(self, message_id: int) -> None:
        """This process stored the message and will send it: keep others off it."""
        self.held.add(message_id)

    async def release(self, message_id: int) -> None:
        self.held.discard(message_id)
        with contextlib.suppress(RedisError, OSError):
            await self.client.eval(_RELEASE, 1, self._key(message_id), self.owner)

    async def sweepable(self, message_ids: Iterable[int]) -> list[int]:
        """Of these queued messages, the ones nobody holds (their process died), now ours."""
        taken = []
        for message_id in message_ids:
            if message_id in self.held:
                continue
            try:
                if await self.client.set(self._key(message_id), self.owner, nx=True, ex=self.ttl):
                    self.held.add(message_id)
                    taken.append(message_id)
            except (RedisError, OSError):
                return taken
        return taken

    async def renew(self) -> None:
        if not self.held:
            return
        ids = list(self.held)
        keys = [self._key(i) for i in ids]
        with contextlib.suppress(RedisError, OSError):
            await self.client.eval(_RENEW, len(keys), *keys, self.owner, self.ttl)

    async def keep(self) -> None:
        """Renew the held claims until cancelled."""
        while True:
            await self.renew()
            await asyncio.sleep(self.ttl / 3)


# Take the bucket's next send slot on Redis's clock: max(now, next) and push next on.
_SLOT = """
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local slot = math.max(now, tonumber(redis.call('get', KEYS[1]) or now))
redis.call('set', KEYS[1], slot + tonumber(ARGV[1]), 'PX', math.ceil(tonumber(ARGV[1])) + 60000)
return slot - now
"""


class RedisPacer:
    """A platform's rate limit shared by every process: one slot sequence per rate bucket
    (a Telegram chat, a Slack channel), kept in Redis."""

    def __init__(self, client: aioredis.Redis, prefix: str = "kefu:") -> None:
        self.client = client
        self.prefix = f"{prefix}pace:"

    async def wait(self, bucket: str, interval: float) -> float:
        try:
            wait_ms = await self.client.eval(_SLOT, 1, self.prefix + bucket, int(interval * 1000))
        except (RedisError, OSError) as e:
            log.warning("outbox: Redis unreachable (%s); pacing %s locally", e, bucket)
            return interval  # the slowest safe pace without the shared clock
        return max(0.0, int(wait_ms) / 1000)


__all__ = ["PROCESS_ID", "RedisBus", "RedisClaims", "RedisLocks", "RedisPacer", "connect"]
