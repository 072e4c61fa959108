"""The flow file format (DESIGN.md section 5), as pydantic models.

Implemented step kinds: say, handoff, end. A step is a mapping whose first key names its kind.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

LangText = str | dict[str, str]  # one text, or {language: text}


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    image: str | None = None


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
    end: bool | None = None


STEP_KINDS = ("say", "handoff", "end")


def _step_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return next((k for k in value if k in STEP_KINDS), None)
    return None


Step = Annotated[
    Annotated[SayStep, Tag("say")]
    | Annotated[HandoffStep, Tag("handoff")]
    | Annotated[EndStep, Tag("end")],
    Discriminator(
        _step_kind,
        custom_error_type="unknown_step",
        custom_error_message=f"unknown step kind; a step is one of: {', '.join(STEP_KINDS)}",
    ),
]


class Flow(Model):
    description: str = ""
    trigger: Trigger = Trigger()
    interruptible: bool = False
    steps: list[Step] = Field(min_length=1)
