"""Load a bot folder's flows/*.yml, keeping line numbers so every error reads
`path:line:column: what is wrong` (all of them, not only the first)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from flows.schema import ButtonSpec, Flow, LangText, SayStep
from flows.templates import TemplateSyntaxError, compile_template


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


def _position(node: Any, loc: Iterable[Any]) -> tuple[int, int]:
    """The 1-based line and column of the deepest node on `loc` that the YAML has."""
    line, column = (node.lc.line, node.lc.col) if hasattr(node, "lc") else (0, 0)
    for key in loc:
        if isinstance(node, CommentedMap) and key in node:
            line, column = node.lc.key(key)
            node = node[key]
        elif isinstance(node, CommentedSeq) and isinstance(key, int) and key < len(node):
            line, column = node.lc.item(key)
            node = node[key]
        # else: a pydantic-only loc part (a union tag): skip it
    return line + 1, column + 1


def _texts(value: LangText) -> list[str]:
    return [value] if isinstance(value, str) else list(value.values())


def _static_errors(flow: Flow) -> list[tuple[tuple[Any, ...], str]]:
    """Template syntax errors and bad regexes, located by their place in the flow."""
    found: list[tuple[tuple[Any, ...], str]] = []
    if flow.trigger.regex:
        try:
            re.compile(flow.trigger.regex)
        except re.error as e:
            found.append((("trigger", "regex"), f"bad regex: {e}"))
    for i, step in enumerate(flow.steps):
        if not isinstance(step, SayStep):
            continue
        sources: list[tuple[tuple[Any, ...], str]] = [
            (("steps", i, "say"), t) for t in _texts(step.say)
        ]
        for j, button in enumerate(step.buttons):
            assert isinstance(button, ButtonSpec)
            sources += [(("steps", i, "buttons", j, "title"), t) for t in _texts(button.title)]
        for loc, source in sources:
            try:
                compile_template(source)
            except TemplateSyntaxError as e:
                found.append((loc, f"template error: {e.message}"))
    return found


def load_file(path: Path) -> tuple[list[LoadedFlow], list[str]]:
    """The flows of one file, and the errors found in it."""
    try:
        tree = YAML(typ="rt").load(path.read_text(encoding="utf-8"))
    except MarkedYAMLError as e:
        mark = e.problem_mark
        at = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else f"{path}:1:1"
        return [], [f"{at}: invalid YAML: {e.problem}"]
    if tree is None:
        return [], []
    if not isinstance(tree, CommentedMap) or not isinstance(tree.get("flows"), CommentedMap):
        line, column = _position(tree, ("flows",))
        return [], [f"{path}:{line}:{column}: a flow file is a mapping with a `flows:` mapping"]
    loaded: list[LoadedFlow] = []
    errors: list[str] = []
    for key in tree:
        if key != "flows":
            line, column = _position(tree, (key,))
            errors.append(f"{path}:{line}:{column}: unknown top-level key {key!r}")
    for name, body in tree["flows"].items():
        where: tuple[str, ...] = ("flows", name)
        try:
            flow = Flow.model_validate(body)
        except ValidationError as e:
            errors += [
                f"{path}:{':'.join(map(str, _position(tree, (*where, *err['loc']))))}: "
                f"flows.{name}.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
                for err in e.errors()
            ]
            continue
        for loc, message in _static_errors(flow):
            position = ":".join(map(str, _position(tree, (*where, *loc))))
            errors.append(f"{path}:{position}: flows.{name}: {message}")
        line, column = _position(tree, where)
        loaded.append(LoadedFlow(name, flow, f"{path}:{line}:{column}"))
    return loaded, errors


def load_flows(folder: Path) -> dict[str, LoadedFlow]:
    """Every flow of `folder/*.yml`; raises FlowError listing all problems."""
    flows: dict[str, LoadedFlow] = {}
    errors: list[str] = []
    for path in sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]):
        loaded, file_errors = load_file(path)
        errors += file_errors
        for item in loaded:
            if item.name in flows:
                errors.append(
                    f"{item.source}: duplicate flow name {item.name!r} "
                    f"(first defined at {flows[item.name].source})"
                )
            else:
                flows[item.name] = item
    if errors:
        raise FlowError(errors, flows)
    return flows
