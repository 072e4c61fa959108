"""Shared fixtures: settings for a throwaway database (SQLite, and PostgreSQL where a test asks
for both), the demo bot's classifier trained once, an app, an agent, and the test bot.

PostgreSQL: $KEFU_TEST_POSTGRES (default postgresql://postgres@127.0.0.1:5432/postgres). When it
is unreachable, tests that need it skip, naming it, except under CI (CI set), where they fail.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from flows import FlowEngine
from hub.app import create_app
from hub.bot import load_flow_engine
from hub.core.auth import hash_password
from hub.ops.settings import Settings
from hub.store import Database, Store, migrate
from hub.testing import TestBot
from nlu import IntentClassifier, TrainingData

ROOT = Path(__file__).resolve().parent.parent
SHOP = ROOT / "examples" / "shop"
PG_ADMIN = os.environ.get("KEFU_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def need(what: str, reason: str) -> None:
    """Skip, naming what is missing; under CI a missing service is a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required under CI: {reason}")
    pytest.skip(f"{what} not available: {reason}")


async def _pg_execute(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated PostgreSQL database to clone per test; dropped at the end."""
    name = f"kefu_tpl_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(_pg_execute(f'CREATE DATABASE "{name}"'))
    except Exception as e:
        need("PostgreSQL", f"{PG_ADMIN}: {type(e).__name__}: {e}")
    url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + "/" + name

    async def prepare() -> None:
        db = Database(url)
        await migrate(db)
        await db.close()

    asyncio.run(prepare())
    yield name
    asyncio.run(_pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _pg_clone(template: str) -> tuple[str, str]:
    name = f"kefu_test_{uuid.uuid4().hex[:8]}"
    asyncio.run(_pg_execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return name, f"{base}/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database on each backend (tests using it run twice)."""
    if request.param == "sqlite":
        yield migrated_sqlite(tmp_path)
        return
    name, url = _pg_clone(request.getfixturevalue("pg_template"))
    yield url
    asyncio.run(_pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def migrated_sqlite(folder: Path) -> str:
    """The URL of a new SQLite database in `folder`, migrated to the current schema."""
    url = f"sqlite+aiosqlite:///{folder / 'kefu.db'}"

    async def prepare() -> None:
        db = Database(url)
        await migrate(db)
        await db.close()

    asyncio.run(prepare())
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return migrated_sqlite(tmp_path)


def make_settings(database_url: str, data_dir: Path, **extra: Any) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=data_dir,
        secret_key="test-secret-key-that-is-long-enough-for-hs256",
        bot={"path": SHOP, "language": "en", "reload": False},
        **extra,
    )


@pytest.fixture
def settings(sqlite_url: str, tmp_path: Path) -> Settings:
    """The demo bot on SQLite."""
    return make_settings(sqlite_url, tmp_path)


@pytest.fixture(scope="session")
def classifier() -> IntentClassifier:
    return IntentClassifier.train(TrainingData.load(SHOP / "nlu"))


@pytest.fixture(scope="session")
def flows() -> FlowEngine:
    """The demo bot's flows, with its actions.py."""
    return load_flow_engine(Settings(bot={"path": SHOP, "language": "en"}))


@pytest.fixture
async def testbot(
    settings: Settings, classifier: IntentClassifier, flows: FlowEngine
) -> AsyncIterator[TestBot]:
    async with TestBot.running(settings, classifier, flows) as bot:
        yield bot


def client_for(settings: Settings, classifier: IntentClassifier, flows: FlowEngine) -> TestClient:
    return TestClient(create_app(settings, classifier=classifier, flows=flows))


@pytest.fixture
def client(
    settings: Settings, classifier: IntentClassifier, flows: FlowEngine
) -> Iterator[TestClient]:
    """The app on SQLite, started (lifespan) for the test."""
    with client_for(settings, classifier, flows) as c:
        yield c


def create_agent(
    settings: Settings, email: str = "lin@example.com", password: str = "s3cret-pass", **kw: Any
) -> int:
    async def create() -> int:
        db = Database(settings.database_url)
        try:
            agent = await Store(db).create_agent(
                email, email.split("@")[0], hash_password(password), **kw
            )
            assert agent.id is not None
            return agent.id
        finally:
            await db.close()

    return asyncio.run(create())


def login(
    client: TestClient, email: str = "lin@example.com", password: str = "s3cret-pass"
) -> dict[str, str]:
    r = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return {"authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
def agent(settings: Settings) -> int:
    return create_agent(settings, role="admin")


@pytest.fixture
def auth(client: TestClient, agent: int) -> dict[str, str]:
    return login(client)
