"""Rate limits on the public endpoints (config.yaml `limits:`): at most `count` uses of a rule
by one key (a customer, a client address) within any `seconds` (a sliding window, so no burst
of twice the count across a window's edge).

A use over the limit is refused and not counted: the answer is the seconds until the oldest
counted use leaves the window, so a client that waits that long gets through.

In Redis when the hub has it (every hub process counts together: a sorted set of the uses'
times per key, by the Redis server's clock), else in this process. If Redis fails, the use is
let through and the error logged (as login throttling does): customers can still write."""

from __future__ import annotations

import abc
import hashlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from hub.ops.settings import LimitSettings

log = logging.getLogger(__name__)


class RateLimiter(abc.ABC):
    @abc.abstractmethod
    async def hit(self, rule: str, key: str, count: int, seconds: float) -> float | None:
        """Count one use of `rule` by `key` when fewer than `count` were counted in the last
        `seconds`, and return None; otherwise count nothing and return the seconds to wait."""


class MemoryRateLimiter(RateLimiter):
    """The uses' times per (rule, key), in this process (one hub process, or tests)."""

    MAX_KEYS = 100_000  # beyond this, keys whose uses all left their window are dropped

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._uses: dict[tuple[str, str], tuple[float, deque[float]]] = {}

    async def hit(self, rule: str, key: str, count: int, seconds: float) -> float | None:
        now = self.clock()
        if len(self._uses) > self.MAX_KEYS:  # now and then: memory stays bounded
            stale = [k for k, (w, uses) in self._uses.items() if not uses or uses[-1] <= now - w]
            for k in stale:
                del self._uses[k]
        _, uses = self._uses.setdefault((rule, key), (seconds, deque()))
        while uses and uses[0] <= now - seconds:
            uses.popleft()
        if len(uses) >= count:
            return max(uses[-count] + seconds - now, 0.001)
        uses.append(now)
        self._uses[rule, key] = (seconds, uses)
        return None


# KEYS[1]: the key's sorted set; ARGV: count, window (ms), a unique member. Returns nil when
# counted, else the milliseconds to wait. Times are the Redis server's, the same for all.
_HIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local count, window = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= count then
  local edge = redis.call('ZRANGE', KEYS[1], -count, -count, 'WITHSCORES')
  return math.max(tonumber(edge[2]) + window - now, 1)
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return nil
"""


class RedisRateLimiter(RateLimiter):
    """Counters in Redis, shared by every hub process; keys hold a hash of the key (no
    customer ids in Redis)."""

    def __init__(self, client: Redis, prefix: str = "kefu:") -> None:
        self.client = client
        self.prefix = f"{prefix}rate:"
        self._script: Any = client.register_script(_HIT)

    async def hit(self, rule: str, key: str, count: int, seconds: float) -> float | None:
        digest = hashlib.blake2b(key.encode("utf-8", "replace"), digest_size=16).hexdigest()
        window = max(int(seconds * 1000), 1)
        try:
            wait = await self._script(
                keys=[f"{self.prefix}{rule}:{digest}"],
                args=[count, window, f"{time.time_ns()}-{secrets.token_hex(4)}"],
            )
        except (RedisError, OSError) as e:
            log.error("rate limit %s is off for now, Redis failed: %s", rule, e)
            return None
        return None if wait is None else int(wait) / 1000


def rate_limiter(redis: Redis | None, prefix: str = "kefu:") -> RateLimiter:
    """In Redis when the hub has it (shared by its processes), else in this process."""
    return RedisRateLimiter(redis, prefix) if redis is not None else MemoryRateLimiter()


class PublicLimits:
    """config.yaml `limits:` applied (what Receiver.limited and Receiver.cap answer)."""

    def __init__(self, settings: LimitSettings, limiter: RateLimiter) -> None:
        self.settings, self.limiter = settings, limiter

    async def limited(self, rule: str, key: str) -> float | None:
        rate = getattr(self.settings, rule)
        if rate is None:
            return None
        return await self.limiter.hit(rule, key, rate.count, rate.seconds)

    def cap(self, rule: str) -> int | None:
        value: int | None = getattr(self.settings, rule)
        return value
