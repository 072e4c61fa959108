"""The Redis pieces several hub processes share (hub/ops/cluster.py), against the real Redis: two
instances of each stand for two processes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from hub.core.bus import SubscriberLagged
from hub.messages import Event
from hub.ops.cluster import RedisBus, RedisClaims, RedisLocks, RedisPacer, connect
from tests.test_hub.hubprocs import REDIS, free_port, redis_up


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    redis_up()
    prefix = f"kefutest:{uuid.uuid4().hex[:8]}:"
    yield prefix
    client = connect(REDIS)
    async for key in client.scan_iter(f"{prefix}*"):
        await client.delete(key)
    await client.aclose()


async def test_every_process_gets_every_event_in_one_order(prefix: str) -> None:
    a, b = RedisBus(connect(REDIS), prefix), RedisBus(connect(REDIS), prefix)
    await a.start()
    await b.start()
    try:
        feeds = [a.subscribe(), b.subscribe()]
        own = b.subscribe(local_only=True)  # work done once per event: b's own events only
        for i in range(20):
            await (a if i % 2 else b).publish(Event(type="message.created", conversation_id=i))
        for feed in feeds:
            got = [(await asyncio.wait_for(anext(feed), 5)).conversation_id for _ in range(20)]
            assert got == list(range(20))
        got = [(await asyncio.wait_for(anext(own), 5)).conversation_id for _ in range(10)]
        assert got == list(range(0, 20, 2))
    finally:
        for bus in (a, b):
            await bus.stop()
            await bus.client.aclose()


async def test_without_redis_events_still_reach_this_process() -> None:
    bus = RedisBus(connect(f"redis://127.0.0.1:{free_port()}/0"), "kefutest:")
    await bus.start()
    try:
        feed = bus.subscribe()
        await bus.publish(Event(type="message.created", conversation_id=7))
        assert (await asyncio.wait_for(anext(feed), 5)).conversation_id == 7
    finally:
        await bus.stop()
        await bus.client.aclose()


async def test_subscribers_are_told_to_reload_when_redis_comes_back(prefix: str) -> None:
    bus = RedisBus(connect(REDIS), prefix)
    feed = bus.subscribe()
    bus._drop_subscribers()  # what the reader does after a reconnect
    with pytest.raises(SubscriberLagged):
        async with asyncio.timeout(5):
            async for event in feed:
                assert event.type == "bus.reconnected"
    await bus.client.aclose()


async def test_one_conversation_is_held_by_one_process_at_a_time(prefix: str) -> None:
    a, b = RedisLocks(connect(REDIS), prefix), RedisLocks(connect(REDIS), prefix)
    inside: list[str] = []
    overlaps = 0

    async def turn(locks: RedisLocks, name: str) -> None:
        nonlocal overlaps
        async with locks.hold(("web", "visitor-1")):
            inside.append(name)
            overlaps += len(inside) > 1
            await asyncio.sleep(0.01)
            inside.remove(name)

    await asyncio.gather(*(turn(a if i % 2 else b, f"t{i}") for i in range(20)))
    assert overlaps == 0
    async with a.hold(("web", "visitor-2")):  # other keys don't wait
        async with asyncio.timeout(1):
            async with b.hold(("web", "visitor-3")):
                pass
    for locks in (a, b):
        await locks.client.aclose()


async def test_a_message_is_sent_by_one_process_and_taken_over_when_it_dies(prefix: str) -> None:
    a = RedisClaims(connect(REDIS), prefix, ttl=1)
    b = RedisClaims(connect(REDIS), prefix, ttl=1)
    a.hold(1)
    await a.renew()
    assert await b.sweepable([1, 2]) == [2]  # 1 is A's; 2 was nobody's
    assert not await b.take(1) and await a.take(1)
    keeper = asyncio.create_task(a.keep())
    await asyncio.sleep(1.5)  # renewed: still A's after its ttl
    assert await b.sweepable([1]) == []
    keeper.cancel()  # A dies
    await asyncio.sleep(1.2)
    assert await b.sweepable([1]) == [1]
    await a.release(1)  # too late: no longer A's to release
    assert await b.take(1)
    for claims in (a, b):
        await claims.client.aclose()


async def test_the_send_rate_of_a_bucket_is_shared(prefix: str) -> None:
    a, b = RedisPacer(connect(REDIS), prefix), RedisPacer(connect(REDIS), prefix)
    waits = [await (a if i % 2 else b).wait("telegram:chat-1", 0.2) for i in range(5)]
    assert [round(w, 1) for w in waits] == [0.0, 0.2, 0.4, 0.6, 0.8]
    assert await a.wait("telegram:chat-2", 0.2) == 0.0  # another chat: its own pace
    for pacer in (a, b):
        await pacer.client.aclose()
