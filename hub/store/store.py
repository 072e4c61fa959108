"""The async store: every read and write the hub makes, in SQL you can find in one place."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import false, func, literal, or_, text, true, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from hub.messages import Delivery, Inbound, Kind, Sender, Status, utcnow
from hub.store.cursors import decode_cursor, encode_cursor
from hub.store.database import Database, is_sqlite
from hub.store.models import (
    Agent,
    AuditLog,
    CannedResponse,
    ChannelState,
    Contact,
    Conversation,
    Message,
    Team,
)
from hub.store.persons import link_verified
from hub.store.types import UTCDateTime


class LastAdminError(ValueError):
    """A change that would leave no active admin."""


class StatusChanged(ValueError):
    """The conversation's status is no longer the one a change was made from; the message is
    the status it has now."""


@dataclass(frozen=True)
class Visibility:
    """The conversations an agent with teams may see: their teams', those without a team and
    those assigned to them. The one rule, as SQL (`clause`) and for one conversation (`allows`);
    an agent without teams, or an admin, sees everything and has no Visibility."""

    agent_id: int | None
    teams: tuple[str, ...]

    def allows(self, conversation: Conversation) -> bool:
        return (
            conversation.team is None
            or conversation.team in self.teams
            or (self.agent_id is not None and conversation.assignee_id == self.agent_id)
        )

    def clause(self) -> Any:
        assigned = col(Conversation.assignee_id) == self.agent_id
        return or_(
            col(Conversation.team).is_(None),
            col(Conversation.team).in_(list(self.teams)),
            assigned if self.agent_id is not None else false(),
        )


@dataclass(frozen=True)
class ConversationFilter:
    status: Sequence[str] = ()
    assignee_id: int | None = None
    unassigned: bool = False
    team: str | None = None
    channel: str | None = None
    q: str | None = None
    label: str | None = None
    visible_to: Visibility | None = None  # None: every conversation


@dataclass(frozen=True)
class Draft:
    """An outgoing message to store (`Store.add_messages`)."""

    sender: Sender
    text: str
    payload: dict[str, Any] = field(default_factory=dict)
    kind: Kind = Kind.TEXT
    agent_id: int | None = None
    reply_to_id: int | None = None
    private: bool = False
    delivery: Delivery | None = Delivery.QUEUED


@dataclass(frozen=True)
class ConversationRow:
    """A conversation with what a list shows beside it."""

    conversation: Conversation
    contact: Contact
    last_message: Message | None


class Store:
    """Contacts, conversations, messages, agents. Returns detached rows (no lazy loading)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ---- the customer's side ------------------------------------------------------------

    async def find_inbound(self, channel: str, channel_message_id: str) -> Message | None:
        query = select(Message).where(
            Message.channel == channel, Message.channel_message_id == channel_message_id
        )
        return await self.db.run(lambda s: s.exec(query).first(), write=False)

    async def record_inbound(
        self, inbound: Inbound, payload: dict[str, Any], turn_pending: bool = False
    ) -> tuple[Conversation, Message, bool] | None:
        """Store a customer message with its contact and conversation, in one transaction.

        Returns (conversation, message, conversation_created), or None when the channel
        message id was already stored (a redelivery that raced past `find_inbound`)."""

        def record(s: Session) -> tuple[Conversation, Message, bool]:
            contact = self._contact(s, inbound)
            conversation = self._conversation_for(s, inbound, contact)
            created = conversation is None
            if conversation is None:
                assert contact.id is not None
                conversation = Conversation(
                    contact_id=contact.id, channel=inbound.channel, language=contact.language
                )
            conversation.last_message_at = utcnow()
            s.add(conversation)
            s.flush()
            assert conversation.id is not None
            message = Message(
                conversation_id=conversation.id,
                channel=inbound.channel,
                direction="in",
                sender_type=Sender.CONTACT,
                kind=inbound.kind,
                text=inbound.text,
                payload=payload,
                channel_message_id=inbound.channel_message_id,
                created_at=inbound.received_at,
                turn_pending=turn_pending,
            )
            s.add(message)
            s.flush()
            return conversation, message, created

        try:
            return await self.db.run(record)
        except IntegrityError:
            if inbound.channel_message_id and await self.find_inbound(
                inbound.channel, inbound.channel_message_id
            ):
                return None
            raise

    def _conversation_for(
        self, s: Session, inbound: Inbound, contact: Contact
    ) -> Conversation | None:
        """The conversation a customer message goes to (None: a new one): the one the
        channel's threading named, when it is on this channel; else the contact's latest."""
        if inbound.conversation_id is not None:
            named = s.get(Conversation, inbound.conversation_id)
            if named is not None and named.channel == inbound.channel:
                return named
        if inbound.new_conversation:
            return None
        query = (
            select(Conversation)
            .where(Conversation.contact_id == contact.id)
            .order_by(col(Conversation.id).desc())
        )
        return s.exec(query).first()

    def _contact(self, s: Session, inbound: Inbound) -> Contact:
        query = select(Contact).where(
            Contact.channel == inbound.channel, Contact.external_id == inbound.sender_id
        )
        contact = s.exec(query).first()
        if contact is None:
            contact = Contact(
                channel=inbound.channel,
                external_id=inbound.sender_id,
                name=inbound.sender_name,
                language=inbound.language,
            )
            s.add(contact)
            s.flush()
        elif inbound.sender_name and contact.name != inbound.sender_name:
            contact.name = inbound.sender_name
            s.add(contact)
        if inbound.verified is not None:  # one customer across channels: hub/store/persons.py
            link_verified(s, contact, inbound.verified)
        return contact

    async def conversation_of(self, channel: str, channel_message_id: str) -> int | None:
        """The conversation holding the message with this channel message id."""
        message = await self.find_inbound(channel, channel_message_id)
        return message.conversation_id if message is not None else None

    async def load_state(self, channel: str, key: str) -> dict[str, Any] | None:
        def load(s: Session) -> dict[str, Any] | None:
            row = s.get(ChannelState, (channel, key))
            return dict(row.value) if row is not None else None

        return await self.db.run(load, write=False)

    async def save_state(self, channel: str, key: str, value: dict[str, Any]) -> None:

        def save(s: Session) -> None:
            row = s.get(ChannelState, (channel, key))
            if row is None:
                row = ChannelState(channel=channel, key=key, value=value)
            else:
                row.value, row.updated_at = value, utcnow()
            s.add(row)

        for attempt in (1, 2):  # another process may insert the same key first: then update
            try:
                return await self.db.run(save)
            except IntegrityError:
                if attempt == 2:
                    raise

    async def contact_conversation(self, channel: str, external_id: str) -> Conversation | None:
        """The contact's current (latest) conversation on a channel, if any."""
        query = (
            select(Conversation)
            .join(Contact, col(Contact.id) == col(Conversation.contact_id))
            .where(Contact.channel == channel, Contact.external_id == external_id)
            .order_by(col(Conversation.id).desc())
        )
        return await self.db.run(lambda s: s.exec(query).first(), write=False)

    async def finish_turn(self, message_id: int) -> None:
        """The bot's turn for this customer message is over (answered, or nothing to say)."""
        finish = (
            update(Message)
            .where(col(Message.id) == message_id, col(Message.turn_pending).is_(True))
            .values(turn_pending=False)
        )
        await self.db.run(lambda s: s.exec(finish))

    async def unfinished_turns(
        self, before: datetime, limit: int = 100
    ) -> list[tuple[Message, Contact]]:
        """Customer messages stored before `before` whose bot turn never finished (the
        process handling them died), oldest first, with their contact."""
        async with self.db.read() as s:
            query = (
                select(Message, Contact)
                .join(Conversation, col(Conversation.id) == col(Message.conversation_id))
                .join(Contact, col(Contact.id) == col(Conversation.contact_id))
                .where(col(Message.turn_pending).is_(True), col(Message.created_at) < before)
                .order_by(col(Message.id))
                .limit(limit)
            )
            return [(m, c) for m, c in (await s.exec(query)).all()]

    async def replies_to(self, message_id: int) -> list[Message]:
        query = (
            select(Message)
            .where(Message.reply_to_id == message_id, col(Message.private).is_(False))
            .order_by(col(Message.id))
        )
        return await self.db.run(lambda s: list(s.exec(query).all()), write=False)

    # ---- messages -----------------------------------------------------------------------

    async def add_message(
        self,
        conversation: Conversation,
        sender: Sender,
        text: str,
        *,
        payload: dict[str, Any] | None = None,
        kind: Kind = Kind.TEXT,
        agent_id: int | None = None,
        reply_to_id: int | None = None,
        private: bool = False,
        delivery: Delivery | None = Delivery.QUEUED,
    ) -> Message:
        """Store an outgoing message (bot, agent, system) or a private note."""
        assert conversation.id is not None
        draft = Draft(sender, text, payload or {}, kind, agent_id, reply_to_id, private, delivery)
        _, [message] = await self.add_messages(conversation, [draft])
        return message

    async def add_messages(
        self, conversation: Conversation, drafts: Sequence[Draft], **fields: Any
    ) -> tuple[Conversation, list[Message]]:
        """Store outgoing messages and set the conversation's `fields`, in one transaction (a
        bot turn's replies and where the bot is now). Returns the conversation as stored
        afterwards, and the messages in order."""
        conversation_id = conversation.id
        assert conversation_id is not None

        def add(s: Session) -> tuple[Conversation, list[Message]]:
            messages = [
                Message(
                    conversation_id=conversation_id,
                    channel=conversation.channel,
                    direction="out",
                    sender_type=d.sender,
                    agent_id=d.agent_id,
                    kind=d.kind,
                    text=d.text,
                    payload=d.payload,
                    reply_to_id=d.reply_to_id,
                    private=d.private,
                    delivery=None if d.private else d.delivery,
                )
                for d in drafts
            ]
            s.add_all(messages)
            s.flush()
            touched = dict(fields)
            shown = [m for m in messages if not m.private]
            if shown:
                touched["last_message_at"] = shown[-1].created_at
            if any(m.sender_type == Sender.AGENT for m in shown):
                first = next(m for m in shown if m.sender_type == Sender.AGENT)
                now = literal(first.created_at, UTCDateTime())
                touched["first_response_at"] = func.coalesce(
                    col(Conversation.first_response_at), now
                )
            if touched:  # one UPDATE, no SELECT first
                s.exec(
                    update(Conversation)
                    .where(col(Conversation.id) == conversation_id)
                    .values(**touched)
                )
            stored = s.get(Conversation, conversation_id)
            if stored is None:
                raise LookupError(f"conversation {conversation_id} not found")
            return stored, messages

        return await self.db.run(add)

    async def messages(
        self, conversation_id: int, after_id: int = 0, limit: int = 100, private: bool = True
    ) -> list[Message]:
        async with self.db.read() as s:
            query = select(Message).where(
                Message.conversation_id == conversation_id, col(Message.id) > after_id
            )
            if not private:
                query = query.where(col(Message.private).is_(False))
            query = query.order_by(col(Message.id)).limit(limit)
            return list((await s.exec(query)).all())

    async def get_message(self, message_id: int) -> Message | None:
        return await self.db.run(lambda s: s.get(Message, message_id), write=False)

    async def update_inbound(
        self, channel: str, channel_message_id: str, **payload: Any
    ) -> Message | None:
        """Merge `payload` into a stored inbound message's payload; `text=` (a key of it)
        replaces the text, the first text kept as `payload["original_text"]`."""
        query = select(Message).where(
            Message.channel == channel,
            Message.channel_message_id == channel_message_id,
            Message.direction == "in",
        )

        def merge(s: Session) -> Message | None:
            message = s.exec(query).first()
            if message is None:
                return None
            merged = dict(message.payload)
            if "text" in payload:
                merged.setdefault("original_text", message.text)
                message.text = str(payload.pop("text"))
            merged.update(payload)
            message.payload = merged
            s.add(message)
            return message

        return await self.db.run(merge)

    async def set_delivery(
        self, message_id: int, delivery: Delivery, error: str | None = None
    ) -> Message | None:
        def mark(s: Session) -> Message | None:
            message = s.get(Message, message_id)
            if message is None:
                return None
            message.delivery = delivery
            message.delivery_error = error
            message.attempts += 1
            s.add(message)
            return message

        return await self.db.run(mark)

    async def undelivered(self, limit: int = 1000, before: datetime | None = None) -> list[Message]:
        """Messages still queued for a channel (the outbox's work after a restart), stored
        before `before` if given."""
        async with self.db.read() as s:
            query = select(Message).where(Message.delivery == Delivery.QUEUED)
            if before is not None:
                query = query.where(col(Message.created_at) < before)
            query = query.order_by(col(Message.id)).limit(limit)
            return list((await s.exec(query)).all())

    # ---- conversations ------------------------------------------------------------------

    async def get_conversation(self, conversation_id: int) -> Conversation | None:
        return await self.db.run(lambda s: s.get(Conversation, conversation_id), write=False)

    async def get_contact(self, contact_id: int) -> Contact | None:
        return await self.db.run(lambda s: s.get(Contact, contact_id), write=False)

    async def update_conversation(
        self, conversation_id: int, *, expect_status: str | None = None, **fields: Any
    ) -> Conversation:
        """Set `fields`; with `expect_status`, only if the stored status is still that one
        (else StatusChanged): a status change read in one process or request and written
        later is not applied over another that came first."""

        def change(s: Session) -> Conversation:
            # FOR UPDATE: on PostgreSQL a second writer waits, then reads the first one's status
            locked = expect_status is not None
            conversation = s.get(Conversation, conversation_id, with_for_update=locked)
            if conversation is None:
                raise LookupError(f"conversation {conversation_id} not found")
            if expect_status is not None and conversation.status != expect_status:
                raise StatusChanged(str(conversation.status))
            for name, value in fields.items():
                setattr(conversation, name, value)
            s.add(conversation)
            return conversation

        return await self.db.run(change)

    async def list_conversations(
        self, where: ConversationFilter, cursor: str | None = None, limit: int = 25
    ) -> tuple[list[ConversationRow], str | None]:
        """Newest activity first; `cursor` continues after the last row of the previous page."""
        query = self._filtered(
            select(Conversation, Contact).join(
                Contact, col(Contact.id) == col(Conversation.contact_id)
            ),
            where,
        )
        if cursor:
            when, ident = decode_cursor(cursor)
            query = query.where(
                or_(
                    col(Conversation.last_message_at) < when,
                    (col(Conversation.last_message_at) == when) & (col(Conversation.id) < ident),
                )
            )
        query = query.order_by(
            col(Conversation.last_message_at).desc(), col(Conversation.id).desc()
        ).limit(limit + 1)
        async with self.db.read() as s:
            pairs = list((await s.exec(query)).all())
            more = len(pairs) > limit
            pairs = pairs[:limit]
            latest = await self._last_messages(s, [c.id for c, _ in pairs if c.id is not None])
        rows = [ConversationRow(c, contact, latest.get(c.id or 0)) for c, contact in pairs]
        next_cursor = None
        if more and pairs:
            last = pairs[-1][0]
            assert last.id is not None
            next_cursor = encode_cursor(last.last_message_at, last.id)
        return rows, next_cursor

    def _labels(self) -> Any:
        """The elements of `conversation.labels` as a table with a `value` column."""
        if is_sqlite(self.db.url):
            return func.json_each(Conversation.labels).table_valued("value")
        return func.json_array_elements_text(Conversation.labels).table_valued("value")

    def _filtered(self, query: Any, where: ConversationFilter) -> Any:
        """`query` (over Conversation joined with Contact) narrowed by `where`."""
        if where.visible_to is not None:
            query = query.where(where.visible_to.clause())
        if where.status:
            query = query.where(col(Conversation.status).in_(list(where.status)))
        if where.assignee_id is not None:
            query = query.where(Conversation.assignee_id == where.assignee_id)
        if where.unassigned:
            query = query.where(col(Conversation.assignee_id).is_(None))
        if where.team:
            query = query.where(Conversation.team == where.team)
        if where.channel:
            query = query.where(Conversation.channel == where.channel)
        if where.label:
            labels = self._labels()
            query = query.where(
                select(1).select_from(labels).where(labels.c.value == where.label).exists()
            )
        if where.q:
            like = f"%{where.q}%"
            has_text = (
                select(Message.id)
                .where(
                    Message.conversation_id == Conversation.id,
                    col(Message.text).ilike(like),
                )
                .exists()
            )
            query = query.where(
                or_(col(Contact.name).ilike(like), col(Contact.external_id).ilike(like), has_text)
            )
        return query

    async def conversation_row(self, conversation_id: int) -> ConversationRow | None:
        # one statement for both rows: a conversation being deleted (retention, erasure) is
        # either read whole or not at all
        query = (
            select(Conversation, Contact)
            .join(Contact, col(Contact.id) == col(Conversation.contact_id))
            .where(col(Conversation.id) == conversation_id)
        )
        async with self.db.read() as s:
            pair = (await s.exec(query)).first()
            if pair is None:
                return None
            latest = await self._last_messages(s, [conversation_id])
            return ConversationRow(pair[0], pair[1], latest.get(conversation_id))

    async def _last_messages(self, s: Any, ids: list[int]) -> dict[int, Message]:
        if not ids:
            return {}
        newest = (
            select(func.max(Message.id))
            .where(col(Message.conversation_id).in_(ids), col(Message.private).is_(False))
            .group_by(col(Message.conversation_id))
        )
        rows = (await s.exec(select(Message).where(col(Message.id).in_(newest)))).all()
        return {m.conversation_id: m for m in rows}

    async def status_counts(
        self, where: ConversationFilter, agent_id: int | None = None
    ) -> tuple[dict[str, int], int]:
        """Conversations matching `where` by status, and how many of the open or snoozed ones
        `agent_id` has."""
        base = select(Conversation.status, func.count(col(Conversation.id))).join(
            Contact, col(Contact.id) == col(Conversation.contact_id)
        )
        by_status = self._filtered(base, where).group_by(col(Conversation.status))
        mine = self._filtered(
            select(func.count(col(Conversation.id))).join(
                Contact, col(Contact.id) == col(Conversation.contact_id)
            ),
            where,
        ).where(
            col(Conversation.status).in_([Status.OPEN, Status.SNOOZED]),
            Conversation.assignee_id == agent_id,
        )
        async with self.db.read() as s:
            counts = {str(status): int(n) for status, n in (await s.exec(by_status)).all()}
            return counts, int((await s.exec(mine)).one())

    async def labels_in_use(self, visible_to: Visibility | None = None) -> list[str]:
        """The labels of the conversations `visible_to` allows (None: of every one)."""
        labels = self._labels()
        query = select(labels.c.value).distinct().select_from(Conversation).join(labels, true())
        if visible_to is not None:
            query = query.where(visible_to.clause())
        async with self.db.read() as s:  # sorted here: the same order whatever the collation
            return sorted(str(v) for v in (await s.exec(query)).all())

    async def team_counts(self) -> dict[str, dict[str, int]]:
        """Conversations by team and status (those with a team)."""
        query = (
            select(Conversation.team, Conversation.status, func.count(col(Conversation.id)))
            .where(col(Conversation.team).is_not(None))
            .group_by(col(Conversation.team), col(Conversation.status))
        )
        counts: dict[str, dict[str, int]] = {}
        async with self.db.read() as s:
            for team, status, n in (await s.exec(query)).all():
                counts.setdefault(str(team), {})[str(status)] = int(n)
        return counts

    async def last_failed_delivery(self, channel: str) -> Message | None:
        """The newest outgoing message on `channel` whose delivery failed."""
        async with self.db.read() as s:
            query = (
                select(Message)
                .where(
                    Message.channel == channel,
                    Message.direction == "out",
                    Message.delivery == Delivery.FAILED,
                )
                .order_by(col(Message.id).desc())
                .limit(1)
            )
            return (await s.exec(query)).first()

    async def canned_responses(self) -> list[CannedResponse]:
        async with self.db.read() as s:
            return list(
                (await s.exec(select(CannedResponse).order_by(col(CannedResponse.id)))).all()
            )

    async def get_canned(self, canned_id: int) -> CannedResponse | None:
        async with self.db.read() as s:
            return await s.get(CannedResponse, canned_id)

    async def create_canned(self, short_code: str, text: str) -> CannedResponse:
        """Raises IntegrityError when the short code is taken."""
        async with self.db.transaction() as s:
            canned = CannedResponse(short_code=short_code, text=text)
            s.add(canned)
            await s.flush()
            return canned

    async def update_canned(self, canned_id: int, **fields: Any) -> CannedResponse | None:
        """None when there is no such response; IntegrityError when the short code is taken."""
        async with self.db.transaction() as s:
            canned = await s.get(CannedResponse, canned_id)
            if canned is None:
                return None
            for name, value in fields.items():
                setattr(canned, name, value)
            s.add(canned)
            await s.flush()
            return canned

    async def delete_canned(self, canned_id: int) -> bool:
        async with self.db.transaction() as s:
            canned = await s.get(CannedResponse, canned_id)
            if canned is None:
                return False
            await s.delete(canned)
            return True

    async def recent_customer_texts(self, conversation_id: int, limit: int = 5) -> list[str]:
        async with self.db.read() as s:
            query = (
                select(Message.text)
                .where(
                    Message.conversation_id == conversation_id,
                    Message.sender_type == Sender.CONTACT,
                )
                .order_by(col(Message.id).desc())
                .limit(limit)
            )
            return list(reversed((await s.exec(query)).all()))

    async def due_snoozes(self, now: datetime) -> list[Conversation]:
        async with self.db.read() as s:
            query = select(Conversation).where(
                Conversation.status == Status.SNOOZED,
                col(Conversation.snooze_until).is_not(None),
                col(Conversation.snooze_until) <= now,
            )
            return list((await s.exec(query)).all())

    async def audit(
        self, actor: str, action: str, conversation_id: int | None = None, **data: Any
    ) -> None:
        row = AuditLog(actor=actor, action=action, conversation_id=conversation_id, data=data)
        await self.db.run(lambda s: s.add(row))

    async def audit_log(
        self,
        actor: str | None = None,
        action: str | None = None,
        conversation_id: int | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[AuditLog]:
        """Audit rows, newest first, those matching every given filter (ids below `before_id`)."""
        query = select(AuditLog)
        if actor is not None:
            query = query.where(AuditLog.actor == actor)
        if action is not None:
            query = query.where(AuditLog.action == action)
        if conversation_id is not None:
            query = query.where(AuditLog.conversation_id == conversation_id)
        if before_id is not None:
            query = query.where(col(AuditLog.id) < before_id)
        async with self.db.read() as s:
            return list((await s.exec(query.order_by(col(AuditLog.id).desc()).limit(limit))).all())

    # ---- agents -------------------------------------------------------------------------

    async def create_agent(
        self,
        email: str,
        name: str,
        password_hash: str,
        role: str = "agent",
        teams: Sequence[str] = (),
        capacity: int = 10,
    ) -> Agent:
        async with self.db.transaction() as s:
            agent = Agent(
                email=email.lower(),
                name=name,
                password_hash=password_hash,
                role=role,
                teams=list(teams),
                capacity=capacity,
            )
            s.add(agent)
            await s.flush()
            return agent

    async def agent_by_email(self, email: str) -> Agent | None:
        async with self.db.read() as s:
            return (await s.exec(select(Agent).where(Agent.email == email.lower()))).first()

    async def get_agent(self, agent_id: int) -> Agent | None:
        async with self.db.read() as s:
            return await s.get(Agent, agent_id)

    async def agents_by_ids(self, ids: Sequence[int]) -> dict[int, Agent]:
        if not ids:
            return {}
        async with self.db.read() as s:
            rows = (await s.exec(select(Agent).where(col(Agent.id).in_(list(ids))))).all()
            return {a.id: a for a in rows if a.id is not None}

    async def set_password_hash(self, agent_id: int, password_hash: str) -> None:
        async with self.db.transaction() as s:
            agent = await s.get(Agent, agent_id)
            if agent is not None:
                agent.password_hash = password_hash
                s.add(agent)

    async def count_agents(self) -> int:
        async with self.db.read() as s:
            return int((await s.exec(select(func.count(col(Agent.id))))).one())

    async def list_agents(self) -> list[Agent]:
        async with self.db.read() as s:
            return list((await s.exec(select(Agent).order_by(col(Agent.id)))).all())

    async def open_counts(self) -> dict[int, int]:
        """Open conversations by assigned agent."""
        query = (
            select(Conversation.assignee_id, func.count(col(Conversation.id)))
            .where(Conversation.status == Status.OPEN, col(Conversation.assignee_id).is_not(None))
            .group_by(col(Conversation.assignee_id))
        )
        async with self.db.read() as s:
            return {a: int(n) for a, n in (await s.exec(query)).all() if a is not None}

    async def update_agent(self, agent_id: int, **fields: Any) -> Agent | None:
        """Change an agent (None: no such agent). Raises LastAdminError, changing nothing,
        when a change of role or `active` would leave no active admin. A new password hash or
        deactivation bumps `token_version`: the agent's earlier login tokens stop working."""
        async with self.db.transaction() as s:
            agent = await s.get(Agent, agent_id)
            if agent is None:
                return None
            for name, value in fields.items():
                setattr(agent, name, value)
            if "password_hash" in fields or fields.get("active") is False:
                agent.token_version += 1
            s.add(agent)
            await s.flush()
            if "role" in fields or "active" in fields:
                admins = select(func.count(col(Agent.id))).where(
                    Agent.role == "admin", col(Agent.active).is_(True)
                )
                if int((await s.exec(admins)).one()) == 0:
                    raise LastAdminError("this would leave no active admin")
            return agent

    # ---- teams --------------------------------------------------------------------------

    async def list_teams(self) -> list[Team]:
        async with self.db.read() as s:
            return list((await s.exec(select(Team).order_by(col(Team.name)))).all())

    async def create_team(self, name: str) -> Team:
        """Raises IntegrityError when the team exists."""
        async with self.db.transaction() as s:
            team = Team(name=name)
            s.add(team)
            await s.flush()
            return team

    async def delete_team(self, name: str) -> bool:
        async with self.db.transaction() as s:
            team = await s.get(Team, name)
            if team is None:
                return False
            await s.delete(team)
            return True

    # ---- assignment (hub/routing.py) ----------------------------------------------------

    @contextlib.asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[None]:
        """Held by one hub process at a time (a PostgreSQL advisory lock, let go with the
        transaction, so also when the process dies). SQLite has one hub process: no-op."""
        if is_sqlite(self.db.url):
            yield
            return
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        async with self.db.engine.connect() as connection:
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
            yield  # the connection's transaction ends (rolled back) on exit: the lock goes

    async def pending_since(self) -> list[tuple[Conversation, datetime]]:
        """Pending conversations with when they started waiting: their last handoff from the
        bot (a conversation an agent gave back keeps its place), else their last move to
        pending, else their creation."""
        async with self.db.read() as s:
            waiting = select(Conversation).where(Conversation.status == Status.PENDING)
            pending = list((await s.exec(waiting)).all())
            ids = [c.id for c in pending if c.id is not None]
            rows = (
                await s.exec(
                    select(AuditLog)
                    .where(AuditLog.action == "status", col(AuditLog.conversation_id).in_(ids))
                    .order_by(col(AuditLog.id))
                )
            ).all()
        handed: dict[int, datetime] = {}
        moved: dict[int, datetime] = {}
        for row in rows:
            if row.conversation_id is None or row.data.get("target") != Status.PENDING:
                continue
            moved[row.conversation_id] = row.created_at
            if row.data.get("source") == Status.BOT:
                handed[row.conversation_id] = row.created_at
        return [(c, handed.get(c.id or 0) or moved.get(c.id or 0) or c.created_at) for c in pending]

    async def recent_waits(self, since: datetime) -> list[tuple[str | None, float]]:
        """(team, seconds) of each wait since `since` from pending to open (taken by an
        agent or assigned), oldest first."""
        query = (
            select(AuditLog, Conversation.team)
            .join(Conversation, col(Conversation.id) == col(AuditLog.conversation_id))
            .where(AuditLog.action == "status", col(AuditLog.created_at) >= since)
            .order_by(col(AuditLog.id))
        )
        async with self.db.read() as s:
            rows = (await s.exec(query)).all()
        waiting: dict[int, datetime] = {}
        waits: list[tuple[str | None, float]] = []
        for row, team in rows:
            if row.conversation_id is None:
                continue
            if row.data.get("target") == Status.PENDING:
                waiting[row.conversation_id] = row.created_at
            elif row.data.get("source") == Status.PENDING and row.conversation_id in waiting:
                start = waiting.pop(row.conversation_id)
                if row.data.get("target") == Status.OPEN:
                    waits.append((team, (row.created_at - start).total_seconds()))
        return waits

    async def open_of(self, agent_id: int) -> list[Conversation]:
        """The conversations `agent_id` has open."""
        query = select(Conversation).where(
            Conversation.status == Status.OPEN, Conversation.assignee_id == agent_id
        )
        async with self.db.read() as s:
            return list((await s.exec(query)).all())
