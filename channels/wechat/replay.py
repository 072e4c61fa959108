"""Replayed webhook requests: a freshness window on the platform's signed timestamp, and a
memory of the nonces signed within it.

WeChat signs `timestamp` and `nonce` (in plaintext mode with the token only, not the body), so
whoever sees one request (a proxy's log, a leaked access log) could send any body with its
signature. Two checks close that:

- a request whose timestamp is more than `max_age` seconds from the hub's clock, either way,
  is refused (`Stale`);
- within the window, (timestamp, nonce) is remembered with a digest of the message: the same
  pair with another message is refused (`Reused`), the same pair with the same message is the
  platform's own retry and goes on (the channel's dedupe answers it as a redelivery).

The memory lives in Redis when the channel has a Redis URL (every hub process sees every nonce:
SET NX with an expiry), else in this process (bounded). A Redis that can't be reached is
`Unavailable`: the webhook answers 503 and the platform sends the request again.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any, Protocol

from channels.common import Recent
from hub.ports import Unavailable


class Replayed(Exception):
    """A request that is not fresh, or reuses a nonce (403)."""


class Stale(Replayed):
    """The timestamp is outside the window (or not a number)."""


class Reused(Replayed):
    """The nonce came before with another message."""


class Nonces(Protocol):
    async def claim(self, key: str, digest: str, ttl: float) -> str | None:
        """Remember `digest` under `key` for `ttl` seconds; returns what was remembered there
        already (None: the key is new, and now taken)."""
        ...

    async def close(self) -> None: ...


class MemoryNonces:
    """One process's memory: at most `max_size` keys, the oldest dropped first."""

    def __init__(
        self, max_size: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        # digests by key; each claim says how long its nonce is kept
        self._seen = Recent[str, str](ttl=0, max_size=max_size, clock=clock)

    async def claim(self, key: str, digest: str, ttl: float) -> str | None:
        return self._seen.claim(key, digest, ttl)

    async def close(self) -> None:
        pass


class RedisNonces:
    """Shared by every hub process: SET NX EX, so exactly one request takes a nonce."""

    def __init__(self, redis: Any, prefix: str) -> None:
        self.redis, self.prefix = redis, prefix

    async def claim(self, key: str, digest: str, ttl: float) -> str | None:
        name = self.prefix + key
        try:
            for _ in range(3):  # an expiry between SET and GET: take it again
                if await self.redis.set(name, digest, nx=True, ex=max(1, int(ttl + 0.999))):
                    return None
                found = await self.redis.get(name)
                if found is not None:
                    return found.decode() if isinstance(found, bytes) else str(found)
        except Exception as e:  # redis-py's ConnectionError, TimeoutError, ...
            raise Unavailable(f"nonce memory (Redis) unreachable: {type(e).__name__}") from e
        return None

    async def close(self) -> None:
        pass  # the client belongs to whoever passed it


class Replay:
    """The window and the nonce memory of one channel instance. `clock` is the wall clock
    (the platform's timestamps are Unix seconds); tests replaying fixed vectors set it."""

    def __init__(
        self, max_age: float, nonces: Nonces, clock: Callable[[], float] = time.time
    ) -> None:
        self.max_age, self.nonces, self.clock = max_age, nonces, clock

    def fresh(self, timestamp: str) -> int:
        """The timestamp as a number; Stale when it is outside the window."""
        if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
            raise Stale(f"timestamp {timestamp[:20]!r} is not Unix seconds")
        sent, now = int(timestamp), self.clock()
        if abs(now - sent) > self.max_age:
            age = round(now - sent)
            when = f"{age} s old" if age > 0 else f"{-age} s in the future"
            raise Stale(
                f"timestamp {sent} is {when} by the hub's clock (max_age {self.max_age:g}): "
                "a replayed request, or a clock that is off"
            )
        return sent

    async def admit(self, timestamp: str, nonce: str, message: str | bytes) -> None:
        """Fresh, and the nonce not used with another message; raises Stale, Reused or
        Unavailable (the memory can't be reached)."""
        sent = self.fresh(timestamp)
        data = message.encode("utf-8", "surrogatepass") if isinstance(message, str) else message
        digest = hashlib.sha256(data).hexdigest()
        # remembered while the timestamp is within the window, a second more
        ttl = sent + self.max_age - self.clock() + 1
        if len(nonce) > 64:  # signed, so WeChat's; still, keys of a bounded size
            nonce = hashlib.sha256(nonce.encode("utf-8", "surrogatepass")).hexdigest()
        earlier = await self.nonces.claim(f"{sent}:{nonce}", digest, max(1.0, ttl))
        if earlier is not None and earlier != digest:
            raise Reused(f"nonce {nonce[:40]!r} was used before with another message")
