"""A flow ready to run: its steps as a flat list of operations, its version and its triggers.

Each flow is compiled into a flat list of operations (an `if` becomes a branch and a jump), so
where a conversation is inside a flow is one number (`pc`), saved with the conversation: a
restart mid-flow resumes at the same step.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from flows.schema import (
    ActionStep,
    AskStep,
    EndStep,
    Flow,
    GotoStep,
    HandoffStep,
    HttpStep,
    IfStep,
    SayStep,
    SetStep,
)
from flows.validators import HAN


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
class CompiledFlow:
    name: str
    flow: Flow
    ops: list[Op]
    version: str  # changes when the flow's definition does
    regex: re.Pattern[str] | None
    keywords: re.Pattern[str] | None

    @classmethod
    def of(cls, name: str, flow: Flow) -> CompiledFlow:
        return cls(
            name,
            flow,
            compile_flow(flow),
            hashlib.sha256(flow.model_dump_json().encode()).hexdigest()[:16],
            re.compile(flow.trigger.regex) if flow.trigger.regex else None,
            keywords_pattern(flow.trigger.keywords),
        )


def keywords_pattern(keywords: list[str]) -> re.Pattern[str] | None:
    """One pattern for a flow's keywords, case-insensitive: a word with Han characters
    anywhere in the text ("退款" in "我要退款"), other words whole ("hi" not in "shipping")."""
    parts = []
    for keyword in keywords:
        word = re.escape(unicodedata.normalize("NFKC", keyword).strip())
        if not word:
            continue
        parts.append(word if re.search(f"[{HAN}]", keyword) else rf"(?<!\w){word}(?!\w)")
    return re.compile("|".join(parts), re.IGNORECASE) if parts else None
