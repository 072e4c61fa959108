"""Generic unrelated messages, bundled with the classifier as out-of-scope negatives.

`negatives/en.txt` and `negatives/zh.txt` hold a few hundred messages each (trivia, weather,
recipes, sports, maths, coding, travel, health, politics, jokes, chit-chat, very short ones),
written for Kefu Hub (see `negatives/README.md`). None asks for what a customer-service bot
handles (orders, delivery, refunds, payment, accounts, invoices, opening hours, greetings,
thanks, goodbyes, a human, complaints, yes/no).

A bot trained only on its own examples has no idea what "unrelated" looks like: its classifier
spreads an unrelated question over the intents it knows, and a threshold calibrated on its own
examples lands near 0.1 (FACTS.md). The classifier adds these messages to its training data as
`out_of_scope` examples, minus those too close to one of the bot's own examples (`drop_near`).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from nlu.features import ANALYZERS

__all__ = ["LANGUAGES", "bundled", "digest", "drop_near", "far_from"]

FOLDER = Path(__file__).resolve().parent / "negatives"
LANGUAGES = ("en", "zh")


@functools.cache
def bundled() -> tuple[str, ...]:
    """Every bundled negative, English then Chinese, in file order, without duplicates."""
    texts: dict[str, None] = {}
    for language in LANGUAGES:
        for line in (FOLDER / f"{language}.txt").read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                texts.setdefault(line.strip(), None)
    return tuple(texts)


def far_from(negatives: Any, examples: Any, blocks: int, limit: float) -> np.ndarray:
    """Which rows of ``negatives`` have a cosine below ``limit`` to every row of ``examples``.

    Rows are featurizer rows: ``blocks`` L2-normalized blocks side by side, so a row's squared
    norm is ``blocks`` (or less, for a row with an empty block) and the cosine is the dot
    product over ``blocks``.
    """
    if examples.shape[0] == 0 or negatives.shape[0] == 0:
        return np.ones(negatives.shape[0], dtype=bool)
    closest = np.asarray((negatives @ examples.T).max(axis=1).todense()).ravel() / blocks
    return np.asarray(closest < limit)


@functools.cache
def digest() -> str:
    """A short hash of the bundled negatives: a model trained on other ones is retrained."""
    return hashlib.sha256("\n".join(bundled()).encode()).hexdigest()[:16]


def drop_near(rows: Any, in_scope: np.ndarray, limit: float) -> tuple[sp.csr_matrix, np.ndarray]:
    """``rows``: the bot's examples' featurizer rows (``in_scope`` tells which are not
    out_of_scope), then the negatives'. Returns the rows without the negatives within ``limit``
    of an in-scope example, and which negatives are kept."""
    own, negatives = rows[: len(in_scope)], rows[len(in_scope) :]
    keep = far_from(negatives, own[in_scope], len(ANALYZERS), limit)
    return sp.csr_matrix(sp.vstack([own, negatives[keep]], format="csr")), keep
