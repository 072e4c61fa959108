"""NLU training data in Rasa 3 YAML: intent examples, entity markup, synonyms, regexes, lookups.

A Rasa project's ``nlu.yml`` loads as is: top-level keys other than ``version`` and ``nlu``
(``responses``, ``stories``, ``rules``, ...) are ignored. Every problem found in every file is
reported at once, as ``path:line:column: what is wrong``.

Annotated entities are found at parse time as exact values: each annotated text (``[面条](food)``),
its annotated value (``[NY](city:New York)``, ``[SF]{"entity": "carrier", "value": "顺丰"}``)
and the ``synonym:`` variants of that value join the entity's lookup table (`TrainingData.lookups`,
which the extractor is built from; `TrainingData.annotated` says which joined). Not the values
that would be unsafe: a single character, text without a letter (an order number is a regex's
job), what a regex of the entity already matches whole, and a value the data itself shows
elsewhere without the annotation (a warning names it). A learned extractor was measured against
this and does not beat it (BENCHMARKS.md, bench/nlu_entities.py).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from nlu.entities import EntityExtractor
from nlu.markup import EntitySpan, MarkupError, parse_markup

__all__ = ["EntitySpan", "Example", "NluDataError", "TrainingData"]

# Bumped whenever the normalized form changes, so that old fingerprints stop matching.
_FINGERPRINT_FORMAT = 1
_KINDS = ("intent", "synonym", "regex", "lookup")
_ITEM_KEYS = {*_KINDS, "examples", "metadata"}

Source = str | Path


class NluDataError(ValueError):
    """Invalid NLU data; ``errors`` holds every problem as ``path:line:column: what is wrong``."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


@dataclass(frozen=True)
class Example:
    """One training example of an intent, markup stripped; ``source`` is ``path:line``."""

    text: str
    intent: str
    entities: tuple[EntitySpan, ...] = ()
    source: str = ""


@dataclass
class TrainingData:
    """Intent examples, entity annotations, synonyms, regexes and lookup tables of one bot."""

    training_examples: list[Example] = field(default_factory=list)
    synonyms: dict[str, str] = field(default_factory=dict)
    regexes: dict[str, list[str]] = field(default_factory=dict)
    lookups: dict[str, list[str]] = field(default_factory=dict)  # with the annotated values
    warnings: list[str] = field(default_factory=list)
    # entity -> the annotated values (and their synonyms) that joined its lookup table
    annotated: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, source: Source | Sequence[Source]) -> TrainingData:
        """Load a YAML file, a folder (its ``*.yml``/``*.yaml``, sorted) or a list of either.

        Raises `NluDataError` listing every problem of every file.
        """
        sources = [source] if isinstance(source, str | Path) else list(source)
        reader = _Reader()
        for path in _expand(sources, reader.errors):
            reader.read_file(path)
        return reader.finish()

    @classmethod
    def from_yaml(cls, text: str, path: str = "<string>") -> TrainingData:
        """Parse NLU data from YAML text; ``path`` names it in error messages."""
        reader = _Reader()
        reader.read_text(text, path)
        return reader.finish()

    @property
    def intents(self) -> list[str]:
        """Intent names, in the order they first appear."""
        return list(dict.fromkeys(example.intent for example in self.training_examples))

    @property
    def examples(self) -> list[tuple[str, str]]:
        """``(text, intent)`` pairs, markup stripped."""
        return [(example.text, example.intent) for example in self.training_examples]

    @property
    def entity_examples(self) -> list[Example]:
        """The examples that carry at least one entity annotation."""
        return [example for example in self.training_examples if example.entities]

    @property
    def entity_values(self) -> list[str]:
        """Every annotated entity surface text and lookup value (for the tokenizer's dictionary)."""
        values = [
            example.text[span.start : span.end]
            for example in self.training_examples
            for span in example.entities
        ]
        values += [value for table in self.lookups.values() for value in table]
        return list(dict.fromkeys(values))

    def fingerprint(self) -> str:
        """SHA-256 of the normalized content: equal for data that trains the same model.

        Order of examples and files, comments and formatting do not change it.
        """
        content = {
            "format": _FINGERPRINT_FORMAT,
            "examples": sorted(
                [e.intent, e.text, [asdict(span) for span in e.entities]]
                for e in self.training_examples
            ),
            "synonyms": sorted(self.synonyms.items()),
            "regexes": {name: sorted(patterns) for name, patterns in self.regexes.items()},
            "lookups": {name: sorted(values) for name, values in self.lookups.items()},
        }
        encoded = json.dumps(content, sort_keys=True, ensure_ascii=False).encode("utf-8")
        return hashlib.sha256(encoded).hexdigest()


def _expand(sources: Iterable[Source], errors: list[str]) -> list[Path]:
    """Files to read: each file as given, each folder's YAML files sorted by path."""
    files: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".yaml"))
            if not found:
                errors.append(f"{path}:1:1: folder has no *.yml or *.yaml files")
            files.extend(p for p in found if p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            errors.append(f"{path}:1:1: no such file or folder")
    return files


@dataclass
class _Position:
    path: str
    line: int  # 0-based, as ruamel reports it
    column: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line + 1}:{self.column + 1}"


class _Reader:
    """Accumulates data and errors over several files."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.data = TrainingData()
        self._seen: dict[str, tuple[str, str]] = {}  # text -> (intent, source)
        self._synonym_sources: dict[str, str] = {}
        # (entity, value key) -> path:line:column of the first example annotating it
        self.annotation_places: dict[tuple[str, str], str] = {}

    def finish(self) -> TrainingData:
        if self.errors:
            raise NluDataError(self.errors)
        _add_annotated_values(self.data, self.annotation_places)
        return self.data

    def read_file(self, path: Path) -> None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self.errors.append(f"{path}:1:1: cannot read file: {exc}")
            return
        self.read_text(text, str(path))

    def read_text(self, text: str, path: str) -> None:
        try:
            document = YAML(typ="rt").load(text)
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, column = (mark.line, mark.column) if mark else (0, 0)
            problem = exc.problem or "invalid YAML"
            if exc.context:
                problem += f" ({exc.context})"
            self.errors.append(f"{path}:{line + 1}:{column + 1}: YAML syntax error: {problem}")
            return
        if document is None:
            return
        if not isinstance(document, CommentedMap):
            self._error(_Position(path, 0, 0), "the file must be a mapping with an 'nlu:' key")
            return
        _FileContext(self, path, text.splitlines()).read(document)

    def _error(self, where: _Position, message: str) -> None:
        self.errors.append(f"{where}: {message}")


class _FileContext:
    """Reads one parsed YAML document into its reader."""

    def __init__(self, reader: _Reader, path: str, lines: list[str]) -> None:
        self.reader = reader
        self.path = path
        self.lines = lines

    def error(self, where: _Position, message: str) -> None:
        self.reader._error(where, message)

    def read(self, document: CommentedMap) -> None:
        if "version" in document:
            version = str(document["version"])
            if not re.fullmatch(r"[23](\.\d+)*", version):
                self.error(self._value_at(document, "version"), f"unsupported version {version!r}")
        items = document.get("nlu")
        if items is None:
            return
        if not isinstance(items, CommentedSeq):
            self.error(self._value_at(document, "nlu"), "'nlu' must be a list of items")
            return
        for index, item in enumerate(items):
            where = _Position(self.path, *items.lc.item(index))
            if not isinstance(item, CommentedMap):
                self.error(where, "an nlu item must be a mapping such as '- intent: greet'")
                continue
            self._read_item(item, where)

    def _read_item(self, item: CommentedMap, where: _Position) -> None:
        kinds = [kind for kind in _KINDS if kind in item]
        unknown = [str(key) for key in item if key not in _ITEM_KEYS]
        for key in unknown:
            self.error(self._key_at(item, key), f"unknown key {key!r} in nlu item")
        if len(kinds) != 1:
            self.error(where, "an nlu item needs exactly one of: " + ", ".join(_KINDS))
            return
        kind = kinds[0]
        name = item[kind]
        if not isinstance(name, str) or not name.strip():
            self.error(self._value_at(item, kind), f"{kind} needs a name")
            return
        if "examples" not in item:
            self.error(where, f"{kind} {name!r} has no 'examples'")
            return
        errors_before = len(self.reader.errors)
        examples = list(self._examples(item))
        if not examples and len(self.reader.errors) == errors_before:
            self.error(self._value_at(item, "examples"), f"{kind} {name!r} has no examples")
        reader = getattr(self, f"_add_{kind}")
        for raw, position in examples:
            reader(name.strip(), raw, position)

    def _examples(self, item: CommentedMap) -> Iterable[tuple[str, _Position]]:
        """Each example of an item with its position, from a ``|`` block or a YAML list."""
        value = item["examples"]
        start = self._value_at(item, "examples")
        if isinstance(value, str):
            yield from self._block_examples(value, start)
        elif isinstance(value, CommentedSeq):
            for index, entry in enumerate(value):
                position = _Position(self.path, *value.lc.item(index))
                text = entry.get("text") if isinstance(entry, CommentedMap) else entry
                if isinstance(text, str | int | float) and str(text).strip():
                    yield str(text), position
                else:
                    self.error(position, "an example must be text or a mapping with 'text'")
        else:
            self.error(start, "'examples' must be a '|' block of '- ' lines or a list")

    def _block_examples(self, block: str, start: _Position) -> Iterable[tuple[str, _Position]]:
        line_number = start.line
        for raw_line in block.splitlines():
            content = raw_line.strip()
            if not content:
                continue
            position, line_number = self._locate(content, line_number, start)
            if content == "-" or not content.startswith("- "):
                self.error(position, f"an example line must start with '- ': {content!r}")
                continue
            yield content[2:].strip(), _Position(self.path, position.line, position.column + 2)

    def _locate(self, content: str, after: int, fallback: _Position) -> tuple[_Position, int]:
        """Find the file line of a block line; ruamel only gives the block's own position."""
        for number in range(after + 1, min(len(self.lines), after + 200)):
            line = self.lines[number]
            if line.strip() == content:
                return _Position(self.path, number, len(line) - len(line.lstrip())), number
        return fallback, after

    def _add_intent(self, intent: str, raw: str, position: _Position) -> None:
        try:
            text, spans = parse_markup(raw)
        except MarkupError as exc:
            where = _Position(self.path, position.line, position.column + exc.offset)
            self.error(where, str(exc))
            return
        if not text:
            self.error(position, "empty example")
            return
        source = f"{self.path}:{position.line + 1}"
        seen = self.reader._seen.get(text)
        if seen and seen[0] != intent:
            self.reader.data.warnings.append(
                f"{position}: example {text!r} of {intent!r} is also in {seen[0]!r} ({seen[1]})"
            )
        self.reader._seen.setdefault(text, (intent, source))
        self.reader.data.training_examples.append(Example(text, intent, spans, source))
        for span in spans:
            surface = text[span.start : span.end]
            for value in (surface, span.value):
                self.reader.annotation_places.setdefault((span.entity, _key(value)), str(position))
            if span.value != surface:
                self._add_synonym(span.value, surface, position)

    def _add_synonym(self, canonical: str, variant: str, position: _Position) -> None:
        # Looked up case-insensitively, as Rasa's synonym mapper does.
        key = variant.casefold()
        synonyms = self.reader.data.synonyms
        if key in synonyms and synonyms[key] != canonical:
            first = self.reader._synonym_sources[key]
            self.error(
                position,
                f"{variant!r} is already a synonym of {synonyms[key]!r} ({first}), "
                f"not of {canonical!r}",
            )
            return
        synonyms[key] = canonical
        self.reader._synonym_sources.setdefault(key, f"{self.path}:{position.line + 1}")

    def _add_regex(self, name: str, pattern: str, position: _Position) -> None:
        try:
            re.compile(pattern)
        except re.error as exc:
            self.error(position, f"invalid regex for {name!r}: {exc}")
            return
        self.reader.data.regexes.setdefault(name, []).append(pattern)

    def _add_lookup(self, name: str, value: str, position: _Position) -> None:
        self.reader.data.lookups.setdefault(name, []).append(value)

    def _key_at(self, mapping: CommentedMap, key: Any) -> _Position:
        return _Position(self.path, *mapping.lc.key(key))

    def _value_at(self, mapping: CommentedMap, key: Any) -> _Position:
        return _Position(self.path, *mapping.lc.value(key))


MAX_ROUNDS = 5  # of the safety check: dropping a value can let a shorter one match elsewhere


def _key(value: str) -> str:
    return " ".join(value.split()).casefold()


def _add_annotated_values(data: TrainingData, places: dict[tuple[str, str], str]) -> None:
    """Add the annotated values that are safe to look up to their entity's lookup table;
    ``places`` tells where each (entity, value key) was first annotated."""
    candidates: dict[str, dict[str, str]] = {}  # entity -> key -> spelling
    where = dict(places)
    for example in data.training_examples:
        for span in example.entities:
            for value in (example.text[span.start : span.end], span.value):
                candidates.setdefault(span.entity, {}).setdefault(_key(value), value.strip())
    for variant, canonical in data.synonyms.items():
        for entity, values in candidates.items():
            if _key(canonical) in values:
                values.setdefault(variant, variant)
                where.setdefault((entity, variant), where.get((entity, _key(canonical)), ""))
    for entity, values in candidates.items():
        declared = {_key(value) for value in data.lookups.get(entity, [])}
        patterns = [re.compile(p, re.IGNORECASE) for p in data.regexes.get(entity, [])]
        for key, value in list(values.items()):
            if (
                len(value) < 2
                or not any(c.isalpha() for c in value)
                or key in declared
                or any(p.fullmatch(value) for p in patterns)
            ):
                del values[key]
    for entity, key, text, source in _unsafe(data, candidates):
        place = where.get((entity, key)) or "<nlu data>:1:1"
        data.warnings.append(
            f"{place}: annotated value {candidates[entity][key]!r} of entity "
            f"{entity!r} is not looked up in messages: the data has {text!r} ({source}) "
            "without that annotation"
        )
        del candidates[entity][key]
    for entity, values in candidates.items():
        if values:
            data.lookups.setdefault(entity, []).extend(values.values())
            data.annotated[entity] = list(values.values())


def _unsafe(
    data: TrainingData, candidates: dict[str, dict[str, str]]
) -> list[tuple[str, str, str, str]]:
    """The candidate values found, as the extractor would find them, in a training example
    where they are not annotated as that entity: ``(entity, key, example text, source)``."""
    remaining = {entity: dict(values) for entity, values in candidates.items()}
    found: list[tuple[str, str, str, str]] = []
    for _ in range(MAX_ROUNDS):
        extractor = EntityExtractor(lookups={e: list(v.values()) for e, v in remaining.items()})
        this_round: dict[tuple[str, str], tuple[str, str]] = {}
        for example in data.training_examples:
            annotated = {(s.entity, s.start, s.end) for s in example.entities}
            for hit in extractor.extract(example.text):
                if (hit["entity"], hit["start"], hit["end"]) in annotated:
                    continue
                key = _key(example.text[hit["start"] : hit["end"]])
                if key in remaining.get(hit["entity"], {}):
                    this_round.setdefault((hit["entity"], key), (example.text, example.source))
        if not this_round:
            break
        for (entity, key), (text, source) in this_round.items():
            found.append((entity, key, text, source))
            del remaining[entity][key]
    return found
