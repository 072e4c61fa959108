"""Schema migrations with Alembic, run programmatically (`kefu migrate`, and by `kefu run`)."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from hub.store.database import Database


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", "hub.store:migrations")
    config.attributes["connection"] = connection
    return config


async def migrate(db: Database, revision: str = "head") -> None:
    """Bring the database schema up to `revision`."""

    def upgrade(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)

    async with db.engine.begin() as connection:
        await connection.run_sync(upgrade)


async def autogenerate(db: Database, message: str) -> None:
    """Write a new revision from the difference between the models and the database."""

    def revise(connection: Connection) -> Any:
        return command.revision(alembic_config(connection), message=message, autogenerate=True)

    async with db.engine.begin() as connection:
        await connection.run_sync(revise)
