"""Channel-neutral message types: what a channel hands the core and what the core hands back.

A channel module turns a platform payload into one `Inbound`; the pipeline answers with `Reply`
objects, stores them, and gives them to the channel as `Outbound` for delivery. These types carry
no platform names: everything platform-specific stays in `channels/`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

_SURROGATE = re.compile("[\ud800-\udfff]")  # lone halves of a UTF-16 pair


def utcnow() -> datetime:
    """The current time, timezone-aware (SQLModel rejects naive datetimes)."""
    return datetime.now(UTC)


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Status(StrEnum):
    """Who has the conversation (contract values)."""

    BOT = "bot"
    PENDING = "pending"  # waiting for a human
    OPEN = "open"  # a human has it
    SNOOZED = "snoozed"
    RESOLVED = "resolved"


class Sender(StrEnum):
    CONTACT = "contact"
    BOT = "bot"
    AGENT = "agent"
    SYSTEM = "system"


class Kind(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    FILE = "file"
    AUDIO = "audio"
    VIDEO = "video"
    LOCATION = "location"
    BUTTONS = "buttons"
    EVENT = "event"


class Delivery(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


class Button(Frozen):
    title: str
    payload: str


class Attachment(Frozen):
    kind: Kind
    url: str
    name: str | None = None
    mime_type: str | None = None


class Verified(Frozen):
    """Ways to reach the customer that their channel vouches for (the sender of an
    authenticated mail, a phone Telegram shared, a site's signed identity): contacts sharing
    one are one customer (hub/store/persons.py)."""

    email: str | None = None
    phone: str | None = None  # E.164 (+8613800138000)


class Inbound(Frozen):
    """One customer message, normalized by its channel."""

    channel: str  # the channel instance's name in config.yaml, e.g. "web"
    sender_id: str  # the customer's id on that channel
    channel_message_id: str | None = None  # the platform's id, for dedupe
    text: str = ""
    postback: str | None = None  # the payload of a button the customer pressed, e.g. "/human"
    kind: Kind = Kind.TEXT
    payload: dict[str, Any] = Field(default_factory=dict)  # platform extras, e.g. a location
    attachments: tuple[Attachment, ...] = ()
    sender_name: str | None = None
    language: str | None = None  # when the platform tells us
    received_at: datetime = Field(default_factory=utcnow)
    # Channels with threads of their own (email): the conversation this message continues, as
    # the channel's threading found it, or a new one; by default the contact's latest.
    conversation_id: int | None = None
    new_conversation: bool = False
    # Sent by a machine (an auto-reply, a mailing list): stored for the inbox, never answered.
    automated: bool = False
    verified: Verified | None = None  # what the channel vouches for about the sender

    @field_validator("sender_id", "channel_message_id", "text", "postback", "sender_name")
    @classmethod
    def _storable(cls, value: str | None) -> str | None:
        """A lone UTF-16 surrogate (JSON allows "\\udfff") can't be stored as text in any
        database: it becomes U+FFFD, and the rest of the message is kept."""
        if value is None or _SURROGATE.search(value) is None:
            return value
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


class Reply(Frozen):
    """What the bot (or the hub itself) wants to say; rendered in the conversation's language."""

    text: str
    sender: Sender = Sender.BOT
    buttons: tuple[Button, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    meta: dict[str, Any] = Field(default_factory=dict)  # where a bot reply came from (flow, step)


class Outbound(Frozen):
    """A stored message on its way to a customer through a channel."""

    message_id: int
    conversation_id: int
    channel: str
    recipient_id: str  # the contact's id on the channel
    sender: Sender
    text: str
    buttons: tuple[Button, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    created_at: datetime
    reply_to: str | None = None  # the channel message id this answers, when there is one


class Understanding(Frozen):
    """What the bot understood of a customer message (NLU result or an explicit `/intent`)."""

    text: str
    intent: str | None = None  # None: out of scope or below the threshold
    confidence: float = 0.0
    entities: tuple[dict[str, Any], ...] = ()
    ranking: tuple[tuple[str, float], ...] = ()
    language: str | None = None
    explicit: bool = False  # came from a `/intent{json}` payload, not from the classifier
    postback: str | None = None  # the payload of the button the customer pressed
    ambiguous: bool = False  # the two best intents are too close: "did you mean A or B?"

    def entity(self, name: str) -> Any:
        """The value of the first entity called `name`, or None."""
        return next((e.get("value") for e in self.entities if e.get("entity") == name), None)


class Handoff(Frozen):
    """Why and with what a conversation goes to a human: the agent's first read."""

    reason: str  # "customer_request", "flow", "fallback", "flow_failure"
    intent: str | None = None
    team: str | None = None
    note: str | None = None
    priority: str | None = None
    slots: dict[str, Any] = Field(default_factory=dict)
    summary: str = ""


class Event(Frozen):
    """An event on the bus; the inbox WebSocket forwards these (contract shape)."""

    type: str  # conversation.created | conversation.status_changed | conversation.assigned | ...
    conversation_id: int
    data: dict[str, Any] = Field(default_factory=dict)

    def wire(self) -> dict[str, Any]:
        return {"type": self.type, "conversation_id": self.conversation_id, "data": self.data}
