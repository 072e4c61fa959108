"""The classifier's features: TF-IDF of word 1-2 grams and of character 1-4 grams.

Word n-grams (jieba words for Chinese, see tokenize.py) carry meaning; character n-grams within
words catch typos ("wheres my oder"), inflections and Chinese words jieba cuts differently.

Training uses scikit-learn's `TfidfVectorizer` with the n-gram functions below as its analyzer;
parsing one message does not: the fitted vocabulary and IDF weights are applied here with a few
dict lookups and NumPy operations, about 30x cheaper than the vectorizer's `transform` for one
message (FACTS.md: 2-5 ms), and equal to it (tests/test_nlu/test_features.py checks).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from nlu.tokenize import tokenize

__all__ = ["Block", "Featurizer", "char_ngrams", "normalize", "word_ngrams"]

# Long numbers (order ids, phone numbers) say "a number", not which one.
_LONG_NUMBER = re.compile(r"\d{4,}")
CHAR_NGRAMS = (1, 4)
WORD_NGRAMS = (1, 2)


def normalize(text: str) -> str:
    """NFKC, case-folded, long numbers masked, whitespace collapsed."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_LONG_NUMBER.sub("0000", folded).split())


def char_ngrams(text: str) -> list[str]:
    """Character n-grams inside space-padded words, as scikit-learn's ``char_wb`` analyzer."""
    low, high = CHAR_NGRAMS
    grams: list[str] = []
    for word in normalize(text).split():
        padded = f" {word} "
        size = len(padded)
        for n in range(low, high + 1):
            if n > size and n > low:  # a short word counts its whole padded form once
                break
            grams.extend(padded[i : i + n] for i in range(max(size - n + 1, 1)))
    return grams


def word_ngrams(text: str) -> list[str]:
    """Token 1- and 2-grams of the normalized text; tokens as `tokenize` cuts them."""
    tokens = tokenize(normalize(text))
    grams = list(tokens)
    for n in range(2, WORD_NGRAMS[1] + 1):
        grams.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return grams


ANALYZERS = {"words": word_ngrams, "chars": char_ngrams}


@dataclass
class Block:
    """One fitted TF-IDF block: term -> column, and each column's IDF weight."""

    analyzer: str
    vocabulary: dict[str, int]
    idf: np.ndarray  # float64, one per column

    def weights(self, text: str) -> tuple[list[int], np.ndarray]:
        """Columns and L2-normalized sublinear TF-IDF weights of ``text`` in this block."""
        vocabulary = self.vocabulary
        counts = Counter(vocabulary[g] for g in ANALYZERS[self.analyzer](text) if g in vocabulary)
        if not counts:
            return [], np.zeros(0)
        columns = list(counts)
        values = (1.0 + np.log(np.fromiter(counts.values(), float, len(counts)))) * self.idf[
            columns
        ]
        return columns, values / np.sqrt(values @ values)


class Featurizer:
    """Word and char TF-IDF blocks side by side, each L2-normalized, as one sparse row."""

    def __init__(self, blocks: list[Block]) -> None:
        """Use `fit`, or rebuild a saved one from its blocks."""
        self.blocks = blocks
        self.offsets = np.cumsum([0] + [len(b.vocabulary) for b in blocks])

    @property
    def size(self) -> int:
        """Number of columns."""
        return int(self.offsets[-1])

    @classmethod
    def fit(cls, texts: Sequence[str]) -> tuple[Featurizer, sp.csr_matrix]:
        """Learn vocabulary and IDF from ``texts``; return the featurizer and their rows."""
        blocks, matrices = [], []
        for analyzer in ANALYZERS:
            from sklearn.feature_extraction.text import TfidfVectorizer  # training only

            vectorizer = TfidfVectorizer(analyzer=ANALYZERS[analyzer], sublinear_tf=True)
            matrices.append(vectorizer.fit_transform(texts))
            vocabulary = {str(term): int(column) for term, column in vectorizer.vocabulary_.items()}
            blocks.append(Block(analyzer, vocabulary, np.asarray(vectorizer.idf_, dtype=float)))
        return cls(blocks), sp.csr_matrix(sp.hstack(matrices, format="csr"))

    def row(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Columns and weights of one message (the sparse row, without building a matrix)."""
        columns: list[int] = []
        values: list[np.ndarray] = []
        for block, offset in zip(self.blocks, self.offsets, strict=False):
            block_columns, block_values = block.weights(text)
            columns.extend(c + int(offset) for c in block_columns)
            values.append(block_values)
        return np.asarray(columns, dtype=np.intp), np.concatenate(values)
