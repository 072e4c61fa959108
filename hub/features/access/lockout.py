"""Login throttling: an email is locked after repeated failures, a client IP is rate-limited.

- An email with `FAILURES` failed logins within `WINDOW` is locked for `LOCKOUT`: every login
  for it answers 429 (with Retry-After), even with the right password.
- A client IP may try `PER_IP` logins a minute (argon2 is costly; spraying many emails).

In Redis when the hub has it (several processes count together), else in this process."""

from __future__ import annotations

import abc
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

FAILURES = 5
WINDOW = 15 * 60  # seconds
LOCKOUT = 15 * 60
PER_IP = 20
IP_WINDOW = 60


@dataclass(frozen=True)
class Limits:
    failures: int = FAILURES
    window: int = WINDOW
    lockout: int = LOCKOUT
    per_ip: int = PER_IP
    ip_window: int = IP_WINDOW


class LoginGuard(abc.ABC):
    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()

    @abc.abstractmethod
    async def attempt(self, email: str, ip: str) -> int | None:
        """Count an attempt; the seconds to wait when the IP or the email may not try now."""

    @abc.abstractmethod
    async def failed(self, email: str) -> bool:
        """Count a failure for `email`; True when it locks the email."""

    @abc.abstractmethod
    async def succeeded(self, email: str) -> None:
        """Forget the email's failures."""


class MemoryLoginGuard(LoginGuard):
    """Counters in this process (one hub process, or tests)."""

    def __init__(self, limits: Limits | None = None, clock: Callable[[], float] = time.monotonic):
        super().__init__(limits)
        self.clock = clock
        self._ips: dict[str, tuple[float, int]] = {}  # ip -> (window end, attempts)
        self._failures: dict[str, tuple[float, int]] = {}  # email -> (window end, failures)
        self._locked: dict[str, float] = {}  # email -> locked until

    def _count(self, table: dict[str, tuple[float, int]], key: str, window: int) -> int:
        now = self.clock()
        if len(table) > 10_000:  # drop ended windows now and then: memory stays bounded
            for stale in [k for k, (end, _) in table.items() if end <= now]:
                del table[stale]
        end, n = table.get(key, (0.0, 0))
        if end <= now:
            end, n = now + window, 0
        table[key] = (end, n + 1)
        return n + 1

    async def attempt(self, email: str, ip: str) -> int | None:
        now, limits = self.clock(), self.limits
        if self._count(self._ips, ip, limits.ip_window) > limits.per_ip:
            return math.ceil(self._ips[ip][0] - now)
        until = self._locked.get(email, 0.0)
        if until > now:
            return math.ceil(until - now)
        self._locked.pop(email, None)
        return None

    async def failed(self, email: str) -> bool:
        if self._count(self._failures, email, self.limits.window) < self.limits.failures:
            return False
        self._failures.pop(email, None)
        self._locked[email] = self.clock() + self.limits.lockout
        return True

    async def succeeded(self, email: str) -> None:
        self._failures.pop(email, None)


class RedisLoginGuard(LoginGuard):
    """Counters in Redis, shared by every hub process. If Redis fails, logins are let through
    (logged): the passwords still protect the accounts, and agents can still work."""

    def __init__(self, client: Redis, prefix: str = "kefu:", limits: Limits | None = None):
        super().__init__(limits)
        self.client = client
        self.prefix = f"{prefix}login:"

    async def _count(self, key: str, window: int) -> tuple[int, int]:
        """Add one to a counter that lasts `window` seconds from its first count: (count, ttl)."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, window, nx=True)
            pipe.ttl(key)
            count, _, ttl = await pipe.execute()
        return int(count), max(int(ttl), 1)

    async def attempt(self, email: str, ip: str) -> int | None:
        limits = self.limits
        try:
            count, ttl = await self._count(f"{self.prefix}ip:{ip}", limits.ip_window)
            if count > limits.per_ip:
                return ttl
            locked = int(await self.client.ttl(f"{self.prefix}locked:{email}"))
        except (RedisError, OSError) as e:
            log.error("login throttling is off, Redis failed: %s", e)
            return None
        return locked if locked > 0 else None

    async def failed(self, email: str) -> bool:
        limits = self.limits
        try:
            count, _ = await self._count(f"{self.prefix}failures:{email}", limits.window)
            if count < limits.failures:
                return False
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.set(f"{self.prefix}locked:{email}", 1, ex=limits.lockout)
                pipe.delete(f"{self.prefix}failures:{email}")
                await pipe.execute()
        except (RedisError, OSError) as e:
            log.error("login throttling is off, Redis failed: %s", e)
            return False
        return True

    async def succeeded(self, email: str) -> None:
        try:
            await self.client.delete(f"{self.prefix}failures:{email}")
        except (RedisError, OSError) as e:
            log.error("login throttling is off, Redis failed: %s", e)


def login_guard(redis: Redis | None, prefix: str = "kefu:") -> LoginGuard:
    """In Redis when the hub has it (shared by its processes), else in this process."""
    return RedisLoginGuard(redis, prefix) if redis is not None else MemoryLoginGuard()
