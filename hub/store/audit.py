"""The audit log: who did what, to which conversation, with what data."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from hub.store.models import AuditLog
from hub.store.rows import Aggregate


class AuditStore(Aggregate):
    async def audit(
        self, actor: str, action: str, conversation_id: int | None = None, **data: Any
    ) -> None:
        row = AuditLog(actor=actor, action=action, conversation_id=conversation_id, data=data)
        await self.db.run(lambda s: s.add(row))

    async def audit_log(
        self,
        actor: str | None = None,
        action: str | None = None,
        conversation_id: int | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[AuditLog]:
        """Audit rows, newest first, those matching every given filter (ids below `before_id`)."""
        query = select(AuditLog)
        if actor is not None:
            query = query.where(AuditLog.actor == actor)
        if action is not None:
            query = query.where(AuditLog.action == action)
        if conversation_id is not None:
            query = query.where(AuditLog.conversation_id == conversation_id)
        if before_id is not None:
            query = query.where(col(AuditLog.id) < before_id)
        async with self.db.read() as s:
            return list((await s.exec(query.order_by(col(AuditLog.id).desc()).limit(limit))).all())
