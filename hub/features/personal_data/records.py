"""Personal data (PIPL, GDPR): a contact's data exported or erased on request, and resolved
conversations deleted once `retention_days` have passed.

An erasure deletes the contact, their conversations, messages, the files they sent or were sent
(on disk, so their /media/ links answer 404), their webhook deliveries and the channel state
kept for their conversations, then writes one audit row (`contact.erased`: the contact's id
and counts, nothing personal). Audit rows about the erased conversations stay, with
`conversation_id` set to null: they record who did what (status, assignment, labels), not what
the customer said."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from hub.core.conversations import Conversations, Feature
from hub.core.media import MediaStore
from hub.core.views import audit_view, contact_view, message_view
from hub.features.personal_data.store import Erasure, PersonalDataStore, media_urls
from hub.messages import Event, utcnow
from hub.ops.tasks import cancel
from hub.ports import Bus
from hub.store import Store
from hub.store.models import Conversation

log = logging.getLogger(__name__)


def _when(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def conversation_export(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "channel": conversation.channel,
        "status": str(conversation.status),
        "assignee_id": conversation.assignee_id,
        "team": conversation.team,
        "labels": conversation.labels,
        "priority": conversation.priority,
        "language": conversation.language,
        "flow_state": conversation.flow_state,  # the slots the bot collected
        "handoff": conversation.handoff,
        "created_at": _when(conversation.created_at),
        "first_response_at": _when(conversation.first_response_at),
        "resolved_at": _when(conversation.resolved_at),
        "last_message_at": _when(conversation.last_message_at),
    }


class PersonalData(Feature):
    """Export and erasure of a contact's data; as a feature, the retention period applied
    while the hub runs (`retention_days`; None: kept for ever)."""

    RETENTION_EVERY = 3600.0  # seconds between two retention passes

    def __init__(
        self,
        store: PersonalDataStore,
        audit: Store,
        media: MediaStore,
        bus: Bus,
        retention_days: int | None = None,
    ) -> None:
        self.store, self.audit, self.media, self.bus = store, audit, media, bus
        self.retention_days = retention_days
        self._task: asyncio.Task[None] | None = None

    async def start(self, conversations: Conversations) -> None:
        if self.retention_days is not None:
            self._task = asyncio.create_task(self.keep_for(self.retention_days))

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None

    async def export(self, contact_id: int, base_url: str = "") -> dict[str, Any] | None:
        """Everything stored about a contact as one JSON document (None: no such contact).
        `base_url` makes the files' links absolute."""
        records = await self.store.records(contact_id)
        if records is None:
            return None
        by_conversation: dict[int, list[dict[str, Any]]] = {}
        files: list[dict[str, Any]] = []
        for message in records.messages:
            by_conversation.setdefault(message.conversation_id, []).append(message_view(message))
            for url in sorted(set(media_urls(message.payload))):
                path = self.media.path(url.removeprefix("/media/"))
                files.append(
                    {
                        "message_id": message.id,
                        "url": base_url.rstrip("/") + url,
                        "size": path.stat().st_size if path is not None else None,
                    }
                )
        conversations = [
            {**conversation_export(c), "messages": by_conversation.get(c.id or 0, [])}
            for c in records.conversations
        ]
        return {
            "exported_at": utcnow().isoformat(),
            "contact": contact_view(records.contact),
            "conversations": conversations,
            "files": files,
            "audit": [audit_view(row) for row in records.audit],
        }

    async def erase(self, contact_id: int, actor: str) -> dict[str, int] | None:
        """Erase a contact and all that is theirs; returns the counts (None: no such contact).
        The other contacts of the same customer stay, still one customer."""
        contact = await self.audit.get_contact(contact_id)
        erasure = await self.store.erase_contact(contact_id)
        if erasure is None:
            return None
        if contact is not None and contact.person_id is not None:
            await self.audit.people.regroup(contact.person_id)
        counts = await self._finish(erasure, "erased")
        await self.audit.audit(actor, "contact.erased", contact_id=contact_id, **counts)
        return counts

    async def apply_retention(self, days: int) -> dict[str, int]:
        """Delete conversations resolved more than `days` days ago (and contacts left with
        none); audits the counts when there were any."""
        cutoff = utcnow() - timedelta(days=days)
        total = {"conversations": 0, "messages": 0, "contacts": 0, "files": 0, "nlu_examples": 0}
        while True:
            erasure = await self.store.erase_resolved_before(cutoff)
            if not erasure.conversation_ids:
                break
            for key, n in (await self._finish(erasure, "retention")).items():
                total[key] += n
        if total["conversations"]:
            log.info("retention: deleted %s", total)
            await self.audit.audit("system", "retention.applied", retention_days=days, **total)
        return total

    async def keep_for(self, days: int) -> None:
        """Apply the retention period now and every RETENTION_EVERY seconds."""
        while True:
            try:
                await self.apply_retention(days)
            except Exception:  # the database is away: next time
                log.exception("retention: the pass failed")
            await asyncio.sleep(self.RETENTION_EVERY)

    async def _finish(self, erasure: Erasure, reason: str) -> dict[str, int]:
        """After the rows: the files, and the inbox told the conversations are gone."""
        removed = await asyncio.to_thread(lambda: [self.media.remove(u) for u in erasure.media])
        counts = {**erasure.counts(), "files": sum(removed)}
        for conversation_id in erasure.conversation_ids:
            await self.bus.publish(
                Event(
                    type="conversation.deleted",
                    conversation_id=conversation_id,
                    data={"reason": reason},
                )
            )
        return counts
