"""A contact's personal data: finding it, reading all of it, erasing it (PIPL, GDPR), and
deleting resolved conversations past the retention period. The SQL of
hub/features/personal_data/records.py.

Erasing a conversation deletes its messages, its webhook deliveries (their payloads hold
message texts) and the channel state kept for it; audit rows that named it are kept with
`conversation_id` set to null (they hold statuses, labels and agent ids, no personal data)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, String, cast, func, or_, update
from sqlmodel import col, delete, select

from hub.messages import Status
from hub.store.database import Database
from hub.store.models import (
    AuditLog,
    ChannelState,
    Contact,
    Conversation,
    Message,
    NluExample,
    WebhookDelivery,
)

MEDIA_PREFIX = "/media/"


@dataclass
class ContactRecords:
    """Everything stored about one contact."""

    contact: Contact
    conversations: list[Conversation]
    messages: list[Message]  # of all their conversations, in order
    audit: list[AuditLog]  # rows about their conversations


@dataclass
class Erasure:
    """What an erasure deleted; `media` are the /media/ URLs whose files are to go too (those
    no remaining message links to)."""

    conversation_ids: list[int] = field(default_factory=list)
    messages: int = 0
    contacts: int = 0
    media: list[str] = field(default_factory=list)
    nlu_examples: int = 0  # training examples labeled from the contact's own messages

    def counts(self) -> dict[str, int]:
        return {
            "conversations": len(self.conversation_ids),
            "messages": self.messages,
            "contacts": self.contacts,
            "files": len(self.media),
            "nlu_examples": self.nlu_examples,
        }


def media_urls(value: Any) -> Iterator[str]:
    """Every /media/ link in a message payload (attachments, an email's raw source...)."""
    if isinstance(value, str):
        if value.startswith(MEDIA_PREFIX):
            yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from media_urls(item)
    elif isinstance(value, list):
        for item in value:
            yield from media_urls(item)


class PersonalDataStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def find_contacts(self, q: str | None, limit: int = 50) -> list[tuple[Contact, int]]:
        """Contacts whose id is `q`, or whose name, id on their channel or attributes contain
        it; newest first, each with how many conversations they have."""
        conversations = (
            select(func.count(col(Conversation.id)))
            .where(Conversation.contact_id == Contact.id)
            .scalar_subquery()
        )
        query = select(Contact, conversations)
        if q:
            like = f"%{q}%"
            found: list[ColumnElement[bool]] = [
                col(Contact.name).ilike(like),
                col(Contact.external_id).ilike(like),
                cast(Contact.attributes, String).ilike(like),
            ]
            if q.isdigit() and int(q) < 2**31:  # an id (the column is 32-bit)
                found.append(col(Contact.id) == int(q))
            query = query.where(or_(*found))
        query = query.order_by(col(Contact.id).desc()).limit(limit)
        async with self.db.read() as s:
            return [(contact, int(n)) for contact, n in (await s.exec(query)).all()]

    async def records(self, contact_id: int) -> ContactRecords | None:
        async with self.db.read() as s:
            contact = await s.get(Contact, contact_id)
            if contact is None:
                return None
            conversations = list(
                (
                    await s.exec(
                        select(Conversation)
                        .where(Conversation.contact_id == contact_id)
                        .order_by(col(Conversation.id))
                    )
                ).all()
            )
            ids = [c.id for c in conversations if c.id is not None]
            messages = list(
                (
                    await s.exec(
                        select(Message)
                        .where(col(Message.conversation_id).in_(ids))
                        .order_by(col(Message.id))
                    )
                ).all()
            )
            audit = list(
                (
                    await s.exec(
                        select(AuditLog)
                        .where(col(AuditLog.conversation_id).in_(ids))
                        .order_by(col(AuditLog.id))
                    )
                ).all()
            )
            return ContactRecords(contact, conversations, messages, audit)

    async def erase_contact(self, contact_id: int) -> Erasure | None:
        """Delete a contact with all their conversations, in one transaction (None: no such
        contact)."""
        async with self.db.transaction() as s:
            contact = await s.get(Contact, contact_id)
            if contact is None:
                return None
            ids = (
                await s.exec(select(Conversation.id).where(Conversation.contact_id == contact_id))
            ).all()
            # a designer labeled some of their words as training data: those go with them
            # (retention keeps them: it deletes old conversations, not what a person asked for)
            said = select(Message.text).where(
                col(Message.conversation_id).in_(list(ids)), Message.direction == "in"
            )
            labeled = await s.exec(delete(NluExample).where(col(NluExample.text).in_(said)))
            erasure = await self._erase(s, [i for i in ids if i is not None])
            erasure.nlu_examples = labeled.rowcount
            await s.delete(contact)
            erasure.contacts = 1
            return erasure

    async def erase_resolved_before(self, cutoff: datetime, limit: int = 200) -> Erasure:
        """Delete up to `limit` conversations resolved before `cutoff`, and their contacts when
        that leaves them none (and they are older than `cutoff`)."""
        async with self.db.transaction() as s:
            expired = (
                select(Conversation.id, Conversation.contact_id)
                .where(
                    Conversation.status == Status.RESOLVED,
                    col(Conversation.resolved_at).is_not(None),
                    col(Conversation.resolved_at) < cutoff,
                )
                .order_by(col(Conversation.id))
                .limit(limit)
            )
            rows = (await s.exec(expired)).all()
            erasure = await self._erase(s, [i for i, _ in rows if i is not None])
            contact_ids = sorted({c for _, c in rows})
            if contact_ids:
                alone = (
                    select(Contact.id)
                    .where(col(Contact.id).in_(contact_ids), col(Contact.created_at) < cutoff)
                    .where(
                        ~select(Conversation.id)
                        .where(Conversation.contact_id == Contact.id)
                        .exists()
                    )
                )
                gone = [i for i in (await s.exec(alone)).all() if i is not None]
                if gone:
                    await s.exec(delete(Contact).where(col(Contact.id).in_(gone)))
                erasure.contacts = len(gone)
            return erasure

    async def _erase(self, s: Any, ids: Sequence[int]) -> Erasure:
        """Delete conversations `ids` and everything that is theirs, in session `s`."""
        erasure = Erasure(conversation_ids=list(ids))
        if not ids:
            return erasure
        in_ids = col(Message.conversation_id).in_(list(ids))
        rows = (await s.exec(select(Message.id, Message.payload).where(in_ids))).all()
        message_ids = [i for i, _ in rows]
        urls = sorted({url for _, payload in rows for url in media_urls(payload)})
        # a reply elsewhere that points into these conversations (none expected) lets go
        await s.exec(
            update(Message)
            .where(col(Message.reply_to_id).in_(message_ids), ~in_ids)
            .values(reply_to_id=None)
        )
        await s.exec(
            update(AuditLog)
            .where(col(AuditLog.conversation_id).in_(list(ids)))
            .values(conversation_id=None)
        )
        await s.exec(
            delete(WebhookDelivery).where(col(WebhookDelivery.conversation_id).in_(list(ids)))
        )
        await self._erase_channel_state(s, ids)
        await s.exec(delete(Message).where(in_ids))
        await s.exec(delete(Conversation).where(col(Conversation.id).in_(list(ids))))
        erasure.messages = len(message_ids)
        for url in urls:  # a file another message still links to stays
            folder = url[len(MEDIA_PREFIX) :].split("/", 1)[0]  # unique to the file, and ASCII
            payload = cast(Message.payload, String)
            linked = select(Message.id).where(payload.contains(folder, autoescape=True)).limit(1)
            if (await s.exec(linked)).first() is None:
                erasure.media.append(url)
        return erasure

    async def _erase_channel_state(self, s: Any, ids: Sequence[int]) -> None:
        """What channels keep per conversation: `thread:<id>` rows (an email thread's headers)
        and rows whose value names the conversation (`{"conversation": <id>}`)."""
        keys = [f"thread:{i}" for i in ids]
        named = [
            cast(ChannelState.value, String).contains(f'"conversation": {i}', autoescape=True)
            for i in ids
        ]
        query = select(ChannelState).where(or_(col(ChannelState.key).in_(keys), *named))
        wanted = set(ids)
        for row in (await s.exec(query)).all():
            if row.key in keys or row.value.get("conversation") in wanted:
                await s.delete(row)
