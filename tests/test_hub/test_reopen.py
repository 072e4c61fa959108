"""Reopen and CSAT (issue P12, point 5): a customer's message after an agent resolves is always
answered by the bot, unless it is exactly a rating answering the open question; the rating
question is asked only if the customer has not written since the resolution, else dropped
(never sent after the bot's answer).

The message arrives before, during and after the resolve's side effects (the CSAT question),
with the interleavings forced by test doubles that wait on an asyncio.Event: a feature whose
`after_resolve` holds the resolution after its status change, one whose `before_turn` holds
a stored message's turn, and the bot's answer held while an agent takes and resolves. Each
case checks what the customer receives and the conversation's status; on SQLite and
PostgreSQL, and across two hub processes sharing PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flows import FlowEngine
from hub.core.conversations import Conversations, Feature
from hub.features.csat.survey import KEY
from hub.messages import Inbound, Outbound, Reply, Sender, Status
from hub.store import Conversation, Message
from hub.testing import TestBot
from nlu import IntentClassifier
from tests.conftest import _pg_clone, _pg_execute, make_settings
from tests.test_hub.conftest import REDIS

QUESTION = "How satisfied are you with the help you got? Please rate it from 1 to 5."
THANKS = "Thank you for your rating!"
LIN = "lin@example.com"
ASK_ORDER = "What's your order number?"


class Gate:
    """Where a test double stops: `reached` is set when it gets there, and it goes on once
    `go` is set."""

    def __init__(self) -> None:
        self.reached, self.go = asyncio.Event(), asyncio.Event()

    async def halt(self) -> None:
        self.reached.set()
        await self.go.wait()


class HeldResolution(Feature, Gate):
    """Listed before CSAT: a resolution waits here, its status stored, before the question."""

    async def after_resolve(
        self, conversations: Conversations, conversation: Conversation, source: Status, actor: str
    ) -> None:
        await self.halt()


class HeldTurn(Feature, Gate):
    """Listed first: a customer message's turn waits here, the message stored (turn pending)."""

    async def before_turn(
        self,
        conversations: Conversations,
        conversation: Conversation,
        message: Message,
        inbound: Inbound,
    ) -> list[Outbound] | None:
        await self.halt()
        return None


class Customer(TestBot):
    """The test bot's customer, and the agent who helps them (`agent`, an agent's id)."""

    __test__ = False
    agent: int

    async def conversation(self) -> Conversation:
        found = await self.hub.store.get_conversation(await self.conversation_id())
        assert found is not None
        return found

    async def an_agent_has_it(self, status: Status = Status.OPEN) -> None:
        """The customer asked for a human; the agent took the conversation and replied."""
        conversations, actor = self.hub.conversations, f"agent:{self.agent}"
        await self.press("/human")
        await conversations.assign(await self.conversation(), actor, agent_id=self.agent)
        hello = Reply(text="Hi, Lin here", sender=Sender.AGENT)
        await conversations.post(await self.conversation(), hello, agent_id=self.agent)
        if status != Status.OPEN:
            await conversations.transition(await self.conversation(), status, actor)
        await self.received()

    async def resolve(self) -> None:
        """The agent resolves, as the inbox API does (`POST .../status`)."""
        await self.hub.conversations.transition(
            await self.conversation(), Status.RESOLVED, f"agent:{self.agent}", reason="agent"
        )


@contextlib.asynccontextmanager
async def running(
    database_url: str, data_dir: Path, models: tuple[IntentClassifier, FlowEngine], **extra: Any
) -> AsyncIterator[Customer]:
    """A hub with the demo bot (and an agent) on `database_url`; its test customer."""
    settings = make_settings(database_url, data_dir, **extra)
    async with Customer.running(settings, *models) as customer:
        assert isinstance(customer, Customer)
        found = await customer.hub.store.agent_by_email(LIN)
        if found is None:
            found = await customer.hub.store.create_agent(LIN, "Lin", "x", role="admin")
        customer.agent = found.id
        yield customer


@pytest.fixture
def models(classifier: IntentClassifier, flows: FlowEngine) -> tuple[IntentClassifier, FlowEngine]:
    return classifier, flows


@pytest.fixture
async def bot(
    database_url: str, tmp_path: Path, models: tuple[IntentClassifier, FlowEngine]
) -> AsyncIterator[Customer]:
    """The demo bot on SQLite and PostgreSQL."""
    async with running(database_url, tmp_path, models) as customer:
        yield customer


def held_first(features: tuple[Feature, ...], gate: Feature) -> tuple[Feature, ...]:
    return (gate, *features)


def texts(received: list[Outbound]) -> list[str]:
    return [m.text for m in received]


def bot_answered(received: list[Outbound]) -> bool:
    return any(m.sender == Sender.BOT for m in received)


async def started(coroutine: Awaitable[Any], gate: Gate) -> asyncio.Task[Any]:
    """Run `coroutine` as a task until it reaches `gate`."""
    task = asyncio.ensure_future(coroutine)
    reached = asyncio.ensure_future(gate.reached.wait())
    await asyncio.wait({task, reached}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        reached.cancel()
        task.result()  # raises what it raised
        raise AssertionError("it finished without reaching the gate")
    return task


# ---- after the resolve's side effects: the question went out ------------------------------


async def test_after_the_question_a_rating_is_thanked_and_the_conversation_stays_resolved(
    bot: Customer,
) -> None:
    await bot.an_agent_has_it()
    await bot.resolve()
    assert texts(await bot.received())[-1] == QUESTION

    assert texts(await bot.say("4")) == [THANKS]
    assert await bot.status() == Status.RESOLVED
    # a later message that is not a rating reopens it to the bot, which answers
    said = await bot.say("the item arrived broken though")
    assert bot_answered(said) and THANKS not in texts(said) and QUESTION not in texts(said)
    assert await bot.status() == Status.BOT


@pytest.mark.parametrize(
    "message",
    [
        "where is my order",  # a new question
        "5 stars but the item is broken",  # a rating with more: the bot reads the rest
        "7",  # a number that is not 1-5
        "0",
        "45",
        "thanks, bye",  # free text
    ],
)
async def test_after_the_question_anything_but_a_rating_is_answered_by_the_bot(
    bot: Customer, message: str
) -> None:
    await bot.an_agent_has_it()
    await bot.resolve()
    assert texts(await bot.received())[-1] == QUESTION

    said = await bot.say(message)
    assert bot_answered(said), said
    assert THANKS not in texts(said) and QUESTION not in texts(said)
    assert await bot.status() == Status.BOT
    assert KEY not in (await bot.conversation()).flow_state  # the question is closed
    assert await bot.hub.csat.of(await bot.conversation_id()) is None


# ---- before the resolve's side effects: resolved, the question not asked yet --------------


async def test_a_message_between_the_resolution_and_the_question_drops_the_question(
    bot: Customer,
) -> None:
    await bot.an_agent_has_it()
    held = HeldResolution()
    conversations = bot.hub.conversations
    conversations.features = held_first(conversations.features, held)
    resolving = await started(bot.resolve(), held)
    assert await bot.status() == Status.RESOLVED  # stored; its side effects wait

    said = await bot.say("where is my order")
    assert ASK_ORDER in said[-1].text, said
    assert await bot.status() == Status.BOT

    held.go.set()
    await resolving
    assert QUESTION not in texts(await bot.received())  # dropped, not sent after the answer
    assert await bot.status() == Status.BOT
    state = (await bot.conversation()).flow_state
    assert KEY not in state and state, state  # the bot's flow kept, waiting for the number
    said = await bot.say("4")  # the bot's to read: not a rating, nothing was asked
    assert bot_answered(said) and THANKS not in texts(said), said


# ---- during: the message stored, its turn not over, while the resolution happens ----------


@pytest.mark.parametrize("had", [Status.OPEN, Status.SNOOZED])
async def test_a_message_stored_before_the_resolution_but_turned_after_is_the_bots(
    bot: Customer, had: Status
) -> None:
    """Stored while the agent had it (open or snoozed); the agent resolves before its turn
    decides who speaks (a slow turn, or one taken again after a crash)."""
    await bot.an_agent_has_it(had)
    held = HeldTurn()
    bot.hub.pipeline.features = held_first(bot.hub.pipeline.features, held)
    customer = await started(bot.say("one more thing: where is my order"), held)

    await bot.resolve()  # the whole resolution, side effects included
    assert await bot.status() == Status.RESOLVED

    held.go.set()
    said = await customer
    assert bot_answered(said) and ASK_ORDER in said[-1].text, said  # not swallowed
    assert await bot.status() == Status.BOT
    assert QUESTION not in texts(await bot.received())  # dropped: the customer wrote


async def test_a_message_stored_between_the_resolution_and_the_question_is_the_bots(
    bot: Customer,
) -> None:
    """Both held: the resolution after its status change, the message's turn after storing."""
    await bot.an_agent_has_it()
    resolution, turn = HeldResolution(), HeldTurn()
    conversations = bot.hub.conversations
    conversations.features = held_first(conversations.features, resolution)
    bot.hub.pipeline.features = held_first(bot.hub.pipeline.features, turn)
    resolving = await started(bot.resolve(), resolution)
    customer = await started(bot.say("4"), turn)  # a digit, but nothing was asked yet

    resolution.go.set()
    await resolving  # the question, asked now, finds the customer's turn under way
    turn.go.set()
    said = await customer
    assert bot_answered(said) and THANKS not in texts(said), said
    assert QUESTION not in texts(await bot.received())
    assert await bot.status() == Status.BOT
    assert await bot.hub.csat.of(await bot.conversation_id()) is None


async def test_an_agent_resolving_while_the_bot_answers_gets_no_question_sent_after_it(
    bot: Customer,
) -> None:
    """The bot's turn is running (its answer not stored yet) when an agent takes the
    conversation and resolves it: the bot's answer goes out, no rating question with it."""
    await bot.say("hello")
    held = Gate()
    conversations = bot.hub.conversations
    post_all: Callable[..., Awaitable[Any]] = conversations.post_all

    async def held_post_all(conversation: Conversation, replies: Any, **kw: Any) -> Any:
        if kw.get("reply_to") is not None and not held.go.is_set():
            await held.halt()  # the bot's answer to the customer's message
        return await post_all(conversation, replies, **kw)

    conversations.post_all = held_post_all  # type: ignore[method-assign]
    customer = await started(bot.say("where is my order"), held)

    await conversations.assign(await bot.conversation(), f"agent:{bot.agent}", agent_id=bot.agent)
    await bot.resolve()
    held.go.set()
    said = await customer
    assert ASK_ORDER in said[-1].text, said
    assert QUESTION not in texts(await bot.received())
    assert await bot.status() == Status.RESOLVED  # the agent's resolution stands
    # and the customer's next message is the bot's again
    said = await bot.say("12345678")
    assert bot_answered(said), said
    assert await bot.status() == Status.BOT


async def test_a_message_the_agent_already_had_stays_theirs(bot: Customer) -> None:
    """The boundary: a message whose turn ran while the agent had the conversation is the
    agent's (the inbox showed it); resolving after it is their call, and the question goes."""
    await bot.an_agent_has_it()
    assert await bot.say("thanks, that's all") == []  # the bot stays silent: the agent's
    await bot.resolve()
    assert texts(await bot.received())[-1] == QUESTION
    assert await bot.status() == Status.RESOLVED


# ---- two hub processes: the customer on one, the agent on the other ------------------------


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database (the one two hub processes share)."""
    name, url = _pg_clone(request.getfixturevalue("pg_template"))
    yield url
    asyncio.run(_pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def test_across_two_processes_a_message_turned_after_the_resolution_is_the_bots(
    postgres_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    models: tuple[IntentClassifier, FlowEngine],
    redis_prefix: tuple[Any, str],
) -> None:
    _, prefix = redis_prefix
    shared = {"redis_url": REDIS, "redis_prefix": prefix}
    async with (
        running(postgres_url, tmp_path_factory.mktemp("a"), models, **shared) as on_a,
        running(postgres_url, tmp_path_factory.mktemp("b"), models, **shared) as on_b,
    ):
        await on_b.an_agent_has_it()
        held = HeldTurn()
        on_b.hub.pipeline.features = held_first(on_b.hub.pipeline.features, held)
        customer = await started(on_b.say("and where is my other order"), held)

        await on_a.resolve()  # the agent, on the other process
        held.go.set()
        said = await customer
        assert bot_answered(said) and ASK_ORDER in said[-1].text, said
        assert await on_b.status() == Status.BOT
        for side in (on_a, on_b):
            assert QUESTION not in texts(await side.received())
