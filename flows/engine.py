"""The flow engine: picks the flow a message triggers and runs its steps.

Each flow is compiled into a flat list of operations (an `if` becomes a branch and a jump), so
where a conversation is inside a flow is one number, saved with the conversation: a restart
mid-flow resumes at the same step. The state is a stack of frames (the flow being run on top,
flows it interrupted below), each `{flow, version, pc, slots, retries, waiting}`.

Triggers are tried in order of strength: an intent, then a keyword, then a regex; among flows
of the same strength, the first defined wins.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from jinja2 import Template

from flows.actions import ActionError, ActionRequest, ActionRunner
from flows.loader import LoadedFlow
from flows.schema import (
    ActionStep,
    AskStep,
    EndStep,
    Flow,
    GotoStep,
    HandoffStep,
    HttpStep,
    IfStep,
    LangText,
    SayStep,
    SetStep,
)
from flows.templates import compile_condition, compile_template, render
from flows.validators import HAN, Choice, Verdict, validate
from hub.fallback import entry_text
from hub.messages import Attachment, Button, Handoff, Kind, Reply
from hub.ports import FlowResult, KnowledgeSearch, TurnContext
from hub.texts import text as hub_text
from hub.understanding import is_cancel

KNOWLEDGE = "knowledge"  # say: {knowledge: <query template>}

log = logging.getLogger(__name__)

MAX_OPS_PER_TURN = 200  # a goto loop fails the turn instead of spinning


class FlowFailure(Exception):
    """A flow could not go on (an action or a loop failed); the pipeline hands over."""


@dataclass(frozen=True)
class Op:
    kind: str  # say ask set branch jump action http goto handoff end
    step: Any
    loc: tuple[Any, ...]
    target: int = -1  # branch: where the else part starts; jump: where to go

    @property
    def label(self) -> str:
        """What `kefu chat` shows: `ask order_id`, `say`, `if slots.x == 1`..."""
        detail = {
            "ask": lambda s: s.ask,
            "action": lambda s: s.action,
            "goto": lambda s: s.goto,
            "branch": lambda s: s.if_,
            "http": lambda s: f"{s.http.method} {s.http.url}",
        }.get(self.kind)
        name = "if" if self.kind == "branch" else self.kind
        return f"{name} {detail(self.step)}" if detail else name


def compile_flow(flow: Flow) -> list[Op]:
    ops: list[Op] = []

    def emit(steps: list[Any], prefix: tuple[Any, ...]) -> None:
        for i, step in enumerate(steps):
            loc = (*prefix, i)
            if isinstance(step, IfStep):
                branch = len(ops)
                ops.append(Op("branch", step, loc))
                emit(step.then, (*loc, "then"))
                if step.else_:
                    jump = len(ops)
                    ops.append(Op("jump", None, loc))
                    ops[branch] = Op("branch", step, loc, target=len(ops))
                    emit(step.else_, (*loc, "else"))
                    ops[jump] = Op("jump", None, loc, target=len(ops))
                else:
                    ops[branch] = Op("branch", step, loc, target=len(ops))
            else:
                ops.append(Op(_KINDS[type(step)], step, loc))

    emit(flow.steps, ("steps",))
    return ops


_KINDS: dict[type, str] = {
    SayStep: "say",
    AskStep: "ask",
    SetStep: "set",
    ActionStep: "action",
    HttpStep: "http",
    GotoStep: "goto",
    HandoffStep: "handoff",
    EndStep: "end",
}


@dataclass(frozen=True)
class _Compiled:
    name: str
    flow: Flow
    ops: list[Op]
    version: str  # changes when the flow's definition does
    regex: re.Pattern[str] | None
    keywords: re.Pattern[str] | None


class FlowEngine:
    """Implements hub.ports.FlowRunner over a bot folder's flows."""

    def __init__(
        self,
        flows: dict[str, LoadedFlow],
        default_language: str,
        actions: ActionRunner | None = None,
        http: httpx.AsyncClient | None = None,
        interrupt_confidence: float = 0.5,
        knowledge: KnowledgeSearch | None = None,
    ) -> None:
        self.knowledge = knowledge  # what `say: {knowledge: ...}` searches
        self.flows = {
            name: _Compiled(
                name,
                item.flow,
                compile_flow(item.flow),
                hashlib.sha256(item.flow.model_dump_json().encode()).hexdigest()[:16],
                re.compile(item.flow.trigger.regex) if item.flow.trigger.regex else None,
                _keywords(item.flow.trigger.keywords),
            )
            for name, item in flows.items()
        }
        self.default_language = default_language
        self.actions = actions
        # an intent interrupts a waiting question only when the NLU is at least this sure
        self.interrupt_confidence = interrupt_confidence
        self._http = http
        self._templates: dict[str, Template] = {}
        self._conditions: dict[str, Any] = {}

    # ---- FlowRunner ---------------------------------------------------------------------------

    async def run(self, state: dict[str, Any], context: TurnContext) -> FlowResult:
        turn = _Turn(self, context, self.live_frames(state))
        if turn.frames:
            if is_cancel(context.understanding):
                reply = Reply(text=hub_text("cancelled", context.language, self.default_language))
                return FlowResult(handled=True, replies=(reply,), state={})
            return await turn.answer()
        flow = self.triggered(context)
        if flow is None:
            return FlowResult(handled=False, state=state)
        turn.start(flow.name)
        return await turn.execute()

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    # ---- helpers the turn uses ----------------------------------------------------------------

    def triggered(self, context: TurnContext, by_intent_only: bool = False) -> _Compiled | None:
        intent = context.understanding.intent
        candidates = list(self.flows.values())
        found = next((f for f in candidates if intent and intent in f.flow.trigger.intents), None)
        if found or by_intent_only or context.understanding.explicit:
            return found
        text = unicodedata.normalize("NFKC", context.understanding.text)
        return next(
            (f for f in candidates if f.keywords and f.keywords.search(text)), None
        ) or next((f for f in candidates if f.regex and f.regex.search(text)), None)

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

    def text(self, value: LangText | None, variables: dict[str, Any], language: str) -> str | None:
        """The text in the reply language (else the bot's default, else the first), rendered."""
        if value is None:
            return None
        if isinstance(value, dict) and set(value) == {KNOWLEDGE}:
            # `say: {knowledge: "{{ message.text }}"}`: the best article's answer
            query = self.text(value[KNOWLEDGE], variables, language) or ""
            return self.knowledge_answer(query, language)
        if isinstance(value, dict):
            value = (
                value.get(language)
                or value.get(self.default_language)
                or next(iter(value.values()), "")
            )
        template = self._templates.get(value)
        if template is None:
            template = self._templates[value] = compile_template(value)
        return render(template, variables)

    def knowledge_answer(self, query: str, language: str) -> str:
        """The summary (and link) of the knowledge entry that answers `query` confidently;
        else a sentence saying nothing was found."""
        hits = self.knowledge.search(query, 1, language) if self.knowledge and query else []
        if not hits or not hits[0].confident:
            return hub_text("knowledge_not_found", language, self.default_language)
        return entry_text(hits[0].entry, language, self.default_language)

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

    def flow(self, frame: dict[str, Any]) -> _Compiled:
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

    def say(self, value: LangText | None) -> str:
        return self.engine.text(value, self.vars(), self.language) or ""

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
        verdict = self.check(ask, from_text=True)
        other = self.interrupter()
        free_text = verdict.ok and not (ask.validate_ or ask.choices or ask.type)
        if (
            other is not None
            and other.name != frame["flow"]
            and self.flow(frame).flow.interruptible
            and (not verdict.ok or (free_text and self.engine.triggered(self.context, True)))
        ):
            log.debug("flow %s interrupted by %s", frame["flow"], other.name)
            self.start(other.name)
            return await self.execute()
        if verdict.ok:
            frame["slots"][ask.ask] = verdict.value
            frame.update(pc=frame["pc"] + 1, retries=0, waiting=False)
            return await self.execute()
        frame["retries"] = int(frame.get("retries", 0)) + 1
        if frame["retries"] > ask.retries:
            return await self.fail(
                ask.on_fail, f"no valid {ask.ask} after {frame['retries']} tries"
            )
        invalid = ask.on_invalid or {
            lang: hub_text("invalid_answer", lang) for lang in ("en", "zh")
        }
        self.add(Reply(text=self.say(invalid)))
        self.add(self.question(ask))
        return self.result()

    def interrupter(self) -> _Compiled | None:
        """The flow this message would start, if it is sure enough to interrupt a question:
        by a keyword or regex, or by an intent of at least `interrupt_confidence`."""
        u = self.context.understanding
        other = self.engine.triggered(self.context)
        if (
            other is not None
            and u.intent in other.flow.trigger.intents
            and u.confidence < self.engine.interrupt_confidence
        ):
            return None
        return other

    def check(self, ask: AskStep, from_text: bool) -> Verdict:
        """The value this message gives the slot: an entity of the slot's name (or the ask's
        `entity`), a pressed choice, or the text itself when `from_text`."""
        u = self.context.understanding
        name = ask.entity or ask.ask
        choices = [
            Choice(c.value, tuple(c.synonyms) + tuple(_all_texts(c.title)))
            for c in ask.choice_specs()
        ]
        rules: dict[str, Any] = {"regex": ask.validate_, "choices": choices, "type": ask.type}
        for entity in u.entities:
            if entity.get("entity") == name and entity.get("value") is not None:
                verdict = validate(str(entity["value"]), **rules)
                if verdict.ok:
                    return verdict
        if not from_text:
            return Verdict(ok=False)
        for candidate in (u.postback, u.text):
            if candidate:
                verdict = validate(candidate, **rules)
                if verdict.ok:
                    return verdict
        return Verdict(ok=False)

    def question(self, ask: AskStep) -> Reply:
        variables = self.vars()
        buttons = [
            Button(
                title=self.engine.text(c.title, variables, self.language) or c.value,
                payload=c.value,
            )
            for c in ask.choice_specs()
        ]
        buttons += self.buttons(ask.buttons, variables)
        return Reply(text=self.say(ask.say), buttons=tuple(buttons))

    def buttons(self, specs: list[Any], variables: dict[str, Any]) -> list[Button]:
        return [
            Button(
                title=self.engine.text(b.title, variables, self.language) or b.payload,
                payload=b.payload,
            )
            for b in specs
        ]

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
                variables = self.vars()
                attachments: tuple[Attachment, ...] = ()
                if step.image:
                    url = self.engine.text(step.image, variables, self.language) or ""
                    attachments = (Attachment(kind=Kind.IMAGE, url=url),)
                self.add(
                    Reply(
                        text=self.say(step.say),
                        buttons=tuple(self.buttons(step.buttons, variables)),
                        attachments=attachments,
                    )
                )
            elif op.kind == "ask":
                value = frame["slots"].get(step.ask)
                if value is None:
                    verdict = self.check(step, from_text=False)
                    value = verdict.value if verdict.ok else None
                if value is not None:
                    frame["slots"][step.ask] = value
                    continue
                frame["pc"] -= 1
                frame["waiting"] = True
                frame["retries"] = 0
                self.add(self.question(step))
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
            self.add(Reply(text=hub_text("resume", self.language, self.engine.default_language)))
            self.add(self.question(op.step))
        return self.result()

    def value(self, value: Any, variables: dict[str, Any]) -> Any:
        """A `set` value or `http` JSON body: strings rendered, containers walked."""
        if isinstance(value, str):
            return self.engine.text(value, variables, self.language)
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
        note = self.engine.text(spec.note, self.vars(), self.language) if spec.note else None
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
        u = self.context.understanding
        request = ActionRequest(
            name=step.action,
            sender_id=str(self.context.conversation_id),
            slots=dict(frame["slots"]),
            latest_message={
                "text": u.text,
                "intent": {"name": u.intent, "confidence": u.confidence},
                "entities": [dict(e) for e in u.entities],
                "intent_ranking": [{"name": n, "confidence": c} for n, c in u.ranking],
            },
            language=self.language,
        )
        try:
            outcome = await runner.run(request)
        except ActionError as e:
            raise FlowFailure(f"action {step.action} failed: {e}") from e
        frame["slots"].update(outcome.slots)
        for message in outcome.messages:
            reply = _action_reply(message)
            if reply is not None:
                self.add(reply)

    async def http(self, step: HttpStep, frame: dict[str, Any]) -> str | None:
        """Call the API; save what the step asks for. Returns what went wrong, or None."""
        spec = step.http
        variables = self.vars()
        url = self.engine.text(spec.url, variables, self.language) or ""
        headers = {
            k: self.engine.text(v, variables, self.language) or "" for k, v in spec.headers.items()
        }
        body = self.value(spec.json_, variables) if spec.json_ is not None else None
        try:
            response = await self.engine.http.request(
                spec.method, url, headers=headers, json=body, timeout=spec.timeout
            )
        except httpx.TimeoutException:
            return f"{spec.method} {url} timed out after {spec.timeout:g} s"
        except httpx.HTTPError as e:
            return f"{spec.method} {url} failed: {type(e).__name__}: {e}"
        if response.status_code >= 300:  # redirects are not followed: an API moved is an error
            return f"{spec.method} {url} answered {response.status_code}"
        if not spec.save:
            return None
        try:
            data = response.json()
        except ValueError:
            return f"{spec.method} {url} did not answer JSON"
        for slot, path in spec.save.items():
            try:
                frame["slots"][slot] = json_path(data, path)
            except LookupError:
                return f"{spec.method} {url}: the response has no {path}"
        return None


def _keywords(keywords: list[str]) -> re.Pattern[str] | None:
    """One pattern for a flow's keywords, case-insensitive: a word with Han characters
    anywhere in the text ("退款" in "我要退款"), other words whole ("hi" not in "shipping")."""
    parts = []
    for keyword in keywords:
        word = re.escape(unicodedata.normalize("NFKC", keyword).strip())
        if not word:
            continue
        parts.append(word if re.search(f"[{HAN}]", keyword) else rf"(?<!\w){word}(?!\w)")
    return re.compile("|".join(parts), re.IGNORECASE) if parts else None


def _all_texts(value: LangText | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value.values())


def _action_reply(message: dict[str, Any]) -> Reply | None:
    """A message an action dispatched (rasa-sdk's `responses` item) as a reply."""
    text = str(message.get("text") or "")
    buttons = tuple(
        Button(title=str(b.get("title", "")), payload=str(b.get("payload", "")))
        for b in message.get("buttons") or []
        if isinstance(b, dict)
    )
    attachments: tuple[Attachment, ...] = ()
    if message.get("image"):
        attachments = (Attachment(kind=Kind.IMAGE, url=str(message["image"])),)
    if not (text or buttons or attachments):
        return None
    return Reply(text=text, buttons=buttons, attachments=attachments)


_PATH_PART = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")


def json_path(data: Any, path: str) -> Any:
    """`$.order.items[0].name` (or without `$.`) in decoded JSON; LookupError when absent."""
    rest = path.strip()
    rest = rest[1:] if rest.startswith("$") else rest
    value = data
    position = 0
    while position < len(rest):
        m = _PATH_PART.match(rest, position)
        if not m:
            raise LookupError(path)
        key, index = m.group(1), m.group(2)
        if index is not None:
            if not isinstance(value, list) or int(index) >= len(value):
                raise LookupError(path)
            value = value[int(index)]
        else:
            if isinstance(value, dict) and key in value:
                value = value[key]
            elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
                value = value[int(key)]
            else:
                raise LookupError(path)
        position = m.end()
    return value
