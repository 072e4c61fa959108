"""The customer's side of messages: storing what arrives (with its contact and conversation,
in one transaction), finding it again, and the bot's turns on it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from hub.messages import Inbound, Sender, utcnow
from hub.store.contacts import contact_of
from hub.store.messages import finished
from hub.store.models import Contact, Conversation, Message
from hub.store.rows import Aggregate


class InboundStore(Aggregate):
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
            contact = contact_of(s, inbound)
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

    async def conversation_of(self, channel: str, channel_message_id: str) -> int | None:
        """The conversation holding the message with this channel message id."""
        message = await self.find_inbound(channel, channel_message_id)
        return message.conversation_id if message is not None else None

    async def finish_turn(self, message_id: int, payload: dict[str, Any] | None = None) -> None:
        """The bot's turn for this customer message is over (answered, or nothing to say);
        `payload`, when given, replaces the message's (the turn's decision added to it)."""
        await self.db.run(lambda s: s.exec(finished(message_id, payload)))

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
