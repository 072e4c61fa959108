"""Fitting the intent classifier's linear SVM, and calibrating it on cross-validated decision
values: the softmax temperature, the "auto" threshold, the out-of-scope class's offset and, for
bots with many examples per intent, the smoother's mapping (nlu/smooth.py).

Why these choices: nlu/classifier.py's docstring, with the measurements.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nlu import smooth

if TYPE_CHECKING:
    from sklearn.svm import LinearSVC

OUT_OF_SCOPE = "out_of_scope"

log = logging.getLogger(__name__)
C = 1.0  # the SVM's regularization (see the table above)
CV_FOLDS = 3
PARALLEL_FROM = 5000  # examples; below, starting worker processes costs more than it saves
# "auto" thresholds stay in this range: below it nothing is ever rejected, above it clear
# messages of a small data set, whose probabilities spread over few examples, are rejected.
MIN_THRESHOLD, MAX_THRESHOLD = 0.1, 0.7
FALLBACK_THRESHOLD = 0.3  # when there are too few examples to calibrate
FALLBACK_TEMPERATURE = 3.0  # the softmax temperature when there is nothing to fit it on
# The temperature used is this share of the log-loss optimum: softer probabilities let the
# whole ranking, not just the best score, tell an out-of-scope message (see the table above).
TEMPERATURE_SCALE = 0.5
# With the bundled negatives, the auto threshold is at least FLOOR_SHARE times an even share
# of the labels (1 / their number), within [MIN_THRESHOLD, NEGATIVES_FLOOR]: small bots, whose
# cross-validation is too pessimistic to calibrate on, get the higher floor.
FLOOR_SHARE = 5.0
NEGATIVES_FLOOR = 0.3
# Tried, in decision-value units, as an offset subtracted from the out-of-scope class's score.
OOS_BIASES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0)


@dataclass(frozen=True)
class Calibration:
    temperature: float
    threshold: float
    oos_bias: float
    knots: np.ndarray | None = None  # the smoother's map, when it is used


def calibrate(
    rows: Any,
    y: np.ndarray,
    classes: list[str],
    target_false_reject: float,
    embeddings: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
    floor: float = MIN_THRESHOLD,
    smoothing: bool = False,
) -> Calibration:
    """The softmax temperature, the auto threshold, the out-of-scope offset and (with
    ``smoothing``) the smoother's map, from cross-validated decision values (and, with
    ``smoothing``, the cross-validated regression's probabilities).

    The temperature is TEMPERATURE_SCALE times the one minimizing the log-loss of the held-out
    predictions. The offset (subtracted from the ``out_of_scope`` class's decision value) is the
    smallest of OOS_BIASES that leaves at most ``target_false_reject`` of the held-out in-scope
    examples predicted out of scope: the bundled negatives are many and varied, and an
    ``out_of_scope`` class made of them would otherwise take in-scope messages whose words it
    has not seen. The threshold is the confidence below which ``target_false_reject`` of the
    in-scope examples fall (one predicted out of scope counts as rejected whatever the
    threshold), at least ``floor``, at most MAX_THRESHOLD; with ``smoothing``, of the smoothed
    confidences, the map being fitted on the same held-out examples.
    """
    from joblib import Parallel, delayed  # training only: a hub that loads its model
    from scipy.optimize import minimize_scalar  # imports none of these
    from scipy.special import log_softmax
    from sklearn.model_selection import StratifiedKFold

    if sample_weight is None:
        sample_weight = np.ones(len(y))
    counts = Counter(y.tolist())
    # Intents with fewer examples than folds are never held out (every fold trains on them),
    # so one new intent with two examples does not cost the whole bot its calibration.
    held = np.array([counts[label] >= CV_FOLDS for label in y.tolist()])
    in_scope = np.array([classes[label] != OUT_OF_SCOPE for label in y.tolist()])
    if not (held & in_scope).any():
        return Calibration(FALLBACK_TEMPERATURE, FALLBACK_THRESHOLD, 0.0)
    always = np.flatnonzero(~held)
    candidates = np.flatnonzero(held)
    decisions = np.zeros((len(candidates), len(classes)))
    smoothed = np.zeros((len(candidates), len(classes)))
    splits = list(
        StratifiedKFold(CV_FOLDS, shuffle=True, random_state=0).split(candidates, y[candidates])
    )
    # Large data: the folds train side by side in worker processes, one per core (not threads:
    # liblinear's random generator is process-wide, so threads would make training vary).
    workers = min(CV_FOLDS, os.cpu_count() or 1) if len(y) >= PARALLEL_FROM else 1
    jobs = (
        delayed(_fold)(
            rows[fit_on],
            y[fit_on],
            sample_weight[fit_on],
            rows[candidates[held_out]],
            len(classes),
            smoothing,
        )
        for train, held_out in splits
        for fit_on in [np.concatenate([always, candidates[train]])]
    )
    for (_, held_out), (values, probabilities) in zip(
        splits, Parallel(n_jobs=workers)(jobs), strict=True
    ):
        decisions[held_out] = values
        if probabilities is not None:
            smoothed[held_out] = probabilities
    truth = y[candidates]

    def log_loss(temperature: float) -> float:
        scaled = log_softmax(decisions * temperature, axis=1)
        return float(-scaled[np.arange(len(truth)), truth].mean())

    fitted = float(minimize_scalar(log_loss, bounds=(0.5, 50.0), method="bounded").x)
    temperature = TEMPERATURE_SCALE * fitted
    out = classes.index(OUT_OF_SCOPE) if OUT_OF_SCOPE in classes else -1
    best = np.where(np.arange(len(classes)) == out, -np.inf, decisions).argmax(axis=1)
    closeness = np.ones(len(truth))
    if embeddings is not None:  # as parsing scores: discounted by closeness to the intent
        for train, held_out in splits:
            fit_on = np.concatenate([always, candidates[train]])
            means = centroids(embeddings[fit_on], y[fit_on], len(classes))
            for row in held_out:
                closeness[row] = closeness_to(embeddings[candidates[row]], means[best[row]])
    positive = in_scope[candidates]
    # The out-of-scope class's offset: the smallest that leaves at most the target share of
    # in-scope examples predicted out of scope; then the threshold for the target, floored.
    bias = 0.0
    for bias in OOS_BIASES if out >= 0 else (0.0,):
        shifted = decisions.copy()
        if out >= 0:
            shifted[:, out] -= bias
        probabilities = softmax(shifted * temperature)
        predicted = probabilities.argmax(axis=1)
        if np.mean(predicted[positive] == out) <= target_false_reject:
            break
    confidence = probabilities.max(axis=1)
    knots = None
    if smoothing:
        picked = smoothed[np.arange(len(predicted)), predicted]
        kept = positive & (predicted != out)
        if kept.sum() >= 2:
            knots = smooth.knots(picked[kept], confidence[kept])
            confidence = np.interp(picked, knots[0], knots[1])
    scores = np.where(predicted == out, 0.0, confidence * closeness)
    threshold = float(np.quantile(scores[positive], target_false_reject))
    return Calibration(temperature, min(max(threshold, floor), MAX_THRESHOLD), bias, knots)


def floor_for(n_classes: int) -> float:
    """The auto threshold's floor for a model trained with the bundled negatives."""
    return min(max(FLOOR_SHARE / n_classes, MIN_THRESHOLD), NEGATIVES_FLOOR)


def centroids(embeddings: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """Each class's unit-length mean sentence vector (zeros for a class with no examples)."""
    centroids = np.zeros((n_classes, embeddings.shape[1]), dtype=np.float32)
    np.add.at(centroids, y, embeddings)
    norms = np.linalg.norm(centroids, axis=1, keepdims=True)
    return centroids / np.where(norms > 0, norms, 1.0)


def closeness_to(vector: np.ndarray, centroid: np.ndarray) -> float:
    """How near a message is to its intent's examples, in [0, 1]: squared cosine, negatives 0.

    A confident classifier can still be far from every example of what it picked, the mark of
    an out-of-scope message (CLINC150 val, with vectors: AUROC 0.967 -> 0.972, out-of-scope
    recall at 5% false rejects 83% -> 88%; power 2 did better than 0.5 or 1).
    """
    cosine = float(vector @ centroid)
    return max(cosine, 0.0) ** 2


def _fold(
    rows: Any,
    y: np.ndarray,
    sample_weight: np.ndarray,
    held_out: Any,
    n_classes: int,
    smoothing: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Decision values for ``held_out`` of an SVM fitted on ``rows`` (one CV fold), and with
    ``smoothing`` the probabilities of the regression fitted on them."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # held-out scores only
        svm = _svm().fit(rows, y, sample_weight=sample_weight)
    probabilities = None
    if smoothing:
        regression = smooth.fit(rows, y, sample_weight)
        probabilities = smooth.probabilities(regression, held_out, n_classes)
    return _decisions(svm, held_out, n_classes), probabilities


def _svm() -> LinearSVC:
    from sklearn.svm import LinearSVC

    return LinearSVC(C=C, class_weight="balanced", max_iter=5000, random_state=0)


def fit_svm(rows: Any, y: np.ndarray, sample_weight: np.ndarray | None = None) -> LinearSVC:
    from sklearn.exceptions import ConvergenceWarning

    svm = _svm()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        svm.fit(rows, y, sample_weight=sample_weight)
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        log.info("the SVM stopped at max_iter before converging fully")
    return svm


def svm_weights(svm: LinearSVC, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(features x classes) weights and per-class biases, rounded to float16 precision.

    Stored as float16 (half the size on disk), the trained model is rounded the same way so
    that a saved and loaded model parses exactly as the one just trained.
    """
    coef, intercept = svm.coef_, svm.intercept_
    if n_classes == 2:  # sklearn keeps one row for two classes
        coef, intercept = np.vstack([-coef, coef]) / 2, np.concatenate([-intercept, intercept]) / 2
    weights = coef.T.astype(np.float16).astype(np.float32)
    return weights, intercept.astype(np.float32)


def _decisions(svm: LinearSVC, rows: Any, n_classes: int) -> np.ndarray:
    """Decision values as an (n, n_classes) array, also for two classes (sklearn gives one)."""
    values = svm.decision_function(rows)
    if n_classes == 2:
        values = np.column_stack([-values, values]) / 2
    return np.asarray(values)


def softmax(scores: np.ndarray) -> np.ndarray:
    shifted = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)
