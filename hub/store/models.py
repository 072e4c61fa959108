"""Tables (README.md "Architecture"). Schema changes go through Alembic: see migrations/."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from hub.messages import Delivery, Kind, Sender, Status, utcnow
from hub.store.types import UTCDateTime


def _json(default: type = dict) -> Any:
    return Field(default_factory=default, sa_column=Column(JSON, nullable=False))


class Contact(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=64)
    external_id: str = Field(max_length=255)
    name: str | None = Field(default=None, max_length=255)
    language: str | None = Field(default=None, max_length=16)
    attributes: dict[str, Any] = _json()
    # verified ways to reach them (an email channel's sender, a phone Telegram shared, a site's
    # signed identity): contacts sharing one are one customer, the same `person_id`
    email: str | None = Field(default=None, max_length=255, index=True)
    phone: str | None = Field(default=None, max_length=32, index=True)
    person_id: int | None = Field(default=None, index=True)  # the first merged contact's id
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Agent(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=255, unique=True)
    name: str = Field(max_length=255)
    password_hash: str = Field(max_length=255)
    role: str = Field(default="agent", max_length=16)  # admin | agent | designer
    teams: list[str] = _json(list)
    capacity: int = 10  # max open conversations
    presence: str = Field(default="offline", max_length=16)  # online | away | offline
    language: str | None = Field(default=None, max_length=16)  # the inbox's language (zh, en)
    active: bool = True
    # in each login token (claim `ver`); a password change or reset, or deactivation, bumps it:
    # every token issued before stops working (hub.core.auth)
    token_version: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class RevokedToken(SQLModel, table=True):
    """A login token revoked before it expired (`POST /api/v1/auth/logout`), by its `jti`;
    the row goes once the token would have expired anyway (hub.store.sessions)."""

    __tablename__ = "revoked_token"

    jti: str = Field(max_length=64, primary_key=True)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)


class Conversation(SQLModel, table=True):
    __table_args__ = (Index("ix_conversation_listing", "last_message_at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(foreign_key="contact.id", index=True)
    channel: str = Field(max_length=64, index=True)
    status: Status = Field(default=Status.BOT, sa_type=String(16), index=True)
    assignee_id: int | None = Field(default=None, foreign_key="agent.id", index=True)
    team: str | None = Field(default=None, max_length=64, index=True)
    labels: list[str] = _json(list)
    priority: str | None = Field(default=None, max_length=16)
    language: str | None = Field(default=None, max_length=16)
    flow_state: dict[str, Any] = _json()  # active flow, step, slots, retries, fallbacks
    handoff: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    snooze_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    first_response_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_message_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Message(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("channel", "channel_message_id"),
        Index("ix_message_conversation", "conversation_id", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id")
    channel: str = Field(max_length=64)
    direction: str = Field(max_length=3)  # in | out
    sender_type: Sender = Field(sa_type=String(16))
    agent_id: int | None = Field(default=None, foreign_key="agent.id")
    kind: Kind = Field(default=Kind.TEXT, sa_type=String(16))
    text: str = ""
    payload: dict[str, Any] = _json()  # buttons, attachments, NLU result of a customer message
    channel_message_id: str | None = Field(default=None, max_length=255)
    reply_to_id: int | None = Field(default=None, foreign_key="message.id", index=True)
    private: bool = False
    # a customer message whose bot turn has not finished (a crash mid-turn leaves it True;
    # hub.core.pipeline.Pipeline.recover takes the turn again)
    turn_pending: bool = Field(default=False, index=True)
    delivery: Delivery | None = Field(default=None, sa_type=String(16), index=True)
    delivery_error: str | None = None
    attempts: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Team(SQLModel, table=True):
    """A team agents belong to and conversations are routed to (`Agent.teams`,
    `Conversation.team` name it; a name may be in use without a row)."""

    name: str = Field(max_length=64, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CannedResponse(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    short_code: str = Field(max_length=64, unique=True)
    text: str
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AuditLog(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int | None = Field(default=None, foreign_key="conversation.id", index=True)
    actor: str = Field(max_length=64)  # "agent:<id>", "bot", "system", "contact"
    action: str = Field(max_length=64)
    data: dict[str, Any] = _json()
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ChannelState(SQLModel, table=True):
    """What a channel must remember across restarts and share between processes (an IMAP
    folder's last UID, an email thread's headers), by channel instance and key."""

    __tablename__ = "channel_state"

    channel: str = Field(max_length=64, primary_key=True)
    key: str = Field(max_length=255, primary_key=True)
    value: dict[str, Any] = _json()
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Webhook(SQLModel, table=True):
    """An outgoing webhook subscription: the hub's events of the subscribed types are POSTed to
    `url`, signed with `secret` (hub/features/webhooks/sender.py)."""

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=2048)
    events: list[str] = _json(list)  # "message.created", "message.*" or "*"
    secret: str = Field(max_length=255)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class WebhookDelivery(SQLModel, table=True):
    """One event on its way to one webhook, stored before the first attempt so that a restart
    loses nothing: `pending` (with the time of its next attempt), then `sent` or `failed`."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (Index("ix_webhook_delivery_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    webhook_id: int = Field(foreign_key="webhook.id", index=True)
    event: str = Field(max_length=64)
    # no foreign key: erasing a conversation deletes its deliveries by this id explicitly
    conversation_id: int | None = Field(default=None, index=True)
    payload: dict[str, Any] = _json()  # the JSON body, the same on every attempt
    status: str = Field(default="pending", max_length=16)  # pending | sent | failed
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_error: str | None = None
    response_status: int | None = None
    last_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ApiToken(SQLModel, table=True):
    """A bearer token for an integration (`kefu_...`), acting with `role`. Only its SHA-256 is
    stored: the token itself is shown once, when created."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=255)
    token_hash: str = Field(max_length=64, unique=True)  # sha256 hex of the token
    role: str = Field(max_length=16)  # admin | agent | designer
    created_by: str = Field(max_length=64)  # the audit actor who created it
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class NluExample(SQLModel, table=True):
    """A training example a designer labeled in the admin pages (a message the bot did not
    understand, given its intent); training uses these with the bot folder's files."""

    __tablename__ = "nlu_example"

    id: int | None = Field(default=None, primary_key=True)
    text: str = Field(max_length=4000)
    intent: str = Field(max_length=128, index=True)
    language: str | None = Field(default=None, max_length=16)
    labeled_by: str = Field(max_length=64)  # the audit actor ("agent:<id>")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CsatRating(SQLModel, table=True):
    """A customer's satisfaction rating (1-5) of a resolved conversation."""

    __tablename__ = "csat_rating"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    score: int  # 1-5
    comment: str | None = Field(default=None, max_length=4000)
    agent_id: int | None = Field(default=None, foreign_key="agent.id", index=True)
    channel: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
