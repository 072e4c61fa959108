"""Readers for the public intent data sets in ../shared/data (see its README for the protocol).

Each reader returns ``{split: (texts, labels)}``. CLINC150's out-of-scope queries are labelled
``out_of_scope`` and kept in their own splits (``oos_train``, ``oos_val``, ``oos_test``) so that a
system can be trained with or without them. Plain Python, so the Rasa peer can use it too.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

OUT = "out_of_scope"
Split = tuple[list[str], list[str]]


def clinc150(root: Path) -> dict[str, Split]:
    """CLINC150 "full": train/val/test in scope, oos_train/oos_val/oos_test out of scope."""
    raw = json.loads((root / "clinc150" / "data_full.json").read_text(encoding="utf-8"))
    splits: dict[str, Split] = {}
    for name, rows in raw.items():
        texts = [text for text, _ in rows]
        labels = [OUT if label == "oos" else label for _, label in rows]
        splits[name] = (texts, labels)
    return splits


def hwu64(root: Path) -> dict[str, Split]:
    """HWU64: train/valid/test as line pairs of seq.in and label."""
    splits: dict[str, Split] = {}
    for name in ("train", "valid", "test"):
        folder = root / "hwu64" / name
        texts = (folder / "seq.in").read_text(encoding="utf-8").splitlines()
        labels = (folder / "label").read_text(encoding="utf-8").splitlines()
        if len(texts) != len(labels):
            raise ValueError(f"{folder}: {len(texts)} sentences but {len(labels)} labels")
        splits[name] = ([t.strip() for t in texts], [label.strip() for label in labels])
    return splits


def smp2019(root: Path) -> dict[str, Split]:
    """SMP2019-ECDT task 1: the merge_* split, labelled ``domain.intent`` from 2019train.json."""
    folder = root / "smp2019-ecdt"
    records = json.loads((folder / "2019train.json").read_text(encoding="utf-8"))
    label_of: dict[str, str] = {}
    for record in records:
        label_of.setdefault(record["text"].strip(), f"{record['domain']}.{record['intent']}")
    splits: dict[str, Split] = {}
    for name in ("train", "dev", "test"):
        texts: list[str] = []
        labels: list[str] = []
        for sentence in _bio_sentences(folder / f"merge_{name}.txt"):
            if sentence not in label_of:
                raise ValueError(f"{folder}/merge_{name}.txt: {sentence!r} not in 2019train.json")
            texts.append(sentence)
            labels.append(label_of[sentence])
        splits[name] = (texts, labels)
    return splits


def smp2019_slots(root: Path) -> dict[str, dict[str, str]]:
    """SMP2019-ECDT's slot annotations (slot -> value, each value a substring of the text).

    They are training data like the labels: a Rasa project would carry them as entity
    annotations, which is how the kefu system in the benchmark receives them.
    """
    records = json.loads((root / "smp2019-ecdt" / "2019train.json").read_text(encoding="utf-8"))
    slots: dict[str, dict[str, str]] = {}
    for record in records:
        slots.setdefault(record["text"].strip(), dict(record.get("slots") or {}))
    return slots


def _bio_sentences(path: Path) -> list[str]:
    """Sentences of a char-level BIO file: one ``char tag`` per line, then the intent line."""
    sentences: list[str] = []
    chars: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split("\t") if "\t" in line else line.split(" ")
        if len(parts) == 2 and parts[1] and (parts[1] == "O" or parts[1][1:2] == "-"):
            chars.append(" " if parts[0] == "#" else parts[0])
        elif line.strip():  # the intent line closes the sentence
            sentences.append("".join(chars).strip())
            chars = []
    return sentences


def banking77_oos(folder: Path) -> dict[str, Split]:
    """BANKING77-OOS (Zhang et al. 2021; github.com/jianguoz/Few-Shot-Intent-Detection,
    Datasets/BANKING77-OOS): 50 in-scope banking intents (train/valid/test), out-of-domain OOS
    (``ood_valid``, ``ood_test``) and in-domain OOS from the 27 held-out intents (``id_valid``,
    ``id_test``), both labelled ``out_of_scope``."""
    splits: dict[str, Split] = {}
    for name, sub in (
        ("train", "train"),
        ("valid", "valid"),
        ("test", "test"),
        ("ood_valid", "ood-oos/valid"),
        ("ood_test", "ood-oos/test"),
        ("id_valid", "id-oos/valid"),
        ("id_test", "id-oos/test"),
    ):
        texts = (folder / sub / "seq.in").read_text(encoding="utf-8").splitlines()
        labels = (folder / sub / "label").read_text(encoding="utf-8").splitlines()
        if len(texts) != len(labels):
            raise ValueError(f"{folder / sub}: {len(texts)} sentences but {len(labels)} labels")
        splits[name] = (
            [t.strip() for t in texts],
            [OUT if label.strip() == "oos" else label.strip() for label in labels],
        )
    return splits


def held_out_intents(
    train: Split, test: Split, keep: float, seed: int
) -> tuple[Split, Split, list[str]]:
    """The "unseen set" protocol: a random ``keep`` share of the intents stays in scope; the
    others' training examples are dropped and their test messages become ``out_of_scope``.

    Returns the training split, the test split and the held-out intents.
    """
    intents = sorted(set(train[1]))
    rng = random.Random(seed)
    rng.shuffle(intents)
    held = set(intents[round(keep * len(intents)) :])
    kept = [(t, y) for t, y in zip(*train, strict=True) if y not in held]
    tested = [(t, OUT if y in held else y) for t, y in zip(*test, strict=True)]
    return (
        ([t for t, _ in kept], [y for _, y in kept]),
        ([t for t, _ in tested], [y for _, y in tested]),
        sorted(held),
    )


def small_bot(
    train: Split,
    test: Split,
    *,
    intents: int,
    examples: int,
    seed: int,
    group: Callable[[str], str] = lambda label: label,
) -> tuple[Split, Split]:
    """A small bot cut from a big set: ``intents`` intents (from different groups, e.g. HWU64
    scenarios or SMP2019 domains, when ``group`` names them) with ``examples`` training examples
    each; its test split is the test messages of those intents, plus, as ``out_of_scope``, those
    of every intent of a group the bot has none of."""
    rng = random.Random(seed)
    counts: dict[str, int] = {}
    for label in train[1]:
        counts[label] = counts.get(label, 0) + 1
    candidates = sorted(label for label, n in counts.items() if n >= examples and label != OUT)
    rng.shuffle(candidates)
    chosen: list[str] = []
    groups: set[str] = set()
    for label in candidates:
        if group(label) not in groups and len(chosen) < intents:
            chosen.append(label)
            groups.add(group(label))
    picked: list[tuple[str, str]] = []
    for label in chosen:
        rows = [t for t, y in zip(*train, strict=True) if y == label]
        picked += [(t, label) for t in rng.sample(rows, examples)]
    tested = [
        (t, y if y in chosen else OUT)
        for t, y in zip(*test, strict=True)
        if y in chosen or group(y) not in groups
    ]
    return (
        ([t for t, _ in picked], [y for _, y in picked]),
        ([t for t, _ in tested], [y for _, y in tested]),
    )
