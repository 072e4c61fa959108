"""One customer across channels: contacts grouped into a person.

Contacts with the same `person_id` are one customer; the value is the smallest id of the
group's contacts (a contact in no group has `person_id` null and is a person alone). A group
forms when a contact gets a verified email or phone (the channel vouches for it: `Verified` on
the message) that another contact has, in the transaction that stores the message, and when an
admin merges two contacts by hand. Unmerging takes one contact out of its group; it keeps its
email and phone, and joins again only when another contact newly verifies one of them.
Erasing a contact mends its group (PersonalData.erase); retention may leave a group named by a
deleted contact's id, which is harmless: no new contact gets that id, as group members with
larger ids remain.

Emails compare lowercased. Phones are kept in E.164 form (`+` and 8 to 15 digits) by a simple
normalization: separators dropped, a leading `00` read as `+`; a number without its country
code (no `+` or `00`) is not used, since its country can't be known here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from hub.messages import Verified
from hub.store.cursors import encode_cursor, older_than
from hub.store.database import Database
from hub.store.models import Contact, Conversation, Message
from hub.store.visibility import Visibility

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_PHONE_SEPARATORS = re.compile(r"[\s\-.()/]")
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")


def normalize_email(value: str | None) -> str | None:
    """The address lowercased, or None when it doesn't look like one."""
    email = (value or "").strip().lower()
    return email if len(email) <= 255 and _EMAIL.match(email) else None


def normalize_phone(value: str | None) -> str | None:
    """The number in E.164 form (`+8613800138000`), or None when it has no country code or
    isn't a phone number."""
    phone = _PHONE_SEPARATORS.sub("", value or "")
    if phone.startswith("00"):
        phone = "+" + phone[2:]
    return phone if _E164.match(phone) else None


def person_of(contact: Contact) -> int:
    """The person a contact is: its group's id, or its own id when it is in no group."""
    assert contact.id is not None
    return contact.person_id if contact.person_id is not None else contact.id


def link_verified(s: Session, contact: Contact, verified: Verified) -> None:
    """Give `contact` the verified email and phone and merge its group with every contact
    that has one of them, in session `s` (the message's transaction). Nothing is read when
    the contact already has both: the message path pays only when something is new."""
    email, phone = normalize_email(verified.email), normalize_phone(verified.phone)
    new_email = email is not None and contact.email != email
    new_phone = phone is not None and contact.phone != phone
    if not (new_email or new_phone):
        return
    if new_email:
        contact.email = email
    if new_phone:
        contact.phone = phone
    s.add(contact)
    s.flush()
    same = [col(Contact.email) == email] if new_email else []
    same += [col(Contact.phone) == phone] if new_phone else []
    others = s.exec(
        select(Contact.id, Contact.person_id).where(or_(*same), col(Contact.id) != contact.id)
    ).all()
    if others:
        groups = {person_of(contact)} | {p if p is not None else i for i, p in others}
        contact.person_id = _join(s, {g for g in groups if g is not None})


def _join(s: Session, persons: set[int]) -> int:
    """Make the groups `persons` one, named by the smallest; returns it."""
    target = min(persons)
    in_group = or_(
        col(Contact.person_id).in_(persons),
        col(Contact.id).in_(persons) & col(Contact.person_id).is_(None),
    )
    s.exec(update(Contact).where(in_group).values(person_id=target))
    return target


def _regroup(s: Session, person: int) -> None:
    """After a contact left group `person` (unmerged, erased): one left is alone again;
    several are named by the smallest id among them."""
    members = list(s.exec(select(Contact.id).where(col(Contact.person_id) == person)).all())
    if not members:
        return
    target = None if len(members) == 1 else min(i for i in members if i is not None)
    if target != person:
        s.exec(update(Contact).where(col(Contact.person_id) == person).values(person_id=target))


@dataclass(frozen=True)
class HistoryItem:
    message: Message
    channel: str  # the conversation's channel


class People:
    """Reading and changing the groups: the inbox's side of one customer across channels."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def contacts(self, contact_id: int) -> list[Contact]:
        """Every contact of the person `contact_id` is, by id ([]: no such contact)."""

        def read(s: Session) -> list[Contact]:
            contact = s.get(Contact, contact_id)
            if contact is None:
                return []
            if contact.person_id is None:
                return [contact]
            query = select(Contact).where(col(Contact.person_id) == contact.person_id)
            return list(s.exec(query.order_by(col(Contact.id))).all())

        return await self.db.run(read, write=False)

    async def merge(self, contact_id: int, other_id: int) -> list[Contact] | None:
        """Make the two contacts' persons one; returns its contacts (None: a contact is
        missing)."""

        def merge(s: Session) -> list[Contact] | None:
            a, b = s.get(Contact, contact_id), s.get(Contact, other_id)
            if a is None or b is None:
                return None
            person = _join(s, {person_of(a), person_of(b)})
            s.expire_all()
            query = select(Contact).where(col(Contact.person_id) == person)
            return list(s.exec(query.order_by(col(Contact.id))).all())

        return await self.db.run(merge)

    async def unmerge(self, contact_id: int) -> int | None:
        """Take the contact out of its group; returns the group it was in (None: no such
        contact, or it was in none)."""

        def unmerge(s: Session) -> int | None:
            contact = s.get(Contact, contact_id)
            if contact is None or contact.person_id is None:
                return None
            person = contact.person_id
            contact.person_id = None
            s.add(contact)
            s.flush()
            _regroup(s, person)
            return person

        return await self.db.run(unmerge)

    async def regroup(self, person: int) -> None:
        """Mend group `person` after one of its contacts was erased."""
        await self.db.run(lambda s: _regroup(s, person))

    async def history(
        self,
        contact_id: int,
        visible_to: Visibility | None,
        cursor: str | None = None,
        limit: int = 200,
    ) -> tuple[list[HistoryItem], str | None]:
        """The newest `limit` messages of every conversation of the person `contact_id` is
        that `visible_to` allows, in time order; the cursor continues with earlier ones."""
        contacts = [c.id for c in await self.contacts(contact_id) if c.id is not None]
        query = (
            select(Message, Conversation.channel)
            .join(Conversation, col(Conversation.id) == col(Message.conversation_id))
            .where(col(Conversation.contact_id).in_(contacts))
        )
        if visible_to is not None:
            query = query.where(visible_to.clause())
        if cursor:
            query = query.where(older_than(cursor, col(Message.created_at), col(Message.id)))
        query = query.order_by(col(Message.created_at).desc(), col(Message.id).desc())
        rows = await self.db.run(lambda s: list(s.exec(query.limit(limit + 1)).all()), write=False)
        more = len(rows) > limit
        items = [HistoryItem(m, str(channel)) for m, channel in reversed(rows[:limit])]
        next_cursor = None
        if more and items and items[0].message.id is not None:
            next_cursor = encode_cursor(items[0].message.created_at, items[0].message.id)
        return items, next_cursor
