"""Jinja2 templates in a sandbox: designers' text may read the turn's data, never Python
internals, files or the network."""

from __future__ import annotations

from typing import Any

from jinja2 import Template, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

_env = ImmutableSandboxedEnvironment(autoescape=False, keep_trailing_newline=False)


def compile_template(source: str) -> Template:
    """Compile once at load; raises TemplateSyntaxError with the line in the template."""
    return _env.from_string(source)


def render(template: Template, variables: dict[str, Any]) -> str:
    return template.render(**variables).strip()


__all__ = ["Template", "TemplateSyntaxError", "compile_template", "render"]
