"""Canned responses: the agents' saved replies, by short code."""

from __future__ import annotations

from typing import Any

from sqlmodel import col, select

from hub.store.models import CannedResponse
from hub.store.rows import Aggregate, delete_row, get_row, unique, update_row


class CannedStore(Aggregate):
    async def canned_responses(self) -> list[CannedResponse]:
        async with self.db.read() as s:
            return list(
                (await s.exec(select(CannedResponse).order_by(col(CannedResponse.id)))).all()
            )

    async def get_canned(self, canned_id: int) -> CannedResponse | None:
        return await get_row(self.db, CannedResponse, canned_id)

    async def create_canned(self, short_code: str, text: str) -> CannedResponse:
        """Raises hub.store.Duplicate when the short code is taken."""
        async with unique(self.db) as s:
            canned = CannedResponse(short_code=short_code, text=text)
            s.add(canned)
            await s.flush()
            return canned

    async def update_canned(self, canned_id: int, **fields: Any) -> CannedResponse | None:
        """None when there is no such response; Duplicate when the short code is taken."""
        return await update_row(self.db, CannedResponse, canned_id, **fields)

    async def delete_canned(self, canned_id: int) -> bool:
        return await delete_row(self.db, CannedResponse, canned_id)
