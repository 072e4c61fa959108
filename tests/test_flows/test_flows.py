"""Flow files: loading with path:line:column errors, triggers, say/handoff steps, sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows import FlowEngine, FlowError, load_flows
from hub.bot.files import HUB_WORDS
from hub.messages import Understanding
from hub.ports import TurnContext


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(folder: Path) -> list[str]:
    with pytest.raises(FlowError) as e:
        load_flows(folder)
    return e.value.errors


def turn(
    text: str, intent: str | None = None, language: str = "en", **entities: str
) -> TurnContext:
    u = Understanding(
        text=text,
        intent=intent,
        confidence=1.0,
        entities=tuple({"entity": k, "value": v} for k, v in entities.items()),
    )
    return TurnContext(understanding=u, language=language, conversation_id=1)


def test_the_demo_bot_loads() -> None:
    flows = load_flows(Path(__file__).resolve().parents[2] / "examples/shop/flows")
    assert {"greet", "order_status", "complaint"} <= set(flows)


def test_every_error_with_path_line_and_column(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yml",
        """\
flows:
  greet:
    trigger: {intents: [greet]}
    steps:
      - say: hi
      - dance: now
  broken_template:
    steps:
      - say: {en: "Hi {{ contact.name }", zh: "你好"}
  bad_regex:
    trigger: {regex: "(["}
    steps:
      - end: true
""",
    )
    write(
        tmp_path,
        "b.yml",
        """\
flows:
  bad_regex:
    steps:
      - say: again
""",
    )
    write(tmp_path, "c.yml", "flows:\n  x: [\n")
    errors = errors_of(tmp_path)
    a = str(tmp_path / "a.yml")
    assert f"{a}:6:9: flows.greet.steps.1: unknown step kind" in "\n".join(errors)
    assert any(e.startswith(f"{a}:9:") and "template error" in e for e in errors)
    assert any(e.startswith(f"{a}:11:") and "bad regex" in e for e in errors)
    assert any(
        e.startswith(str(tmp_path / "b.yml") + ":2:") and "duplicate flow name 'bad_regex'" in e
        for e in errors
    )
    assert any(e.startswith(str(tmp_path / "c.yml") + ":") and "invalid YAML" in e for e in errors)


def test_unknown_keys_and_empty_steps(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yml",
        """\
flows:
  a:
    steps: []
  b:
    trigers: {intents: [x]}
    steps: [{say: hi}]
""",
    )
    text = "\n".join(errors_of(tmp_path))
    assert ":3:" in text and "flows.a.steps" in text
    assert "flows.b.trigers" in text


async def test_intent_then_keyword_then_regex(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yml",
        """\
flows:
  by_regex:
    trigger: {regex: '\\border\\b'}
    steps: [{say: regex}]
  by_keyword:
    trigger: {keywords: [Refund]}
    steps: [{say: keyword}]
  by_intent:
    trigger: {intents: [returns]}
    steps: [{say: intent}]
""",
    )
    engine = FlowEngine(load_flows(tmp_path), "en", words=HUB_WORDS)
    assert (await engine.run({}, turn("refund my order", "returns"))).replies[0].text == "intent"
    assert (await engine.run({}, turn("a REFUND for my order"))).replies[0].text == "keyword"
    assert (await engine.run({}, turn("my order"))).replies[0].text == "regex"
    assert not (await engine.run({}, turn("hello"))).handled


async def test_say_language_buttons_templates_and_handoff(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yml",
        """\
flows:
  lost:
    trigger: {intents: [lost]}
    steps:
      - say: {en: "Order {{ entities.order_id }} is lost.", zh: "订单 {{ entities.order_id }} 丢失了。"}
        buttons:
          - {title: {en: "Talk to a human", zh: "转人工"}, payload: /human}
      - handoff: {team: logistics, priority: high, note: "Lost parcel {{ entities.order_id }}"}
      - say: never said
""",
    )
    engine = FlowEngine(load_flows(tmp_path), "zh", words=HUB_WORDS)
    result = await engine.run({}, turn("where", "lost", "zh", order_id="123456"))
    assert [r.text for r in result.replies] == ["订单 123456 丢失了。"]
    assert result.replies[0].buttons[0].title == "转人工"
    assert result.handoff is not None
    assert (result.handoff.team, result.handoff.priority) == ("logistics", "high")
    assert result.handoff.note == "Lost parcel 123456"
    english = await engine.run({}, turn("where", "lost", "en", order_id="9"))
    assert english.replies[0].text == "Order 9 is lost."
    fallback_language = await engine.run({}, turn("where", "lost", "fr", order_id="9"))
    assert fallback_language.replies[0].text.startswith("订单 9")


async def test_templates_cannot_reach_python_internals(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yml",
        """\
flows:
  escape:
    trigger: {intents: [x]}
    steps:
      - say: "{{ message.__class__.__mro__[1].__subclasses__() }}"
""",
    )
    engine = FlowEngine(load_flows(tmp_path), "en", words=HUB_WORDS)
    from jinja2.exceptions import SecurityError

    with pytest.raises(SecurityError):
        await engine.run({}, turn("x", "x"))
