"""Contacts: the customers as each channel knows them (one customer across channels:
hub/store/persons.py)."""

from __future__ import annotations

from sqlmodel import Session, select

from hub.messages import Inbound
from hub.store.models import Contact
from hub.store.persons import link_verified
from hub.store.rows import Aggregate


def contact_of(s: Session, inbound: Inbound) -> Contact:
    """The contact who sent `inbound`, created or renamed as it says, in session `s` (the
    message's transaction); a verified email or phone links it with the person's other
    contacts."""
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


class ContactStore(Aggregate):
    async def get_contact(self, contact_id: int) -> Contact | None:
        return await self.db.run(lambda s: s.get(Contact, contact_id), write=False)
