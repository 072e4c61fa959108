"""What `kefu check` catches, each as `path:line:column: what`, all of them at once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flows import FlowError, load_flows
from flows.checks import check_entities, check_references
from hub.cli import main

ROOT = Path(__file__).resolve().parents[2]

BROKEN = """\
flows:
  order:
    trigger: {intents: [check_order, track_parcel]}
    steps:
      - ask: order_id
        say: "Order number?"
        validate: '(\\d{6'
      - if: "slots.order_id =="
        then: [{say: "?"}]
      - say: "Status {{ slots.status }} for {{ slots.order_id }}, {{ secret }}"
        buttons: [{title: Human, payload: /speak_to_manager}]
      - goto: nowhere
      - action: lookup_order
  helper:
    steps:
      - ask: n
        say: "How many?"
        type: number
        on_fail: missing_flow
      - http: {url: "https://api.example/{{ slots.n }}", save: {total: $.total}}
        on_error: continue
      - say: "{{ slots.total }} {{ slots.n }}"
      - say: "{% if %}"
"""


def errors_for(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "a.yml").write_text(text, encoding="utf-8")
    try:
        flows = load_flows(tmp_path)
        errors: list[str] = []
    except FlowError as e:
        flows, errors = e.flows, e.errors
    return errors + check_references(flows, ["check_order", "human"], ["other_action"])


def test_every_kind_of_mistake_with_its_place(tmp_path: Path) -> None:
    errors = errors_for(tmp_path, BROKEN)
    path = tmp_path / "a.yml"
    expected = {  # the key (or list item) where the mistake is
        f"{path}:3:38": "intent 'track_parcel' is not in the NLU data",
        f"{path}:7:9": "bad regex",
        f"{path}:8:9": "expression error",
        f"{path}:10:9": "slot 'status' is used but nothing fills it",
        f"{path}:11:34": "intent 'speak_to_manager' is not in the NLU data",
        f"{path}:12:9": "goto to unknown flow 'nowhere'",
        f"{path}:13:9": "unknown action 'lookup_order' (actions.py defines: other_action)",
        f"{path}:19:9": "on_fail to unknown flow 'missing_flow'",
        f"{path}:23:9": "template error",
    }
    for where, what in expected.items():
        assert any(e.startswith(where + ":") and what in e for e in errors), (where, what, errors)
    assert any("unknown variable 'secret'" in e for e in errors)
    # filled by the http step's save, so known; n by the ask
    assert not any("'total'" in e or "slot 'n'" in e for e in errors)


def test_a_slot_used_after_an_action_is_known(tmp_path: Path) -> None:
    errors = errors_for(
        tmp_path,
        """\
flows:
  a:
    trigger: {intents: [check_order]}
    steps:
      - action: other_action
      - say: "{{ slots.anything }}"
""",
    )
    assert errors == []


def test_slots_travel_along_goto(tmp_path: Path) -> None:
    text = """\
flows:
  a:
    trigger: {intents: [check_order]}
    steps:
      - set: {order_id: "1"}
      - goto: b
  b:
    steps:
      - say: "{{ slots.order_id }}"
"""
    assert errors_for(tmp_path, text) == []
    errors = errors_for(tmp_path, text.replace("goto: b", "say: x"))
    assert len(errors) == 1 and "slot 'order_id'" in errors[0]


def test_kefu_check_prints_all_and_exits_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bot = tmp_path / "bot"
    shutil.copytree(ROOT / "examples/shop/nlu", bot / "nlu")
    (bot / "flows").mkdir()
    (bot / "flows" / "a.yml").write_text(BROKEN, encoding="utf-8")
    (bot / "tests").mkdir()
    (bot / "tests" / "t.yml").write_text("tests:\n  - name: x\n    steps: [{dance: 1}]\n")
    assert main(["check", "--bot", str(bot)]) == 1
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) >= 11
    assert all(":" in line.split(" ")[0] for line in lines)
    assert "goto to unknown flow 'nowhere'" in out
    assert "unknown action 'lookup_order' (actions.py defines: none)" in out
    assert f"{bot / 'tests' / 't.yml'}:3:" in out


def test_kefu_check_passes_the_demo_bot(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--bot", str(ROOT / "examples/shop")]) == 0
    assert capsys.readouterr().out.startswith("ok: ")


def test_the_demo_bots_conversation_tests_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KEFU_DATA_DIR", str(tmp_path))
    code = main(["test", "--bot", str(ROOT / "examples/shop")])
    out = capsys.readouterr().out
    assert code == 0, out
    passed = int(out.strip().splitlines()[-1].split()[0])
    assert passed >= 25


# ---- warnings: an ask waiting for an entity nothing can extract -------------------------------

ENTITY_NLU = """\
nlu:
- intent: inform
  examples: |
    - my order is [12345678](order_id)
    - tracking number [2024051700](tracking)
    - I want [noodles](food)
    - hello
- regex: order_id
  examples: |
    - \\d{8}
- lookup: carrier
  examples: |
    - DHL
"""

ENTITY_FLOWS = """\
flows:
  a:
    trigger: {intents: [inform]}
    steps:
      - ask: order_id
        say: "Order?"
      - ask: courier
        say: "Which courier?"
        entity: carrier
      - ask: food
        say: "What to eat?"
      - ask: reason
        say: "Why?"
      - ask: size
        say: "Size?"
        buttons: [{title: L, payload: '/inform{"size": "L"}'}]
      - ask: tracking
        say: "Tracking number?"
      - ask: town
        say: "Where to?"
        entity: city
"""


def entity_warnings(tmp_path: Path) -> list[str]:
    from nlu import TrainingData

    (tmp_path / "a.yml").write_text(ENTITY_FLOWS, encoding="utf-8")
    return check_entities(load_flows(tmp_path), TrainingData.from_yaml(ENTITY_NLU, "nlu.yml"))


def test_an_ask_for_an_entity_nothing_extracts_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "a.yml"
    tracking, town = entity_warnings(tmp_path)
    # the slot's name, annotated in the NLU data, but only with a number (not looked up)
    assert tracking.startswith(f"{path}:17:9: warning: flows.a: ask 'tracking': entity 'tracking'")
    assert "annotated in the NLU data (nlu.yml:5)" in tracking
    # `entity:` named, and nothing in the NLU data knows it: at the `entity:` key
    assert town.startswith(f"{path}:21:9: warning: flows.a: ask 'town': entity 'city' can never")
    assert "no regex, lookup table or annotated example" in town
    # not warned: order_id (regex), carrier (lookup), food (annotated value), size (a button
    # payload carries it), reason (never an entity: filled from the answer)


def test_no_nlu_data_no_entity_warnings(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text(ENTITY_FLOWS, encoding="utf-8")
    assert check_entities(load_flows(tmp_path), None) == []


def test_kefu_check_prints_the_warnings_and_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bot = tmp_path / "bot"
    shutil.copytree(ROOT / "examples/shop", bot, ignore=shutil.ignore_patterns("tests"))
    (bot / "flows" / "extra.yml").write_text(
        "flows:\n  gift:\n    trigger: {intents: [greet]}\n    steps:\n"
        "      - ask: card\n        say: Card number?\n        entity: gift_card\n",
        encoding="utf-8",
    )
    assert main(["check", "--bot", str(bot)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{bot / 'flows' / 'extra.yml'}:7:9: warning: flows.gift: ")
    assert "entity 'gift_card' can never be extracted" in lines[0]
    assert lines[-1].startswith("ok: ") and lines[-1].endswith(", 1 warning(s)")
