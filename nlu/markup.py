"""Rasa entity markup in training examples: ``[12345678](order_id)`` and ``[SF]{"entity": ...}``.

The markup is stripped from the text and each annotation becomes an `EntitySpan` whose character
offsets point into the stripped text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

# `[text](entity)`, `[text](entity:value)` (Rasa 1 shorthand) or `[text]{"entity": ...}`.
_ANNOTATION = re.compile(r"\[(?P<text>[^\[\]]+)\](?:\((?P<short>[^()]*)\)|(?P<json>\{[^{}]*\}))")


@dataclass(frozen=True)
class EntitySpan:
    """An entity annotated in a training example; ``start``/``end`` index the stripped text."""

    entity: str
    value: str
    start: int
    end: int
    role: str | None = None
    group: str | None = None


class MarkupError(ValueError):
    """An annotation that cannot be read; ``offset`` is its position in the raw example."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


def parse_markup(raw: str) -> tuple[str, tuple[EntitySpan, ...]]:
    """Strip entity markup from ``raw``; return the plain text and the annotated spans."""
    parts: list[str] = []
    spans: list[EntitySpan] = []
    length = 0
    position = 0
    for match in _ANNOTATION.finditer(raw):
        before = raw[position : match.start()]
        parts.append(before)
        length += len(before)
        surface = match.group("text")
        spans.append(_span(match, surface, length))
        parts.append(surface)
        length += len(surface)
        position = match.end()
    parts.append(raw[position:])
    text = "".join(parts)
    _check_unclosed(raw)
    # Rasa strips surrounding whitespace; shift the spans with it.
    stripped = text.strip()
    shift = len(text) - len(text.lstrip())
    if shift:
        spans = [_shifted(span, -shift) for span in spans]
    return stripped, tuple(spans)


def _span(match: re.Match[str], surface: str, start: int) -> EntitySpan:
    end = start + len(surface)
    short = match.group("short")
    if short is not None:
        entity, _, value = short.partition(":")
        if not entity.strip():
            raise MarkupError(f"annotation [{surface}] has no entity name", match.start())
        return EntitySpan(entity.strip(), value.strip() or surface, start, end)
    try:
        spec = json.loads(match.group("json"))
    except json.JSONDecodeError as exc:
        raise MarkupError(
            f"annotation [{surface}] has invalid JSON: {exc.msg}", match.start("json")
        ) from None
    entity = spec.get("entity") if isinstance(spec, dict) else None
    if not isinstance(entity, str) or not entity.strip():
        raise MarkupError(f'annotation [{surface}] needs an "entity" name', match.start("json"))
    value = spec.get("value", surface)
    role, group = spec.get("role"), spec.get("group")
    return EntitySpan(
        entity.strip(),
        str(value),
        start,
        end,
        role=None if role is None else str(role),
        group=None if group is None else str(group),
    )


def _check_unclosed(raw: str) -> None:
    """Flag a ``[text](entity`` left unclosed, the commonest typo in annotated examples."""
    for match in re.finditer(r"\[[^\[\]]*\][({]", raw):
        if not _ANNOTATION.match(raw, match.start()):
            raise MarkupError("unclosed entity annotation", match.start())


def _shifted(span: EntitySpan, delta: int) -> EntitySpan:
    return EntitySpan(
        span.entity, span.value, span.start + delta, span.end + delta, span.role, span.group
    )
