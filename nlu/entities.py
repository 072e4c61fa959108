"""Entities found by the bot's regexes and lookup tables, mapped through its synonyms.

Offsets are Python string indexes (code points) into the message as received, so they are right
for Chinese text too: in "我的订单20231105到哪了" the order id spans 4..12.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TypedDict

from nlu.tokenize import HAN

__all__ = ["Entity", "EntityExtractor"]

# A letter or digit of a script other than Chinese: lookup values must not match inside words
# ("ems" in "items"), while Chinese, written without spaces, has no such boundary.
_WORD_CHAR = f"[^\\W_{HAN}]"


class Entity(TypedDict):
    """An entity found in a message; ``value`` is canonical when a synonym applies."""

    entity: str
    value: str
    start: int
    end: int


class EntityExtractor:
    """Regex and lookup-table entity extraction with synonym mapping, case-insensitive."""

    def __init__(
        self,
        regexes: Mapping[str, Iterable[str]] | None = None,
        lookups: Mapping[str, Iterable[str]] | None = None,
        synonyms: Mapping[str, str] | None = None,
    ) -> None:
        """Compile the patterns; ``synonyms`` maps a variant (any case) to its canonical value."""
        self._patterns: list[tuple[str, re.Pattern[str]]] = []
        # A lookup match takes the table's spelling: "sf express" is reported as "SF Express".
        self._spellings: dict[str, str] = {}
        for name, values in (lookups or {}).items():
            table = list(values)
            pattern = _lookup_pattern(table)
            if pattern is not None:
                self._patterns.append((name, pattern))
                self._spellings.update((_key(value), value.strip()) for value in table)
        for name, patterns in (regexes or {}).items():
            self._patterns.extend((name, re.compile(p, re.IGNORECASE)) for p in patterns)
        self._synonyms = {_key(variant): value for variant, value in (synonyms or {}).items()}

    def extract(self, text: str) -> list[Entity]:
        """Entities in ``text``, in order; of overlapping matches the longest wins."""
        candidates = [
            (match.start(), match.end(), name)
            for name, pattern in self._patterns
            for match in pattern.finditer(text)
            if match.end() > match.start()
        ]
        # Stable sort: at equal spans lookups (compiled first) win over regexes.
        candidates.sort(key=lambda c: (c[0], c[0] - c[1]))
        entities: list[Entity] = []
        reached = 0
        for start, end, name in candidates:
            if start < reached:
                continue
            entities.append(
                Entity(entity=name, value=self.canonical(text[start:end]), start=start, end=end)
            )
            reached = end
        return entities

    def canonical(self, value: str) -> str:
        """The canonical form of an entity value: its synonym's, else its lookup spelling."""
        key = _key(value)
        return self._synonyms.get(key) or self._spellings.get(key) or value


def _key(value: str) -> str:
    """Case and spacing do not tell entity values apart."""
    return " ".join(value.split()).casefold()


def _lookup_pattern(values: Iterable[str]) -> re.Pattern[str] | None:
    """One alternation of the values, longest first, spaces matching any whitespace."""
    words = sorted({v.strip() for v in values if v.strip()}, key=lambda v: (-len(v), v))
    if not words:
        return None
    alternatives = []
    for word in words:
        body = r"\s+".join(re.escape(part) for part in word.split())
        if re.match(_WORD_CHAR, word[0]):
            body = f"(?<!{_WORD_CHAR}){body}"
        if re.match(_WORD_CHAR, word[-1]):
            body = f"{body}(?!{_WORD_CHAR})"
        alternatives.append(body)
    return re.compile("|".join(alternatives), re.IGNORECASE)
