"""Rasa entity markup in training examples: ``[12345678](order_id)``, ``[SF]{"entity": ...}``
and, as Rasa 3 allows, several entities on one text: ``[Paris][{"entity": "city"},
{"entity": "destination"}]``.

The markup is stripped from the text and each annotation becomes an `EntitySpan` whose character
offsets point into the stripped text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

# `[text](entity)`, `[text](entity:value)` (Rasa 1 shorthand), `[text]{"entity": ...}` or
# `[text][{"entity": ...}, {"entity": ...}]`.
_ANNOTATION = re.compile(
    r"\[(?P<text>[^\[\]]+)\]"
    r"(?:\((?P<short>[^()]*)\)|(?P<json>\{[^{}]*\})|(?P<list>\[\s*\{[^\[\]]*\}\s*\]))"
)


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
        spans.extend(_spans(match, surface, length))
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


def _spans(match: re.Match[str], surface: str, start: int) -> list[EntitySpan]:
    end = start + len(surface)
    short = match.group("short")
    if short is not None:
        entity, _, value = short.partition(":")
        if not entity.strip():
            raise MarkupError(f"annotation [{surface}] has no entity name", match.start())
        return [EntitySpan(entity.strip(), value.strip() or surface, start, end)]
    group = "json" if match.group("json") is not None else "list"
    try:
        spec = json.loads(match.group(group))
    except json.JSONDecodeError as exc:
        raise MarkupError(
            f"annotation [{surface}] has invalid JSON: {exc.msg}", match.start(group)
        ) from None
    specs = spec if isinstance(spec, list) else [spec]
    return [_from_json(item, surface, start, end, match.start(group)) for item in specs]


def _from_json(spec: object, surface: str, start: int, end: int, offset: int) -> EntitySpan:
    entity = spec.get("entity") if isinstance(spec, dict) else None
    if not isinstance(spec, dict) or not isinstance(entity, str) or not entity.strip():
        raise MarkupError(f'annotation [{surface}] needs an "entity" name', offset)
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
    for match in re.finditer(r"\[[^\[\]]*\][({]|\[[^\[\]]*\]\[\s*\{", raw):
        if not _ANNOTATION.match(raw, match.start()):
            raise MarkupError("unclosed entity annotation", match.start())


def _shifted(span: EntitySpan, delta: int) -> EntitySpan:
    return EntitySpan(
        span.entity, span.value, span.start + delta, span.end + delta, span.role, span.group
    )
