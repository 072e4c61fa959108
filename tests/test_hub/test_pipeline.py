"""The one path, driven in memory by the test bot: who speaks, handoff, dedupe, fallback."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest

from hub.core.status import InvalidTransition
from hub.messages import Event, Handoff, Inbound, Sender, Status, utcnow
from hub.ports import FlowResult
from hub.testing import TestBot
from tests.flow_doubles import RunOnly


async def events_during(bot: TestBot, action) -> list[Event]:  # type: ignore[no-untyped-def]
    feed = bot.hub.bus.subscribe()
    await action()
    seen = []
    while not feed.queue.empty():
        seen.append(feed.queue.get_nowait())
    await feed.aclose()
    return seen


async def test_bot_answers_a_greeting_with_buttons(testbot: TestBot) -> None:
    replies = await testbot.say("hello")
    assert [r.sender for r in replies] == [Sender.BOT]
    assert "Kefu Shop assistant" in replies[0].text
    assert "/human" in [b.payload for b in replies[0].buttons]
    assert await testbot.status() == Status.BOT


async def test_reply_language_follows_the_customer(testbot: TestBot) -> None:
    replies = await testbot.say("你好")
    assert "您好" in replies[0].text
    assert replies[0].buttons[-1].title == "转人工"


async def test_explicit_intent_payload_with_entities(testbot: TestBot) -> None:
    replies = await testbot.say('/check_order{"order_id": "12345678"}')
    assert "12345678" in replies[0].text


async def test_entities_from_the_classifier_reach_the_flow(testbot: TestBot) -> None:
    replies = await testbot.say("我的订单20231105到哪了")
    assert "20231105" in replies[0].text


async def test_handoff_by_button_moves_to_pending_with_a_note(testbot: TestBot) -> None:
    await testbot.say("where is my order")
    events = await events_during(testbot, lambda: testbot.press("/human", "Talk to a human"))
    received = await testbot.received()
    assert received[-1].sender == Sender.SYSTEM
    assert "human colleague" in received[-1].text
    assert await testbot.status() == Status.PENDING
    conversation = await testbot.hub.store.get_conversation(await testbot.conversation_id())
    assert conversation.handoff["reason"] == "customer_request"
    assert conversation.handoff["intent"] == "human"
    assert "where is my order" in conversation.handoff["summary"]
    changes = [e for e in events if e.type == "conversation.status_changed"]
    assert changes and changes[0].data["to"] == "pending"


async def test_customer_asks_for_a_human_in_words(testbot: TestBot) -> None:
    for i, words in enumerate(["转人工", "I want to talk to a real person"]):
        customer = testbot.customer(f"c{i}")
        replies = await customer.say(words)
        assert replies[-1].sender == Sender.SYSTEM, words
        assert await customer.status() == Status.PENDING, words


async def test_bot_stays_silent_while_a_human_has_it(testbot: TestBot) -> None:
    await testbot.press("/human")
    conversations = testbot.hub.conversations
    for status in (Status.PENDING, Status.OPEN, Status.SNOOZED):
        conversation = await testbot.hub.store.get_conversation(await testbot.conversation_id())
        if conversation.status != status:
            conversation = await conversations.transition(conversation, status, "agent:1")
        before = len(await testbot.received())
        events = await events_during(testbot, lambda: testbot.say("hello? anyone?"))
        sent = [m.text for m in (await testbot.received())[before:]]  # the outbox drained
        assert sent == [], f"the customer was sent {sent} in {status}"
        replies = [e for e in events if e.type == "message.created" and e.data["sender"] == "bot"]
        assert replies == [], f"the bot spoke in {status}"
        assert any(e.type == "message.created" and e.data["sender"] == "contact" for e in events)
        if status == Status.SNOOZED:  # the customer's message woke it for its agent
            assert await testbot.status() == Status.OPEN


async def test_resolved_conversation_reopens_to_the_bot(testbot: TestBot) -> None:
    await testbot.press("/human")
    conversation = await testbot.hub.store.get_conversation(await testbot.conversation_id())
    await testbot.hub.conversations.transition(conversation, Status.RESOLVED, "agent:1")
    await (
        testbot.received()
    )  # the satisfaction question (hub/features/csat/survey.py) goes out first
    replies = await testbot.say("hello again")
    assert replies and replies[0].sender == Sender.BOT
    assert await testbot.status() == Status.BOT
    conversation = await testbot.hub.store.get_conversation(await testbot.conversation_id())
    assert conversation.handoff is None and conversation.assignee_id is None


async def test_redelivery_stores_nothing_new_and_answers_the_same(testbot: TestBot) -> None:
    first = await testbot.say("hello", message_id="m-1")
    again = await testbot.say("hello", message_id="m-1")
    assert again == []  # nothing new was delivered to the customer
    cid = await testbot.conversation_id()
    messages = await testbot.hub.store.messages(cid)
    assert [m.sender_type for m in messages] == ["contact", "bot"]
    same = await testbot.hub.receive(
        Inbound(channel="test", sender_id="tester", text="hello", channel_message_id="m-1")
    )
    assert [r.message_id for r in same] == [r.message_id for r in first]


async def test_fallback_then_handoff_after_the_limit(testbot: TestBot) -> None:
    first = await testbot.say("what's the weather like in Paris tomorrow")
    assert "didn't understand" in first[0].text
    assert [b.payload for b in first[0].buttons] == ["/human"]
    assert await testbot.status() == Status.BOT
    second = await testbot.say("tell me a joke about penguins")
    assert second[-1].sender == Sender.SYSTEM
    conversation = await testbot.hub.store.get_conversation(await testbot.conversation_id())
    assert conversation.status == Status.PENDING
    assert conversation.handoff["reason"] == "fallback"
    assert "weather" in conversation.handoff["note"] and "penguins" in conversation.handoff["note"]


async def test_an_understood_message_resets_the_fallback_count(testbot: TestBot) -> None:
    await testbot.say("what's the weather like in Paris tomorrow")
    await testbot.say("how long does shipping take")
    await testbot.say("tell me a joke about penguins")
    assert await testbot.status() == Status.BOT


async def test_flow_handoff_step_with_team_priority_and_note(testbot: TestBot) -> None:
    replies = await testbot.say("This is terrible service, I am very angry and disappointed")
    assert [r.sender for r in replies] == [Sender.BOT, Sender.SYSTEM]
    conversation = await testbot.hub.store.get_conversation(await testbot.conversation_id())
    assert conversation.status == Status.PENDING
    assert conversation.team == "care" and conversation.priority == "high"
    assert conversation.handoff["reason"] == "flow"
    assert conversation.handoff["note"].startswith("Complaint: This is terrible")


async def test_one_customers_turns_never_interleave(testbot: TestBot) -> None:
    # each answered by one message, with no flow left waiting for an answer
    texts = ["hello", "which payment methods do you accept", "when are you open", "thanks"]
    await asyncio.gather(*(testbot.say(t) for t in texts))
    messages = await testbot.hub.store.messages(await testbot.conversation_id())
    senders = [m.sender_type for m in messages]
    assert senders == ["contact", "bot"] * len(texts)
    for question, answer in zip(messages[::2], messages[1::2], strict=True):
        assert answer.reply_to_id == question.id


async def test_many_customers_at_once_each_get_their_answer(testbot: TestBot) -> None:
    customers = [testbot.customer(f"c{i}") for i in range(20)]
    results = await asyncio.gather(*(c.say("hello") for c in customers))
    assert all(
        len(r) == 1 and r[0].recipient_id == c.sender_id
        for r, c in zip(results, customers, strict=True)
    )


async def test_a_failing_flow_hands_over_instead_of_crashing(testbot: TestBot) -> None:
    class Broken(RunOnly):
        async def run(self, state, context):  # type: ignore[no-untyped-def]
            raise RuntimeError("action server down")

    testbot.hub.pipeline.bot = replace(testbot.hub.pipeline.bot, flows=Broken())
    replies = await testbot.say("how long does shipping take")
    assert [r.sender for r in replies] == [Sender.SYSTEM]
    conversation = await testbot.hub.store.get_conversation(await testbot.conversation_id())
    assert conversation.status == Status.PENDING
    assert conversation.handoff["reason"] == "flow_failure"
    assert "action server down" in conversation.handoff["note"]


async def test_a_redelivery_caught_by_the_insert_is_answered_not_stored(testbot: TestBot) -> None:
    """No query before the insert: the unique constraint catches the redelivery, and answering
    it must not re-take the held lock (the wait_for fails on a deadlock)."""
    first = await testbot.say("hello", message_id="m-9")
    again = Inbound(channel="test", sender_id="tester", text="hello", channel_message_id="m-9")
    same = await asyncio.wait_for(testbot.hub.receive(again), 5)
    assert [r.message_id for r in same] == [r.message_id for r in first]
    assert len(await testbot.hub.store.messages(await testbot.conversation_id())) == 2


async def test_an_agent_taking_it_during_the_turn_is_not_overruled_by_the_bots_handoff(
    testbot: TestBot,
) -> None:
    """The bot's turn began while the bot had the conversation; an agent took it meanwhile.
    The handoff the turn ends with must not move it back to pending over the agent."""
    await testbot.say("hello")
    hub = testbot.hub
    agent = await hub.store.create_agent("a@example.com", "A", "x" * 20)

    class TakenMeanwhile(RunOnly):
        async def run(self, state, context):  # type: ignore[no-untyped-def]
            conversation = await hub.store.get_conversation(context.conversation_id)
            await hub.conversations.assign(conversation, "agent", agent_id=agent.id)
            return FlowResult(handled=True, handoff=Handoff(reason="flow_request"))

    hub.pipeline.bot = replace(hub.pipeline.bot, flows=TakenMeanwhile())
    events = await events_during(testbot, lambda: testbot.say("I want a refund"))
    conversation = await hub.store.get_conversation(await testbot.conversation_id())
    assert conversation.status == Status.OPEN and conversation.assignee_id == agent.id
    moves = [e.data["to"] for e in events if e.type == "conversation.status_changed"]
    assert moves == ["open"]


async def test_a_status_change_from_a_stale_read_is_refused_once_another_came_first(
    testbot: TestBot,
) -> None:
    """Two processes wake the same snoozed conversation (each read it as snoozed): one
    status change, one event; the second is refused rather than applied again."""
    await testbot.say("/human")
    hub = testbot.hub
    cid = await testbot.conversation_id()
    pending = await hub.store.get_conversation(cid)
    opened = await hub.conversations.transition(pending, Status.OPEN, "agent")
    past = utcnow() - timedelta(minutes=1)
    await hub.conversations.transition(opened, Status.SNOOZED, "agent", snooze_until=past)
    read_by_a, read_by_b = (
        await hub.store.due_snoozes(utcnow()),
        await hub.store.due_snoozes(utcnow()),
    )
    assert [c.id for c in read_by_a] == [c.id for c in read_by_b] == [cid]

    async def both_wake() -> None:
        await hub.conversations.transition(read_by_a[0], Status.OPEN, "system")
        with pytest.raises(InvalidTransition, match="now open"):
            await hub.conversations.transition(read_by_b[0], Status.OPEN, "system")

    events = await events_during(testbot, both_wake)
    assert [e.data["to"] for e in events if e.type == "conversation.status_changed"] == ["open"]
    assert len(await hub.store.audit_log(action="status", conversation_id=cid)) == 4
