"""Fixtures of tests/test_hub: real hub processes over PostgreSQL and Redis (hubprocs.py), and
a Redis key prefix of a test's own."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import need
from tests.test_hub.hubprocs import cluster, trained_models

__all__ = ["cluster", "redis_prefix", "trained_models"]

REDIS = os.environ.get("KEFU_TEST_REDIS", "redis://127.0.0.1:6379/15")


@pytest.fixture
async def redis_prefix() -> AsyncIterator[tuple[Any, str]]:
    """A Redis client and a key prefix of this test's own; its keys are deleted after."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(REDIS, socket_timeout=2)
    try:
        await client.ping()
    except Exception as e:
        await client.aclose()
        need("Redis", f"{REDIS}: {e}")
    prefix = f"kefu-test-{uuid.uuid4().hex[:8]}:"
    yield client, prefix
    keys = [key async for key in client.scan_iter(f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
