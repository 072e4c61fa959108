"""First-response SLA warnings for agents (hub.features.hours.hours computes the deadlines).

Every `every` seconds the watch looks at the conversations waiting for a human (`pending` or
`open`) that no agent has answered yet. Their clock starts at the latest handoff (the last
status change to `pending`; else the first to `open`; else the conversation's start) and runs
only in the team's business hours. Past `warn_at` of the target it publishes
`conversation.sla_warning`, past the target `conversation.sla_breached`: each once per handoff,
recorded in the audit log (actions `sla.warning`, `sla.breached`); with Redis, a key taken with
SET NX makes it once across processes too."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlmodel import col, select

from hub.core.conversations import Conversations, Feature
from hub.features.hours.hours import Hours
from hub.messages import Event, Status
from hub.ops.tasks import cancel
from hub.ports import Bus, Unavailable
from hub.store import Store
from hub.store.models import AuditLog, Conversation

log = logging.getLogger(__name__)

WARNING, BREACHED = "warning", "breached"
KEEP_KEYS = 90 * 24 * 3600  # seconds a Redis "sent" key lives


class SlaWatch(Feature):
    """Checks the first-response SLAs while the hub runs; the inbox shows each waiting
    conversation's deadline (`sla_due_at`)."""

    def __init__(
        self, hours: Hours, store: Store, bus: Bus, redis: Any = None, prefix: str = "kefu:"
    ) -> None:
        self.hours, self.store, self.bus = hours, store, bus
        self.redis, self.prefix = redis, prefix
        self._checking = asyncio.Lock()  # the loop and a caller never check at once
        self._task: asyncio.Task[None] | None = None

    async def start(self, conversations: Conversations) -> None:
        self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None

    async def details(self, conversation: Conversation) -> dict[str, Any]:
        """`sla_due_at`: when the first response is due (hub.features.hours.hours), or None."""
        due = await self.due_at(conversation)
        return {"sla_due_at": due.isoformat() if due else None}

    async def run(self, every: float = 30.0) -> None:
        while True:
            with contextlib.suppress(Unavailable):  # the database is away: the next round
                await self.check()
            await asyncio.sleep(every)

    async def waiting(self) -> list[tuple[Conversation, datetime]]:
        """Conversations waiting for a first human answer, with when their clock started."""
        async with self.store.db.read() as s:
            query = select(Conversation).where(
                col(Conversation.status).in_([Status.PENDING, Status.OPEN]),
                col(Conversation.first_response_at).is_(None),
            )
            conversations = list((await s.exec(query)).all())
            if not conversations:
                return []
            ids = [c.id for c in conversations]
            rows = await s.exec(
                select(AuditLog)
                .where(col(AuditLog.conversation_id).in_(ids), AuditLog.action == "status")
                .order_by(col(AuditLog.id))
            )
            moves: dict[int, list[AuditLog]] = defaultdict(list)
            for row in rows.all():
                assert row.conversation_id is not None
                moves[row.conversation_id].append(row)
        return [(c, started(c, moves[c.id or 0])) for c in conversations]

    async def due_at(self, conversation: Conversation) -> datetime | None:
        """When the conversation's first response is due; None without a running SLA."""
        if conversation.status not in (Status.PENDING, Status.OPEN):
            return None
        if conversation.first_response_at is not None:
            return None
        rows = await self.store.audit_log(action="status", conversation_id=conversation.id)
        due = self.hours.sla(conversation.team, started(conversation, list(reversed(rows))))
        return due[1] if due else None

    async def check(self) -> list[Event]:
        """Publish the warnings and breaches due now and not sent before; returns them."""
        async with self._checking:
            return await self._check()

    async def _check(self) -> list[Event]:
        if not self.hours.has_sla:
            return []  # nothing to watch: no query
        now = self.hours.clock()
        due: list[tuple[Conversation, datetime, str, datetime]] = []
        for conversation, start in await self.waiting():
            sla = self.hours.sla(conversation.team, start)
            if sla is None or now < sla[0]:
                continue
            due.append((conversation, start, BREACHED if now >= sla[1] else WARNING, sla[1]))
        if not due:
            return []
        sent = await self.sent({c.id for c, *_ in due if c.id is not None})
        published: list[Event] = []
        for conversation, start, kind, deadline in due:
            assert conversation.id is not None
            if (conversation.id, kind, start.isoformat()) in sent or not await self.claim(
                conversation.id, kind, start
            ):
                continue
            data = {
                "team": conversation.team,
                "started_at": start.isoformat(),
                "due_at": deadline.isoformat(),
                "status": str(conversation.status),
                "assignee_id": conversation.assignee_id,
            }
            await self.store.audit("system", f"sla.{kind}", conversation.id, **data)
            kind_of = f"conversation.sla_{kind}"
            event = Event(type=kind_of, conversation_id=conversation.id, data=data)
            await self.bus.publish(event)
            published.append(event)
            log.info("conversation %s: first response SLA %s", conversation.id, kind)
        return published

    async def sent(self, ids: set[int]) -> set[tuple[int, str, str]]:
        """(conversation, kind, started_at) of the SLA events already recorded."""
        async with self.store.db.read() as s:
            rows = await s.exec(
                select(AuditLog).where(
                    col(AuditLog.conversation_id).in_(ids),
                    col(AuditLog.action).in_([f"sla.{WARNING}", f"sla.{BREACHED}"]),
                )
            )
            return {
                (r.conversation_id or 0, r.action.removeprefix("sla."), str(r.data["started_at"]))
                for r in rows.all()
                if "started_at" in r.data
            }

    async def claim(self, conversation_id: int, kind: str, start: datetime) -> bool:
        """True for the one process that may send this event (always, without Redis)."""
        if self.redis is None:
            return True
        key = f"{self.prefix}sla:{conversation_id}:{kind}:{int(start.timestamp())}"
        return bool(await self.redis.set(key, "1", nx=True, ex=KEEP_KEYS))


def started(conversation: Conversation, moves: list[AuditLog]) -> datetime:
    """When the wait for a human began: the last handoff to `pending`, else the first move to
    `open`, else the conversation's start. `moves`: its status rows, oldest first."""
    pending = [m for m in moves if m.data.get("target") == Status.PENDING.value]
    if pending:
        return pending[-1].created_at
    opened = [m for m in moves if m.data.get("target") == Status.OPEN.value]
    return opened[0].created_at if opened else conversation.created_at
