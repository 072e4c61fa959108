"""Intent-classification figures shared by the NLU benchmarks (ours, the baseline and Rasa's).

Plain Python + NumPy so that the Rasa peer, in its own Python 3.10 venv, computes its figures with
this very code. A system's output per message is its ranking: ``[(label, probability), ...]``
best first; ``out_of_scope`` (OUT) is the label of the out-of-scope class, when it has one.

Definitions, following the CLINC150 paper (Larson et al., 2019):
- closed accuracy: on in-scope messages, the best in-scope label (OUT skipped) is right;
- at a threshold t: a message is accepted with its best label when that label is not OUT and its
  probability is >= t, otherwise rejected as out of scope; in-scope accuracy counts accepted and
  right over all in-scope messages; out-of-scope recall is rejected OOS over all OOS messages and
  precision is rejected OOS over all rejected;
- AUROC: how well the in-scope score (the best probability, 0 when the best label is OUT) ranks
  in-scope messages above out-of-scope ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

OUT = "out_of_scope"
Ranking = Sequence[tuple[str, float]]


def in_scope_score(ranking: Ranking) -> float:
    """The score a threshold is applied to: the best probability, 0 if the best label is OUT."""
    label, probability = ranking[0]
    return 0.0 if label == OUT else float(probability)


def threshold_for_false_reject(
    rankings: Sequence[Ranking], labels: Sequence[str], target: float
) -> float:
    """The threshold below which ``target`` of the in-scope messages' scores fall."""
    scores = [in_scope_score(r) for r, y in zip(rankings, labels, strict=True) if y != OUT]
    return float(np.quantile(np.array(scores), target))


def auroc(positive: Sequence[float], negative: Sequence[float]) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    pos, neg = np.asarray(positive, dtype=float), np.asarray(negative, dtype=float)
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    values = np.concatenate([pos, neg])[order]
    ranks = np.empty(len(values))
    start = 0
    while start < len(values):  # average ranks over ties
        end = start
        while end + 1 < len(values) and values[end + 1] == values[start]:
            end += 1
        ranks[start : end + 1] = (start + end) / 2 + 1
        start = end + 1
    rank_of = np.empty(len(values))
    rank_of[order] = ranks
    pos_ranks = rank_of[: len(pos)].sum()
    return float((pos_ranks - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def closed_accuracy(rankings: Sequence[Ranking], labels: Sequence[str]) -> float:
    """Accuracy on in-scope messages of the best in-scope label."""
    right = total = 0
    for ranking, label in zip(rankings, labels, strict=True):
        if label == OUT:
            continue
        total += 1
        best = next((name for name, _ in ranking if name != OUT), None)
        right += best == label
    return right / total


def open_figures(
    rankings: Sequence[Ranking], labels: Sequence[str], threshold: float
) -> dict[str, float]:
    """In-scope accuracy, OOS recall/precision and false-reject rate at ``threshold``."""
    accepted_right = in_scope = oos = oos_rejected = rejected = in_scope_rejected = 0
    for ranking, label in zip(rankings, labels, strict=True):
        score = in_scope_score(ranking)
        accept = score >= threshold and score > 0.0
        rejected += not accept
        if label == OUT:
            oos += 1
            oos_rejected += not accept
        else:
            in_scope += 1
            in_scope_rejected += not accept
            accepted_right += accept and ranking[0][0] == label
    return {
        "threshold": threshold,
        "in_scope_accuracy": accepted_right / in_scope,
        "false_reject_rate": in_scope_rejected / in_scope,
        "oos_recall": oos_rejected / oos if oos else float("nan"),
        "oos_precision": oos_rejected / rejected if rejected else float("nan"),
    }


def oos_auroc(rankings: Sequence[Ranking], labels: Sequence[str]) -> float:
    """AUROC of the in-scope score, in-scope messages as positives, OOS as negatives."""
    scores = [in_scope_score(r) for r in rankings]
    positive = [s for s, y in zip(scores, labels, strict=True) if y != OUT]
    negative = [s for s, y in zip(scores, labels, strict=True) if y == OUT]
    return auroc(positive, negative)


def percentile_ms(seconds: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of durations given in seconds, in milliseconds."""
    return float(np.percentile(np.asarray(seconds) * 1000.0, q))


def at_false_reject(
    rankings: Sequence[Ranking], labels: Sequence[str], target: float
) -> dict[str, float]:
    """`open_figures` at the threshold giving ``target`` false rejects on these very messages:
    a threshold-free comparison of how well the scores put out-of-scope messages last."""
    return open_figures(rankings, labels, threshold_for_false_reject(rankings, labels, target))
