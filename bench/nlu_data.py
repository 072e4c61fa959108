"""Readers for the public intent data sets in ../shared/data (see its README for the protocol).

Each reader returns ``{split: (texts, labels)}``. CLINC150's out-of-scope queries are labelled
``out_of_scope`` and kept in their own splits (``oos_train``, ``oos_val``, ``oos_test``) so that a
system can be trained with or without them. Plain Python, so the Rasa peer can use it too.
"""

from __future__ import annotations

import json
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
