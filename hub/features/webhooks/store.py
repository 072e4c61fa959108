"""Outgoing webhook subscriptions and their deliveries: the SQL of sender.py."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, update
from sqlmodel import col, delete, select

from hub.messages import utcnow
from hub.store.database import Database
from hub.store.models import Webhook, WebhookDelivery
from hub.store.rows import update_row

PENDING, SENT, FAILED = "pending", "sent", "failed"
MAX_ERROR = 500  # characters of an attempt's error kept (the hub's words: never the answer's body)


class WebhookStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ---- subscriptions ------------------------------------------------------------------

    async def all(self, active_only: bool = False) -> list[Webhook]:
        query = select(Webhook).order_by(col(Webhook.id))
        if active_only:
            query = query.where(col(Webhook.active).is_(True))
        async with self.db.read() as s:
            return list((await s.exec(query)).all())

    async def get(self, webhook_id: int) -> Webhook | None:
        async with self.db.read() as s:
            return await s.get(Webhook, webhook_id)

    async def create(self, url: str, events: Sequence[str], secret: str, active: bool) -> Webhook:
        async with self.db.transaction() as s:
            webhook = Webhook(url=url, events=list(events), secret=secret, active=active)
            s.add(webhook)
            await s.flush()
            return webhook

    async def update(self, webhook_id: int, **fields: Any) -> Webhook | None:
        return await update_row(self.db, Webhook, webhook_id, **fields)

    async def delete(self, webhook_id: int) -> bool:
        """Delete a subscription with its deliveries (sent, failed and still pending)."""
        async with self.db.transaction() as s:
            webhook = await s.get(Webhook, webhook_id)
            if webhook is None:
                return False
            await s.exec(
                delete(WebhookDelivery).where(col(WebhookDelivery.webhook_id) == webhook_id)
            )
            await s.delete(webhook)
            return True

    # ---- deliveries ---------------------------------------------------------------------

    async def record(
        self,
        webhook_ids: Sequence[int],
        event: str,
        conversation_id: int | None,
        payload: dict[str, Any],
        due: datetime | None = None,
    ) -> list[WebhookDelivery]:
        """Store one pending delivery of `payload` per webhook, due now (or at `due`)."""
        async with self.db.transaction() as s:
            rows = [
                WebhookDelivery(
                    webhook_id=webhook_id,
                    event=event,
                    conversation_id=conversation_id,
                    payload=payload,
                    next_attempt_at=due or utcnow(),
                )
                for webhook_id in webhook_ids
            ]
            s.add_all(rows)
            await s.flush()
            return rows

    async def claim_due(self, now: datetime, lease_until: datetime, limit: int = 20) -> list[int]:
        """Take pending deliveries that are due: each one's next attempt is moved to
        `lease_until`, so that no other process (or loop) takes it meanwhile; a process that
        dies mid-attempt leaves it to be retried once the lease ends."""
        due = (
            select(WebhookDelivery.id, WebhookDelivery.next_attempt_at)
            .where(WebhookDelivery.status == PENDING, col(WebhookDelivery.next_attempt_at) <= now)
            .order_by(col(WebhookDelivery.next_attempt_at), col(WebhookDelivery.id))
            .limit(limit)
        )
        claimed: list[int] = []
        async with self.db.transaction() as s:
            for delivery_id, when in (await s.exec(due)).all():
                taken = await s.exec(
                    update(WebhookDelivery)
                    .where(
                        col(WebhookDelivery.id) == delivery_id,
                        col(WebhookDelivery.status) == PENDING,
                        col(WebhookDelivery.next_attempt_at) == when,
                    )
                    .values(next_attempt_at=lease_until)
                )
                if taken.rowcount == 1 and delivery_id is not None:
                    claimed.append(delivery_id)
        return claimed

    async def next_due(self) -> datetime | None:
        """When the earliest pending delivery is due."""
        query = select(func.min(WebhookDelivery.next_attempt_at)).where(
            WebhookDelivery.status == PENDING
        )
        async with self.db.read() as s:
            value = (await s.exec(query)).one()
        if value is None:
            return None
        if isinstance(value, str):  # SQLite's MIN() hands back the stored text
            value = datetime.fromisoformat(value)
        return value if value.tzinfo else value.replace(tzinfo=utcnow().tzinfo)

    async def get_delivery(self, delivery_id: int) -> WebhookDelivery | None:
        async with self.db.read() as s:
            return await s.get(WebhookDelivery, delivery_id)

    async def attempted(
        self,
        delivery_id: int,
        status: str,
        error: str | None,
        response_status: int | None,
        next_attempt_at: datetime | None = None,
    ) -> WebhookDelivery | None:
        """Store the outcome of one attempt: its status, the error (cut to MAX_ERROR) and the
        answer's status code; nothing else of the answer."""
        async with self.db.transaction() as s:
            delivery = await s.get(WebhookDelivery, delivery_id)
            if delivery is None:  # erased meanwhile
                return None
            now = utcnow()
            delivery.status = status
            delivery.attempts += 1
            delivery.last_error = error[:MAX_ERROR] if error else error
            delivery.response_status = response_status
            delivery.last_attempt_at = now
            delivery.next_attempt_at = next_attempt_at or now
            s.add(delivery)
            await s.flush()
            return delivery

    async def deliveries(
        self,
        webhook_id: int,
        status: str | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[WebhookDelivery]:
        """A webhook's deliveries, newest first; `before_id` continues a page."""
        query = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
        if status is not None:
            query = query.where(WebhookDelivery.status == status)
        if before_id is not None:
            query = query.where(col(WebhookDelivery.id) < before_id)
        query = query.order_by(col(WebhookDelivery.id).desc()).limit(limit)
        async with self.db.read() as s:
            return list((await s.exec(query)).all())
