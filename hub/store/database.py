"""The database engine: SQLite (WAL) by default, PostgreSQL in production."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import Engine, event, exc, text
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.ops.files import create_private
from hub.ports import Unavailable

T = TypeVar("T")

CONNECT_TIMEOUT = 5  # seconds to open a connection to PostgreSQL (asyncpg waits 60 by default)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str) -> AsyncEngine:
    """An async engine; for SQLite the file is created owner-only (0600, in a 0700 folder when
    that is new: its -wal and -shm files take its mode) and WAL + foreign keys switched on."""
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
    if database and database != ":memory:" and not database.startswith("file:"):
        create_private(Path(database))  # an empty file is an empty database
    engine = create_async_engine(url, connect_args={"timeout": 30})
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def create_sqlite_thread_engine(url: str) -> Engine:
    """The same SQLite file through the standard-library driver, for `Database.run`."""
    sync_url = make_url(url).set(drivername="sqlite+pysqlite")
    engine = create_sync_engine(sync_url, connect_args={"timeout": 30, "check_same_thread": False})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


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
    failing with "database is locked" when a read transaction tries to upgrade.

    Two ways in: `run(work)` calls a plain function with a session, in one transaction, and is
    what the message path uses: on SQLite the whole function runs in the database's own thread,
    one hop for the transaction instead of several per statement (each hop, ~50 us, is most of a
    message's cost otherwise). `transaction()` / `read()` are async sessions for the rest."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        self._sessions = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False
        )
        sqlite = is_sqlite(url)
        self._write_lock: asyncio.Lock | contextlib.nullcontext[None] = (
            asyncio.Lock() if sqlite else contextlib.nullcontext()
        )
        # SQLite: one thread holds the `run` connection; PostgreSQL: `run` uses the async pool
        self._thread_engine = create_sqlite_thread_engine(url) if sqlite else None
        self._thread = ThreadPoolExecutor(1, "kefu-db") if sqlite else None

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session that commits at the end of the block, or rolls back on an exception."""
        async with _reachable(), self._write_lock, self._sessions() as session, session.begin():
            yield session

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with _reachable(), self._sessions() as session:
            yield session

    async def run(self, work: Callable[[Session], T], *, write: bool = True) -> T:
        """`work(session)` in one transaction, committed when it returns and rolled back when
        it raises. `write=False` for reads (they don't wait for SQLite's writer). Rows it
        returns are detached, their attributes loaded."""
        if self._thread is None:  # PostgreSQL: the same function, statement by statement
            async with _reachable(), self._sessions() as session, session.begin():
                # its sync_session is a sqlmodel Session (AsyncSession.sync_session_class)
                return await session.run_sync(cast(Callable[[Any], T], work))
        loop = asyncio.get_running_loop()
        async with _reachable(), self._write_lock if write else contextlib.nullcontext():
            return await loop.run_in_executor(self._thread, self._in_thread, work)

    def _in_thread(self, work: Callable[[Session], T]) -> T:
        with Session(self._thread_engine, expire_on_commit=False) as session, session.begin():
            return work(session)

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()
        if self._thread is not None and self._thread_engine is not None:
            await asyncio.get_running_loop().run_in_executor(
                self._thread, self._thread_engine.dispose
            )
            self._thread.shutdown(wait=False)
