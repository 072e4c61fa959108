"""The smoother (nlu/smooth.py): bots with many examples per intent and language take the
out-of-scope confidence from a regularized logistic regression, mapped onto the SVM's scale;
the SVM still picks the label. Small bots (the demo bot: ~18 examples per intent and language)
do not use it. What it buys is measured in bench/nlu_oos.py (BENCHMARKS.md)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from nlu import IntentClassifier, TrainingData, smooth
from nlu.data import Example

ROOT = Path(__file__).parents[2]

# A bank's bot with 48 examples per intent, all English: big enough for the smoother.
ASKS = ["", "please ", "can you tell me ", "i need to know ", "help, ", "quick question: "]
INTENTS = {
    "card_lost": [
        "i lost my card",
        "my card was stolen",
        "i can't find my debit card",
        "someone took my credit card",
        "my wallet with my card is gone",
        "block my missing card",
        "report a stolen card",
        "freeze my card, it's lost",
    ],
    "card_arrival": [
        "when will my new card arrive",
        "my card hasn't come in the mail",
        "how long does card delivery take",
        "the card you sent never arrived",
        "track the card you posted to me",
        "still waiting for my card",
        "is my new card on its way",
        "card delivery status",
    ],
    "transfer_failed": [
        "my transfer failed",
        "the payment to my friend didn't go through",
        "why was my bank transfer declined",
        "money transfer got rejected",
        "my transfer is stuck as failed",
        "sending money did not work",
        "the wire transfer bounced",
        "transfer error when sending money",
    ],
    "top_up": [
        "how do i top up my account",
        "add money to my balance",
        "top up with my card",
        "put cash into my account",
        "load money onto the app",
        "my top up is pending",
        "can i top up by bank transfer",
        "add funds to my wallet",
    ],
    "change_pin": [
        "how do i change my pin",
        "reset my card pin",
        "i forgot my pin",
        "set a new pin code",
        "my pin is blocked",
        "where can i change the pin",
        "update the pin of my card",
        "unlock my pin",
    ],
}
PARAPHRASES = [
    ("my debit card got stolen yesterday", "card_lost"),
    ("has my new card been posted yet", "card_arrival"),
    ("the money transfer i sent failed", "transfer_failed"),
    ("i want to top up my balance", "top_up"),
    ("i need to reset my pin", "change_pin"),
]


def bank_bot() -> TrainingData:
    examples = [
        Example(f"{ask}{text}", intent)
        for intent, texts in INTENTS.items()
        for ask, text in itertools.product(ASKS, texts)
    ]
    return TrainingData(training_examples=examples)


@pytest.fixture(scope="module")
def classifier() -> IntentClassifier:
    return IntentClassifier.train(bank_bot())


def test_a_bot_with_many_examples_per_intent_is_smoothed(classifier: IntentClassifier) -> None:
    assert classifier.metadata["smoothed"] is True
    assert classifier.smoother is not None


def test_the_demo_bot_in_two_languages_is_not() -> None:
    demo = TrainingData.load(ROOT / "examples" / "shop" / "nlu")
    per_intent = len(demo.examples) / len(demo.intents)
    assert per_intent >= smooth.SMOOTH_FROM  # as many examples per intent as a big bot...
    assert not smooth.wanted(demo.examples)  # ...but in two languages: two small sets each
    assert IntentClassifier.train(demo).metadata["smoothed"] is False


def test_the_svm_still_picks_the_label(classifier: IntentClassifier) -> None:
    for text, intent in PARAPHRASES:
        parse = classifier.parse(text)
        assert parse.intent == intent, (text, parse.ranking[:3])


def test_unrelated_messages_get_no_intent(classifier: IntentClassifier) -> None:
    for text in ["what's the weather in paris", "tell me a joke", "who won the football match"]:
        assert classifier.parse(text).intent is None, text


def test_the_ranking_starts_with_the_confidence(classifier: IntentClassifier) -> None:
    for text in [t for t, _ in PARAPHRASES] + ["card", "what's a good pizza place"]:
        parse = classifier.parse(text)
        values = [p for _, p in parse.ranking]
        assert parse.ranking[0][1] == parse.confidence
        assert values == sorted(values, reverse=True)
        assert 0.0 <= parse.confidence <= 1.0 and sum(values) <= 1.0 + 1e-9


def test_a_saved_model_parses_as_the_trained_one(
    classifier: IntentClassifier, tmp_path: Path
) -> None:
    classifier.save(tmp_path / "model")
    loaded = IntentClassifier.load(tmp_path / "model")
    assert loaded.smoother is not None
    for text in [t for t, _ in PARAPHRASES] + ["tell me a joke"]:
        assert loaded.parse(text) == classifier.parse(text)


def test_the_map_keeps_the_order_and_the_scale() -> None:
    rng = np.random.default_rng(0)
    probabilities = rng.beta(2, 2, 500)
    confidences = rng.beta(5, 1, 500)
    knots = smooth.knots(probabilities, confidences)
    assert (np.diff(knots[0]) >= 0).all() and (np.diff(knots[1]) >= 0).all()
    assert np.interp(0.0, knots[0], knots[1]) == 0.0
    # a probability at a quantile of the regression's maps to that quantile of the SVM's
    mapped = np.interp(np.quantile(probabilities, 0.3), knots[0], knots[1])
    assert mapped == pytest.approx(np.quantile(confidences, 0.3), abs=0.02)
