"""One customer across channels: admins merge and unmerge contacts; anyone reading a
conversation reads its customer's history on every channel (hub/store/persons.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import ConfigDict, Field

from hub.core.views import message_view
from hub.features.people.customers import person_contact
from hub.inbox.deps import (
    AdminAgent,
    CurrentAgent,
    HubDep,
    actor,
    visibility,
    visible_conversation,
)
from hub.inbox.schemas import MAX_ID, Body, RowId
from hub.store.cursors import CursorError
from hub.store.persons import person_of

router = APIRouter(prefix="/api/v1", tags=["contacts and personal data"])


class MergeBody(Body):
    model_config = ConfigDict(populate_by_name=True)

    other: int = Field(alias="with", ge=1, le=MAX_ID, description="the other contact's id")


@router.post("/contacts/{contact_id}/merge")
async def merge_contacts(
    contact_id: RowId, body: MergeBody, hub: HubDep, admin: AdminAgent
) -> dict[str, Any]:
    """Make the two contacts (and everyone already merged with either) one customer."""
    if body.other == contact_id:
        raise HTTPException(422, "with: a contact can't be merged with itself")
    contacts = await hub.store.people.merge(contact_id, body.other)
    if contacts is None:
        raise HTTPException(404, f"contact {contact_id} or {body.other} not found")
    person = person_of(contacts[0])
    data = {"contact_id": contact_id, "other": body.other, "person": person}
    await hub.store.audit(actor(admin), "contact.merged", **data)
    return {"person_id": person, "contacts": [person_contact(c) for c in contacts]}


@router.post("/contacts/{contact_id}/unmerge")
async def unmerge_contact(contact_id: RowId, hub: HubDep, admin: AdminAgent) -> dict[str, Any]:
    """Take the contact out of the customer it was merged into (the others stay together)."""
    people = hub.store.people
    left = await people.unmerge(contact_id)
    if left is None:
        if not await people.contacts(contact_id):
            raise HTTPException(404, f"contact {contact_id} not found")
        raise HTTPException(409, f"contact {contact_id} is not merged with another contact")
    await hub.store.audit(actor(admin), "contact.unmerged", contact_id=contact_id, person=left)
    return {"contact_id": contact_id, "person_id": None, "left": left}


@router.get("/conversations/{conversation_id}/history")
async def person_history(
    conversation_id: RowId,
    hub: HubDep,
    agent: CurrentAgent,
    cursor: Annotated[str | None, Query(max_length=200, description="earlier messages")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> dict[str, Any]:
    """The messages of every conversation of this conversation's customer, on every channel
    (only the conversations the caller may see), in time order, each with its conversation
    id and channel: the newest `limit`, and `next_cursor` for the ones before them."""
    conversation = await visible_conversation(hub, agent, conversation_id)
    try:
        items, next_cursor = await hub.store.people.history(
            conversation.contact_id, visibility(agent), cursor, limit
        )
    except CursorError as e:
        raise HTTPException(422, f"cursor: {e}") from e
    return {
        "items": [{**message_view(i.message), "channel": i.channel} for i in items],
        "next_cursor": next_cursor,
    }
