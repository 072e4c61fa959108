"""Entity extraction on the demo bot: regex/lookup tables vs. a learned token tagger, measured.

Three extractors, scored on the same messages:

- ``regex_lookup``: `nlu.entities.EntityExtractor` built from the data's regexes, lookup tables
  and synonyms (the bot's own patterns; it learns nothing from the annotations);
- ``learned``: `TokenTagger`, a per-token logistic regression over BIO tags (scikit-learn only)
  with word, shape, prefix/suffix and neighbouring-token features, on `nlu.tokenize` tokens whose
  character offsets are recovered in the original text; values go through the same synonyms;
- ``combined``: the regex/lookup entities, plus the learned ones that overlap none of them.

Two evaluations:

- cross-validation on the data: k folds over the annotated examples (leave-one-out when there are
  at most 30), the examples without annotations dealt round-robin into the same folds, so that
  false positives on ordinary messages count; the tagger trains on the other folds;
- held-out: the tagger trained on all the data, every extractor run on messages written for this
  benchmark (tests/fixtures/entities_heldout.yml, format documented at its top).

Scores: exact-match precision, recall and F1 on ``(entity, start, end)`` spans; value accuracy is
the share of exactly matched spans whose value is the gold one after synonym mapping.

    python bench/nlu_entities.py [--data examples/shop/nlu] [--heldout FILE] [--json]
"""

from __future__ import annotations

import argparse
import json
import re
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import yaml
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier

from nlu.data import TrainingData
from nlu.entities import Entity, EntityExtractor
from nlu.tokenize import HAN, add_words, tokenize

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "examples" / "shop" / "nlu"
HELDOUT = ROOT / "tests" / "fixtures" / "entities_heldout.yml"
EXTRACTORS = ("regex_lookup", "learned", "combined")
LEAVE_ONE_OUT_UP_TO = 30
DEFAULT_FOLDS = 10

_HAN_CHAR = re.compile(f"[{HAN}]")


class Gold(NamedTuple):
    """A gold entity: name, character offsets into the message, canonical value."""

    entity: str
    start: int
    end: int
    value: str
    outside_patterns: bool = False


class Message(NamedTuple):
    text: str
    entities: tuple[Gold, ...]


# --- tokens with offsets ------------------------------------------------------------------------


def token_offsets(text: str) -> list[tuple[str, int, int]]:
    """`nlu.tokenize.tokenize` tokens with their ``start``/``end`` in ``text`` as given.

    The tokenizer sees NFKC-normalized, case-folded text, so each character is normalized on its
    own, remembering where it came from, and the tokens are found in order in that form. A token
    that cannot be found (a combining sequence that NFKC composes) is left out.
    """
    folded: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        for piece in unicodedata.normalize("NFKC", char).casefold():
            folded.append(piece)
            origin.append(index)
    haystack = "".join(folded)
    found: list[tuple[str, int, int]] = []
    cursor = 0
    for token in tokenize(text):
        at = haystack.find(token, cursor)
        if at < 0:
            continue
        cursor = at + len(token)
        found.append((token, origin[at], origin[cursor - 1] + 1))
    return found


# --- the learned extractor ----------------------------------------------------------------------


def _shape(surface: str) -> str:
    """Character classes, runs collapsed: "20231105" -> "0", "SF" -> "A", "Express" -> "Aa"."""
    shape: list[str] = []
    for char in surface:
        if char.isdigit():
            kind = "0"
        elif _HAN_CHAR.match(char):
            kind = "h"
        elif char.isalpha():
            kind = "A" if char.isupper() else "a"
        else:
            kind = "x"
        if not shape or shape[-1] != kind:
            shape.append(kind)
    return "".join(shape)


def _token_features(tokens: Sequence[tuple[str, int, int]], text: str) -> list[dict[str, float]]:
    words = [word for word, _, _ in tokens]
    shapes = [_shape(text[start:end]) for _, start, end in tokens]
    rows: list[dict[str, float]] = []
    for i, word in enumerate(words):
        row = {
            "bias": 1.0,
            f"w={word}": 1.0,
            f"shape={shapes[i]}": 1.0,
            f"len={min(len(word), 13)}": 1.0,
            f"p2={word[:2]}": 1.0,
            f"p3={word[:3]}": 1.0,
            f"s2={word[-2:]}": 1.0,
            f"s3={word[-3:]}": 1.0,
        }
        for offset in (-2, -1, 1, 2):
            j = i + offset
            inside = 0 <= j < len(words)
            row[f"w{offset:+d}={words[j] if inside else '<pad>'}"] = 1.0
            row[f"shape{offset:+d}={shapes[j] if inside else '<pad>'}"] = 1.0
        rows.append(row)
    return rows


def _bio(tokens: Sequence[tuple[str, int, int]], spans: Sequence[Gold]) -> list[str]:
    """BIO tags: a token overlapping a span is inside it, the first such one begins it."""
    tags = ["O"] * len(tokens)
    for span in spans:
        first = True
        for i, (_, start, end) in enumerate(tokens):
            if start < span.end and end > span.start:
                tags[i] = ("B-" if first else "I-") + span.entity
                first = False
    return tags


class TokenTagger:
    """Entities as BIO-tagged `nlu.tokenize` tokens, one logistic regression over all tokens."""

    def __init__(self, canonical: Callable[[str], str] = str, c: float = 10.0) -> None:
        """``canonical`` maps a surface text to its value (e.g. `EntityExtractor.canonical`).

        ``c`` and the balanced class weights were chosen on the demo data's cross-validation
        (C in 1, 10, 100, weights none or balanced), never on the held-out messages.
        """
        self.canonical = canonical
        self.c = c
        self._vectorizer = DictVectorizer()
        self._model: OneVsRestClassifier | None = None

    def fit(self, messages: Sequence[Message]) -> TokenTagger:
        """Train on messages and their gold spans; messages without entities teach "O"."""
        rows: list[dict[str, float]] = []
        tags: list[str] = []
        for message in messages:
            tokens = token_offsets(message.text)
            rows += _token_features(tokens, message.text)
            tags += _bio(tokens, message.entities)
        self._model = None
        if len(set(tags)) < 2:  # nothing annotated: the tagger finds nothing
            return self
        features = self._vectorizer.fit_transform(rows)
        features.indices = features.indices.astype(np.int32)  # liblinear wants 32-bit indexes
        features.indptr = features.indptr.astype(np.int32)
        # One-vs-rest liblinear: a second for all the folds, where lbfgs takes ten or more.
        # Balanced class weights: entity tokens are about 1% of the tokens.
        logistic = LogisticRegression(C=self.c, class_weight="balanced", solver="liblinear")
        self._model = OneVsRestClassifier(logistic).fit(features, tags)
        return self

    def extract(self, text: str) -> list[Entity]:
        """Entities in ``text``, in order; an I- tag not continuing its entity starts one."""
        tokens = token_offsets(text)
        if self._model is None or not tokens:
            return []
        tags = self._model.predict(self._vectorizer.transform(_token_features(tokens, text)))
        spans: list[list[Any]] = []  # [entity, start, end]
        previous = "O"
        for (_, start, end), tag in zip(tokens, tags, strict=True):
            if tag == "O":
                previous = tag
                continue
            prefix, name = tag.split("-", 1)
            if prefix == "I" and previous != "O" and previous.split("-", 1)[1] == name:
                spans[-1][2] = end
            else:
                spans.append([name, start, end])
            previous = tag
        return [
            Entity(entity=name, value=self.canonical(text[start:end]), start=start, end=end)
            for name, start, end in spans
        ]


def combine(first: Sequence[Entity], second: Sequence[Entity]) -> list[Entity]:
    """All of ``first``, plus the entities of ``second`` that overlap none of them, in order."""
    kept = list(first)
    for entity in second:
        if all(entity["end"] <= e["start"] or entity["start"] >= e["end"] for e in first):
            kept.append(entity)
    return sorted(kept, key=lambda e: (e["start"], e["end"]))


# --- data ---------------------------------------------------------------------------------------


def demo_messages(data: TrainingData, canonical: Callable[[str], str]) -> list[Message]:
    """Every training example with its annotations, values mapped through the synonyms."""
    return [
        Message(
            example.text,
            tuple(
                Gold(span.entity, span.start, span.end, canonical(span.value))
                for span in example.entities
            ),
        )
        for example in data.training_examples
    ]


def load_heldout(path: Path) -> list[Message]:
    """Messages of a held-out file (format at the top of tests/fixtures/entities_heldout.yml)."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    messages: list[Message] = []
    for number, item in enumerate(document["messages"], 1):
        text = str(item["text"])
        golds: list[Gold] = []
        cursor = 0
        for entity in item.get("entities") or []:
            surface = str(entity["text"])
            start = text.find(surface, cursor)
            if start < 0:
                raise ValueError(f"{path}: message {number}: {surface!r} not in {text!r}")
            cursor = start + len(surface)
            golds.append(
                Gold(
                    str(entity["entity"]),
                    start,
                    cursor,
                    str(entity.get("value", surface)),
                    bool(entity.get("outside_patterns", False)),
                )
            )
        messages.append(Message(text, tuple(golds)))
    return messages


def folds_of(messages: Sequence[Message], k: int | None = None) -> list[list[int]]:
    """Indexes of each test fold: annotated messages split k ways (one each when few), the
    others dealt round-robin into the same folds."""
    annotated = [i for i, m in enumerate(messages) if m.entities]
    plain = [i for i, m in enumerate(messages) if not m.entities]
    if k is None:
        k = len(annotated) if len(annotated) <= LEAVE_ONE_OUT_UP_TO else DEFAULT_FOLDS
    k = max(2, min(k, len(annotated)))
    folds: list[list[int]] = [[] for _ in range(k)]
    for position, index in enumerate(annotated):
        folds[position % k].append(index)
    for position, index in enumerate(plain):
        folds[position % k].append(index)
    return folds


# --- scores -------------------------------------------------------------------------------------


class Tally:
    """Span counts over many messages."""

    def __init__(self) -> None:
        self.tp = self.fp = self.fn = self.right_values = 0

    def add(self, predicted: Sequence[Entity], gold: Sequence[Gold]) -> None:
        spans = {(e["entity"], e["start"], e["end"]): e["value"] for e in predicted}
        golds = {(g.entity, g.start, g.end): g.value for g in gold}
        matched = spans.keys() & golds.keys()
        self.tp += len(matched)
        self.fp += len(spans) - len(matched)
        self.fn += len(golds) - len(matched)
        self.right_values += sum(spans[key] == golds[key] for key in matched)

    def scores(self) -> dict[str, float | int]:
        precision = self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0
        recall = self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "value_accuracy": round(self.right_values / self.tp, 4) if self.tp else 0.0,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
        }


def _run(
    regex: EntityExtractor,
    tagger: TokenTagger,
    messages: Sequence[Message],
    tallies: dict[str, Tally],
) -> None:
    for message in messages:
        found = regex.extract(message.text)
        learned = tagger.extract(message.text)
        tallies["regex_lookup"].add(found, message.entities)
        tallies["learned"].add(learned, message.entities)
        tallies["combined"].add(combine(found, learned), message.entities)


def evaluate(
    data_path: Path, heldout_path: Path | None = HELDOUT, folds: int | None = None
) -> dict[str, Any]:
    """Cross-validated and held-out figures of the three extractors on the bot at ``data_path``.

    Returns ``{"data": {...counts...}, "cross_validation": {extractor: scores},
    "heldout": {extractor: scores} or None}``; scores are precision, recall, f1,
    value_accuracy (all in [0, 1]) and the tp/fp/fn counts.
    """
    data = TrainingData.load(data_path)
    regex = EntityExtractor(data.regexes, data.lookups, data.synonyms)
    # As the bot's classifier does, keep lookup values whole in jieba's cut (annotated surfaces
    # are left out here: they would leak the held-out fold's words into the tokenizer).
    add_words(value for table in data.lookups.values() for value in table)
    messages = demo_messages(data, regex.canonical)
    annotated = [m for m in messages if m.entities]
    if not annotated:
        raise ValueError(f"{data_path}: no annotated entity examples to evaluate")

    fold_indexes = folds_of(messages, folds)
    cv = {name: Tally() for name in EXTRACTORS}
    for test in fold_indexes:
        held = set(test)
        train = [m for i, m in enumerate(messages) if i not in held]
        tagger = TokenTagger(regex.canonical).fit(train)
        _run(regex, tagger, [messages[i] for i in test], cv)

    off_token = 0
    for message in annotated:
        bounds = token_offsets(message.text)
        starts, ends = {s for _, s, _ in bounds}, {e for _, _, e in bounds}
        off_token += sum(g.start not in starts or g.end not in ends for g in message.entities)

    result: dict[str, Any] = {
        "data": {
            "path": str(data_path),
            "messages": len(messages),
            "annotated": len(annotated),
            "gold_spans": sum(len(m.entities) for m in annotated),
            "spans_off_token_boundaries": off_token,
            "folds": len(fold_indexes),
        },
        "cross_validation": {name: tally.scores() for name, tally in cv.items()},
        "heldout": None,
    }
    if heldout_path is not None:
        heldout = load_heldout(heldout_path)
        tagger = TokenTagger(regex.canonical).fit(messages)
        tallies = {name: Tally() for name in EXTRACTORS}
        _run(regex, tagger, heldout, tallies)
        result["data"]["heldout_path"] = str(heldout_path)
        result["data"]["heldout_messages"] = len(heldout)
        result["data"]["heldout_gold_spans"] = sum(len(m.entities) for m in heldout)
        result["heldout"] = {name: tally.scores() for name, tally in tallies.items()}
    return result


def markdown(result: dict[str, Any]) -> str:
    """The figures as a Markdown table."""
    data = result["data"]
    setups = [
        (
            f"demo, {data['folds']}-fold CV ({data['gold_spans']} spans, "
            f"{data['messages']} messages)",
            result["cross_validation"],
        )
    ]
    if result["heldout"] is not None:
        setups.append(
            (
                f"held-out ({data['heldout_gold_spans']} spans, "
                f"{data['heldout_messages']} messages)",
                result["heldout"],
            )
        )
    lines = [
        "| Evaluation | Extractor | Precision | Recall | F1 | Value acc. | TP / FP / FN |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for label, scores in setups:
        for name in EXTRACTORS:
            s = scores[name]
            lines.append(
                f"| {label} | {name} | {s['precision']:.3f} | {s['recall']:.3f} | "
                f"{s['f1']:.3f} | {s['value_accuracy']:.3f} | {s['tp']} / {s['fp']} / {s['fn']} |"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEMO, help="NLU data file or folder")
    parser.add_argument("--heldout", type=Path, default=HELDOUT, help="held-out messages (YAML)")
    parser.add_argument("--folds", type=int, default=None, help="k (default: leave-one-out)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    result = evaluate(args.data, args.heldout, args.folds)
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
