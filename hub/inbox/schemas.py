"""Request bodies and response views of the inbox API (README.md "Work as an agent (inbox API)")."""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import datetime
from typing import Annotated, Any

from fastapi import HTTPException, Path
from pydantic import BaseModel, ConfigDict, Field, field_validator

from hub.messages import Status

# Row ids are INTEGER columns (PostgreSQL's int4): a larger number names no row, and would fail
# in the database driver (a 500) rather than be looked up, so it is refused as input (422).
MAX_ID = 2**31 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]  # an id in the path: /conversations/{id}


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def patch_fields(body: BaseModel, nullable: Collection[str] = ()) -> dict[str, Any]:
    """What a PATCH body sets; 422 for a field set to null that can't be (`nullable` can)."""
    fields = body.model_dump(exclude_unset=True)
    for key, value in fields.items():
        if value is None and key not in nullable:
            raise HTTPException(422, f"{key} can't be null")
    return fields


class LoginBody(Body):
    email: str = Field(min_length=3, max_length=255)
    password: str = Field(min_length=1, max_length=1024)


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"


class ReplyBody(Body):
    text: str = Field(min_length=1, max_length=10_000)
    private: bool = False


class AssignBody(Body):
    agent_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    team: str | None = Field(default=None, min_length=1, max_length=64)


class StatusBody(Body):
    status: Status
    snooze_until: datetime | None = None


MAX_LABELS = 20
MAX_LABEL_CHARS = 32


class LabelsBody(Body):
    labels: list[str] = Field(
        max_length=MAX_LABELS, description="the conversation's labels, replacing the old ones"
    )

    @field_validator("labels")
    @classmethod
    def _clean(cls, labels: list[str]) -> list[str]:
        """Stripped, each 1 to 32 characters, duplicates dropped (the first kept)."""
        cleaned: list[str] = []
        for label in labels:
            label = label.strip()
            if not 1 <= len(label) <= MAX_LABEL_CHARS:
                raise ValueError(f"each label is 1 to {MAX_LABEL_CHARS} characters: {label!r}")
            if label not in cleaned:
                cleaned.append(label)
        return cleaned


# ---- NLU parse API (`POST /api/v1/nlu/parse`, Rasa's `/model/parse` shape) ----------------

MAX_PARSE_CHARS = 10_000
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class NluParseBody(BaseModel):
    """As Rasa's `/model/parse` body: other keys (Rasa's `message_id`) are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")

    text: str = Field(
        min_length=1,
        max_length=MAX_PARSE_CHARS,
        description="the message to parse; `/intent{json}` is taken as said, as in Rasa",
    )

    @field_validator("text", mode="before")
    @classmethod
    def _no_lone_surrogates(cls, text: Any) -> Any:
        """JSON may carry a lone surrogate (`"\\ud800"`), which can't be encoded back into
        the answer: it becomes U+FFFD, one character for one, so offsets still hold."""
        return _LONE_SURROGATE.sub("\ufffd", text) if isinstance(text, str) else text

    @field_validator("text")
    @classmethod
    def _not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("text is blank: give the message to parse")
        return text


class NluIntent(BaseModel):
    """The parse's intent: `name` is null when the message is judged out of scope or falls
    below the threshold; `confidence` is the best-ranked label's either way."""

    name: str | None
    confidence: float


class NluRankedIntent(BaseModel):
    name: str
    confidence: float


class NluEntity(BaseModel):
    """An entity, as Rasa's; `extractor` names the Rasa component that would have found it."""

    entity: str
    value: Any
    start: int
    end: int
    extractor: str


class NluParse(BaseModel):
    """Rasa's `/model/parse` answer, plus `language` and `ambiguous` (ours)."""

    text: str
    intent: NluIntent
    entities: list[NluEntity]
    intent_ranking: list[NluRankedIntent]
    language: str | None = Field(description="zh, en, ... or null when the text doesn't tell")
    ambiguous: bool = Field(description="the two best-ranked intents are close to each other")
