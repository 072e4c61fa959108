"""Jinja2 templates and conditions in a sandbox: designers' text may read the turn's data,
never Python internals, files or the network.

The environment is Jinja2's ImmutableSandboxedEnvironment without a loader: no attribute that
starts with an underscore, no mutation of the turn's data, no `include`/`import` of files.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jinja2 import Template, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

# What a template or condition may read (docs/flows.md).
VARIABLES = frozenset({"slots", "contact", "conversation", "message", "intent", "entities", "now"})
_DICT_METHODS = frozenset({"get", "items", "keys", "values"})

_env = ImmutableSandboxedEnvironment(autoescape=False, keep_trailing_newline=False)


def compile_template(source: str) -> Template:
    """Compile once at load; raises TemplateSyntaxError with the line in the template."""
    return _env.from_string(source)


def compile_condition(source: str) -> Callable[..., Any]:
    """A Jinja2 expression (`slots.status == 'lost'`), compiled; raises TemplateSyntaxError."""
    return _env.compile_expression(source)


def render(template: Template, variables: dict[str, Any]) -> str:
    return template.render(**variables).strip()


def references(source: str, *, expression: bool = False) -> tuple[set[str], set[str]]:
    """The top-level variables and the slots (`slots.x`, `slots['x']`, `slots.get('x')`)
    that a template or expression reads. Raises TemplateSyntaxError."""
    if expression:
        compile_condition(source)  # the syntax check an expression gets when it runs
        source = "{{ (" + source + ") }}"
    tree = _env.parse(source)
    names = set(meta.find_undeclared_variables(tree))
    slots: set[str] = set()
    for node in tree.find_all(nodes.Getattr):
        if _is_slots(node.node) and node.attr not in _DICT_METHODS:
            slots.add(node.attr)
    for item in tree.find_all(nodes.Getitem):
        if _is_slots(item.node) and isinstance(item.arg, nodes.Const):
            slots.add(str(item.arg.value))
    for call in tree.find_all(nodes.Call):
        target = call.node
        if (
            isinstance(target, nodes.Getattr)
            and _is_slots(target.node)
            and target.attr == "get"
            and call.args
            and isinstance(call.args[0], nodes.Const)
        ):
            slots.add(str(call.args[0].value))
    return names, slots


def _is_slots(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Name) and node.name == "slots"


__all__ = [
    "VARIABLES",
    "SecurityError",
    "Template",
    "TemplateSyntaxError",
    "UndefinedError",
    "compile_condition",
    "compile_template",
    "references",
    "render",
]
