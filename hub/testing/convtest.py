"""The conversation-test runner behind `kefu test`: a bot folder's `tests/*.yml` (their format
and loading: flows/convtest.py), run against a whole hub in memory.

`run_tests` starts one hub (SQLite in a temporary folder, only the in-memory channel, whatever
database and channels the settings name) and gives each test its own customer, so tests never
share a conversation. `agent:` steps are done by one agent of that hub (an `agent` role, no
teams) through the inbox API's route functions, as a request from the inbox would. A test stops
at its first failing step; `format_result` reports it like a diff, `summary` counts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from flows.convtest import ConversationTest, Step
from hub.messages import Outbound, Status
from hub.ops.settings import Settings
from hub.ports import Classifier, FlowRunner
from hub.store import Agent
from hub.testing.testbot import TestBot

AGENT_EMAIL = "convtest-agent@example.com"


@dataclass(frozen=True)
class Failure:
    step: Step
    message: str  # e.g. "bot line did not match"
    expected: str | None = None
    got: tuple[str, ...] = ()  # one line each


@dataclass(frozen=True)
class TestResult:
    __test__ = False  # not a pytest test class

    test: ConversationTest
    failure: Failure | None = None
    seconds: float = 0.0
    steps_run: int = 0

    @property
    def passed(self) -> bool:
        return self.failure is None

    def report(self, color: bool = False) -> str:
        return format_result(self, color)


class Customer(Protocol):
    """What `run_test` needs: a customer (a `TestBot`) and an agent on their conversation."""

    async def say(self, text: str, message_id: str | None = None) -> list[Outbound]: ...

    async def press(self, payload: str, title: str | None = None) -> list[Outbound]: ...

    async def status(self) -> Status: ...

    async def agent(self, action: str) -> list[Outbound]: ...


class HubCustomer:
    """A `TestBot` customer, and an agent who works on their conversation as the inbox API
    does: `take` and `resolve` are `POST /conversations/{id}/status`, any other text is
    `POST /conversations/{id}/messages` (the route functions themselves, called in process)."""

    def __init__(self, bot: TestBot, agent: Agent) -> None:
        self.bot = bot
        self.inbox_agent = agent

    async def say(self, text: str, message_id: str | None = None) -> list[Outbound]:
        return await self.bot.say(text, message_id)

    async def press(self, payload: str, title: str | None = None) -> list[Outbound]:
        return await self.bot.press(payload, title)

    async def status(self) -> Status:
        return await self.bot.status()

    async def agent(self, action: str) -> list[Outbound]:
        """Do `action`; returns what the customer received because of it."""
        from hub.inbox.routes import reply, set_status
        from hub.inbox.schemas import ReplyBody, StatusBody

        hub, agent = self.bot.hub, self.inbox_agent
        before = len(await self.bot.received())
        conversation_id = await self.bot.conversation_id()
        action = action.strip()
        if action == "take":
            await set_status(conversation_id, StatusBody(status=Status.OPEN), hub, agent)
        elif action == "resolve":
            await set_status(conversation_id, StatusBody(status=Status.RESOLVED), hub, agent)
        else:
            await reply(conversation_id, ReplyBody(text=action), hub, agent)
        return (await self.bot.received())[before:]


async def inbox_agent(hub: Any) -> Agent:
    """The agent of `agent:` steps, created in the hub's store (once: found again after). It
    can't log in: its password hash is no hash."""
    found: Agent | None = await hub.store.agent_by_email(AGENT_EMAIL)
    if found is not None:
        return found
    agent: Agent = await hub.store.create_agent(AGENT_EMAIL, "Test agent", "!", role="agent")
    return agent


# --- running ------------------------------------------------------------------------------------


def _message_lines(replies: Sequence[Outbound]) -> tuple[str, ...]:
    """Every message on its own line(s), buttons as `[title] -> payload` under it."""
    if not replies:
        return ("(no reply)",)
    lines: list[str] = []
    for reply in replies:
        lines += reply.text.splitlines() or [""]
        lines += [f"[{b.title}] -> {b.payload}" for b in reply.buttons]
        lines += [f"<{a.kind.value}: {a.url}>" for a in reply.attachments]
    return tuple(lines)


async def run_test(bot: Customer, test: ConversationTest) -> TestResult:
    """Run one test as `bot`'s customer (a fresh one: its conversation is the test's)."""
    start = time.perf_counter()
    replies: list[Outbound] = []
    after = 0  # the next reply a `bot:` line may match
    failure: Failure | None = None
    done = 0
    for step in test.steps:
        try:
            if step.kind == "user":
                replies, after = await bot.say(step.value), 0
            elif step.kind == "press":
                # the button's title is the text a customer's client shows and sends with it
                title = next(
                    (b.title for r in replies for b in r.buttons if b.payload == step.value), None
                )
                replies, after = await bot.press(step.value, title), 0
            elif step.kind == "agent":
                replies, after = await bot.agent(step.value), 0
            elif step.kind == "not":
                if any(step.matches(r.text) for r in replies):
                    expected = f"no message like {step.value}"
                    message = "a message of the turn matches the `not:` line"
                    failure = Failure(step, message, expected, _message_lines(replies))
            elif step.kind == "bot":
                found = next(
                    (i for i in range(after, len(replies)) if step.matches(replies[i].text)), None
                )
                if found is None:
                    earlier = any(step.matches(r.text) for r in replies[:after])
                    message = "bot line did not match" + (
                        " (it matches a message before the one the previous bot line matched:"
                        " order matters)"
                        if earlier
                        else ""
                    )
                    failure = Failure(step, message, step.value, _message_lines(replies))
                else:
                    after = found + 1
            else:
                status = (await bot.status()).value
                if status != step.value:
                    failure = Failure(step, "status did not match", step.value, (status,))
        except Exception as e:  # the hub failed: report it like any failing step
            failure = Failure(step, f"error: {type(e).__name__}: {e}")
        done += 1
        if failure is not None:
            break
    return TestResult(test, failure, time.perf_counter() - start, done)


async def run_tests(
    settings: Settings,
    tests: Iterable[ConversationTest],
    classifier: Classifier | None = None,
    flows: FlowRunner | None = None,
    on_result: Callable[[TestResult], None] | None = None,
) -> list[TestResult]:
    """Start one hub for the settings' bot and run every test as its own customer.

    The hub gets SQLite in a temporary folder and only the in-memory channel, whatever database
    and channels the settings name. Without `classifier`, one is trained (in that temporary
    folder); `on_result` hears about each result as soon as it is known."""
    settings = settings.model_copy(
        update={"channels": [], "database_url": Settings.model_fields["database_url"].default}
    )
    results: list[TestResult] = []
    async with TestBot.running(settings, classifier, flows) as hub_bot:
        agent = await inbox_agent(hub_bot.hub)
        for number, test in enumerate(tests, 1):
            customer = HubCustomer(hub_bot.customer(f"convtest-{number}"), agent)
            result = await run_test(customer, test)
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results


# --- reporting ----------------------------------------------------------------------------------

_GREEN, _RED, _RESET = "\033[32m", "\033[31m", "\033[0m"


def format_result(result: TestResult, color: bool = False) -> str:
    """`PASS name (source)`, or `FAIL name (source)` and what went wrong, like a diff:

    FAIL order lookup, happy path (examples/shop/tests/orders.yml:3:5)
      examples/shop/tests/orders.yml:7:11: bot line did not match
        expected: /Order 12345678 is/
        got:      Please tell me your order number.
                  [Talk to a human] -> /human
    """
    test, failure = result.test, result.failure
    word = "PASS" if failure is None else "FAIL"
    if color:
        word = f"{_GREEN if failure is None else _RED}{word}{_RESET}"
    lines = [f"{word} {test.name} ({test.source})"]
    if failure is not None:
        lines.append(f"  {failure.step.source}: {failure.message}")
        if failure.expected is not None:
            lines.append(f"    expected: {failure.expected}")
        for k, line in enumerate(failure.got):
            lines.append(f"    {'got:' if k == 0 else '':<10}{line}".rstrip())
    return "\n".join(lines)


def summary(results: Sequence[TestResult]) -> str:
    """`N passed, M failed`."""
    failed = sum(not r.passed for r in results)
    return f"{len(results) - failed} passed, {failed} failed"


def format_report(results: Sequence[TestResult], color: bool = False) -> str:
    """Every result, then the summary line."""
    return "\n".join([*(format_result(r, color) for r in results), summary(results)])
