"""What assignment (hub/features/routing/assignment.py) reads: the queue of pending conversations
and how long
they waited, each agent's open conversations, and a lock one hub process holds at a time."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator
from datetime import datetime

from sqlalchemy import func, text
from sqlmodel import col, select

from hub.messages import Status
from hub.store.database import is_sqlite
from hub.store.models import AuditLog, Conversation
from hub.store.rows import Aggregate


class AssignmentStore(Aggregate):
    @contextlib.asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[None]:
        """Held by one hub process at a time (a PostgreSQL advisory lock, let go with the
        transaction, so also when the process dies). SQLite has one hub process: no-op."""
        if is_sqlite(self.db.url):
            yield
            return
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        async with self.db.engine.connect() as connection:
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
            yield  # the connection's transaction ends (rolled back) on exit: the lock goes

    async def pending_since(self) -> list[tuple[Conversation, datetime]]:
        """Pending conversations with when they started waiting: their last handoff from the
        bot (a conversation an agent gave back keeps its place), else their last move to
        pending, else their creation."""
        async with self.db.read() as s:
            waiting = select(Conversation).where(Conversation.status == Status.PENDING)
            pending = list((await s.exec(waiting)).all())
            ids = [c.id for c in pending if c.id is not None]
            rows = (
                await s.exec(
                    select(AuditLog)
                    .where(AuditLog.action == "status", col(AuditLog.conversation_id).in_(ids))
                    .order_by(col(AuditLog.id))
                )
            ).all()
        handed: dict[int, datetime] = {}
        moved: dict[int, datetime] = {}
        for row in rows:
            if row.conversation_id is None or row.data.get("target") != Status.PENDING:
                continue
            moved[row.conversation_id] = row.created_at
            if row.data.get("source") == Status.BOT:
                handed[row.conversation_id] = row.created_at
        return [(c, handed.get(c.id or 0) or moved.get(c.id or 0) or c.created_at) for c in pending]

    async def recent_waits(self, since: datetime) -> list[tuple[str | None, float]]:
        """(team, seconds) of each wait since `since` from pending to open (taken by an
        agent or assigned), oldest first."""
        query = (
            select(AuditLog, Conversation.team)
            .join(Conversation, col(Conversation.id) == col(AuditLog.conversation_id))
            .where(AuditLog.action == "status", col(AuditLog.created_at) >= since)
            .order_by(col(AuditLog.id))
        )
        async with self.db.read() as s:
            rows = (await s.exec(query)).all()
        waiting: dict[int, datetime] = {}
        waits: list[tuple[str | None, float]] = []
        for row, team in rows:
            if row.conversation_id is None:
                continue
            if row.data.get("target") == Status.PENDING:
                waiting[row.conversation_id] = row.created_at
            elif row.data.get("source") == Status.PENDING and row.conversation_id in waiting:
                start = waiting.pop(row.conversation_id)
                if row.data.get("target") == Status.OPEN:
                    waits.append((team, (row.created_at - start).total_seconds()))
        return waits

    async def open_of(self, agent_id: int) -> list[Conversation]:
        """The conversations `agent_id` has open."""
        query = select(Conversation).where(
            Conversation.status == Status.OPEN, Conversation.assignee_id == agent_id
        )
        async with self.db.read() as s:
            return list((await s.exec(query)).all())

    async def open_counts(self) -> dict[int, int]:
        """Open conversations by assigned agent."""
        query = (
            select(Conversation.assignee_id, func.count(col(Conversation.id)))
            .where(Conversation.status == Status.OPEN, col(Conversation.assignee_id).is_not(None))
            .group_by(col(Conversation.assignee_id))
        )
        async with self.db.read() as s:
            return {a: int(n) for a, n in (await s.exec(query)).all() if a is not None}
