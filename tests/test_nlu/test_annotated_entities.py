"""Entities annotated in the examples (`[面条](food)`) are found at parse time as exact values,
with Rasa's synonym forms; values that would be unsafe to look up are left out (P12 point 6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlu import IntentClassifier, TrainingData

DATA = """\
version: "3.1"
nlu:
- intent: order_food
  examples: |
    - 我想吃[面条](food)
    - 来一碗[牛肉面](food)
    - 要一份[宫保鸡丁](food)
    - I'd like some [noodles](food)
    - [beef noodles](food) for two
    - a [面](food) please
    - [2](quantity) bowls of rice
    - [NY](city:New York) style please
    - deliver it to [Paris]{"entity": "city"}
    - send it to [Peking]{"entity": "city", "value": "北京"}
    - one [pizza](food) please
    - order [A12345](order_id) again
- intent: chitchat
  examples: |
    - pizza is overrated
    - 今天天气不错
    - 好久不见面了
    - how are you
    - what a nice day
- synonym: New York
  examples: |
    - the big apple
- regex: order_id
  examples: |
    - [A-Z]\\d{5}
"""


@pytest.fixture(scope="module")
def data() -> TrainingData:
    return TrainingData.from_yaml(DATA, "nlu.yml")


@pytest.fixture(scope="module")
def classifier(data: TrainingData) -> IntentClassifier:
    return IntentClassifier.train(data)


def found(classifier: IntentClassifier, text: str) -> list[tuple[str, str, str]]:
    """(entity, value, surface text) of each entity found."""
    return [
        (e["entity"], e["value"], text[e["start"] : e["end"]])
        for e in classifier.parse(text).entities
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Chinese values are found anywhere, without word boundaries
        ("我想吃牛肉面", [("food", "牛肉面", "牛肉面")]),
        ("今天中午吃面条吧", [("food", "面条", "面条")]),
        ("宫保鸡丁还有吗", [("food", "宫保鸡丁", "宫保鸡丁")]),
        # English values on word boundaries, any case, spelled as annotated
        ("NOODLES please", [("food", "noodles", "NOODLES")]),
        ("noodlesoup", []),
        # the longest value wins
        ("two beef noodles please", [("food", "beef noodles", "beef noodles")]),
        # [NY](city:New York): the surface text, the value and the value's synonyms
        ("anything in ny?", [("city", "New York", "ny")]),
        ("ship to new york", [("city", "New York", "new york")]),
        ("ship to the big apple", [("city", "New York", "the big apple")]),
        ("Paris, please", [("city", "Paris", "Paris")]),
        # {"entity": ..., "value": ...}: both the text and the value are found, as the value
        ("to Peking", [("city", "北京", "Peking")]),
        ("送到北京", [("city", "北京", "北京")]),
        # several in one message
        ("我想吃面条, ship to NY", [("food", "面条", "面条"), ("city", "New York", "NY")]),
    ],
)
def test_annotated_values_are_found_at_parse_time(
    classifier: IntentClassifier, text: str, expected: list[tuple[str, str, str]]
) -> None:
    assert found(classifier, text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "好久不见",  # [面](food): one character would be found inside every word that has it
        "我们见面吧",
        "2",  # [2](quantity): a number is a regex's job, not a value to look up
        "I want 2",
        "pizza for me",  # the data says "pizza is overrated" without the annotation
    ],
)
def test_unsafe_values_are_not_looked_up(classifier: IntentClassifier, text: str) -> None:
    assert found(classifier, text) == []


def test_what_joined_the_lookup_tables_and_what_was_warned(data: TrainingData) -> None:
    assert data.annotated == {
        "food": ["面条", "牛肉面", "宫保鸡丁", "noodles", "beef noodles"],
        "city": ["NY", "New York", "Paris", "Peking", "北京", "the big apple"],
    }
    assert data.lookups == data.annotated  # no lookup: section of their own here
    # A12345 is matched by the order_id regex already; 面 and 2 are silently left out
    assert "order_id" not in data.annotated and "quantity" not in data.annotated
    (warning,) = data.warnings
    assert warning.startswith("nlu.yml:15:7: annotated value 'pizza' of entity 'food'")
    assert "'pizza is overrated' (nlu.yml:19)" in warning


def test_a_declared_lookup_table_keeps_its_values_and_gets_the_new_ones() -> None:
    data = TrainingData.from_yaml(
        DATA + "- lookup: food\n  examples: |\n    - 饺子\n    - noodles\n", "nlu.yml"
    )
    assert data.lookups["food"] == ["饺子", "noodles", "面条", "牛肉面", "宫保鸡丁", "beef noodles"]


def test_the_saved_model_finds_them_too(classifier: IntentClassifier, tmp_path: Path) -> None:
    classifier.save(tmp_path / "model")
    loaded = IntentClassifier.load(tmp_path / "model")
    assert found(loaded, "我想吃牛肉面, to NY") == [
        ("food", "牛肉面", "牛肉面"),
        ("city", "New York", "NY"),
    ]


def test_a_new_annotation_changes_the_fingerprint(data: TrainingData) -> None:
    more = TrainingData.from_yaml(DATA.replace("- how are you", "- [饺子](food) how are you"))
    assert more.fingerprint() != data.fingerprint()
    assert "饺子" in more.lookups["food"]


def test_the_demo_bot_gains_nothing_it_did_not_have() -> None:
    # every value the demo annotates is already in its lookup tables or matched by a regex
    demo = TrainingData.load(Path(__file__).parents[2] / "examples" / "shop" / "nlu")
    assert demo.annotated == {}
    assert demo.warnings == []


def test_several_entities_on_one_text_as_rasa_3_writes_them() -> None:
    data = TrainingData.from_yaml(
        "nlu:\n- intent: fly\n  examples: |\n"
        '    - fly to [Paris][{"entity": "city", "role": "to"}, {"entity": "airport_city"}]\n'
        "    - hello\n"
    )
    example = data.training_examples[0]
    assert example.text == "fly to Paris"
    assert [(s.entity, s.role, s.start, s.end) for s in example.entities] == [
        ("city", "to", 7, 12),
        ("airport_city", None, 7, 12),
    ]
    assert data.annotated == {"city": ["Paris"], "airport_city": ["Paris"]}


def test_a_broken_entity_list_is_an_error_at_its_place() -> None:
    from nlu import NluDataError

    with pytest.raises(NluDataError) as caught:
        TrainingData.from_yaml(
            'nlu:\n- intent: fly\n  examples: |\n    - to [Paris][{"role": "to"}]\n', "a.yml"
        )
    assert caught.value.errors == ['a.yml:4:17: annotation [Paris] needs an "entity" name']
