"""Canned responses: short texts agents insert by their short code. Any agent lists them;
admins write them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Response
from pydantic import Field

from hub.inbox.deps import AdminAgent, CurrentAgent, HubDep, actor
from hub.inbox.schemas import Body, RowId, patch_fields
from hub.store import CannedResponse, Duplicate

router = APIRouter(prefix="/api/v1", tags=["canned responses"])

SHORT_CODE = r"^\S{1,64}$"


class CannedBody(Body):
    short_code: str = Field(pattern=SHORT_CODE, description="1 to 64 characters, no spaces")
    text: str = Field(min_length=1, max_length=5000)


class CannedPatchBody(Body):
    short_code: str | None = Field(default=None, pattern=SHORT_CODE)
    text: str | None = Field(default=None, min_length=1, max_length=5000)


def canned_view(canned: CannedResponse) -> dict[str, Any]:
    return {"id": canned.id, "short_code": canned.short_code, "text": canned.text}


@router.get("/canned")
async def list_canned(hub: HubDep, agent: CurrentAgent) -> dict[str, Any]:
    responses = sorted(await hub.store.canned_responses(), key=lambda c: c.short_code)
    return {"items": [canned_view(c) for c in responses]}


@router.post("/canned", status_code=201)
async def create_canned(body: CannedBody, hub: HubDep, admin: AdminAgent) -> dict[str, Any]:
    try:
        canned = await hub.store.create_canned(body.short_code, body.text)
    except Duplicate as e:
        raise HTTPException(409, f"short_code {body.short_code!r} is taken") from e
    await hub.store.audit(actor(admin), "canned.created", canned_id=canned.id)
    return canned_view(canned)


@router.patch("/canned/{canned_id}")
async def update_canned(
    canned_id: RowId, body: CannedPatchBody, hub: HubDep, admin: AdminAgent
) -> dict[str, Any]:
    fields = patch_fields(body)
    try:
        canned = await hub.store.update_canned(canned_id, **fields)
    except Duplicate as e:
        raise HTTPException(409, f"short_code {body.short_code!r} is taken") from e
    if canned is None:
        raise HTTPException(404, f"canned response {canned_id} not found")
    await hub.store.audit(
        actor(admin), "canned.updated", canned_id=canned_id, changed=sorted(fields)
    )
    return canned_view(canned)


@router.delete("/canned/{canned_id}", status_code=204)
async def delete_canned(canned_id: RowId, hub: HubDep, admin: AdminAgent) -> Response:
    if not await hub.store.delete_canned(canned_id):
        raise HTTPException(404, f"canned response {canned_id} not found")
    await hub.store.audit(actor(admin), "canned.deleted", canned_id=canned_id)
    return Response(status_code=204)
