"""The Alembic migrations build exactly the schema the models describe, on SQLite and
PostgreSQL: a model change without its migration fails here, not in a user's database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import hub.store.models  # noqa: F401 - the tables
from hub.store.database import Database
from hub.store.migrate import migrate


async def differences(url: str) -> list[Any]:
    db = Database(url)
    try:
        await migrate(db)

        def compare(connection: Connection) -> list[Any]:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, SQLModel.metadata))

        async with db.engine.connect() as connection:
            return await connection.run_sync(compare)
    finally:
        await db.close()


async def test_sqlite_schema_matches_the_models(tmp_path: Path) -> None:
    assert await differences(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}") == []


def test_postgresql_schema_matches_the_models(pg_template: str) -> None:
    """pg_template (tests/conftest.py) names a PostgreSQL database migrated to head."""
    import asyncio

    from tests.conftest import PG_ADMIN

    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    assert asyncio.run(differences(f"{base}/{pg_template}")) == []
