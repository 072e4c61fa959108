"""The flow file format (docs/flows.md), as pydantic models.

A step is a mapping whose kind is named by one of its keys: say, ask, set, if, action, http,
goto, handoff, end. `ask` and `if` steps carry other keys (`say:`, `then:`), so the kind is
found by precedence: the first of STEP_KINDS the mapping has.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

LangText = str | dict[str, str]  # one text, or {language: text}
SLOT_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
ANSWER_TYPES = ("number", "email", "phone", "date", "text")


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Trigger(Model):
    intents: list[str] = []
    keywords: list[str] = []
    regex: str | None = None


class ButtonSpec(Model):
    title: LangText
    payload: str


class SayStep(Model):
    say: LangText
    buttons: list[ButtonSpec] = []
    image: str | None = None  # an image URL (a template)


class ChoiceSpec(Model):
    value: str  # what the slot gets
    title: LangText | None = None  # the button's title (default: the value)
    synonyms: list[str] = []  # other answers that pick it


class AskStep(Model):
    ask: str = Field(pattern=SLOT_NAME)  # the slot to fill
    say: LangText  # the question
    entity: str | None = None  # fill from this NLU entity without asking (default: the slot's name)
    validate_: str | None = Field(default=None, alias="validate")  # a regex the answer must match
    choices: list[str | ChoiceSpec] = []
    type: Literal["number", "email", "phone", "date", "text"] | None = None
    retries: int = Field(default=2, ge=0, le=10)  # re-asks before on_fail
    on_invalid: LangText | None = None
    on_fail: str = "handoff"  # `handoff`, or the name of a flow to go to
    buttons: list[ButtonSpec] = []

    def choice_specs(self) -> list[ChoiceSpec]:
        return [c if isinstance(c, ChoiceSpec) else ChoiceSpec(value=c) for c in self.choices]


class SetStep(Model):
    set: dict[str, Any]  # slot -> value; strings are templates

    @field_validator("set")
    @classmethod
    def _slot_names(cls, v: dict[str, Any]) -> dict[str, Any]:
        bad = [k for k in v if not re.match(SLOT_NAME, str(k))]
        if bad:
            raise ValueError(f"not a slot name: {', '.join(map(repr, bad))}")
        if not v:
            raise ValueError("set at least one slot")
        return v


class IfStep(Model):
    if_: str = Field(alias="if")  # a Jinja2 expression
    then: list[Step] = Field(min_length=1)
    else_: list[Step] = Field(default=[], alias="else")


class ActionStep(Model):
    action: str  # a rasa-sdk Action's name()
    sets: list[str] = []  # the slots it sets (documentation, and known to `kefu check`)


class HttpSpec(Model):
    url: str  # a template
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    headers: dict[str, str] = {}  # values are templates
    json_: Any = Field(default=None, alias="json")  # strings inside are templates
    save: dict[str, str] = {}  # slot -> JSON path in the response, e.g. `$.order.status`
    timeout: float = Field(default=5.0, gt=0, le=30)


class HttpStep(Model):
    http: HttpSpec
    on_error: str = "handoff"  # `handoff`, `continue`, or the name of a flow to go to


class GotoStep(Model):
    goto: str  # another flow; the slots go along


class HandoffSpec(Model):
    team: str | None = None
    note: str | None = None
    priority: str | None = None


class HandoffStep(Model):
    handoff: HandoffSpec = HandoffSpec()

    @field_validator("handoff", mode="before")
    @classmethod
    def _empty(cls, v: Any) -> Any:
        return {} if v is None else v  # `- handoff:` with nothing after it


class EndStep(Model):
    end: Literal[True] | None = None  # `- end:` or `- end: true`


# Precedence: an `ask` step also has `say:`, an `http` step `on_error:`.
STEP_KINDS = ("ask", "if", "action", "http", "set", "goto", "handoff", "end", "say")


def _step_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return next((k for k in STEP_KINDS if k in value), None)
    if isinstance(value, BaseModel):  # already validated (model_copy, tests)
        return next((k for k, cls in _CLASSES.items() if isinstance(value, cls)), None)
    return None


Step = Annotated[
    Annotated[AskStep, Tag("ask")]
    | Annotated[IfStep, Tag("if")]
    | Annotated[ActionStep, Tag("action")]
    | Annotated[HttpStep, Tag("http")]
    | Annotated[SetStep, Tag("set")]
    | Annotated[GotoStep, Tag("goto")]
    | Annotated[HandoffStep, Tag("handoff")]
    | Annotated[EndStep, Tag("end")]
    | Annotated[SayStep, Tag("say")],
    Discriminator(
        _step_kind,
        custom_error_type="unknown_step",
        custom_error_message=f"unknown step kind; a step is one of: {', '.join(STEP_KINDS)}",
    ),
]

_CLASSES: dict[str, type[BaseModel]] = {
    "ask": AskStep,
    "if": IfStep,
    "action": ActionStep,
    "http": HttpStep,
    "set": SetStep,
    "goto": GotoStep,
    "handoff": HandoffStep,
    "end": EndStep,
    "say": SayStep,
}


class Flow(Model):
    description: str = ""
    trigger: Trigger = Trigger()
    interruptible: bool = False
    steps: list[Step] = Field(min_length=1)


IfStep.model_rebuild()
Flow.model_rebuild()


def iter_steps(
    steps: list[Any], prefix: tuple[Any, ...] = ("steps",)
) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every step with its place in the flow (`("steps", 2, "then", 0)`), in document order:
    an `if` step comes before the steps of its branches."""
    for i, step in enumerate(steps):
        loc = (*prefix, i)
        yield loc, step
        if isinstance(step, IfStep):
            yield from iter_steps(step.then, (*loc, "then"))
            yield from iter_steps(step.else_, (*loc, "else"))
