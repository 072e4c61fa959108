"""The smoother: for bots with many examples per intent, how sure a regularized logistic
regression is of the label the SVM picked, mapped onto the SVM's confidence scale.

The SVM picks the label (it is the more accurate); the confidence that decides whether a message
is out of scope comes from a multinomial logistic regression (C=1) on the same features. Its
probabilities are smoother: a message of a neighbouring intent the bot was never taught, e.g. a
banking question next to the bot's banking intents, gets a confident SVM score but a lukewarm
regression probability. The probability is mapped, monotonically, onto the SVM's confidences by
matching their quantiles on the same cross-validated examples, so thresholds, the hub's
`interrupt_confidence` and the arbiter's "sure" keep their meaning.

Used from SMOOTH_FROM examples per intent and language (bench/nlu_oos.py; OOS recall at 5%
false rejects, SVM confidence -> smoothed; the TF-IDF + LR baseline in brackets):

    BANKING77-OOS, in-domain OOS (50 intents, 118 examples each)   35.9 -> 44.6% (41.3%)
    BANKING77-OOS, out-of-domain OOS                               92.7 -> 93.1% (90.3%)
    HWU64 / SMP2019 with 25% of intents held out (3 seeds)     30.8 -> 29.7%; 35.6 -> 36.8%
                                                               (28.7%; 35.2%)
    CLINC150 (150 intents, 100 examples each)                      79.2 -> 78.6% (78.1%)

The SVM's own confidence could not get there: margin, entropy, other temperatures or C,
nearest-example cosine and per-intent quantiles of its cross-validated confidences left
BANKING77 in-domain at 34-37%. Averaging the two models' probabilities gave 40.6%, their
geometric mean 41.8%; the regression alone 44.7%, at C=0.3 49.6% (but 26-30% on HWU64).

Below it (the small bots designers write: 5-20 examples per intent) the regression's
probabilities are flat and spread (ten examples barely move an L2-regularized model) and the
SVM's confidence separates better, so small bots do not use it (their figures in BENCHMARKS.md
are unchanged). Cost: one more model to fit, also in each cross-validation fold (training
BANKING77 17-19 s instead of 8, CLINC150 95 s instead of 36), and one more row lookup per
parse.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nlu.language import detect_language

if TYPE_CHECKING:
    from sklearn.linear_model import LogisticRegression

SMOOTH_FROM = 30.0  # examples per intent and language (mean) from which the smoother is used
C = 1.0  # the regression's regularization (0.3: 49.6% on BANKING77 but 26-30% on HWU64)
KNOTS = 101  # quantiles matched between the two scores
# lbfgs's stopping tolerance (sklearn's default: 1e-4): CLINC150 fits in 18 s instead of 35 s,
# OOS recall at 5% false rejects the same (78.7 vs 78.6%; BANKING77 in-domain 45.3 vs 44.4%)
TOLERANCE = 1e-3


def wanted(examples: Sequence[tuple[str, str]]) -> bool:
    """Whether a bot with these in-scope (text, intent) examples gets the smoother: at least
    SMOOTH_FROM examples per intent and language, on average (an intent taught in English and
    Chinese is two small sets of examples to the n-gram features, which the languages do not
    share)."""
    groups = Counter((intent, detect_language(text)) for text, intent in examples)
    return bool(groups) and len(examples) / len(groups) >= SMOOTH_FROM


def fit(rows: Any, y: np.ndarray, sample_weight: np.ndarray) -> LogisticRegression:
    from sklearn.exceptions import ConvergenceWarning  # training only
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=C, tol=TOLERANCE, max_iter=2000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(rows, y, sample_weight=sample_weight)


def probabilities(model: LogisticRegression, rows: Any, n_classes: int) -> np.ndarray:
    """(n, n_classes) probabilities, with zero columns for classes absent from the fit."""
    out = np.zeros((rows.shape[0], n_classes))
    out[:, model.classes_] = model.predict_proba(rows)
    return out


def weights(model: LogisticRegression, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(features x classes) weights and per-class biases, float16-rounded as the SVM's."""
    coef = np.full((n_classes, model.coef_.shape[1]), 0.0)
    bias = np.full(n_classes, -1e4)  # a class the regression never saw is never its choice
    if len(model.classes_) == 2:  # sklearn keeps one row for two classes
        coef[model.classes_] = np.vstack([-model.coef_[0], model.coef_[0]]) / 2
        bias[model.classes_] = np.array([-model.intercept_[0], model.intercept_[0]]) / 2
    else:
        coef[model.classes_], bias[model.classes_] = model.coef_, model.intercept_
    return coef.T.astype(np.float16).astype(np.float32), bias.astype(np.float32)


def knots(smoothed: np.ndarray, confidences: np.ndarray) -> np.ndarray:
    """A (2, KNOTS) monotone map from the regression's probability of the picked label to the
    SVM's confidence: their quantiles over the same held-out in-scope examples."""
    q = np.linspace(0.0, 1.0, KNOTS)
    xs = np.quantile(smoothed, q)
    ys = np.maximum.accumulate(np.quantile(confidences, q))
    xs[0], xs[-1] = 0.0, 1.0  # the ends reach the whole range, 0 maps to 0
    ys[0], ys[-1] = 0.0, max(ys[-1], ys[-2])
    return np.vstack([np.maximum.accumulate(xs), ys]).astype(np.float64)


@dataclass(frozen=True)
class Smoother:
    """The fitted regression (weights over the same features as the SVM's) and its map."""

    weights: np.ndarray  # features x classes, float32
    bias: np.ndarray
    knots: np.ndarray  # (2, KNOTS): probability -> confidence
    vector_weights: np.ndarray | None = None

    def confidence(
        self,
        columns: np.ndarray,
        values: np.ndarray,
        label: int,
        embedding: np.ndarray | None = None,
    ) -> float:
        """The mapped probability of class ``label`` for one message's feature row (and,
        with static vectors, its scaled sentence vector)."""
        scores = values.astype(np.float32) @ self.weights[columns] + self.bias
        if embedding is not None and self.vector_weights is not None:
            scores += embedding @ self.vector_weights
        scores = scores.astype(np.float64)
        shifted = np.exp(scores - scores.max())
        probability = float(shifted[label] / shifted.sum())
        return float(np.interp(probability, self.knots[0], self.knots[1]))

    def arrays(self) -> dict[str, np.ndarray]:
        """What `nlu.persistence` stores for it."""
        stored = {
            "smooth_weights": self.weights.astype(np.float16),
            "smooth_bias": self.bias,
            "smooth_knots": self.knots,
        }
        if self.vector_weights is not None:
            stored["smooth_vector_weights"] = self.vector_weights
        return stored

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Smoother | None:
        if "smooth_weights" not in arrays:
            return None
        return cls(
            weights=np.ascontiguousarray(arrays["smooth_weights"], dtype=np.float32),
            bias=np.asarray(arrays["smooth_bias"], dtype=np.float32),
            knots=np.asarray(arrays["smooth_knots"], dtype=np.float64),
            vector_weights=arrays.get("smooth_vector_weights"),
        )
