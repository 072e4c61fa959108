"""Conversation tests: the format of a bot folder's `tests/*.yml`, and loading them.

    tests:
      - name: order lookup, happy path
        channel: web                         # optional, informational only
        steps:
          - user: where is my order          # the customer writes
          - bot: What's your order number?   # exact text (whitespace runs count as one space)
          - not: /hello/i                    # no message of this turn matches
          - user: "12345678"                 # quote numbers: a step's value must be text
          - bot: /Order 12345678 is/         # /regex/ (re.search), /regex/i ignores case
          - press: /human                    # the customer presses a button with this payload
          - status: pending                  # bot | pending | open | snoozed | resolved
          - agent: Hi, I'm Lin. Let me check. # an agent replies (the conversation is theirs)
          - agent: resolve                   # the agent resolves the conversation

Steps (each a mapping with exactly one key):
- `user: TEXT` sends TEXT as the customer (an explicit `/intent` text works too).
- `press: PAYLOAD` sends a button press (a postback) with that payload; the button does not have
  to have been shown. Like `user:`, it starts a new turn that `bot:` lines then look at.
- `bot: EXPECTED` must match one of the messages the customer received (from the bot, the hub or
  an agent) for the latest turn, after the message the previous `bot:` line of the same turn
  matched. Messages no line names are allowed, so consecutive `bot:` lines match an in-order
  subsequence of the turn's replies.
- `not: EXPECTED` (exact text or /regex/, like `bot:`): no message of the latest turn matches
  it, wherever it is in the turn.
- `agent: ACTION` acts as an agent in the inbox, through the inbox API's own code: `take` (the
  conversation becomes open, the agent's), `resolve` (resolved; the hub then asks the customer
  for a rating if a human had it), and any other text is a reply the agent sends (the
  conversation becomes open and theirs, as when an agent replies in the inbox). It needs a
  conversation (a `user:` or `press:` before it) and starts a new turn: the `bot:` and `not:`
  lines after it look at what the customer received because of it.
- `status: S` checks the conversation's status at that point.

A test stops at its first failing step. This module is the file format and its loading (for
`kefu check` and `kefu test`); the runner, which starts a whole hub, is hub/testing/convtest.py.

Every problem of every file is reported at once, as `path:line:column: what is wrong`, by
raising `ConversationTestError`. An empty file holds no tests (like an empty flow file).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from flows.loader import unique_names, yaml_files
from hub.messages import Status
from hub.yaml_places import by_place, read_yaml

StepKind = Literal["user", "bot", "not", "press", "agent", "status"]
STEP_KINDS: tuple[StepKind, ...] = ("user", "bot", "not", "press", "agent", "status")
AGENT_ACTIONS = ("take", "resolve")  # `agent:` with any other text replies with it
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
    pattern: re.Pattern[str] | None = None  # a `bot:` or `not:` line's /regex/

    def matches(self, text: str) -> bool:
        """For a `bot:` or `not:` line: does a message with this text match it?"""
        if self.pattern is not None:
            return self.pattern.search(text) is not None
        return _normal(self.value) == _normal(text)


@dataclass(frozen=True)
class ConversationTest:
    name: str
    steps: tuple[Step, ...]
    source: str  # path:line:column of the test
    channel: str | None = None


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
        quoted = kind in ("user", "press", "agent")
        hint = f' (put it in quotes, e.g. {kind}: "12345678")' if quoted else ""
        f.error(
            f.at(steps, j, kind, value=True), f"{kind}: must be text, not {_kind_of(raw)}{hint}"
        )
        return None
    pattern = None
    if kind in ("bot", "not"):
        if not turn_seen:
            f.error(
                where, f"`{kind}:` before any `user:` or `press:` step: there is nothing to answer"
            )
            ok = False
        regex = _REGEX.match(value)
        if regex and len(value) >= 2:
            try:
                flags = re.IGNORECASE if regex["flags"] else 0
                pattern = re.compile(regex["pattern"], flags)
            except re.error as e:
                f.error(f.at(steps, j, kind, value=True), f"bad regex {value}: {e}")
                ok = False
    elif kind in ("status", "agent"):
        if not turn_seen:
            f.error(where, f"`{kind}:` before any `user:` or `press:` step: no conversation yet")
            ok = False
        if kind == "status" and value not in STATUSES:
            f.error(
                f.at(steps, j, kind, value=True),
                f"unknown status {value!r} (one of: {', '.join(STATUSES)})",
            )
            ok = False
        if kind == "agent" and not value.strip():
            actions = ", ".join(AGENT_ACTIONS)
            f.error(
                f.at(steps, j, kind, value=True),
                f"agent: needs an action ({actions}) or the text of a reply",
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
