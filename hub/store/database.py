"""The database engine: SQLite (WAL) by default, PostgreSQL in production."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import event, exc, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.ports import Unavailable

CONNECT_TIMEOUT = 5  # seconds to open a connection to PostgreSQL (asyncpg waits 60 by default)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str) -> AsyncEngine:
    """An async engine; for SQLite the folder is created and WAL + foreign keys switched on."""
    if not is_sqlite(url):
        # pool_pre_ping: a connection that died in an outage is replaced, not handed out
        asyncpg = make_url(url).get_driver_name() == "asyncpg"
        return create_async_engine(
            url,
            pool_pre_ping=True,
            pool_size=10,
            max_overflow=10,
            connect_args={"timeout": CONNECT_TIMEOUT} if asyncpg else {},
        )
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


def unreachable(error: BaseException) -> bool:
    """Whether `error` says the database can't be reached (down, restarting, the network cut,
    every pooled connection busy) rather than that a statement was wrong."""
    if isinstance(error, exc.DBAPIError):
        code = str(getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", ""))
        # 08: connection exception; 57P01-03: the server is shutting down or starting
        return error.connection_invalidated or code.startswith(("08", "57P0"))
    # exc.TimeoutError: no connection free in the pool in time; the others: connecting failed
    return isinstance(error, (exc.TimeoutError, ConnectionError, TimeoutError, socket.gaierror))


@contextlib.asynccontextmanager
async def _reachable() -> AsyncIterator[None]:
    """Raise `Unavailable` for an unreachable database (the hub answers 503 to it)."""
    try:
        yield
    except Exception as e:
        if unreachable(e):
            raise Unavailable(f"database unavailable: {type(e).__name__}: {e}") from e
        raise


class Database:
    """Sessions over one engine. SQLite allows one writer: writes queue on a lock instead of
    failing with "database is locked" when a read transaction tries to upgrade."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        self._sessions = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False
        )
        self._write_lock: asyncio.Lock | contextlib.nullcontext[None] = (
            asyncio.Lock() if is_sqlite(url) else contextlib.nullcontext()
        )

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session that commits at the end of the block, or rolls back on an exception."""
        async with _reachable(), self._write_lock, self._sessions() as session, session.begin():
            yield session

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with _reachable(), self._sessions() as session:
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()
