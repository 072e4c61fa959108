"""What admins manage for security: API tokens for integrations, and the audit log."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import Field

from hub.core.views import audit_view
from hub.inbox.deps import AdminAgent, HubDep, actor
from hub.inbox.schemas import MAX_ID, Body, RowId
from hub.store import ApiToken

router = APIRouter(prefix="/api/v1", tags=["security"])


class TokenBody(Body):
    name: str = Field(min_length=1, max_length=255, description="what the integration is")
    role: Literal["admin", "agent", "designer"] = "agent"


def token_view(token: ApiToken) -> dict[str, Any]:
    def when(value: Any) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": token.id,
        "name": token.name,
        "role": token.role,
        "created_by": token.created_by,
        "created_at": when(token.created_at),
        "last_used_at": when(token.last_used_at),
        "revoked_at": when(token.revoked_at),
    }


@router.post("/tokens", status_code=201)
async def create_token(body: TokenBody, hub: HubDep, admin: AdminAgent) -> dict[str, Any]:
    """A new API token; `token` (`kefu_...`) is in this answer only: only its hash is kept.
    It is a bearer token like a login's, acting with `role` (audit actor `token:<id>`)."""
    token, secret = await hub.store.api_tokens.create(body.name, body.role, actor(admin))
    await hub.store.audit(actor(admin), "token.created", token_id=token.id, role=token.role)
    return {**token_view(token), "token": secret}


@router.get("/tokens")
async def list_tokens(hub: HubDep, admin: AdminAgent) -> dict[str, Any]:
    """Every API token, revoked ones too (never the token itself)."""
    return {"items": [token_view(t) for t in await hub.store.api_tokens.every()]}


@router.delete("/tokens/{token_id}", status_code=204)
async def revoke_token(token_id: RowId, hub: HubDep, admin: AdminAgent) -> Response:
    """Revoke the token: it stops working at once (it stays listed, with `revoked_at`)."""
    token = await hub.store.api_tokens.revoke(token_id)
    if token is None:
        raise HTTPException(404, f"API token {token_id} not found")
    await hub.store.audit(actor(admin), "token.revoked", token_id=token_id)
    return Response(status_code=204)


@router.get("/audit")
async def audit_log(
    hub: HubDep,
    admin: AdminAgent,
    actor: Annotated[
        str | None, Query(max_length=64, description="`agent:<id>`, `token:<id>`, `bot`, ...")
    ] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    conversation_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    cursor: Annotated[str | None, Query(max_length=10, pattern=r"^\d+$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Who did what, newest first: every status change, assignment, reply and admin change."""
    before = min(int(cursor), MAX_ID + 1) if cursor else None
    rows = await hub.store.audit_log(actor, action, conversation_id, before, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [audit_view(r) for r in rows],
        "next_cursor": str(rows[-1].id) if more and rows else None,
    }
