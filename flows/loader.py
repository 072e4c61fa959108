"""Load a bot folder's flows/*.yml, keeping line numbers so every error reads
`path:line:column: what is wrong` (all of them, not only the first).

Checked here, with the flows alone: the schema (unknown step kinds and keys, wrong types),
regexes, Jinja2 syntax of every template and condition, variables a template may not read,
duplicate flow names, `goto`/`on_fail`/`on_error` targets, and slots a template reads that
nothing in the flow (or a flow that goes to it) can fill. What needs the NLU data or the
actions (unknown intents, unknown actions) is in `flows.checks`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pydantic import ValidationError
from ruamel.yaml.comments import CommentedMap

from flows.schema import (
    STEP_KINDS,
    ActionStep,
    AskStep,
    ChoiceSpec,
    Flow,
    GotoStep,
    HandoffStep,
    HttpStep,
    IfStep,
    LangText,
    SayStep,
    SetStep,
    iter_steps,
)
from flows.templates import VARIABLES, TemplateSyntaxError, references
from hub.yaml_places import by_place, position, read_yaml

Loc = tuple[Any, ...]
_STEP_LISTS = ("steps", "then", "else")


class FlowError(Exception):
    """Invalid flow files; `errors` lists every problem as `path:line:column: message`,
    `flows` holds the flows that did load (so checks can go on with them)."""

    def __init__(self, errors: list[str], flows: dict[str, LoadedFlow] | None = None) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors
        self.flows = flows or {}


@dataclass(frozen=True)
class LoadedFlow:
    name: str
    flow: Flow
    source: str  # path:line:column of its definition
    path: str = ""
    tree: Any = field(default=None, compare=False, repr=False)  # the flow's YAML mapping

    def where(self, loc: Loc) -> str:
        """`path:line:column` of a place in this flow, e.g. `("steps", 1, "say")`."""
        if self.tree is None:
            return self.source
        line, column = position(self.tree, loc)
        return f"{self.path}:{line}:{column}"


def _without_tags(loc: Iterable[Any]) -> tuple[Any, ...]:
    """A pydantic error location without the union tags it puts after a step's index
    (`steps.0.ask.say` is `steps.0.say` in the file)."""
    parts = list(loc)
    kept: list[Any] = []
    for i, part in enumerate(parts):
        after_step_index = i >= 2 and isinstance(parts[i - 1], int) and parts[i - 2] in _STEP_LISTS
        if after_step_index and part in STEP_KINDS:
            continue
        kept.append(part)
    return tuple(kept)


# ---- what a flow contains --------------------------------------------------------------------


@dataclass(frozen=True)
class Use:
    """One thing in a flow that a check looks at, with its place."""

    loc: Loc
    kind: str  # template | expression | regex | fills | action | target
    value: str


def _texts(value: LangText | None, loc: Loc) -> Iterator[Use]:
    if value is None:
        return
    if isinstance(value, str):
        yield Use(loc, "template", value)
    else:
        for language, text in value.items():
            yield Use((*loc, language), "template", text)


def _buttons(buttons: list[Any], loc: Loc) -> Iterator[Use]:
    for j, button in enumerate(buttons):
        yield from _texts(button.title, (*loc, "buttons", j, "title"))


def _json_strings(value: Any, loc: Loc) -> Iterator[Use]:
    if isinstance(value, str):
        yield Use(loc, "template", value)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _json_strings(v, (*loc, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _json_strings(v, (*loc, i))


def uses(flow: Flow) -> Iterator[Use]:
    """Templates, conditions, regexes, slot fills, actions and flow targets, in document
    order (the order they run in, branches aside)."""
    if flow.trigger.regex:
        yield Use(("trigger", "regex"), "regex", flow.trigger.regex)
    for loc, step in iter_steps(flow.steps):
        if isinstance(step, SayStep):
            yield from _texts(step.say, (*loc, "say"))
            yield from _buttons(step.buttons, loc)
            if step.image:
                yield Use((*loc, "image"), "template", step.image)
        elif isinstance(step, AskStep):
            yield from _texts(step.say, (*loc, "say"))
            yield from _texts(step.on_invalid, (*loc, "on_invalid"))
            yield from _buttons(step.buttons, loc)
            for j, choice in enumerate(step.choices):
                if isinstance(choice, ChoiceSpec):
                    yield from _texts(choice.title, (*loc, "choices", j, "title"))
            if step.validate_:
                yield Use((*loc, "validate"), "regex", step.validate_)
            if step.on_fail != "handoff":
                yield Use((*loc, "on_fail"), "target", step.on_fail)
            yield Use((*loc, "ask"), "fills", step.ask)
        elif isinstance(step, SetStep):
            for slot, value in step.set.items():
                yield from _json_strings(value, (*loc, "set", slot))
            for slot in step.set:
                yield Use((*loc, "set", slot), "fills", slot)
        elif isinstance(step, IfStep):
            yield Use((*loc, "if"), "expression", step.if_)
        elif isinstance(step, ActionStep):
            yield Use((*loc, "action"), "action", step.action)
            for slot in step.sets:
                yield Use((*loc, "sets"), "fills", slot)
        elif isinstance(step, HttpStep):
            spec = step.http
            yield Use((*loc, "http", "url"), "template", spec.url)
            for name, value in spec.headers.items():
                yield Use((*loc, "http", "headers", name), "template", value)
            yield from _json_strings(spec.json_, (*loc, "http", "json"))
            for slot in spec.save:
                yield Use((*loc, "http", "save", slot), "fills", slot)
            if step.on_error not in ("handoff", "continue"):
                yield Use((*loc, "on_error"), "target", step.on_error)
        elif isinstance(step, GotoStep):
            yield Use((*loc, "goto"), "target", step.goto)
        elif isinstance(step, HandoffStep) and step.handoff.note:
            yield Use((*loc, "handoff", "note"), "template", step.handoff.note)


# ---- checks ----------------------------------------------------------------------------------


def _static_errors(flow: Flow) -> list[tuple[Loc, str]]:
    """Bad regexes, template and condition syntax, variables templates may not read."""
    found: list[tuple[Loc, str]] = []
    for use in uses(flow):
        if use.kind == "regex":
            try:
                re.compile(use.value)
            except re.error as e:
                found.append((use.loc, f"bad regex {use.value!r}: {e}"))
        elif use.kind in ("template", "expression"):
            try:
                names, _ = references(use.value, expression=use.kind == "expression")
            except TemplateSyntaxError as e:
                found.append((use.loc, f"{use.kind} error: {e.message}"))
                continue
            for name in sorted(names - VARIABLES):
                found.append(
                    (
                        use.loc,
                        f"unknown variable {name!r}; use one of: {', '.join(sorted(VARIABLES))}",
                    )
                )
    return found


def _slot_errors(flows: dict[str, LoadedFlow]) -> list[str]:
    """Slots a template reads that nothing can fill: not filled in its flow (ask, set, http
    save, an action's `sets`) nor in a flow that goes to it, and no action runs before it."""
    filled = {
        name: {u.value for u in uses(item.flow) if u.kind == "fills"}
        for name, item in flows.items()
    }
    callers: dict[str, set[str]] = {name: set() for name in flows}
    for name, item in flows.items():
        for use in uses(item.flow):
            if use.kind == "target" and use.value in callers:
                callers[use.value].add(name)
    known = {name: set(slots) for name, slots in filled.items()}
    changed = True
    while changed:  # slots travel along goto/on_fail/on_error edges
        changed = False
        for name, sources in callers.items():
            for caller in sources:
                if not known[caller] <= known[name]:
                    known[name] |= known[caller]
                    changed = True
    errors: list[str] = []
    for name, item in flows.items():
        after_action = False
        for use in uses(item.flow):
            if use.kind == "action":
                after_action = True
            if use.kind not in ("template", "expression") or after_action:
                continue
            try:
                _, slots = references(use.value, expression=use.kind == "expression")
            except TemplateSyntaxError:
                continue  # reported by _static_errors
            for slot in sorted(slots - known[name]):
                errors.append(
                    f"{item.where(use.loc)}: flows.{name}: slot {slot!r} is used but nothing "
                    "fills it (no ask, set, http save or action before it)"
                )
    return errors


def _target_errors(flows: dict[str, LoadedFlow]) -> list[str]:
    errors = []
    for name, item in flows.items():
        for use in uses(item.flow):
            if use.kind == "target" and use.value not in flows:
                what = use.loc[-1]
                errors.append(
                    f"{item.where(use.loc)}: flows.{name}: {what} to unknown flow {use.value!r}"
                )
    return errors


# ---- loading ---------------------------------------------------------------------------------


def load_file(path: Path) -> tuple[list[LoadedFlow], list[str]]:
    """The flows of one file, and the errors found in it."""
    tree, error = read_yaml(path)
    if error is not None:
        return [], [error]
    if tree is None:
        return [], []
    if not isinstance(tree, CommentedMap) or not isinstance(tree.get("flows"), CommentedMap):
        line, column = position(tree, ("flows",))
        return [], [f"{path}:{line}:{column}: a flow file is a mapping with a `flows:` mapping"]
    loaded: list[LoadedFlow] = []
    errors: list[str] = []
    for key in tree:
        if key != "flows":
            line, column = position(tree, (key,))
            errors.append(f"{path}:{line}:{column}: unknown top-level key {key!r}")
    for name, body in tree["flows"].items():
        where: tuple[str, ...] = ("flows", name)
        try:
            flow = Flow.model_validate(body)
        except ValidationError as e:
            for err in e.errors():
                loc = _without_tags(err["loc"])
                line, column = position(tree, (*where, *loc))
                label = ".".join(str(p) for p in loc)
                errors.append(f"{path}:{line}:{column}: flows.{name}.{label}: {err['msg']}")
            continue
        line, column = position(tree, where)
        item = LoadedFlow(name, flow, f"{path}:{line}:{column}", str(path), tree["flows"][name])
        for loc, message in _static_errors(flow):
            errors.append(f"{item.where(loc)}: flows.{name}: {message}")
        loaded.append(item)
    return loaded, errors


def yaml_files(folder: Path) -> list[Path]:
    """A bot folder's `*.yml` and `*.yaml` files, sorted (none when it doesn't exist)."""
    return sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")])


class Named(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def source(self) -> str: ...


N = TypeVar("N", bound=Named)


def unique_names(items: Iterable[N], what: str) -> tuple[dict[str, N], list[str]]:
    """The items by name, the first of each name kept; an error for every later one."""
    by_name: dict[str, N] = {}
    errors: list[str] = []
    for item in items:
        if item.name in by_name:
            errors.append(
                f"{item.source}: duplicate {what} name {item.name!r} "
                f"(first defined at {by_name[item.name].source})"
            )
        else:
            by_name[item.name] = item
    return by_name, errors


def load_flows(folder: Path) -> dict[str, LoadedFlow]:
    """Every flow of `folder/*.yml`; raises FlowError listing all problems."""
    loaded: list[LoadedFlow] = []
    errors: list[str] = []
    for path in yaml_files(folder):
        file_flows, file_errors = load_file(path)
        loaded += file_flows
        errors += file_errors
    flows, duplicates = unique_names(loaded, "flow")
    errors += duplicates
    errors += _target_errors(flows)
    errors += _slot_errors(flows)
    if errors:
        raise FlowError(by_place(errors), flows)
    return flows
