"""The store on SQLite and PostgreSQL (each test runs on both)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from hub.messages import Delivery, Inbound, Sender, Status, utcnow
from hub.store import ConversationFilter, CursorError, Database, Store


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    db = Database(database_url)
    yield Store(db)
    await db.close()


def inbound(sender: str = "u1", text: str = "hi", mid: str | None = None) -> Inbound:
    return Inbound(channel="web", sender_id=sender, text=text, channel_message_id=mid)


async def test_first_message_creates_contact_and_conversation(store: Store) -> None:
    recorded = await store.record_inbound(inbound(mid="m1"), {"nlu": {"intent": "greet"}})
    assert recorded is not None
    conversation, message, created = recorded
    assert created and conversation.status == Status.BOT
    assert message.payload == {"nlu": {"intent": "greet"}}
    second = await store.record_inbound(inbound(mid="m2"), {})
    assert second is not None and second[0].id == conversation.id and not second[2]


async def test_channel_message_id_is_unique_per_channel(store: Store) -> None:
    assert await store.record_inbound(inbound(mid="same"), {}) is not None
    assert await store.record_inbound(inbound(mid="same"), {}) is None  # dedupe by constraint
    other = Inbound(channel="rest", sender_id="u1", text="hi", channel_message_id="same")
    assert await store.record_inbound(other, {}) is not None
    found = await store.find_inbound("web", "same")
    assert found is not None
    assert len(await store.messages(found.conversation_id)) == 1


async def test_datetimes_come_back_timezone_aware(store: Store) -> None:
    recorded = await store.record_inbound(inbound(), {})
    assert recorded is not None
    conversation = await store.get_conversation(recorded[0].id or 0)
    assert conversation is not None
    assert conversation.created_at.tzinfo is not None
    assert abs(conversation.created_at - utcnow()) < timedelta(minutes=1)


async def test_replies_link_to_the_message_they_answer(store: Store) -> None:
    recorded = await store.record_inbound(inbound(), {})
    assert recorded is not None
    conversation, message, _ = recorded
    reply = await store.add_message(
        conversation,
        Sender.BOT,
        "hello",
        payload={"buttons": [{"title": "a", "payload": "/a"}]},
        reply_to_id=message.id,
    )
    await store.add_message(conversation, Sender.AGENT, "note", private=True)
    replies = await store.replies_to(message.id or 0)
    assert [r.id for r in replies] == [reply.id]
    assert replies[0].payload["buttons"][0]["payload"] == "/a"
    assert replies[0].delivery == Delivery.QUEUED
    assert [m.text for m in await store.messages(conversation.id or 0, private=False)] == [
        "hi",
        "hello",
    ]


async def test_delivery_status_and_undelivered(store: Store) -> None:
    recorded = await store.record_inbound(inbound(), {})
    assert recorded is not None
    conversation = recorded[0]
    a = await store.add_message(conversation, Sender.BOT, "a")
    b = await store.add_message(conversation, Sender.BOT, "b")
    await store.set_delivery(a.id or 0, Delivery.SENT)
    await store.set_delivery(b.id or 0, Delivery.FAILED, "window closed")
    c = await store.add_message(conversation, Sender.BOT, "c")
    assert [m.id for m in await store.undelivered()] == [c.id]
    failed = await store.get_message(b.id or 0)
    assert failed is not None and failed.delivery_error == "window closed"


async def test_list_filters_search_and_cursor_pagination(store: Store) -> None:
    for i in range(7):
        recorded = await store.record_inbound(inbound(f"u{i}", f"question number {i}"), {})
        assert recorded is not None
        if i % 2:
            await store.update_conversation(recorded[0].id or 0, status=Status.PENDING, team="care")
    rows, cursor = await store.list_conversations(ConversationFilter(), limit=3)
    seen = [r.conversation.id for r in rows]
    while cursor:
        rows, cursor = await store.list_conversations(ConversationFilter(), cursor, limit=3)
        seen += [r.conversation.id for r in rows]
    assert len(seen) == len(set(seen)) == 7
    pending, _ = await store.list_conversations(ConversationFilter(status=["pending"]))
    assert len(pending) == 3 and all(r.conversation.team == "care" for r in pending)
    found, _ = await store.list_conversations(ConversationFilter(q="NUMBER 4"))
    assert [r.contact.external_id for r in found] == ["u4"]
    assert found[0].last_message is not None and found[0].last_message.text == "question number 4"
    with pytest.raises(CursorError):
        await store.list_conversations(ConversationFilter(), "not-a-cursor")


async def test_agents(store: Store) -> None:
    agent = await store.create_agent("Lin@Example.com", "Lin", "hash", role="admin", teams=["care"])
    found = await store.agent_by_email("lin@example.com")
    assert found is not None and found.id == agent.id and found.teams == ["care"]
    assert await store.count_agents() == 1
    assert (await store.agents_by_ids([agent.id or 0]))[agent.id or 0].name == "Lin"
