"""The reads behind the summary report (hub/features/reports/summary.py): per-conversation facts
and GROUP BY
counts over the conversations created in a window, the same SQL on SQLite and PostgreSQL.
`unrecognized_texts` also feeds the review of unrecognized messages
(hub/features/nlu_review/review.py).

Nothing here loads messages one by one: the largest results are one row per conversation (or per
conversation and intent, flow or sender), whatever the number of messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.messages import Sender, Status
from hub.store.database import Database
from hub.store.models import AuditLog, Conversation, CsatRating, Message, NluExample

KNOWLEDGE_EVENTS = ("knowledge.answered", "knowledge.helpful", "knowledge.unhelpful")


@dataclass(frozen=True)
class ConversationFacts:
    id: int
    channel: str
    status: str
    created_at: datetime
    first_response_at: datetime | None
    resolved_at: datetime | None
    team: str | None = None  # whose business hours count (hub/features/hours/hours.py)


@dataclass
class ReportRows:
    """What the report is computed from (hub.features.reports.summary.summarize)."""

    conversations: list[ConversationFacts] = field(default_factory=list)
    # the first move to a human (a status row with target pending or open): when, why
    handovers: dict[int, tuple[datetime, str | None]] = field(default_factory=dict)
    # (conversation, direction, sender, messages), private notes left out
    messages: list[tuple[int, str, str, int]] = field(default_factory=list)
    # (intent, conversation, customer messages) for customer messages with an intent
    intents: list[tuple[str, int, int]] = field(default_factory=list)
    # (flow, conversation, when its first message in that flow was sent)
    flow_entries: list[tuple[str, int, datetime]] = field(default_factory=list)
    # (flow, step location, step label, conversations that reached it)
    flow_steps: list[tuple[str, str, str, int]] = field(default_factory=list)
    # (conversation, unrecognized customer messages, the last one's time)
    fallbacks: list[tuple[int, int, datetime]] = field(default_factory=list)
    # (text, messages, the newest one's time): the most frequent unrecognized texts
    unrecognized: list[tuple[str, int, datetime]] = field(default_factory=list)
    # knowledge.answered / helpful / unhelpful audit events -> count
    knowledge: dict[str, int] = field(default_factory=dict)
    # (conversation, score): the customers' satisfaction ratings, at most one per conversation
    csat: list[tuple[int, int]] = field(default_factory=list)


def _json_text(column: Any, *path: str) -> Any:
    """The text at `path` inside a JSON column (NULL when absent or JSON null), both backends."""
    return column[path].as_string()


def _in_window(since: datetime, until: datetime, skip_channels: tuple[str, ...]) -> Any:
    """The ids of the conversations created in [since, until), on channels not skipped."""
    query = select(col(Conversation.id)).where(
        col(Conversation.created_at) >= since, col(Conversation.created_at) < until
    )
    if skip_channels:
        query = query.where(col(Conversation.channel).not_in(skip_channels))
    return query


# the customer message of `unrecognized_clause` (its replies are the unaliased Message)
_customer = Message.__table__.alias("customer")  # type: ignore[attr-defined]


def unrecognized_clause() -> Any:
    """A customer message the bot did not understand: it took the turn (a bot or system
    message answers it) and neither a flow nor a knowledge article answered it, and the NLU
    found no intent or the answer was the fallback's ("Sorry, I didn't understand..." or "did
    you mean"). Button presses and `/intent` payloads are never counted."""
    customer = _customer.c
    reply = select(col(Message.id)).where(col(Message.reply_to_id) == customer.id)
    answered_by_bot = reply.where(
        col(Message.sender_type).in_([Sender.BOT, Sender.SYSTEM])
    ).exists()
    payload = col(Message.payload)
    understood = reply.where(
        or_(
            _json_text(payload, "bot", "flow").is_not(None),
            _json_text(payload, "bot", "knowledge").is_not(None),
            # thanks for a rating (hub.features.csat)
            _json_text(payload, "bot", "csat").is_not(None),
        )
    ).exists()
    fallback_reply = reply.where(
        col(Message.sender_type) == Sender.BOT, _json_text(payload, "bot").is_(None)
    ).exists()
    return and_(
        customer.sender_type == Sender.CONTACT,
        customer.text != "",
        ~customer.text.startswith("/"),
        _json_text(customer.payload, "postback").is_(None),
        answered_by_bot,
        ~understood,
        or_(_json_text(customer.payload, "nlu", "intent").is_(None), fallback_reply),
    )


def _unrecognized_in(window: Any) -> Any:
    """The unrecognized customer messages of the conversations in `window`, as a subquery of
    (conversation_id, text, created_at)."""
    return (
        select(_customer.c.conversation_id, _customer.c.text, _customer.c.created_at)
        .where(_customer.c.conversation_id.in_(window), unrecognized_clause())
        .subquery()
    )


def _most_frequent(found: Any, top: int, *conditions: Any) -> Any:
    """(text, messages, the newest one's time) of the messages `found` (exact text), most
    frequent first, then newest, at most `top`."""
    n, last = func.count().label("n"), func.max(found.c.created_at).label("last_at")
    return (
        select(found.c.text, n, last)
        .where(*conditions)
        .group_by(found.c.text)
        .order_by(n.desc(), last.desc(), found.c.text)
        .limit(top)
    )


async def _all(s: AsyncSession, query: Any) -> list[Any]:
    """The rows of a SQLAlchemy Core query, on the session's connection."""
    return list((await (await s.connection()).execute(query)).all())


async def unrecognized_texts(
    db: Database,
    since: datetime,
    until: datetime,
    *,
    skip_channels: tuple[str, ...] = (),
    top: int = 20,
    unlabeled: bool = False,
) -> list[tuple[str, int, datetime]]:
    """The report's `unrecognized` on its own: the most frequent texts the bot did not
    understand in the conversations created in [since, until), as (text, messages, the newest
    one's time). `unlabeled` leaves out the texts a designer labeled already (NluExample)."""
    found = _unrecognized_in(_in_window(since, until, skip_channels))
    labeled = found.c.text.not_in(select(col(NluExample.text)))
    query = _most_frequent(found, top, *([labeled] if unlabeled else []))
    async with db.read() as s:
        return [(str(t), int(n), when) for t, n, when in await _all(s, query)]


async def report_rows(
    db: Database,
    since: datetime,
    until: datetime,
    *,
    skip_channels: tuple[str, ...] = (),
    top: int = 20,
) -> ReportRows:
    """Everything the report needs about the conversations created in [since, until)."""
    window = _in_window(since, until, skip_channels)
    rows = ReportRows()
    async with db.read() as s:
        conversations = select(
            col(Conversation.id),
            col(Conversation.channel),
            col(Conversation.status),
            col(Conversation.created_at),
            col(Conversation.first_response_at),
            col(Conversation.resolved_at),
            col(Conversation.team),
        ).where(col(Conversation.id).in_(window))
        rows.conversations = [
            ConversationFacts(int(i), str(ch), str(st), created, first, resolved, team)
            for i, ch, st, created, first, resolved, team in await _all(s, conversations)
        ]
        if not rows.conversations:
            return rows

        data = col(AuditLog.data)
        handovers = (
            select(
                col(AuditLog.conversation_id), col(AuditLog.created_at), _json_text(data, "reason")
            )
            .where(
                col(AuditLog.action) == "status",
                col(AuditLog.conversation_id).in_(window),
                _json_text(data, "target").in_([Status.PENDING.value, Status.OPEN.value]),
            )
            .order_by(col(AuditLog.id))
        )
        for conversation_id, when, reason in await _all(s, handovers):
            rows.handovers.setdefault(int(conversation_id), (when, reason))

        messages = (
            select(
                col(Message.conversation_id),
                col(Message.direction),
                col(Message.sender_type),
                func.count(col(Message.id)),
            )
            .where(col(Message.conversation_id).in_(window), col(Message.private).is_(False))
            .group_by(
                col(Message.conversation_id), col(Message.direction), col(Message.sender_type)
            )
        )
        rows.messages = [
            (int(c), str(d), str(sender), int(n)) for c, d, sender, n in await _all(s, messages)
        ]

        payload = col(Message.payload)
        said = (
            select(
                _json_text(payload, "nlu", "intent").label("intent"),
                col(Message.conversation_id).label("conversation_id"),
            )
            .where(
                col(Message.conversation_id).in_(window),
                col(Message.sender_type) == Sender.CONTACT,
            )
            .subquery()
        )
        intents = (
            select(said.c.intent, said.c.conversation_id, func.count())
            .where(said.c.intent.is_not(None))
            .group_by(said.c.intent, said.c.conversation_id)
        )
        rows.intents = [(str(i), int(c), int(n)) for i, c, n in await _all(s, intents)]

        spoken = (
            select(
                _json_text(payload, "bot", "flow").label("flow"),
                _json_text(payload, "bot", "loc").label("loc"),
                _json_text(payload, "bot", "step").label("step"),
                col(Message.conversation_id).label("conversation_id"),
                col(Message.created_at).label("created_at"),
            )
            .where(
                col(Message.conversation_id).in_(window),
                col(Message.sender_type) == Sender.BOT,
            )
            .subquery()
        )
        entries = (
            select(spoken.c.flow, spoken.c.conversation_id, func.min(spoken.c.created_at))
            .where(spoken.c.flow.is_not(None))
            .group_by(spoken.c.flow, spoken.c.conversation_id)
        )
        rows.flow_entries = [(str(f), int(c), when) for f, c, when in await _all(s, entries)]
        steps = (
            select(
                spoken.c.flow,
                spoken.c.loc,
                spoken.c.step,
                func.count(func.distinct(spoken.c.conversation_id)),
            )
            .where(spoken.c.flow.is_not(None))
            .group_by(spoken.c.flow, spoken.c.loc, spoken.c.step)
        )
        rows.flow_steps = [
            (str(f), str(loc or ""), str(step or ""), int(n))
            for f, loc, step, n in await _all(s, steps)
        ]

        found = _unrecognized_in(window)
        per_conversation = select(
            found.c.conversation_id, func.count(), func.max(found.c.created_at)
        ).group_by(found.c.conversation_id)
        rows.fallbacks = [(int(c), int(n), last) for c, n, last in await _all(s, per_conversation)]
        by_text = _most_frequent(found, top)
        rows.unrecognized = [(str(t), int(n), when) for t, n, when in await _all(s, by_text)]

        knowledge = (
            select(col(AuditLog.action), func.count(col(AuditLog.id)))
            .where(
                col(AuditLog.action).in_(KNOWLEDGE_EVENTS),
                col(AuditLog.conversation_id).in_(window),
            )
            .group_by(col(AuditLog.action))
        )
        rows.knowledge = {str(a): int(n) for a, n in await _all(s, knowledge)}

        ratings = select(col(CsatRating.conversation_id), col(CsatRating.score)).where(
            col(CsatRating.conversation_id).in_(window)
        )
        rows.csat = [(int(c), int(score)) for c, score in await _all(s, ratings)]
    return rows
