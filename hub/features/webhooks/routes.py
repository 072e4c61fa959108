"""Outgoing webhook subscriptions (admins only): create, change, delete, see deliveries, test.

The secret is shown once, when it is set (created, or changed by PATCH); lists show its last
four characters. A URL webhooks may not target (hub/ops/netguard.py: loopback, private, link-local,
cloud metadata, user:password@) answers 422 saying why; so does the test of one, before any
connection. A test answers the delivery: the status code of the answer, never its body."""

from __future__ import annotations

import secrets
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from pydantic import Field, field_validator

from hub.features.webhooks.sender import EVENT_PATTERN, WebhookSender
from hub.inbox.deps import AdminAgent, HubDep, actor, part
from hub.inbox.schemas import MAX_ID, Body, RowId, patch_fields
from hub.ops.netguard import Refused, parse_url
from hub.store.models import Webhook, WebhookDelivery

router = APIRouter(prefix="/api/v1", tags=["webhooks"])

MAX_EVENTS = 50
Webhooks = Annotated[WebhookSender, Depends(part("webhooks"))]


def check_url(url: str) -> str:
    """The URL's form (http(s), no user:password@, a valid host); where it points is
    `allowed()`'s, with the admin's allow-list."""
    url = url.strip()
    parse_url(url)  # Refused is a ValueError: a 422
    return url


def allowed(webhooks: WebhookSender, url: str) -> None:
    """422 (saying why) when webhooks may not target `url`; nothing is connected to."""
    try:
        webhooks.guard.check_url(url)
    except Refused as e:
        raise HTTPException(422, f"url: {e}") from None


def check_events(events: list[str] | None) -> list[str] | None:
    if events is None:
        return None
    cleaned = list(dict.fromkeys(e.strip() for e in events))
    for event in cleaned:
        if len(event) > 64 or not EVENT_PATTERN.fullmatch(event):
            raise ValueError(
                f"event {event!r}: an event type (message.created), a group (message.*) or *"
            )
    return cleaned


class WebhookBody(Body):
    url: str = Field(max_length=2048, description="http:// or https://")
    events: list[str] = Field(
        min_length=1, max_length=MAX_EVENTS, description='e.g. ["message.created"] or ["*"]'
    )
    secret: str | None = Field(
        default=None, min_length=16, max_length=255, description="generated when not given"
    )
    active: bool = True

    _url = field_validator("url")(check_url)
    _events = field_validator("events")(check_events)


class WebhookPatchBody(Body):
    url: str | None = Field(default=None, max_length=2048)
    events: list[str] | None = Field(default=None, min_length=1, max_length=MAX_EVENTS)
    secret: str | None = Field(default=None, min_length=16, max_length=255)
    active: bool | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        return None if url is None else check_url(url)

    _events = field_validator("events")(check_events)


def webhook_view(webhook: Webhook, show_secret: bool = False) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": webhook.id,
        "url": webhook.url,
        "events": webhook.events,
        "active": webhook.active,
        "secret_hint": "…" + webhook.secret[-4:],
        "created_at": webhook.created_at.isoformat(),
    }
    if show_secret:
        view["secret"] = webhook.secret
    return view


def delivery_view(delivery: WebhookDelivery) -> dict[str, Any]:
    pending = delivery.status == "pending"
    return {
        "id": delivery.id,
        "webhook_id": delivery.webhook_id,
        "event": delivery.event,
        "conversation_id": delivery.conversation_id,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at.isoformat() if pending else None,
        "last_error": delivery.last_error,
        "response_status": delivery.response_status,
        "last_attempt_at": delivery.last_attempt_at.isoformat()
        if delivery.last_attempt_at
        else None,
        "created_at": delivery.created_at.isoformat(),
        "payload": delivery.payload,
    }


async def _webhook(webhooks: WebhookSender, webhook_id: int) -> Webhook:
    webhook = await webhooks.store.get(webhook_id)
    if webhook is None:
        raise HTTPException(404, f"webhook {webhook_id} not found")
    return webhook


@router.get("/webhooks")
async def list_webhooks(webhooks: Webhooks, admin: AdminAgent) -> dict[str, Any]:
    return {"items": [webhook_view(w) for w in await webhooks.store.all()]}


@router.post("/webhooks", status_code=201)
async def create_webhook(
    body: WebhookBody, hub: HubDep, webhooks: Webhooks, admin: AdminAgent
) -> dict[str, Any]:
    """Subscribe `url` to `events`; the answer holds the secret (shown this once)."""
    allowed(webhooks, body.url)
    secret = body.secret or "whsec_" + secrets.token_urlsafe(32)
    webhook = await webhooks.store.create(body.url, body.events, secret, body.active)
    webhooks.changed()
    await hub.store.audit(
        actor(admin), "webhook.created", webhook_id=webhook.id, events=webhook.events
    )
    return webhook_view(webhook, show_secret=True)


@router.patch("/webhooks/{webhook_id}")
async def update_webhook(
    webhook_id: RowId, body: WebhookPatchBody, hub: HubDep, webhooks: Webhooks, admin: AdminAgent
) -> dict[str, Any]:
    """Change any of url, events, secret, active (false: nothing more is sent)."""
    fields = patch_fields(body)
    if "url" in fields:
        allowed(webhooks, fields["url"])
    webhook = await webhooks.store.update(webhook_id, **fields)
    if webhook is None:
        raise HTTPException(404, f"webhook {webhook_id} not found")
    webhooks.changed()
    await hub.store.audit(
        actor(admin), "webhook.updated", webhook_id=webhook_id, changed=sorted(fields)
    )
    return webhook_view(webhook, show_secret="secret" in fields)


@router.delete("/webhooks/{webhook_id}", status_code=204)
async def delete_webhook(
    webhook_id: RowId, hub: HubDep, webhooks: Webhooks, admin: AdminAgent
) -> Response:
    """Delete the subscription and its deliveries (pending ones are not sent)."""
    if not await webhooks.store.delete(webhook_id):
        raise HTTPException(404, f"webhook {webhook_id} not found")
    webhooks.changed()
    await hub.store.audit(actor(admin), "webhook.deleted", webhook_id=webhook_id)
    return Response(status_code=204)


@router.get("/webhooks/{webhook_id}/deliveries")
async def list_deliveries(
    webhook_id: RowId,
    webhooks: Webhooks,
    admin: AdminAgent,
    status: Literal["pending", "sent", "failed"] | None = None,
    before: int | None = Query(
        default=None, ge=1, le=MAX_ID, description="the last id of the previous page"
    ),
    limit: int = Query(default=50, ge=1, le=200),
) -> dict[str, Any]:
    """The webhook's deliveries, newest first, with their attempts and last error."""
    await _webhook(webhooks, webhook_id)
    rows = await webhooks.store.deliveries(webhook_id, status, before, limit)
    next_before = rows[-1].id if len(rows) == limit else None
    return {"items": [delivery_view(d) for d in rows], "next_before": next_before}


@router.post("/webhooks/{webhook_id}/test")
async def test_webhook(webhook_id: RowId, webhooks: Webhooks, admin: AdminAgent) -> dict[str, Any]:
    """Send a `webhook.test` event now; answers with the delivery after its first attempt
    (`sent`, or `pending` with the error when it will be retried, or `failed`): the answer's
    status code, not its body. 422 when webhooks may not target the URL (nothing is sent)."""
    webhook = await _webhook(webhooks, webhook_id)
    allowed(webhooks, webhook.url)
    delivery = await webhooks.send_test(webhook)
    if delivery is None:  # deleted meanwhile
        raise HTTPException(404, f"webhook {webhook_id} not found")
    return delivery_view(delivery)
