"""Channels' own state between messages (a cursor, a token, a thread map), by channel and key."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from hub.messages import utcnow
from hub.store.models import ChannelState
from hub.store.rows import Aggregate


class ChannelStateStore(Aggregate):
    async def load_state(self, channel: str, key: str) -> dict[str, Any] | None:
        def load(s: Session) -> dict[str, Any] | None:
            row = s.get(ChannelState, (channel, key))
            return dict(row.value) if row is not None else None

        return await self.db.run(load, write=False)

    async def save_state(self, channel: str, key: str, value: dict[str, Any]) -> None:

        def save(s: Session) -> None:
            row = s.get(ChannelState, (channel, key))
            if row is None:
                row = ChannelState(channel=channel, key=key, value=value)
            else:
                row.value, row.updated_at = value, utcnow()
            s.add(row)

        for attempt in (1, 2):  # another process may insert the same key first: then update
            try:
                return await self.db.run(save)
            except IntegrityError:
                if attempt == 2:
                    raise
