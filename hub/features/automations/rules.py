"""Automation rules: a bot folder's `automations/*.yml`, loaded with line numbers so that every
problem reads `path:line:column: what is wrong` (all of them, not only the first).

A file is a list of rules; each says on which event it runs, the conditions that must all hold
(`if:`), and the actions to take (`then:`):

    - name: Urgent refunds to the billing team
      on: message.created
      if: {intent: [returns], text: {contains: ["急", "urgent"]}}
      then:
        - assign_team: billing
        - add_label: refund

Checked here: the schema (unknown keys and actions, wrong types), regexes, time ranges and
timezones, duplicate names, and, when the caller knows them, channel names (config.yaml) and
intents (the NLU data). The engine that runs the rules is `hub.features.automations.runner`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    HttpUrl,
    Tag,
    ValidationError,
    field_validator,
)
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from hub.core.receiver import TRY_IT  # the admin pages' chat, a channel every hub has
from hub.messages import Sender, Status
from hub.ops.settings import Settings
from hub.yaml_places import by_place, position, read_yaml

# the events a rule may run on; `intent`, `text` and `sender` only on message.created
EventName = Literal[
    "message.created",
    "conversation.created",
    "conversation.status_changed",
    "conversation.assigned",
]
EVENTS: tuple[str, ...] = get_args(EventName)
MESSAGE_ONLY = ("intent", "text", "sender")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = get_args(Weekday)  # in Python's weekday() order
Priority = Literal["low", "normal", "high", "urgent"]
Loc = tuple[Any, ...]


class AutomationError(Exception):
    """Invalid automation files; `errors` lists every problem as `path:line:column: what`."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


def _listed(value: Any) -> Any:
    """One value where a list is expected is a list of one (`labels: {has: vip}`)."""
    return [value] if isinstance(value, str) else value


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as e:
        raise ValueError(f"bad regex {value!r}: {e}") from None
    return value


Names = Annotated[list[str], BeforeValidator(_listed), Field(min_length=1)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# ---- conditions -------------------------------------------------------------------------


class TextCondition(Strict):
    """The customer's message contains one of `contains` (ignoring case) and/or matches the
    regex `matches` (searched anywhere, ignoring case)."""

    contains: Annotated[list[str], BeforeValidator(_listed)] = []
    matches: Annotated[str, AfterValidator(_regex)] | None = None


class LabelsCondition(Strict):
    """The conversation has every label of `has` and none of `lacks`."""

    has: Annotated[list[str], BeforeValidator(_listed)] = []
    lacks: Annotated[list[str], BeforeValidator(_listed)] = []


class TimeCondition(Strict):
    """Now, in `timezone`, is one of `weekdays` and within `between` ("09:00-18:00"; a range
    past midnight such as "22:00-06:00" is the night)."""

    weekdays: Annotated[list[Weekday], BeforeValidator(_listed)] | None = None
    between: str | None = None
    timezone: str = "UTC"

    @field_validator("between")
    @classmethod
    def _range(cls, value: str | None) -> str | None:
        if value is not None:
            parse_range(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r} (e.g. Asia/Shanghai, UTC)") from None
        return value


_CLOCK = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_range(value: str) -> tuple[time, time]:
    """ "09:00-18:00" -> (09:00, 18:00); ValueError saying what is wrong."""
    m = _CLOCK.match(value)
    if not m:
        raise ValueError(f"bad time range {value!r}: write HH:MM-HH:MM, e.g. 09:00-18:00")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
        raise ValueError(f"bad time range {value!r}: hours 00-23 (24:00 ends a day), minutes 00-59")
    if (h1, m1) == (h2, m2):
        raise ValueError(f"bad time range {value!r}: it starts and ends at the same time")
    end = time.max if h2 == 24 else time(h2, m2)
    return time(h1, m1), end


class Conditions(Strict):
    channel: Names | None = None  # channel instance names of config.yaml
    intent: Names | None = None  # of the customer's message
    text: TextCondition | None = None
    labels: LabelsCondition | None = None
    status: Annotated[list[Status], BeforeValidator(_listed)] | None = None
    sender: Annotated[list[Sender], BeforeValidator(_listed)] | None = None  # default: contact
    time: TimeCondition | None = None


# ---- actions ----------------------------------------------------------------------------


class MessageSpec(Strict):
    text: str | dict[str, str] = Field(min_length=1)  # one text, or one per language
    private: bool = False  # a note for agents, not sent to the customer


def _message(value: Any) -> Any:
    return {"text": value} if isinstance(value, str) else value


class WebhookSpec(Strict):
    url: HttpUrl
    # signs the POST (X-Kefu-Signature); `${VAR}` reads it from the environment, so that the
    # secret is not kept in the bot's git repository
    secret: str | None = Field(default=None, min_length=8)

    @field_validator("secret")
    @classmethod
    def _from_environment(cls, value: str | None) -> str | None:
        m = _VARIABLE.fullmatch(value or "")
        if m is None:
            return value
        if m.group(1) not in os.environ:
            raise ValueError(f"${{{m.group(1)}}} is not set in the environment")
        secret = os.environ[m.group(1)]
        if len(secret) < 8:
            raise ValueError(f"${{{m.group(1)}}} is shorter than 8 characters")
        return secret


_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class AssignTeam(Strict):
    assign_team: str = Field(min_length=1, max_length=64)


class AddLabel(Strict):
    add_label: str = Field(min_length=1, max_length=32)


class RemoveLabel(Strict):
    remove_label: str = Field(min_length=1, max_length=32)


class SetPriority(Strict):
    set_priority: Priority


class SetStatus(Strict):
    set_status: Status


class SendMessage(Strict):
    send_message: Annotated[MessageSpec, BeforeValidator(_message)]


class SendWebhook(Strict):
    webhook: WebhookSpec


ACTIONS: dict[str, type[Strict]] = {
    "assign_team": AssignTeam,
    "add_label": AddLabel,
    "remove_label": RemoveLabel,
    "set_priority": SetPriority,
    "set_status": SetStatus,
    "send_message": SendMessage,
    "webhook": SendWebhook,
}


def _action_kind(value: Any) -> str | None:
    if isinstance(value, dict) and len(value) == 1:
        key = next(iter(value))
        return key if key in ACTIONS else None
    return None


Action = Annotated[
    Annotated[AssignTeam, Tag("assign_team")]
    | Annotated[AddLabel, Tag("add_label")]
    | Annotated[RemoveLabel, Tag("remove_label")]
    | Annotated[SetPriority, Tag("set_priority")]
    | Annotated[SetStatus, Tag("set_status")]
    | Annotated[SendMessage, Tag("send_message")]
    | Annotated[SendWebhook, Tag("webhook")],
    Discriminator(
        _action_kind,
        custom_error_type="unknown_action",
        custom_error_message=f"an action is one key of: {', '.join(ACTIONS)}",
    ),
]


class Rule(Strict):
    name: str = Field(min_length=1, max_length=50)  # the audit log names it: automation:<name>
    on: EventName
    if_: Conditions = Field(default_factory=Conditions, alias="if")
    then: list[Action] = Field(min_length=1)


# ---- loading ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedRule:
    """A valid rule with where it is written."""

    rule: Rule
    path: str
    line: int
    tree: Any = field(default=None, compare=False, repr=False)  # the rule's YAML mapping

    @property
    def name(self) -> str:
        return self.rule.name

    @property
    def source(self) -> str:
        return f"{self.path}:{self.line}"

    def where(self, loc: Loc) -> str:
        line, column = position(self.tree, loc)
        return f"{self.path}:{line}:{column}"


def _file_loc(loc: Iterable[Any]) -> Loc:
    """A pydantic error location as it is in the file: without the action's union tag
    (`then.0.add_label.add_label` is `then.0.add_label`) nor `if_` for `if`."""
    parts = ["if" if p == "if_" else p for p in loc]
    kept: list[Any] = []
    for i, part in enumerate(parts):
        if i == 2 and parts[0] == "then" and isinstance(parts[1], int) and part in ACTIONS:
            continue
        kept.append(part)
    return tuple(kept)


def _message_of(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "unknown_action" and isinstance(err.get("input"), dict):
        keys = ", ".join(map(repr, err["input"])) or "nothing"
        return f"{err['msg']} (got {keys})"
    return str(err["msg"]).removeprefix("Value error, ")


def _references(
    body: CommentedMap, channels: set[str] | None, intents: set[str] | None
) -> list[tuple[Loc, str]]:
    """Conditions that name what the hub doesn't have, or don't fit the rule's event; read
    from the YAML itself, so that they are reported along with the schema's errors."""
    found: list[tuple[Loc, str]] = []
    conditions = body.get("if")
    if not isinstance(conditions, CommentedMap):
        return found
    if body.get("on") in EVENTS and body.get("on") != "message.created":
        for key in MESSAGE_ONLY:
            if key in conditions:
                found.append((("if", key), f"`{key}` is a condition of message.created rules"))
    for key, known, what in (
        ("channel", channels, "unknown channel {!r} (config.yaml has: {})"),
        ("intent", intents, "intent {!r} is not in the NLU data (it has: {})"),
    ):
        names = conditions.get(key)
        if known is None or names is None:
            continue
        for i, name in enumerate(_listed(names)):
            if isinstance(name, str) and name not in known:
                loc = ("if", key, i) if isinstance(names, list) else ("if", key)
                found.append((loc, what.format(name, ", ".join(sorted(known)))))
    return found


def load_file(
    path: Path,
    channels: set[str] | None = None,
    intents: set[str] | None = None,
    names: list[tuple[str, str, str]] | None = None,
) -> tuple[list[LoadedRule], list[str]]:
    """The rules of one file, and the errors found in it. `names` gets each rule's name, valid
    or not, with where the rule and its name are (to find duplicates)."""
    tree, error = read_yaml(path)
    if error is not None:
        return [], [error]
    if tree is None:
        return [], []
    if not isinstance(tree, CommentedSeq):
        line, column = position(tree, ())
        return [], [f"{path}:{line}:{column}: an automation file is a list of rules (- name: ...)"]
    rules: list[LoadedRule] = []
    errors: list[str] = []
    for i, body in enumerate(tree):
        line, column = position(tree, (i,))
        name = body.get("name") if isinstance(body, CommentedMap) else None
        label = f"rule {name!r}" if isinstance(name, str) else f"rule {i + 1}"
        if not isinstance(body, CommentedMap):
            errors.append(
                f"{path}:{line}:{column}: {label}: a rule is a mapping (name, on, if, then)"
            )
            continue
        if names is not None and isinstance(name, str):
            at_line, at_column = position(body, ("name",))
            names.append((name, f"{path}:{line}", f"{path}:{at_line}:{at_column}"))
        problems = _references(body, channels, intents)
        try:
            rule = Rule.model_validate(body)
        except ValidationError as e:
            problems += [(_file_loc(err["loc"]), _message_of(err)) for err in e.errors()]
        else:
            if not problems:
                rules.append(LoadedRule(rule, str(path), line, body))
        for loc, message in problems:
            at_line, at_column = position(body, loc)
            place = ".".join(str(p) for p in loc) or "rule"
            errors.append(f"{path}:{at_line}:{at_column}: {label}: {place}: {message}")
    return rules, errors


def load_automations(
    folder: Path,
    channels: Iterable[str] | None = None,
    intents: Iterable[str] | None = None,
) -> list[LoadedRule]:
    """The rules of `folder/*.yml` in file order (files sorted by name); raises
    AutomationError listing every problem. `channels`/`intents`: the names a condition may
    use (None: not checked). No folder: no rules."""
    known_channels = None if channels is None else set(channels)
    known_intents = None if intents is None else set(intents)
    rules: list[LoadedRule] = []
    errors: list[str] = []
    names: list[tuple[str, str, str]] = []
    for path in sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]):
        file_rules, file_errors = load_file(path, known_channels, known_intents, names)
        rules += file_rules
        errors += file_errors
    first: dict[str, str] = {}
    for name, source, where in names:
        if name in first:
            errors.append(f"{where}: duplicate rule name {name!r} (first at {first[name]})")
        else:
            first[name] = source
    if errors:
        raise AutomationError(by_place(errors))
    return rules


def load_bot_automations(settings: Settings, intents: Iterable[str] | None) -> list[LoadedRule]:
    """The rules of the bot folder's `automations/`, checked against the channels of
    config.yaml (and the built-in try-it chat's) and the given NLU intents."""
    channels = {c.name for c in settings.channels} | {TRY_IT}
    return load_automations(settings.bot.path / "automations", channels, intents)
