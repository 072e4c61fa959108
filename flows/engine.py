"""The flow engine: picks the flow a message triggers and runs its steps.

Triggers are tried in order of strength: an intent, then a keyword, then a regex; among flows
of the same strength, the first defined wins."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from jinja2 import Template

from flows.loader import LoadedFlow
from flows.schema import EndStep, Flow, HandoffStep, LangText, SayStep
from flows.templates import compile_template, render
from hub.messages import Button, Handoff, Reply
from hub.ports import FlowResult, TurnContext


@dataclass(frozen=True)
class _Compiled:
    name: str
    flow: Flow
    regex: re.Pattern[str] | None
    keywords: tuple[str, ...]


class FlowEngine:
    """Implements hub.ports.FlowRunner over a bot folder's flows."""

    def __init__(self, flows: dict[str, LoadedFlow], default_language: str) -> None:
        self.flows = {
            name: _Compiled(
                name,
                item.flow,
                re.compile(item.flow.trigger.regex) if item.flow.trigger.regex else None,
                tuple(k.lower() for k in item.flow.trigger.keywords),
            )
            for name, item in flows.items()
        }
        self.default_language = default_language
        self._templates: dict[str, Template] = {}

    def triggered(self, context: TurnContext) -> _Compiled | None:
        intent = context.understanding.intent
        text = context.understanding.text.lower()
        candidates = list(self.flows.values())
        return (
            next((f for f in candidates if intent and intent in f.flow.trigger.intents), None)
            or next((f for f in candidates if any(k in text for k in f.keywords)), None)
            or next((f for f in candidates if f.regex and f.regex.search(text)), None)
        )

    async def run(self, state: dict[str, Any], context: TurnContext) -> FlowResult:
        flow = self.triggered(context)
        if flow is None:
            return FlowResult(handled=False, state=state)
        variables = self.variables(state, context)
        replies: list[Reply] = []
        for step in flow.flow.steps:
            if isinstance(step, SayStep):
                replies.append(self.say(step, variables, context.language))
            elif isinstance(step, HandoffStep):
                note = self.text(step.handoff.note, variables, context.language)
                handoff = Handoff(
                    reason="flow",
                    intent=context.understanding.intent,
                    team=step.handoff.team,
                    note=note or f"flow {flow.name}",
                    priority=step.handoff.priority,
                    slots=variables["slots"],
                )
                return FlowResult(handled=True, replies=tuple(replies), handoff=handoff, state={})
            elif isinstance(step, EndStep):
                break
        return FlowResult(handled=True, replies=tuple(replies), state={})

    def variables(self, state: dict[str, Any], context: TurnContext) -> dict[str, Any]:
        u = context.understanding
        entities = {e["entity"]: e.get("value") for e in u.entities if "entity" in e}
        return {
            "slots": dict(state.get("slots", {})),
            "entities": entities,
            "intent": {"name": u.intent, "confidence": u.confidence},
            "message": {"text": u.text, "language": u.language},
            "contact": dict(context.contact),
            "conversation": {"id": context.conversation_id, "language": context.language},
        }

    def say(self, step: SayStep, variables: dict[str, Any], language: str) -> Reply:
        buttons = tuple(
            Button(title=self.text(b.title, variables, language) or b.payload, payload=b.payload)
            for b in step.buttons
        )
        return Reply(text=self.text(step.say, variables, language) or "", buttons=buttons)

    def text(self, value: LangText | None, variables: dict[str, Any], language: str) -> str | None:
        """The text in the reply language (else the bot's default, else the first), rendered."""
        if value is None:
            return None
        if isinstance(value, dict):
            value = (
                value.get(language)
                or value.get(self.default_language)
                or next(iter(value.values()))
            )
        template = self._templates.get(value)
        if template is None:
            template = self._templates[value] = compile_template(value)
        return render(template, variables)
