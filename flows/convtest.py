"""Conversation tests: a bot folder's `tests/*.yml`, run against a whole hub in memory.

    tests:
      - name: order lookup, happy path
        channel: web                         # optional, informational only
        steps:
          - user: where is my order          # the customer writes
          - bot: What's your order number?   # exact text (whitespace runs count as one space)
          - user: "12345678"                 # quote numbers: a step's value must be text
          - bot: /Order 12345678 is/         # /regex/ (re.search), /regex/i ignores case
          - press: /human                    # the customer presses a button with this payload
          - status: pending                  # bot | pending | open | snoozed | resolved

Steps (each a mapping with exactly one key):
- `user: TEXT` sends TEXT as the customer (an explicit `/intent` text works too).
- `press: PAYLOAD` sends a button press (a postback) with that payload; the button does not have
  to have been shown. Like `user:`, it starts a new turn that `bot:` lines then look at.
- `bot: EXPECTED` must match one of the messages the customer received (from the bot, the hub or
  an agent) for the latest `user:`/`press:`, after the message the previous `bot:` line of the
  same turn matched. Messages no line names are allowed, so consecutive `bot:` lines match an
  in-order subsequence of the turn's replies.
- `status: S` checks the conversation's status at that point.

A test stops at its first failing step. `run_tests` starts one hub (SQLite in a temporary folder,
only the in-memory channel, whatever database and channels the settings name) and gives each test
its own customer, so tests never share a conversation.

Every problem of every file is reported at once, as `path:line:column: what is wrong`, by
raising `ConversationTestError`. An empty file holds no tests (like an empty flow file).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from flows.loader import unique_names, yaml_files
from hub.messages import Outbound, Status
from hub.yaml_places import by_place, read_yaml

if TYPE_CHECKING:
    from hub.ports import Classifier, FlowRunner
    from hub.settings import Settings

StepKind = Literal["user", "bot", "press", "status"]
STEP_KINDS: tuple[StepKind, ...] = ("user", "bot", "press", "status")
TEST_KEYS = ("name", "channel", "steps")
STATUSES = tuple(s.value for s in Status)
_REGEX = re.compile(r"^/(?P<pattern>.*)/(?P<flags>i?)$", re.DOTALL)


class ConversationTestError(Exception):
    """Invalid conversation test files; `errors` lists every problem as
    `path:line:column: what is wrong`."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class Step:
    kind: StepKind
    value: str
    source: str  # path:line:column of the step
    pattern: re.Pattern[str] | None = None  # a `bot: /regex/` line

    def matches(self, text: str) -> bool:
        """For a `bot:` line: does a message with this text match it?"""
        if self.pattern is not None:
            return self.pattern.search(text) is not None
        return _normal(self.value) == _normal(text)


@dataclass(frozen=True)
class ConversationTest:
    name: str
    steps: tuple[Step, ...]
    source: str  # path:line:column of the test
    channel: str | None = None


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
    """What `run_test` needs of a `hub.testing.TestBot`."""

    async def say(self, text: str, message_id: str | None = None) -> list[Outbound]: ...

    async def press(self, payload: str, title: str | None = None) -> list[Outbound]: ...

    async def status(self) -> Status: ...


# --- loading ------------------------------------------------------------------------------------


def _normal(text: str) -> str:
    return " ".join(text.split())


@dataclass
class _File:
    path: Path
    errors: list[str] = field(default_factory=list)

    def at(self, node: Any, *loc: Any, value: bool = False) -> str:
        """`path:line:column` of the deepest node on `loc` (of the last key's value when
        `value`), 1-based."""
        line, column = (node.lc.line, node.lc.col) if hasattr(node, "lc") else (0, 0)
        for i, key in enumerate(loc):
            last = i == len(loc) - 1
            if isinstance(node, CommentedMap) and key in node:
                line, column = node.lc.value(key) if value and last else node.lc.key(key)
                node = node[key]
            elif isinstance(node, CommentedSeq) and isinstance(key, int) and key < len(node):
                line, column = node.lc.item(key)
                node = node[key]
        return f"{self.path}:{line + 1}:{column + 1}"

    def error(self, where: str, message: str) -> None:
        self.errors.append(f"{where}: {message}")

    def line_column(self, error: str) -> tuple[int, int]:
        """Where an error of this file is, to list them in file order."""
        line, column = error[len(str(self.path)) + 1 :].split(":")[:2]
        return int(line), int(column)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if value is None:
        return "nothing"
    if isinstance(value, CommentedMap):
        return "a mapping"
    if isinstance(value, CommentedSeq):
        return "a list"
    return type(value).__name__


def _load_step(f: _File, steps: CommentedSeq, j: int, turn_seen: bool) -> Step | None:
    node = steps[j]
    where = f.at(steps, j)
    if not isinstance(node, CommentedMap) or not node:
        f.error(where, f"a step is a mapping with one key: {', '.join(STEP_KINDS)}")
        return None
    ok = True
    for key in node:
        if key not in STEP_KINDS:
            f.error(
                f.at(steps, j, key),
                f"unknown step key {key!r} (a step is one of: {', '.join(STEP_KINDS)})",
            )
            ok = False
    if len(node) > 1:
        keys = ", ".join(str(k) for k in node)
        f.error(where, f"a step has exactly one key, this one has {len(node)} ({keys})")
        ok = False
    if not ok:
        return None
    kind: StepKind = next(iter(node))
    raw = node[kind]
    value = _text(raw)
    if value is None:
        hint = ' (put it in quotes, e.g. user: "12345678")' if kind in ("user", "press") else ""
        f.error(
            f.at(steps, j, kind, value=True), f"{kind}: must be text, not {_kind_of(raw)}{hint}"
        )
        return None
    pattern = None
    if kind == "bot":
        if not turn_seen:
            f.error(where, "`bot:` before any `user:` or `press:` step: there is nothing to answer")
            ok = False
        regex = _REGEX.match(value)
        if regex and len(value) >= 2:
            try:
                flags = re.IGNORECASE if regex["flags"] else 0
                pattern = re.compile(regex["pattern"], flags)
            except re.error as e:
                f.error(f.at(steps, j, kind, value=True), f"bad regex {value}: {e}")
                ok = False
    elif kind == "status":
        if not turn_seen:
            f.error(where, "`status:` before any `user:` or `press:` step: no conversation yet")
            ok = False
        if value not in STATUSES:
            f.error(
                f.at(steps, j, kind, value=True),
                f"unknown status {value!r} (one of: {', '.join(STATUSES)})",
            )
            ok = False
    elif kind == "press" and not value.strip():
        f.error(f.at(steps, j, kind, value=True), "press: needs a button payload, e.g. /human")
        ok = False
    return Step(kind, value, where, pattern) if ok else None


def _load_test(f: _File, tests: CommentedSeq, i: int) -> ConversationTest | None:
    node = tests[i]
    where = f.at(tests, i)
    if not isinstance(node, CommentedMap):
        f.error(where, "a test is a mapping with `name:` and `steps:`")
        return None
    before = len(f.errors)
    for key in node:
        if key not in TEST_KEYS:
            f.error(
                f.at(tests, i, key), f"unknown test key {key!r} (one of: {', '.join(TEST_KEYS)})"
            )
    name = node.get("name")
    if "name" not in node:
        f.error(where, "a test needs a `name:`")
    elif not isinstance(name, str) or not name.strip():
        f.error(f.at(tests, i, "name", value=True), "name: must be non-empty text")
    channel = node.get("channel")
    if channel is not None and not isinstance(channel, str):
        f.error(f.at(tests, i, "channel", value=True), "channel: must be a channel name")
    steps = node.get("steps")
    loaded: list[Step] = []
    if "steps" not in node:
        f.error(where, "a test needs `steps:`")
    elif not isinstance(steps, CommentedSeq) or not steps:
        f.error(f.at(tests, i, "steps", value=True), "steps: must be a non-empty list of steps")
    else:
        turn_seen = False
        for j in range(len(steps)):
            step = _load_step(f, steps, j, turn_seen)
            if step is not None:
                loaded.append(step)
            item = steps[j]
            if isinstance(item, CommentedMap) and ("user" in item or "press" in item):
                turn_seen = True
    if len(f.errors) > before:
        return None
    assert isinstance(name, str)
    return ConversationTest(name.strip(), tuple(loaded), where, channel)


def load_file(path: Path) -> tuple[list[ConversationTest], list[str]]:
    """The tests of one file, and the errors found in it."""
    f = _File(path)
    tree, error = read_yaml(path)
    if error is not None:
        return [], [error]
    if tree is None:
        return [], []
    if not isinstance(tree, CommentedMap) or "tests" not in tree:
        return [], [f"{f.at(tree)}: a conversation test file is a mapping with a `tests:` list"]
    for key in tree:
        if key != "tests":
            f.error(f.at(tree, key), f"unknown top-level key {key!r} (only `tests:`)")
    tests = tree["tests"]
    if not isinstance(tests, CommentedSeq):
        f.error(f.at(tree, "tests", value=True), "tests: must be a list of tests")
        return [], sorted(f.errors, key=f.line_column)
    loaded = [t for i in range(len(tests)) if (t := _load_test(f, tests, i)) is not None]
    return loaded, sorted(f.errors, key=f.line_column)


def load_tests(folder: Path) -> list[ConversationTest]:
    """Every test of `folder/*.yml` and `*.yaml` (files sorted by name; a missing folder has
    none); raises ConversationTestError listing all problems, duplicate names included."""
    loaded: list[ConversationTest] = []
    errors: list[str] = []
    for path in yaml_files(folder):
        file_tests, file_errors = load_file(path)
        loaded += file_tests
        errors += file_errors
    tests, duplicates = unique_names(loaded, "test")
    errors += duplicates
    if errors:
        raise ConversationTestError(by_place(errors))
    return list(tests.values())


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
    from hub.settings import Settings
    from hub.testing import TestBot

    settings = settings.model_copy(
        update={"channels": [], "database_url": Settings.model_fields["database_url"].default}
    )
    results: list[TestResult] = []
    async with TestBot.running(settings, classifier, flows) as hub_bot:
        for number, test in enumerate(tests, 1):
            result = await run_test(hub_bot.customer(f"convtest-{number}"), test)
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
