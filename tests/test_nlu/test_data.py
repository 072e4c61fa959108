"""Loading Rasa 3 NLU YAML: markup, sections, sources and errors as path:line:column."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nlu import NluDataError, TrainingData
from nlu.data import EntitySpan

DEMO = Path(__file__).parents[2] / "examples" / "shop" / "nlu"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def load_errors(source: Path | list[Path]) -> list[str]:
    with pytest.raises(NluDataError) as caught:
        TrainingData.load(source)
    assert str(caught.value) == "\n".join(caught.value.errors)
    return caught.value.errors


def test_entity_markup_is_stripped_with_offsets() -> None:
    data = TrainingData.from_yaml(
        "nlu:\n- intent: check_order\n  examples: |\n"
        "    - where is my order [12345678](order_id)\n"
        "    - 我的订单[20231105](order_id)到哪了\n"
        '    - ship it with [sf express]{"entity": "carrier", "value": "顺丰"} please\n'
    )
    first, second, third = data.entity_examples
    assert first.text == "where is my order 12345678"
    assert first.entities == (EntitySpan("order_id", "12345678", 18, 26),)
    assert second.text == "我的订单20231105到哪了"
    assert second.entities == (EntitySpan("order_id", "20231105", 4, 12),)
    assert second.text[4:12] == "20231105"
    assert third.text == "ship it with sf express please"
    assert third.entities == (EntitySpan("carrier", "顺丰", 13, 23),)
    # An annotated value other than the surface text is a synonym, as in Rasa.
    assert data.synonyms == {"sf express": "顺丰"}


def test_json_annotation_keeps_role_and_group() -> None:
    data = TrainingData.from_yaml(
        "nlu:\n- intent: fly\n  examples: |\n"
        '    - from [Paris]{"entity": "city", "role": "departure", "group": "1"} to go\n'
    )
    (span,) = data.training_examples[0].entities
    assert (span.entity, span.value, span.role, span.group) == ("city", "Paris", "departure", "1")


def test_synonym_regex_and_lookup_sections() -> None:
    data = TrainingData.from_yaml(
        "nlu:\n"
        "- synonym: 顺丰\n  examples: |\n    - SF Express\n    - 顺丰速运\n"
        "- regex: order_id\n  examples: |\n    - \\d{6,12}\n"
        "- lookup: carrier\n  examples: |\n    - 顺丰\n    - DHL\n"
    )
    assert data.synonyms == {"sf express": "顺丰", "顺丰速运": "顺丰"}
    assert data.regexes == {"order_id": [r"\d{6,12}"]}
    assert data.lookups == {"carrier": ["顺丰", "DHL"]}
    assert data.intents == []


def test_demo_bot_data_loads_with_every_intent_in_both_languages() -> None:
    data = TrainingData.load(DEMO)
    han = re.compile("[\u4e00-\u9fff]")
    for intent in data.intents:
        texts = [text for text, name in data.examples if name == intent]
        assert sum(bool(han.search(t)) for t in texts) >= 15, intent
        assert sum(not han.search(t) for t in texts) >= 15, intent
    assert {"greet", "human", "check_order", "out_of_scope"} <= set(data.intents)
    assert data.regexes["order_id"] and "顺丰" in data.lookups["carrier"]
    assert data.warnings == []


def test_load_file_folder_and_list(tmp_path: Path) -> None:
    b = write(tmp_path, "b.yml", "nlu:\n- intent: bye\n  examples: |\n    - bye\n")
    a = write(tmp_path, "a.yaml", "nlu:\n- intent: hi\n  examples: |\n    - hi\n")
    write(tmp_path, "notes.md", "not NLU data")
    nested = tmp_path / "more"
    nested.mkdir()
    c = write(nested, "c.yml", "nlu:\n- intent: hi\n  examples: |\n    - hello\n")
    assert TrainingData.load(b).examples == [("bye", "bye")]
    assert TrainingData.load(str(b)).examples == [("bye", "bye")]
    # A folder loads its YAML files sorted by path, subfolders included.
    assert TrainingData.load(tmp_path).examples == [("hi", "hi"), ("bye", "bye"), ("hello", "hi")]
    assert TrainingData.load([c, a]).intents == ["hi"]


def test_rasa_project_file_with_other_sections_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "nlu.yml",
        """\
version: "3.1"
intents: [greet]
responses:
  utter_greet:
  - text: Hey!
stories:
- story: happy path
  steps:
  - intent: greet
  - action: utter_greet
rules:
- rule: say hi
  steps:
  - intent: greet
nlu:
- intent: greet
  metadata: {sentiment: neutral}
  examples:
  - text: hey there
    metadata: {source: chat}
  - good morning
""",
    )
    data = TrainingData.load(path)
    assert data.examples == [("hey there", "greet"), ("good morning", "greet")]
    assert data.training_examples[0].source == f"{path}:19"


def test_errors_of_all_files_are_reported_as_path_line_column(tmp_path: Path) -> None:
    bad_markup = write(
        tmp_path,
        "a.yml",
        "nlu:\n- intent: check_order\n  examples: |\n    - fine\n    - order [123](order_id\n",
    )
    bad_yaml = write(tmp_path, "b.yml", "nlu:\n- intent: greet\n  examples: [hi,\n")
    bad_items = write(
        tmp_path,
        "c.yml",
        "nlu:\n"
        "- intent: greet\n  examples: |\n    hello without dash\n"
        "- regex: order_id\n  examples: |\n    - '[0-9'\n"
        "- intent: thanks\n"
        "- intnet: typo\n  examples: |\n    - x\n",
    )
    errors = load_errors(tmp_path)
    assert errors == [
        f"{bad_markup}:5:13: unclosed entity annotation",
        f"{bad_yaml}:4:1: YAML syntax error: expected the node content, but found "
        "'<stream end>' (while parsing a flow node)",
        f"{bad_items}:4:5: an example line must start with '- ': 'hello without dash'",
        f"{bad_items}:7:7: invalid regex for 'order_id': unterminated character set at position 1",
        f"{bad_items}:8:3: intent 'thanks' has no 'examples'",
        f"{bad_items}:9:3: unknown key 'intnet' in nlu item",
        f"{bad_items}:9:3: an nlu item needs exactly one of: intent, synonym, regex, lookup",
    ]
    for error in errors:
        assert re.match(r"^.+\.yml:\d+:\d+: \S", error)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: '1.0'\nnlu: []\n", "<string>:1:10: unsupported version '1.0'"),
        ("nlu: {greet: hi}\n", "<string>:1:6: 'nlu' must be a list of items"),
        ("- just a list\n", "<string>:1:1: the file must be a mapping with an 'nlu:' key"),
        (
            'nlu:\n- intent: x\n  examples: |\n    - [a]{"entity": 1}\n',
            '<string>:4:10: annotation [a] needs an "entity" name',
        ),
        (
            "nlu:\n- intent: x\n  examples: |\n    - [a]{entity}\n",
            "<string>:4:10: annotation [a] has invalid JSON: "
            "Expecting property name enclosed in double quotes",
        ),
        (
            "nlu:\n- synonym: a\n  examples: |\n    - b\n- synonym: c\n  examples: |\n    - B\n",
            "<string>:7:7: 'B' is already a synonym of 'a' (<string>:4), not of 'c'",
        ),
        ("nlu:\n- intent: x\n  examples: ''\n", "<string>:3:13: intent 'x' has no examples"),
        ("nlu:\n- intent: ''\n  examples: '- a'\n", "<string>:2:11: intent needs a name"),
        ("nlu:\n- 42\n", "<string>:2:3: an nlu item must be a mapping such as '- intent: greet'"),
    ],
)
def test_error_messages(text: str, expected: str) -> None:
    with pytest.raises(NluDataError) as caught:
        TrainingData.from_yaml(text)
    assert caught.value.errors == [expected]


def test_missing_source_is_an_error(tmp_path: Path) -> None:
    assert load_errors(tmp_path / "nope.yml") == [
        f"{tmp_path / 'nope.yml'}:1:1: no such file or folder"
    ]


def test_same_example_in_two_intents_is_a_warning() -> None:
    data = TrainingData.from_yaml(
        "nlu:\n- intent: a\n  examples: |\n    - hi\n- intent: b\n  examples: |\n    - hi\n"
    )
    assert data.warnings == ["<string>:7:7: example 'hi' of 'b' is also in 'a' (<string>:4)"]


def test_fingerprint_ignores_order_and_formatting_but_not_content() -> None:
    one = TrainingData.from_yaml(
        "nlu:\n- intent: a\n  examples: |\n    - hi\n    - hey\n- intent: b\n  examples: |\n"
        "    - bye\n"
    )
    reordered = TrainingData.from_yaml(
        "# comment\nversion: '3.1'\nnlu:\n- intent: b\n  examples: |\n    - bye\n"
        "- intent: a\n  examples:\n  - hey\n  - hi\n"
    )
    changed = TrainingData.from_yaml(
        "nlu:\n- intent: a\n  examples: |\n    - hi\n    - hey\n- intent: b\n  examples: |\n"
        "    - bye bye\n"
    )
    assert one.fingerprint() == reordered.fingerprint()
    assert one.fingerprint() != changed.fingerprint()
    assert re.fullmatch("[0-9a-f]{64}", one.fingerprint())
