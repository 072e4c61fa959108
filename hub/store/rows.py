"""What every aggregate of the store shares: its database, and loading, changing and deleting
one row by its key."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.store.database import Database

M = TypeVar("M", bound=SQLModel)


class Aggregate:
    """The reads and writes of one aggregate (messages, agents, ...) over the hub's database;
    `Store` is all of them over one."""

    def __init__(self, db: Database) -> None:
        self.db = db


class Duplicate(ValueError):
    """A row with the same unique key exists already (an agent's email, a team's name, a
    canned response's short code): the caller answers 409."""


@contextlib.asynccontextmanager
async def unique(db: Database) -> AsyncIterator[AsyncSession]:
    """A transaction (Database.transaction) in which a broken unique constraint raises
    Duplicate, so that no caller needs the database driver's errors."""
    try:
        async with db.transaction() as s:
            yield s
    except IntegrityError as e:
        raise Duplicate(str(e.orig)) from e


async def get_row(db: Database, model: type[M], key: Any, /) -> M | None:
    """The row of `model` with primary key `key` (None: no such row)."""
    async with db.read() as s:
        return await s.get(model, key)


async def set_fields(
    s: AsyncSession, model: type[M], key: Any, fields: Mapping[str, Any]
) -> M | None:
    """Load the row with primary key `key` in session `s` and set its `fields` (None: no such
    row); written when the session flushes."""
    row = await s.get(model, key)
    if row is None:
        return None
    for name, value in fields.items():
        setattr(row, name, value)
    s.add(row)
    return row


async def update_row(db: Database, model: type[M], key: Any, /, **fields: Any) -> M | None:
    """Set `fields` on the row with primary key `key`, in one transaction; returns it as
    stored (None: no such row). Raises Duplicate when a change breaks a unique constraint."""
    async with unique(db) as s:
        row = await set_fields(s, model, key, fields)
        if row is not None:
            await s.flush()
        return row


async def delete_row(db: Database, model: type[M], key: Any, /) -> bool:
    """Delete the row with primary key `key`; False when there is none."""
    async with db.transaction() as s:
        row = await s.get(model, key)
        if row is None:
            return False
        await s.delete(row)
        return True
