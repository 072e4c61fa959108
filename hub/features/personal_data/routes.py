"""Contacts and their personal data (admins only): find a contact, export everything stored
about them, erase them (PIPL, GDPR; see hub/features/personal_data/records.py for what an
erasure deletes)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from hub.core.views import contact_view
from hub.features.personal_data.records import PersonalData
from hub.inbox.deps import AdminAgent, HubDep, actor, part
from hub.inbox.schemas import RowId

router = APIRouter(prefix="/api/v1", tags=["contacts and personal data"])
Personal = Annotated[PersonalData, Depends(part("personal_data"))]


@router.get("/contacts")
async def find_contacts(
    personal_data: Personal,
    admin: AdminAgent,
    q: str | None = Query(default=None, max_length=255, description="id, name, channel id"),
    limit: int = Query(default=50, ge=1, le=200),
) -> dict[str, Any]:
    """Contacts whose id is `q` or whose name, id on their channel or attributes contain it,
    newest first, each with `conversations` (how many they have)."""
    found = await personal_data.store.find_contacts(q.strip() if q else None, limit)
    return {"items": [{**contact_view(c), "conversations": n} for c, n in found]}


@router.get("/contacts/{contact_id}/export")
async def export_contact(
    contact_id: RowId, request: Request, hub: HubDep, personal_data: Personal, admin: AdminAgent
) -> JSONResponse:
    """Everything stored about the contact: the contact, their conversations with every
    message (attachments with their links), the files, and the audit rows about them."""
    document = await personal_data.export(contact_id, str(request.base_url))
    if document is None:
        raise HTTPException(404, f"contact {contact_id} not found")
    await hub.store.audit(actor(admin), "contact.exported", contact_id=contact_id)
    disposition = f'attachment; filename="contact-{contact_id}.json"'
    return JSONResponse(document, headers={"content-disposition": disposition})


@router.delete("/contacts/{contact_id}")
async def erase_contact(
    contact_id: RowId, personal_data: Personal, admin: AdminAgent
) -> dict[str, Any]:
    """Erase the contact: their conversations, messages, files, webhook deliveries and
    channel state. Answers the counts; the audit log keeps a `contact.erased` row."""
    counts = await personal_data.erase(contact_id, actor(admin))
    if counts is None:
        raise HTTPException(404, f"contact {contact_id} not found")
    return {"contact_id": contact_id, "erased": counts}
