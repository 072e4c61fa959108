"""Messages: storing what the hub sends (bot, agents, system) and private notes, their
delivery, and reading a conversation's messages."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, literal, update
from sqlmodel import Session, col, select

from hub.messages import Delivery, Kind, Sender
from hub.store.models import Conversation, Message
from hub.store.rows import Aggregate
from hub.store.types import UTCDateTime


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

    def message(self, conversation_id: int, channel: str) -> Message:
        """The row this draft is stored as in a conversation (a private note is not sent)."""
        return Message(
            conversation_id=conversation_id,
            channel=channel,
            direction="out",
            sender_type=self.sender,
            agent_id=self.agent_id,
            kind=self.kind,
            text=self.text,
            payload=self.payload,
            reply_to_id=self.reply_to_id,
            private=self.private,
            delivery=None if self.private else self.delivery,
        )


class MessageStore(Aggregate):
    async def replies_to(self, message_id: int) -> list[Message]:
        query = (
            select(Message)
            .where(Message.reply_to_id == message_id, col(Message.private).is_(False))
            .order_by(col(Message.id))
        )
        return await self.db.run(lambda s: list(s.exec(query).all()), write=False)

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
        self,
        conversation: Conversation,
        drafts: Sequence[Draft],
        finish: Message | None = None,
        **fields: Any,
    ) -> tuple[Conversation, list[Message]]:
        """Store outgoing messages and set the conversation's `fields`, in one transaction (a
        bot turn's replies and where the bot is now); with `finish`, the customer message they
        answer has its turn finished in it too, with its payload (InboundStore.finish_turn).
        Returns the conversation as stored afterwards, and the messages in order."""
        conversation_id = conversation.id
        assert conversation_id is not None

        def add(s: Session) -> tuple[Conversation, list[Message]]:
            messages = [d.message(conversation_id, conversation.channel) for d in drafts]
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
            if finish is not None:
                s.exec(finished(finish.id, finish.payload))
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

    async def messages_before(
        self, conversation_id: int, before_id: int, limit: int = 100
    ) -> list[Message]:
        """The conversation's last `limit` public messages before message `before_id`, oldest
        first."""
        query = (
            select(Message)
            .where(
                Message.conversation_id == conversation_id,
                col(Message.id) < before_id,
                col(Message.private).is_(False),
            )
            .order_by(col(Message.id).desc())
            .limit(limit)
        )
        async with self.db.read() as s:
            return list(reversed((await s.exec(query)).all()))

    async def get_message(self, message_id: int) -> Message | None:
        return await self.db.run(lambda s: s.get(Message, message_id), write=False)

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


def finished(message_id: int | None, payload: dict[str, Any] | None = None) -> Any:
    """The UPDATE that ends the bot's turn for a customer message (if not ended already);
    `payload`, when given, replaces the message's (the turn's decision added to it)."""
    values: dict[str, Any] = {"turn_pending": False}
    if payload is not None:
        values["payload"] = payload
    return (
        update(Message)
        .where(col(Message.id) == message_id, col(Message.turn_pending).is_(True))
        .values(**values)
    )
