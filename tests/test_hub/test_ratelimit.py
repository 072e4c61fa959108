"""Rate limits of the public endpoints (hub/ops/ratelimit.py): a sliding window per key, in the
process or in Redis (shared by the hub's processes), and the `limits:` settings; the tokens
that prove a widget visitor (hub/core/senders.py)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from hub.core.senders import SenderTokens
from hub.ops.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter, rate_limiter
from hub.ops.settings import LimitSettings, Rate, Settings, SettingsError, load_settings

REDIS = os.environ.get("KEFU_TEST_REDIS", "redis://127.0.0.1:6379/11")


async def test_a_key_gets_count_uses_per_window_then_waits_for_the_oldest() -> None:
    now = [100.0]
    limiter = MemoryRateLimiter(clock=lambda: now[0])
    for _ in range(3):
        assert await limiter.hit("m", "alice", 3, 10) is None
        now[0] += 1  # uses at 100, 101, 102
    assert await limiter.hit("m", "alice", 3, 10) == pytest.approx(7.0)  # 100 leaves at 110
    assert await limiter.hit("m", "bob", 3, 10) is None  # each key counts alone
    assert await limiter.hit("other", "alice", 3, 10) is None  # and each rule
    now[0] = 110.0
    assert await limiter.hit("m", "alice", 3, 10) is None  # 100 left the window
    assert await limiter.hit("m", "alice", 3, 10) == pytest.approx(1.0)  # 101 leaves at 111


async def test_refused_uses_are_not_counted_so_waiting_is_enough() -> None:
    now = [0.0]
    limiter = MemoryRateLimiter(clock=lambda: now[0])
    assert await limiter.hit("m", "k", 1, 5) is None
    for _ in range(50):  # a client hammering while refused does not push its wait back
        now[0] += 0.1
        assert await limiter.hit("m", "k", 1, 5) is not None
    now[0] = 5.0
    assert await limiter.hit("m", "k", 1, 5) is None


async def test_the_window_slides_no_double_burst_at_an_edge() -> None:
    """A fixed window would take 2 x count around its edge; this takes count in any window."""
    now = [9.0]
    limiter = MemoryRateLimiter(clock=lambda: now[0])
    assert [await limiter.hit("m", "k", 5, 10) for _ in range(5)] == [None] * 5
    now[0] = 11.0  # a fixed window starting at 10 would be empty now
    assert await limiter.hit("m", "k", 5, 10) == pytest.approx(8.0)


async def test_memory_stays_bounded_with_many_keys() -> None:
    now = [0.0]
    limiter = MemoryRateLimiter(clock=lambda: now[0])
    limiter.MAX_KEYS = 100
    for i in range(150):
        await limiter.hit("m", f"k{i}", 1, 1)
    now[0] = 5.0
    await limiter.hit("m", "late", 1, 1)
    assert len(limiter._uses) <= 2


async def test_processes_share_the_counts_in_redis(redis_prefix: tuple[Any, str]) -> None:
    redis, prefix = redis_prefix
    one, two = RedisRateLimiter(redis, prefix), RedisRateLimiter(redis, prefix)
    assert await one.hit("m", "web:v1", 2, 10) is None
    assert await two.hit("m", "web:v1", 2, 10) is None
    wait = await one.hit("m", "web:v1", 2, 10)  # the third, counted across processes
    assert wait is not None and 9 < wait <= 10
    assert await two.hit("m", "web:v2", 2, 10) is None
    # no customer ids in Redis: the key is hashed
    keys = [k.decode() async for k in redis.scan_iter(f"{prefix}*")]
    assert keys and all("v1" not in k and "v2" not in k for k in keys), keys
    assert type(rate_limiter(redis, prefix)) is RedisRateLimiter
    assert type(rate_limiter(None)) is MemoryRateLimiter


async def test_a_redis_window_ends(redis_prefix: tuple[Any, str]) -> None:
    redis, prefix = redis_prefix
    limiter = RedisRateLimiter(redis, prefix)
    assert await limiter.hit("m", "k", 1, 0.3) is None
    wait = await limiter.hit("m", "k", 1, 0.3)
    assert wait is not None and 0 < wait <= 0.3
    await asyncio.sleep(0.35)
    assert await limiter.hit("m", "k", 1, 0.3) is None


async def test_redis_down_lets_traffic_through(caplog: pytest.LogCaptureFixture) -> None:
    import redis.asyncio as aioredis

    down = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    limiter: RateLimiter = RedisRateLimiter(down, "kefu-test:")
    try:
        assert await limiter.hit("rest_messages", "rest:u1", 1, 10) is None
        assert await limiter.hit("rest_messages", "rest:u1", 1, 10) is None
    finally:
        await down.aclose()
    assert "rate limit rest_messages is off for now, Redis failed" in caplog.text


def test_the_defaults_are_the_documented_ones() -> None:
    limits = Settings().limits
    assert limits.rest_messages == Rate(count=20, seconds=10)
    assert limits.widget_messages == Rate(count=20, seconds=10)
    assert limits.widget_sockets == 10
    assert limits.widget_uploads == Rate(count=10, seconds=60)
    # per address: only uploads (visitor ids are free to make up), generously
    assert limits.widget_sockets_per_ip is None
    assert limits.widget_uploads_per_ip == Rate(count=30, seconds=60)


def test_limits_in_config_yaml_and_null_turns_one_off(tmp_path: Any) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "limits:\n"
        "  rest_messages: null\n"
        "  widget_uploads: {count: 3, seconds: 30}\n"
        "  widget_sockets_per_ip: {count: 50, seconds: 60}\n"
    )
    limits = load_settings(config).limits
    assert limits.rest_messages is None
    assert limits.widget_uploads == Rate(count=3, seconds=30)
    assert limits.widget_sockets_per_ip == Rate(count=50, seconds=60)
    assert limits.widget_messages == LimitSettings().widget_messages  # the rest keep defaults


@pytest.mark.parametrize(
    ("yaml", "where"),
    [
        ("limits: {rest_mesages: null}", "limits.rest_mesages"),  # a typo is an error
        ("limits: {rest_messages: {count: 0, seconds: 10}}", "limits.rest_messages.count"),
        ("limits: {rest_messages: {count: 5}}", "limits.rest_messages.seconds"),
    ],
)
def test_a_wrong_limit_is_an_error_naming_it(tmp_path: Any, yaml: str, where: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(yaml + "\n")
    with pytest.raises(SettingsError, match=where.replace(".", r"\.")):
        load_settings(config)


def test_config_yaml_shows_the_defaults() -> None:
    """The commented `limits:` block of config.yaml, uncommented, is what the hub uses."""
    root = Path(__file__).resolve().parents[2]
    lines = (root / "config.yaml").read_text(encoding="utf-8").splitlines()
    start = lines.index("# limits:")
    block = [lines[start][2:]]
    for line in lines[start + 1 :]:
        if not line.startswith("#   "):
            break
        block.append(line[2:])
    shown = yaml.safe_load("\n".join(block))["limits"]
    assert LimitSettings.model_validate(shown) == LimitSettings()
    assert set(shown) == set(LimitSettings.model_fields)  # every limit is shown


def test_sender_tokens_are_the_same_in_every_process_and_differ_by_secret_channel_and_id() -> None:
    secret = "s" * 48
    one, other_process = SenderTokens(lambda: secret), SenderTokens(lambda: secret)
    assert one.token("web", "v1") == other_process.token("web", "v1")
    tokens = {
        one.token("web", "v1"),
        one.token("web", "v2"),
        one.token("shop", "v1"),  # another web channel instance
        SenderTokens(lambda: "t" * 48).token("web", "v1"),  # a changed KEFU_SECRET_KEY
    }
    assert len(tokens) == 4
    # under a key derived for this use: not an HMAC the login tokens' key makes itself
    raw = hmac.new(secret.encode(), b"web\x00v1", hashlib.sha256).digest()
    assert one.token("web", "v1") != base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
