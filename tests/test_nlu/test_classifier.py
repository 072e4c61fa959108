"""The intent classifier on the demo bot: paraphrases, out of scope, ranking, persistence."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from nlu import IntentClassifier, NluDataError, Parse, TrainingData
from nlu.classifier import FALLBACK_TEMPERATURE, MAX_THRESHOLD, MIN_THRESHOLD, training_key
from nlu.persistence import METADATA_FILE, MODEL_FILE, ModelFileError

DEMO = Path(__file__).parents[2] / "examples" / "shop" / "nlu"

# Written for this test, not copied from the training data (checked below).
PARAPHRASES = [
    ("hello there!", "greet"),
    ("hi, good morning", "greet"),
    ("嗨，您好", "greet"),
    ("你好啊", "greet"),
    ("ok bye then", "goodbye"),
    ("好的，拜拜", "goodbye"),
    ("thanks so much for the help", "thanks"),
    ("非常感谢你的帮助", "thanks"),
    ("yes, that is right", "affirm"),
    ("好的没问题", "affirm"),
    ("nope, never mind", "deny"),
    ("不用了不用了", "deny"),
    ("can I talk to a real person", "human"),
    ("please connect me with a human agent", "human"),
    ("我要转人工客服", "human"),
    ("能帮我找个真人客服吗", "human"),
    ("where is my package 55443322", "check_order"),
    ("can you track order 1234567 for me", "check_order"),
    ("帮我查一下订单87654321到哪了", "check_order"),
    ("我的快递怎么还没到", "check_order"),
    ("how much does shipping cost", "shipping"),
    ("寄到上海要几天", "shipping"),
    ("I want to return these shoes", "returns"),
    ("衣服不合适可以退吗", "returns"),
    ("can I pay with WeChat", "payment"),
    ("支付失败怎么办", "payment"),
    ("I am really unhappy with your service", "complaint"),
    ("你们的服务太差了，我要投诉", "complaint"),
]
OUT_OF_SCOPE = [  # written for this test too (checked below)
    "what's the weather in Paris",
    "明天天气预报怎么说",
    "tell me a funny joke",
    "who won the basketball game",
    "北京明天会下雨吗",
]


@pytest.fixture(scope="module")
def data() -> TrainingData:
    return TrainingData.load(DEMO)


@pytest.fixture(scope="module")
def classifier(data: TrainingData) -> IntentClassifier:
    return IntentClassifier.train(data)


def test_held_out_inputs_are_not_training_examples(data: TrainingData) -> None:
    training = {text.casefold() for text, _ in data.examples}
    written = [text for text, _ in PARAPHRASES] + OUT_OF_SCOPE
    assert [text for text in written if text.casefold() in training] == []


@pytest.mark.parametrize(("text", "intent"), PARAPHRASES)
def test_held_out_paraphrases(classifier: IntentClassifier, text: str, intent: str) -> None:
    assert classifier.parse(text).intent == intent


@pytest.mark.parametrize("text", OUT_OF_SCOPE)
def test_out_of_scope_gives_no_intent(classifier: IntentClassifier, text: str) -> None:
    parse = classifier.parse(text)
    assert parse.intent is None
    assert parse.ranking[0][0] == "out_of_scope"


def test_contract_example(classifier: IntentClassifier) -> None:
    parse = classifier.parse("where is my order 12345678")
    assert isinstance(parse, Parse)
    assert parse.text == "where is my order 12345678"
    assert parse.intent == "check_order"
    assert 0.0 <= parse.confidence <= 1.0
    assert parse.entities == [{"entity": "order_id", "value": "12345678", "start": 18, "end": 26}]
    assert parse.ranking[0] == ("check_order", parse.confidence)
    assert parse.language == "en"
    assert parse.ambiguous is False


def test_chinese_message_with_entity(classifier: IntentClassifier) -> None:
    parse = classifier.parse("我的订单20231105到哪了")
    assert (parse.intent, parse.language) == ("check_order", "zh")
    assert parse.entities == [{"entity": "order_id", "value": "20231105", "start": 4, "end": 12}]


def test_ranking_is_sorted_probabilities(classifier: IntentClassifier) -> None:
    for text in ["hello", "转人工", "asdf qwer", "我要退货 refund"]:
        ranking = classifier.parse(text).ranking
        scores = [score for _, score in ranking]
        assert scores == sorted(scores, reverse=True)
        assert all(0.0 <= s <= 1.0 for s in scores)
        assert sum(scores) <= 1.0 + 1e-9
        assert {label for label, _ in ranking} == set(classifier.intents)


def test_parse_is_frozen(classifier: IntentClassifier) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        classifier.parse("hi").intent = "other"  # type: ignore[misc]


def test_blank_message(classifier: IntentClassifier) -> None:
    assert classifier.parse("  ") == Parse(text="  ", intent=None, confidence=0.0)


def test_parse_many_matches_parse(classifier: IntentClassifier) -> None:
    texts = ["hi", "", "我要退货"]
    assert classifier.parse_many(texts) == [classifier.parse(text) for text in texts]


def test_auto_threshold_is_bounded(classifier: IntentClassifier) -> None:
    assert MIN_THRESHOLD <= classifier.threshold <= MAX_THRESHOLD


def test_explicit_threshold_rejects_low_confidence(
    classifier: IntentClassifier, data: TrainingData
) -> None:
    text = "shipping or returns, I am not sure"  # two intents' words: not a confident parse
    unsure = classifier.parse(text)
    assert unsure.ranking[0][0] in {"shipping", "returns"} and unsure.confidence < 0.99
    strict = IntentClassifier.train(data, threshold=0.99)
    parse = strict.parse(text)
    assert strict.threshold == 0.99
    assert parse.intent is None and parse.ranking == unsure.ranking


@pytest.mark.parametrize("settings", [{"threshold": 1.5}, {"target_false_reject": 0.0}])
def test_invalid_settings_are_refused(data: TrainingData, settings: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        IntentClassifier.train(data, **settings)  # type: ignore[arg-type]


def test_training_needs_two_intents() -> None:
    data = TrainingData.from_yaml("nlu:\n- intent: greet\n  examples: |\n    - hi\n")
    with pytest.raises(NluDataError):
        IntentClassifier.train(data)


def test_few_examples_still_train_with_a_fallback_threshold() -> None:
    data = TrainingData.from_yaml(
        "nlu:\n- intent: greet\n  examples: |\n    - hi\n"
        "- intent: bye\n  examples: |\n    - bye\n    - see you\n"
    )
    classifier = IntentClassifier.train(data)
    assert classifier.parse("hi").ranking[0][0] == "greet"


def test_save_and_load_round_trip(
    classifier: IntentClassifier, data: TrainingData, tmp_path: Path
) -> None:
    folder = tmp_path / "models" / "nlu"
    classifier.save(folder)
    metadata = json.loads((folder / METADATA_FILE).read_text(encoding="utf-8"))
    assert metadata["fingerprint"] == data.fingerprint()
    assert metadata["threshold"] == classifier.threshold
    assert metadata["training_key"] == training_key(data)
    assert {"scikit-learn", "numpy", "scipy", "jieba"} <= set(metadata["versions"])

    loaded = IntentClassifier.load(folder)
    assert loaded.fingerprint == data.fingerprint() == classifier.fingerprint
    texts = [text for text, _ in PARAPHRASES] + OUT_OF_SCOPE + ["用顺丰发的订单123456"]
    assert loaded.parse_many(texts) == classifier.parse_many(texts)


class Payload:
    """Stands for arbitrary code in a tampered model file."""

    loaded = False

    def __reduce__(self) -> tuple[object, tuple[()]]:
        return (Payload._run, ())

    @staticmethod
    def _run() -> None:
        Payload.loaded = True


def test_load_refuses_pickled_objects(classifier: IntentClassifier, tmp_path: Path) -> None:
    classifier.save(tmp_path)
    with np.load(tmp_path / MODEL_FILE) as stored:
        content = {name: stored[name] for name in stored.files}
    content["weights"] = np.array([Payload()], dtype=object)  # needs pickle to load
    np.savez(tmp_path / MODEL_FILE, **content)
    with pytest.raises(ModelFileError, match="not a readable model"):
        IntentClassifier.load(tmp_path)
    assert Payload.loaded is False


@pytest.mark.parametrize("damage", [b"", b"not a zip file", b"PK\x03\x04truncated"])
def test_damaged_model_file_is_a_clear_error(
    classifier: IntentClassifier, tmp_path: Path, damage: bytes
) -> None:
    classifier.save(tmp_path)
    (tmp_path / MODEL_FILE).write_bytes(damage)
    with pytest.raises(ModelFileError, match=str(tmp_path / MODEL_FILE)):
        IntentClassifier.load(tmp_path)


def test_training_key_changes_with_data_and_settings(data: TrainingData) -> None:
    other = TrainingData.from_yaml("nlu:\n- intent: a\n  examples: |\n    - x\n")
    keys = {
        training_key(data),
        training_key(other),
        training_key(data, threshold=0.5),
        training_key(data, target_false_reject=0.1),
        training_key(data, ambiguity_margin=0.2),
    }
    assert len(keys) == 5
    assert training_key(data) == training_key(TrainingData.load(DEMO))


def test_training_is_deterministic(classifier: IntentClassifier, data: TrainingData) -> None:
    again = IntentClassifier.train(data)
    assert again.threshold == classifier.threshold
    for text in ["hello", "我要退货"]:
        first, second = classifier.parse(text), again.parse(text)
        assert first.intent == second.intent
        assert math.isclose(first.confidence, second.confidence)


def test_an_intent_with_one_example_does_not_cost_the_bot_its_calibration(
    classifier: IntentClassifier,
) -> None:
    yaml = (DEMO / "chitchat.yml").read_text(encoding="utf-8") + (
        "\n- intent: opening_hours\n  examples: |\n    - when are you open\n"
    )
    data = TrainingData.load([DEMO / "support.yml", DEMO / "orders.yml", DEMO / "out_of_scope.yml"])
    data.training_examples += TrainingData.from_yaml(yaml).training_examples
    trained = IntentClassifier.train(data)
    assert trained.temperature != FALLBACK_TEMPERATURE  # fitted by cross-validation
    assert abs(trained.temperature - classifier.temperature) < 0.5 * classifier.temperature
    assert trained.parse("when are you open today").ranking[0][0] == "opening_hours"


def test_folds_in_worker_processes_calibrate_as_in_one(
    classifier: IntentClassifier, data: TrainingData, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("nlu.fitting.PARALLEL_FROM", 1)  # as for large data
    parallel = IntentClassifier.train(data)
    assert parallel.temperature == classifier.temperature
    assert parallel.threshold == classifier.threshold
    assert parallel.parse("我要退货") == classifier.parse("我要退货")
