"""Search the knowledge base: Okapi BM25 over three fields of each entry, in memory.

Why this shape (each choice measured on the dev split of bench/data/knowledge_questions.yml:
`python bench/knowledge_bench.py --split dev --tune` prints the table):

- Fields: an article's title, the questions and the answer or article body are scored apart,
  each with its own length normalization, and summed with weights (questions 3, body 1, title
  1). A customer's question looks most like a stored question; a long article body would
  otherwise drown a short FAQ. A FAQ's title is its first question, so it is indexed once.
- Each phrasing of an entry is scored on its own and the entry keeps its best one, so that an
  entry with ten phrasings is neither penalized for their length nor favoured for their words.
- Tokens come from `knowledge.analysis.Analyzer`: jieba words plus character bigrams for
  Chinese (bigrams catch words jieba cuts differently in the question and the entry),
  lowercase words for English, synonyms folded to one canonical token.
- Everything that does not depend on the query (IDF, length normalization, field weights) is
  folded into the weights of an inverted index at load, so a query costs one NumPy add per
  query token and field: well under a millisecond for thousands of entries.

`Hit.score` is the entry's score divided by the query's "self score", the score it would get
against an entry whose question is the query itself: about 1.0 (or more, when the answer repeats
the words) for a stored question asked word for word, near 0 for a passing match. The best hit
is `confident` when that ratio reaches `min_confidence` and the runner-up scores at least
`CONFIDENT_MARGIN` (10%) lower: two entries that fit equally are a question to clarify, not to
answer; and it must share a word with the query that is not a function word ("who is" alone
matches nothing). Defaults measured on the dev split: about half of the questions answered on their
own, 98% of those rightly, under 1% of unrelated questions (CLINC150 out-of-scope, SMP2019).
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from knowledge.analysis import FUNCTION_WORDS, Analyzer
from knowledge.loader import Entry, load_entries

__all__ = ["CONFIDENT_MARGIN", "MIN_CONFIDENCE", "Hit", "IndexSettings", "KnowledgeBase"]

MIN_CONFIDENCE = 0.4
CONFIDENT_MARGIN = 0.1  # the runner-up must score at least 10% lower


@dataclass(frozen=True)
class IndexSettings:
    """How entries are indexed; the defaults are the measured best (module docstring)."""

    k1: float = 1.2
    b: float = 0.75
    title_weight: float = 1.0
    question_weight: float = 3.0
    body_weight: float = 1.0
    questions_apart: bool = True  # score each phrasing alone, keep the entry's best
    han_bigrams: bool = True
    stem_english: bool = False
    stop_words: bool = False


@dataclass(frozen=True)
class Hit:
    """One search result."""

    entry: Entry
    score: float  # the match relative to the query's self score: ~1.0 for a stored question
    confident: bool  # good enough for the bot to answer with it on its own


class _Postings:
    """An inverted index: for each token, the rows it occurs in and its BM25 weight there."""

    def __init__(
        self,
        rows: Sequence[Sequence[str]],
        vocabulary: Mapping[str, int],
        idf: np.ndarray,
        settings: IndexSettings,
        weight: float,
    ) -> None:
        k1, b = settings.k1, settings.b
        lengths = np.array([len(row) for row in rows], dtype=np.float64)
        average = float(lengths.mean()) if len(rows) and lengths.sum() else 1.0
        self.average_length = average
        by_token: dict[int, list[tuple[int, float]]] = {}
        for r, row in enumerate(rows):
            norm = k1 * (1 - b + b * lengths[r] / average)
            for token, tf in Counter(row).items():
                column = vocabulary[token]
                value = weight * idf[column] * tf * (k1 + 1) / (tf + norm)
                by_token.setdefault(column, []).append((r, value))
        self.rows = {t: np.array([r for r, _ in p], dtype=np.int32) for t, p in by_token.items()}
        self.weights = {t: np.array([v for _, v in p]) for t, p in by_token.items()}
        self.size = len(rows)

    def scores(self, query: Counter[int]) -> np.ndarray:
        scores = np.zeros(self.size)
        for column, count in query.items():
            rows = self.rows.get(column)
            if rows is not None:
                scores[rows] += count * self.weights[column]
        return scores


class KnowledgeBase:
    """A bot's FAQ entries and articles, searchable in Chinese and English."""

    def __init__(
        self,
        entries: Iterable[Entry] = (),
        synonyms: Mapping[str, str] | None = None,
        min_confidence: float = MIN_CONFIDENCE,
        settings: IndexSettings | None = None,
    ) -> None:
        self.entries = tuple(entries)
        self.min_confidence = min_confidence
        self.settings = settings = settings or IndexSettings()
        self.analyzer = Analyzer(
            synonyms, settings.han_bigrams, settings.stem_english, settings.stop_words
        )
        self._by_id = {entry.id: entry for entry in self.entries}
        self._build()

    @classmethod
    def load(
        cls,
        folder: Path,
        synonyms: Mapping[str, str] | None = None,
        root: Path | None = None,
        min_confidence: float = MIN_CONFIDENCE,
        settings: IndexSettings | None = None,
    ) -> KnowledgeBase:
        """The articles and FAQs of `folder` (`<bot>/knowledge`; missing: an empty base).

        `synonyms` maps a variant to its canonical value (the NLU data's synonyms); errors name
        files relative to `root` when given. Raises KnowledgeError listing every problem.
        """
        return cls(load_entries(folder, root), synonyms, min_confidence, settings)

    @classmethod
    def empty(cls) -> KnowledgeBase:
        return cls()

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, entry_id: str) -> Entry | None:
        return self._by_id.get(entry_id)

    def _build(self) -> None:
        settings, tokens = self.settings, self.analyzer.tokens
        # A FAQ's title is its first question: indexed once, as a question.
        titles = [tokens(e.title) if e.kind == "article" else [] for e in self.entries]
        bodies = [tokens("\n".join(entry.answer.values())) for entry in self.entries]
        phrasings = [[tokens(q) for q in entry.questions] for entry in self.entries]
        self._count_words(titles, bodies, phrasings)
        if settings.questions_apart:
            # One row per phrasing; an entry without questions gets an empty row so that each
            # entry owns a contiguous, non-empty run of rows (np.maximum.reduceat needs that).
            question_rows: list[list[str]] = []
            starts = []
            for questions in phrasings:
                starts.append(len(question_rows))
                question_rows += questions or [[]]
            self._question_starts = np.array(starts, dtype=np.int64)
        else:
            question_rows = [[w for q in questions for w in q] for questions in phrasings]
            self._question_starts = np.arange(len(self.entries), dtype=np.int64)
        self._questions = self._postings(question_rows, settings.question_weight)
        self._fields = [
            self._postings(rows, weight)
            for rows, weight in ((titles, settings.title_weight), (bodies, settings.body_weight))
            if weight
        ]
        self._languages: dict[str, np.ndarray] = {}
        for i, entry in enumerate(self.entries):
            for language in {code.split("-")[0].lower() for code in entry.answer}:
                mask = self._languages.setdefault(language, np.zeros(len(self.entries), bool))
                mask[i] = True

    def _count_words(
        self, titles: list[list[str]], bodies: list[list[str]], phrasings: list[list[list[str]]]
    ) -> None:
        """The vocabulary and each word's IDF over entries (Lucene's, never negative)."""
        vocabulary: dict[str, int] = {}
        document_frequency: Counter[int] = Counter()
        for title, body, questions in zip(titles, bodies, phrasings, strict=True):
            words = set(title) | set(body) | {w for q in questions for w in q}
            for word in words:
                document_frequency[vocabulary.setdefault(word, len(vocabulary))] += 1
        n = len(self.entries)
        df = np.array([document_frequency[i] for i in range(len(vocabulary))], dtype=np.float64)
        self._vocabulary = vocabulary
        self._idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
        # A word no entry has counts as rare as the rarest known word (df = 1): with df = 0, a
        # small base would let any unknown word in a question outweigh all the others.
        self._unseen_idf = math.log(1 + (n - 0.5) / 1.5)

    def _postings(self, rows: Sequence[Sequence[str]], weight: float) -> _Postings:
        return _Postings(rows, self._vocabulary, self._idf, self.settings, weight)

    def search(self, query: str, k: int = 5, language: str | None = None) -> list[Hit]:
        """The `k` best entries for a customer's question, best first.

        [] for an empty base or a query that shares no token with any entry. With `language`
        ("zh", "en", "zh-TW"...), only entries that have an answer in it are returned, unless
        the base has none in that language.
        """
        if not self.entries or k <= 0:
            return []
        tokens = self.analyzer.tokens(query)
        counts = Counter(self._vocabulary[t] for t in tokens if t in self._vocabulary)
        if not counts:
            return []
        scores = self._scores(counts)
        if language:
            allowed = self._languages.get(language.split("-")[0].lower())
            if allowed is not None:
                scores = np.where(allowed, scores, 0.0)
        top = min(max(k, 2), len(scores))  # the runner-up decides confidence, even for k=1
        best = np.argpartition(-scores, top - 1)[:top]
        best = best[np.argsort(-scores[best], kind="stable")]
        best = best[scores[best] > 0]
        ratios = scores[best] / self._self_score(tokens)
        runner_up = float(ratios[1]) if len(ratios) > 1 else 0.0
        hits = [
            Hit(self.entries[i], float(r), False) for i, r in zip(best[:k], ratios, strict=False)
        ]
        if (
            hits
            and self._confident(hits[0].score, runner_up)
            and self._shares_a_word(tokens, best[0])
        ):
            hits[0] = dataclasses.replace(hits[0], confident=True)
        return hits

    def _shares_a_word(self, tokens: list[str], entry: int) -> bool:
        """Whether the entry matches a word of the query that is not a function word
        (analysis.FUNCTION_WORDS): a match on "who is" alone is no answer."""
        content = Counter(
            self._vocabulary[t] for t in tokens if t in self._vocabulary and t not in FUNCTION_WORDS
        )
        return bool(content) and bool(self._scores(content)[entry] > 0)

    def _confident(self, ratio: float, runner_up: float) -> bool:
        """Close enough to the query's self score, and clearly ahead of the next entry."""
        return ratio >= self.min_confidence and ratio - runner_up >= CONFIDENT_MARGIN * ratio

    def _scores(self, counts: Counter[int]) -> np.ndarray:
        per_question = self._questions.scores(counts)
        scores = np.maximum.reduceat(per_question, self._question_starts)
        for field in self._fields:
            scores += field.scores(counts)
        return scores

    def _self_score(self, tokens: list[str]) -> float:
        """What the query would score against an entry whose only question is the query."""
        settings = self.settings
        k1, b = settings.k1, settings.b
        norm = k1 * (1 - b + b * len(tokens) / max(self._questions.average_length, 1.0))
        total = 0.0
        for token, tf in Counter(tokens).items():
            column = self._vocabulary.get(token)
            idf = self._idf[column] if column is not None else self._unseen_idf
            total += idf * tf * (k1 + 1) / (tf + norm)
        return settings.question_weight * total
