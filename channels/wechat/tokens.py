"""The account's access_token, which every API call carries: fetched once and shared, cached in
this process or in Redis for every hub process of the account (one fetch serves them all; a
fetch elsewhere invalidates the old token)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol


class AccessToken:
    """The account's access_token: fetched once and shared by every call, fetched again
    `margin` seconds before it expires (WeChat keeps the old one valid 5 more minutes) or when
    WeChat rejects it. One fetch at a time: a fetch replaces the token every caller holds."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[tuple[str, float]]],
        cache: TokenCache,
        margin: float = 300.0,
    ) -> None:
        self.fetch, self.cache, self.margin = fetch, cache, margin
        self._lock: asyncio.Lock | None = None

    async def get(self) -> str:
        token = await self.cache.get()
        if token:
            return token
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            token = await self.cache.get()  # fetched while this call waited
            if token:
                return token
            token, expires_in = await self.fetch()
            await self.cache.put(token, max(1.0, expires_in - self.margin))
            return token

    async def refresh(self, rejected: str) -> str:
        await self.cache.drop(rejected)
        return await self.get()


class TokenCache(Protocol):
    async def get(self) -> str | None: ...

    async def put(self, token: str, ttl: float) -> None: ...

    async def drop(self, token: str) -> None:
        """Forget `token`, unless another has replaced it meanwhile."""
        ...

    async def close(self) -> None: ...


class MemoryTokenCache:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.token: str | None = None
        self.expires_at = 0.0

    async def get(self) -> str | None:
        return self.token if self.token and self.clock() < self.expires_at else None

    async def put(self, token: str, ttl: float) -> None:
        self.token, self.expires_at = token, self.clock() + ttl

    async def drop(self, token: str) -> None:
        if self.token == token:
            self.token = None

    async def close(self) -> None:
        pass


class RedisTokenCache:
    """Shared by every hub process of the account: one fetch serves them all."""

    def __init__(self, url: str, app_id: str) -> None:
        import redis.asyncio as aioredis

        self.redis = aioredis.from_url(url, decode_responses=True)
        self.key = f"kefu:wechat:{app_id}:access_token"

    async def get(self) -> str | None:
        value = await self.redis.get(self.key)
        return str(value) if value else None

    async def put(self, token: str, ttl: float) -> None:
        await self.redis.set(self.key, token, ex=max(1, int(ttl)))

    async def drop(self, token: str) -> None:
        if await self.redis.get(self.key) == token:
            await self.redis.delete(self.key)

    async def close(self) -> None:
        await self.redis.aclose()
