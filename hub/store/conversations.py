"""Conversations: reading them one by one and as filtered lists (the inbox), and changing
them; a status change can be made only from the status it was read in."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, true
from sqlmodel import Session, col, select

from hub.messages import Status
from hub.store.cursors import encode_cursor, older_than
from hub.store.database import is_sqlite
from hub.store.models import Contact, Conversation, Message
from hub.store.rows import Aggregate
from hub.store.visibility import ConversationFilter, ConversationRow, Visibility


class StatusChanged(ValueError):
    """The conversation's status is no longer the one a change was made from; the message is
    the status it has now."""


class ConversationStore(Aggregate):
    async def contact_conversation(self, channel: str, external_id: str) -> Conversation | None:
        """The contact's current (latest) conversation on a channel, if any."""
        query = (
            select(Conversation)
            .join(Contact, col(Contact.id) == col(Conversation.contact_id))
            .where(Contact.channel == channel, Contact.external_id == external_id)
            .order_by(col(Conversation.id).desc())
        )
        return await self.db.run(lambda s: s.exec(query).first(), write=False)

    async def get_conversation(self, conversation_id: int) -> Conversation | None:
        return await self.db.run(lambda s: s.get(Conversation, conversation_id), write=False)

    async def update_conversation(
        self, conversation_id: int, *, expect_status: str | None = None, **fields: Any
    ) -> Conversation:
        """Set `fields`; with `expect_status`, only if the stored status is still that one
        (else StatusChanged): a status change read in one process or request and written
        later is not applied over another that came first."""

        def change(s: Session) -> Conversation:
            # FOR UPDATE: on PostgreSQL a second writer waits, then reads the first one's status
            locked = expect_status is not None
            conversation = s.get(Conversation, conversation_id, with_for_update=locked)
            if conversation is None:
                raise LookupError(f"conversation {conversation_id} not found")
            if expect_status is not None and conversation.status != expect_status:
                raise StatusChanged(str(conversation.status))
            for name, value in fields.items():
                setattr(conversation, name, value)
            s.add(conversation)
            return conversation

        return await self.db.run(change)

    async def list_conversations(
        self, where: ConversationFilter, cursor: str | None = None, limit: int = 25
    ) -> tuple[list[ConversationRow], str | None]:
        """Newest activity first; `cursor` continues after the last row of the previous page."""
        query = self._filtered(
            select(Conversation, Contact).join(
                Contact, col(Contact.id) == col(Conversation.contact_id)
            ),
            where,
        )
        if cursor:
            query = query.where(
                older_than(cursor, col(Conversation.last_message_at), col(Conversation.id))
            )
        query = query.order_by(
            col(Conversation.last_message_at).desc(), col(Conversation.id).desc()
        ).limit(limit + 1)
        async with self.db.read() as s:
            pairs = list((await s.exec(query)).all())
            more = len(pairs) > limit
            pairs = pairs[:limit]
            latest = await self._last_messages(s, [c.id for c, _ in pairs if c.id is not None])
        rows = [ConversationRow(c, contact, latest.get(c.id or 0)) for c, contact in pairs]
        next_cursor = None
        if more and pairs:
            last = pairs[-1][0]
            assert last.id is not None
            next_cursor = encode_cursor(last.last_message_at, last.id)
        return rows, next_cursor

    def _labels(self) -> Any:
        """The elements of `conversation.labels` as a table with a `value` column."""
        if is_sqlite(self.db.url):
            return func.json_each(Conversation.labels).table_valued("value")
        return func.json_array_elements_text(Conversation.labels).table_valued("value")

    def _filtered(self, query: Any, where: ConversationFilter) -> Any:
        """`query` (over Conversation joined with Contact) narrowed by `where`."""
        if where.visible_to is not None:
            query = query.where(where.visible_to.clause())
        if where.status:
            query = query.where(col(Conversation.status).in_(list(where.status)))
        if where.assignee_id is not None:
            query = query.where(Conversation.assignee_id == where.assignee_id)
        if where.unassigned:
            query = query.where(col(Conversation.assignee_id).is_(None))
        if where.team:
            query = query.where(Conversation.team == where.team)
        if where.channel:
            query = query.where(Conversation.channel == where.channel)
        if where.label:
            labels = self._labels()
            query = query.where(
                select(1).select_from(labels).where(labels.c.value == where.label).exists()
            )
        if where.q:
            like = f"%{where.q}%"
            has_text = (
                select(Message.id)
                .where(
                    Message.conversation_id == Conversation.id,
                    col(Message.text).ilike(like),
                )
                .exists()
            )
            query = query.where(
                or_(col(Contact.name).ilike(like), col(Contact.external_id).ilike(like), has_text)
            )
        return query

    async def conversation_row(self, conversation_id: int) -> ConversationRow | None:
        # one statement for both rows: a conversation being deleted (retention, erasure) is
        # either read whole or not at all
        query = (
            select(Conversation, Contact)
            .join(Contact, col(Contact.id) == col(Conversation.contact_id))
            .where(col(Conversation.id) == conversation_id)
        )
        async with self.db.read() as s:
            pair = (await s.exec(query)).first()
            if pair is None:
                return None
            latest = await self._last_messages(s, [conversation_id])
            return ConversationRow(pair[0], pair[1], latest.get(conversation_id))

    async def _last_messages(self, s: Any, ids: list[int]) -> dict[int, Message]:
        if not ids:
            return {}
        newest = (
            select(func.max(Message.id))
            .where(col(Message.conversation_id).in_(ids), col(Message.private).is_(False))
            .group_by(col(Message.conversation_id))
        )
        rows = (await s.exec(select(Message).where(col(Message.id).in_(newest)))).all()
        return {m.conversation_id: m for m in rows}

    async def status_counts(
        self, where: ConversationFilter, agent_id: int | None = None
    ) -> tuple[dict[str, int], int]:
        """Conversations matching `where` by status, and how many of the open or snoozed ones
        `agent_id` has."""
        base = select(Conversation.status, func.count(col(Conversation.id))).join(
            Contact, col(Contact.id) == col(Conversation.contact_id)
        )
        by_status = self._filtered(base, where).group_by(col(Conversation.status))
        mine = self._filtered(
            select(func.count(col(Conversation.id))).join(
                Contact, col(Contact.id) == col(Conversation.contact_id)
            ),
            where,
        ).where(
            col(Conversation.status).in_([Status.OPEN, Status.SNOOZED]),
            Conversation.assignee_id == agent_id,
        )
        async with self.db.read() as s:
            counts = {str(status): int(n) for status, n in (await s.exec(by_status)).all()}
            return counts, int((await s.exec(mine)).one())

    async def labels_in_use(self, visible_to: Visibility | None = None) -> list[str]:
        """The labels of the conversations `visible_to` allows (None: of every one)."""
        labels = self._labels()
        query = select(labels.c.value).distinct().select_from(Conversation).join(labels, true())
        if visible_to is not None:
            query = query.where(visible_to.clause())
        async with self.db.read() as s:  # sorted here: the same order whatever the collation
            return sorted(str(v) for v in (await s.exec(query)).all())

    async def team_counts(self) -> dict[str, dict[str, int]]:
        """Conversations by team and status (those with a team)."""
        query = (
            select(Conversation.team, Conversation.status, func.count(col(Conversation.id)))
            .where(col(Conversation.team).is_not(None))
            .group_by(col(Conversation.team), col(Conversation.status))
        )
        counts: dict[str, dict[str, int]] = {}
        async with self.db.read() as s:
            for team, status, n in (await s.exec(query)).all():
                counts.setdefault(str(team), {})[str(status)] = int(n)
        return counts

    async def due_snoozes(self, now: datetime) -> list[Conversation]:
        async with self.db.read() as s:
            query = select(Conversation).where(
                Conversation.status == Status.SNOOZED,
                col(Conversation.snooze_until).is_not(None),
                col(Conversation.snooze_until) <= now,
            )
            return list((await s.exec(query)).all())
