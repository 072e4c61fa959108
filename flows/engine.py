"""The flow engine: picks the flow a message triggers and runs its steps.

A flow runs compiled (flows/program.py): where a conversation is inside a flow is one number,
saved with the conversation. The state is a stack of frames (the flow being run on top, flows
it interrupted below), each `{flow, version, pc, slots, retries, waiting}`.

Triggers are tried in order of strength: an intent, then a keyword, then a regex; among flows
of the same strength, the first defined wins.

The engine decides nothing about a message beyond its flows: the turn's arbiter (the core's
hub/core/arbiter.py) looks first (`view`: the waiting question, whether the message answers it,
the flow it would start) and then calls `run` (answer, or start), `start` (a digression on top
of a waiting flow), `resume` or `cancel`.

What the engine says in the hub's own words (a cancel confirmation, "back to where we were",
an answer that doesn't fit) and which words stop a flow come from the core as `HubWords`.
"""

from __future__ import annotations

import functools
import logging
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from flows.actions import ActionError, ActionRunner
from flows.asking import Render, buttons, question, slot_value
from flows.calls import action_replies, action_request, call_http
from flows.loader import LoadedFlow
from flows.program import CompiledFlow, Op
from flows.schema import ActionStep, AskStep, HandoffStep, HttpStep, LangText
from flows.speech import Speech
from flows.templates import compile_condition
from hub.messages import Attachment, Handoff, Kind, Reply, Understanding
from hub.ports import (
    FlowMatch,
    FlowResult,
    FlowView,
    HubWords,
    KnowledgeSearch,
    TurnContext,
    WaitingAsk,
)

log = logging.getLogger(__name__)

MAX_OPS_PER_TURN = 200  # a goto loop fails the turn instead of spinning


class FlowFailure(Exception):
    """A flow could not go on (an action or a loop failed); the pipeline hands over."""


class FlowEngine:
    """Implements hub.ports.FlowRunner over a bot folder's flows."""

    def __init__(
        self,
        flows: dict[str, LoadedFlow],
        default_language: str,
        actions: ActionRunner | None = None,
        http: httpx.AsyncClient | None = None,
        knowledge: KnowledgeSearch | None = None,
        *,
        words: HubWords,
    ) -> None:
        self.words = words
        self.speech = Speech(default_language, words, knowledge)
        self.flows = {name: CompiledFlow.of(name, item.flow) for name, item in flows.items()}
        self.default_language = default_language
        self.actions = actions
        self._http = http
        self._conditions: dict[str, Any] = {}

    # ---- FlowRunner ---------------------------------------------------------------------------

    def view(self, state: dict[str, Any], context: TurnContext) -> FlowView:
        """The question waiting (and whether this message answers it) and the flow the
        message would start: what the turn's arbiter weighs (hub/core/arbiter.py)."""
        frames = self.live_frames(state)
        waiting = None
        if frames and frames[-1].get("waiting"):
            frame = frames[-1]
            flow = self.flows[frame["flow"]]
            op = flow.ops[frame["pc"]]
            if op.kind == "ask":
                ask: AskStep = op.step
                verdict = slot_value(ask, context.understanding, from_text=True)
                changed = None if verdict.ok else self.correction(frame, context.understanding)
                waiting = WaitingAsk(
                    flow=flow.name,
                    slot=ask.ask,
                    answered=verdict.ok,
                    free_text=not (ask.validate_ or ask.choices or ask.type),
                    text_type=ask.type == "text",
                    interruptible=flow.flow.interruptible,
                    triggers=frozenset(flow.flow.trigger.intents),
                    corrects=None if changed is None else changed[1],
                )
        found = self.triggered(context)
        match = None
        if found is not None:
            intent = context.understanding.intent
            by = "intent" if intent and intent in found.flow.trigger.intents else "keyword"
            if by == "keyword" and not (found.keywords and found.keywords.search(_nfkc(context))):
                by = "regex"
            match = FlowMatch(found.name, by)
        return FlowView(waiting, match)

    async def run(self, state: dict[str, Any], context: TurnContext) -> FlowResult:
        turn = _Turn(self, context, self.live_frames(state))
        if turn.frames:
            return await turn.answer()
        flow = self.triggered(context)
        if flow is None:
            return FlowResult(handled=False, state=state)
        turn.start(flow.name)
        return await turn.execute()

    async def start(self, state: dict[str, Any], context: TurnContext, flow: str) -> FlowResult:
        turn = _Turn(self, context, self.live_frames(state))
        turn.start(flow)
        return await turn.execute()

    def resume(self, state: dict[str, Any], context: TurnContext) -> FlowResult:
        turn = _Turn(self, context, self.live_frames(state))
        if not turn.frames:
            return FlowResult(handled=False, state=state)
        return turn.resume()

    def cancel(self, state: dict[str, Any], context: TurnContext) -> FlowResult:
        reply = Reply(text=self.speech.hub_text("cancelled", context.language))
        return FlowResult(handled=True, replies=(reply,), state={})

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    # ---- helpers the turn uses ----------------------------------------------------------------

    def triggered(self, context: TurnContext, by_intent_only: bool = False) -> CompiledFlow | None:
        intent = context.understanding.intent
        candidates = list(self.flows.values())
        found = next((f for f in candidates if intent and intent in f.flow.trigger.intents), None)
        if found or by_intent_only or context.understanding.explicit:
            return found
        text = _nfkc(context)
        return next(
            (f for f in candidates if f.keywords and f.keywords.search(text)), None
        ) or next((f for f in candidates if f.regex and f.regex.search(text)), None)

    def correction(
        self, frame: dict[str, Any], understanding: Understanding
    ) -> tuple[int, str, Any] | None:
        """A change of mind: the message is no answer to the waiting question but gives an
        earlier question of the same flow another valid value ("不对，是发错货了" at the
        confirmation). Only questions that check their answer (choices, validate, a type other
        than text) count: any text would fit one that doesn't. (its step, slot, new value)."""
        flow = self.flows[frame["flow"]]
        slots = frame["slots"]
        for at in range(frame["pc"] - 1, -1, -1):
            op = flow.ops[at]
            if op.kind != "ask" or op.step.ask not in slots:
                continue
            ask: AskStep = op.step
            if not (ask.choices or ask.validate_ or (ask.type and ask.type != "text")):
                continue
            verdict = slot_value(ask, understanding, from_text=True)
            if verdict.ok and verdict.value != slots[ask.ask]:
                return at, ask.ask, verdict.value
        return None

    def live_frames(self, state: dict[str, Any]) -> list[dict[str, Any]]:
        """The saved frames whose flows still exist unchanged; a flow edited or removed since
        (hot reload) is left rather than resumed at a step that now means something else."""
        frames = [dict(f) for f in state.get("frames", []) if isinstance(f, dict)]
        live = []
        for frame in frames:
            flow = self.flows.get(str(frame.get("flow")))
            if flow is None or frame.get("version") != flow.version:
                log.info("leaving flow %s: it changed or is gone", frame.get("flow"))
                continue
            live.append(frame)
        return live

    def condition(self, source: str, variables: dict[str, Any]) -> bool:
        compiled = self._conditions.get(source)
        if compiled is None:
            compiled = self._conditions[source] = compile_condition(source)
        return bool(compiled(**variables))

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(follow_redirects=False)
        return self._http

    def variables(self, slots: dict[str, Any], context: TurnContext) -> dict[str, Any]:
        u = context.understanding
        entities = {e["entity"]: e.get("value") for e in u.entities if "entity" in e}
        return {
            "slots": dict(slots),
            "entities": entities,
            "intent": {"name": u.intent, "confidence": u.confidence},
            "message": {"text": u.text, "language": u.language},
            "contact": dict(context.contact),
            "conversation": {"id": context.conversation_id, "language": context.language},
            "now": datetime.now().astimezone(),
        }


@dataclass
class _Turn:
    """One customer message going through the flows."""

    engine: FlowEngine
    context: TurnContext
    frames: list[dict[str, Any]]
    replies: list[Reply] = field(default_factory=list)
    step: dict[str, str] = field(default_factory=dict)  # the flow and step speaking now

    def add(self, reply: Reply) -> None:
        """A reply, marked with the flow step it comes from (stored with the message)."""
        self.replies.append(reply.model_copy(update={"meta": dict(self.step)}))

    def at(self, flow: str, op: Op) -> None:
        self.step = {"flow": flow, "step": op.label, "loc": ".".join(map(str, op.loc))}

    @property
    def language(self) -> str:
        return self.context.language

    @property
    def top(self) -> dict[str, Any]:
        return self.frames[-1]

    def flow(self, frame: dict[str, Any]) -> CompiledFlow:
        return self.engine.flows[frame["flow"]]

    def op(self, frame: dict[str, Any]) -> Op:
        return self.flow(frame).ops[frame["pc"]]

    def start(self, name: str, slots: dict[str, Any] | None = None) -> None:
        flow = self.engine.flows[name]
        self.frames.append(
            {
                "flow": name,
                "version": flow.version,
                "pc": 0,
                "slots": dict(slots or {}),
                "retries": 0,
                "waiting": False,
            }
        )

    def vars(self) -> dict[str, Any]:
        slots = self.top["slots"] if self.frames else {}
        return self.engine.variables(slots, self.context)

    def renderer(self) -> Render:
        """The designer's texts in the reply language, rendered with the turn's variables as
        they are now."""
        return functools.partial(
            self.engine.speech.text, variables=self.vars(), language=self.language
        )

    def say(self, value: LangText | None) -> str:
        return self.renderer()(value) or ""

    def result(self, handoff: Handoff | None = None) -> FlowResult:
        state: dict[str, Any] = {}
        if self.frames and handoff is None:
            # `slots` (the running flow's) is for readers other than the engine: the handoff
            # note of a customer who asks for a human mid-flow
            state = {"frames": self.frames, "slots": dict(self.top["slots"])}
        return FlowResult(handled=True, replies=tuple(self.replies), handoff=handoff, state=state)

    # ---- answering the question a flow asked -----------------------------------------------

    async def answer(self) -> FlowResult:
        frame = self.top
        op = self.op(frame)
        if not frame.get("waiting") or op.kind != "ask":
            frame["waiting"] = False
            return await self.execute()
        ask: AskStep = op.step
        self.at(frame["flow"], op)
        verdict = slot_value(ask, self.context.understanding, from_text=True)
        if verdict.ok:
            frame["slots"][ask.ask] = verdict.value
            frame.update(pc=frame["pc"] + 1, retries=0, waiting=False)
            return await self.execute()
        changed = self.engine.correction(frame, self.context.understanding)
        if changed is not None:  # "no, it was the wrong item": that answer, and on from there
            at, slot, value = changed
            frame["slots"][slot] = value
            frame.update(pc=at + 1, retries=0, waiting=False)
            return await self.execute()
        frame["retries"] = int(frame.get("retries", 0)) + 1
        if frame["retries"] > ask.retries:
            return await self.fail(
                ask.on_fail, f"no valid {ask.ask} after {frame['retries']} tries"
            )
        if ask.on_invalid:
            self.add(Reply(text=self.say(ask.on_invalid)))
        else:
            self.add(Reply(text=self.engine.speech.hub_text("invalid_answer", self.language)))
        self.add(question(ask, self.renderer()))
        return self.result()

    # ---- running steps -----------------------------------------------------------------------

    async def execute(self) -> FlowResult:
        budget = MAX_OPS_PER_TURN
        while self.frames:
            frame = self.top
            flow = self.flow(frame)
            if frame["pc"] >= len(flow.ops):
                self.frames.pop()
                if self.frames:
                    return self.resume()
                break
            op = flow.ops[frame["pc"]]
            budget -= 1
            if budget < 0:
                raise FlowFailure(
                    f"flow {flow.name} ran {MAX_OPS_PER_TURN} steps in one turn (a goto loop?)"
                )
            self.at(flow.name, op)
            frame["pc"] += 1  # the usual next step; the kinds below may change it
            step = op.step
            if op.kind == "say":
                text = self.renderer()
                attachments: tuple[Attachment, ...] = ()
                if step.image:
                    attachments = (Attachment(kind=Kind.IMAGE, url=text(step.image) or ""),)
                self.add(
                    Reply(
                        text=self.say(step.say),
                        buttons=tuple(buttons(step.buttons, text)),
                        attachments=attachments,
                    )
                )
            elif op.kind == "ask":
                value = frame["slots"].get(step.ask)
                if value is None:
                    verdict = slot_value(step, self.context.understanding, from_text=False)
                    value = verdict.value if verdict.ok else None
                if value is not None:
                    frame["slots"][step.ask] = value
                    continue
                frame["pc"] -= 1
                frame["waiting"] = True
                frame["retries"] = 0
                self.add(question(step, self.renderer()))
                return self.result()
            elif op.kind == "set":
                variables = self.vars()
                for slot, value in step.set.items():
                    frame["slots"][slot] = self.value(value, variables)
            elif op.kind == "branch":
                if not self.engine.condition(step.if_, self.vars()):
                    frame["pc"] = op.target
            elif op.kind == "jump":
                frame["pc"] = op.target
            elif op.kind == "action":
                await self.action(step, frame)
            elif op.kind == "http":
                error = await self.http(step, frame)
                if error is not None and step.on_error != "continue":
                    log.warning("flow %s: http step failed: %s", flow.name, error)
                    return await self.fail(step.on_error, f"{flow.name}: {error}")
            elif op.kind == "goto":
                self.frames.pop()
                self.start(step.goto, frame["slots"])
            elif op.kind == "handoff":
                return self.handoff(step, flow.name)
            elif op.kind == "end":
                frame["pc"] = len(flow.ops)
        return self.result()

    def resume(self) -> FlowResult:
        """Back to the flow an interruption stopped: say so and ask its question again."""
        frame = self.top
        op = self.op(frame)
        self.at(frame["flow"], op)
        if frame.get("waiting") and op.kind == "ask":
            self.add(Reply(text=self.engine.speech.hub_text("resume", self.language)))
            self.add(question(op.step, self.renderer()))
        return self.result()

    def value(self, value: Any, variables: dict[str, Any]) -> Any:
        """A `set` value or `http` JSON body: strings rendered, containers walked."""
        if isinstance(value, str):
            return self.engine.speech.text(value, variables, self.language)
        if isinstance(value, dict):
            return {k: self.value(v, variables) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v, variables) for v in value]
        return value

    async def fail(self, on_fail: str, why: str) -> FlowResult:
        """`on_fail`/`on_error`: hand over, or go to another flow with the slots."""
        if on_fail == "handoff":
            slots = self.top["slots"] if self.frames else {}
            flow = self.top["flow"] if self.frames else None
            self.frames.clear()
            return self.result(
                Handoff(
                    reason="flow",
                    intent=self.context.understanding.intent,
                    note=f"{flow}: {why}" if flow else why,
                    slots=slots,
                )
            )
        slots = self.frames.pop()["slots"] if self.frames else {}
        self.start(on_fail, slots)
        return await self.execute()

    def handoff(self, step: HandoffStep, flow: str) -> FlowResult:
        spec = step.handoff
        slots = dict(self.top["slots"])
        note = self.engine.speech.text(spec.note, self.vars(), self.language) if spec.note else None
        self.frames.clear()
        return self.result(
            Handoff(
                reason="flow",
                intent=self.context.understanding.intent,
                team=spec.team,
                note=note or f"flow {flow}",
                priority=spec.priority,
                slots=slots,
            )
        )

    async def action(self, step: ActionStep, frame: dict[str, Any]) -> None:
        runner = self.engine.actions
        if runner is None:
            raise FlowFailure(f"action {step.action}: the bot has no actions.py or action_endpoint")
        request = action_request(
            step, frame["slots"], self.context, self.language, said=self.replies
        )
        try:
            outcome = await runner.run(request)
        except ActionError as e:
            raise FlowFailure(f"action {step.action} failed: {e}") from e
        frame["slots"].update(outcome.slots)
        for reply in action_replies(outcome.messages):
            self.add(reply)

    async def http(self, step: HttpStep, frame: dict[str, Any]) -> str | None:
        """Call the API; save what the step asks for. Returns what went wrong, or None."""
        variables = self.vars()
        return await call_http(
            self.engine.http,
            step.http,
            functools.partial(self.value, variables=variables),
            frame["slots"],
        )


def _nfkc(context: TurnContext) -> str:
    """The message as keywords and regexes see it (full-width letters as half-width)."""
    return unicodedata.normalize("NFKC", context.understanding.text)
