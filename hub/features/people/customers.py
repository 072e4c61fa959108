"""One customer across channels, as the inbox shows it beside a conversation: the person its
contact is, and their contacts on other channels (hub/store/persons.py keeps them)."""

from __future__ import annotations

from typing import Any

from hub.core.conversations import Feature
from hub.store import Conversation, Store
from hub.store.persons import person_of


def person_contact(contact: Any) -> dict[str, Any]:
    return {
        "id": contact.id,
        "channel": contact.channel,
        "external_id": contact.external_id,
        "name": contact.name,
    }


class Customers(Feature):
    """Adds `person` to the inbox's view of a conversation."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def person(self, contact_id: int) -> dict[str, Any]:
        """The customer a contact is: `id` (the person) and their `contacts` on other channels
        (or other ids), with the channel, the id there and the name."""
        contacts = await self.store.people.contacts(contact_id)
        person = person_of(contacts[0]) if contacts else contact_id
        others = [person_contact(c) for c in contacts if c.id != contact_id]
        return {"id": person, "contacts": others}

    async def details(self, conversation: Conversation) -> dict[str, Any]:
        # the customer's contacts on other channels (GET .../history reads them all)
        return {"person": await self.person(conversation.contact_id)}
