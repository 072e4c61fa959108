"""An `ask` step: the value a customer's message gives the slot, and the question itself with
its choices and buttons."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flows.schema import AskStep, ButtonSpec, LangText
from flows.validators import Choice, Verdict, validate
from hub.messages import Button, Reply, Understanding

# a designer's text in the turn's language, rendered with the turn's variables (None: no text)
Render = Callable[[LangText | None], str | None]


def slot_value(ask: AskStep, understanding: Understanding, from_text: bool) -> Verdict:
    """The value this message gives the slot: an entity of the slot's name (or the ask's
    `entity`), a pressed choice, or the text itself when `from_text`."""
    name = ask.entity or ask.ask
    choices = [
        Choice(c.value, tuple(c.synonyms) + tuple(_all_texts(c.title))) for c in ask.choice_specs()
    ]
    rules: dict[str, Any] = {"regex": ask.validate_, "choices": choices, "type": ask.type}
    for entity in understanding.entities:
        if entity.get("entity") == name and entity.get("value") is not None:
            verdict = validate(str(entity["value"]), **rules)
            if verdict.ok:
                return verdict
    if not from_text:
        return Verdict(ok=False)
    for candidate in (understanding.postback, understanding.text):
        if candidate:
            verdict = validate(candidate, **rules)
            if verdict.ok:
                return verdict
    return Verdict(ok=False)


def question(ask: AskStep, render: Render) -> Reply:
    """The ask step's question, its choices and buttons as buttons."""
    choices = [
        Button(title=render(c.title) or c.value, payload=c.value) for c in ask.choice_specs()
    ]
    others = buttons(ask.buttons, render)
    return Reply(text=render(ask.say) or "", buttons=(*choices, *others))


def buttons(specs: list[ButtonSpec], render: Render) -> list[Button]:
    """A step's `buttons:` (title and payload) as reply buttons."""
    return [Button(title=render(b.title) or b.payload, payload=b.payload) for b in specs]


def _all_texts(value: LangText | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value.values())
