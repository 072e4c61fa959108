"""`kefu backup` and `kefu restore`: conversations and customers' files survive the round trip,
on SQLite (backed up while the hub runs) and on PostgreSQL (pg_dump)."""

from __future__ import annotations

import asyncio
import shutil
import tarfile
import uuid
from pathlib import Path

from flows import FlowEngine
from hub.store import Database, Store
from hub.testing import TestBot
from nlu import IntentClassifier
from tests.conftest import (
    PG_ADMIN,
    _pg_clone,
    _pg_execute,
    make_settings,
    migrated_sqlite,
    need,
)
from tests.test_hub.test_cli import kefu


async def converse(
    database_url: str,
    data_dir: Path,
    classifier: IntentClassifier,
    flows: FlowEngine,
    backup_to: Path,
) -> tuple[list[str], str]:
    """Talk to a running hub, save a customer's file, and back up while it still runs;
    returns the messages' texts and the file's media key."""
    settings = make_settings(database_url, data_dir)
    async with TestBot.running(settings, classifier, flows) as bot:
        await bot.say("hello")
        await bot.say("where is my order 12345678")
        link = await bot.hub.save_media(b"\x89PNG receipt", name="receipt.png")
        key = link.removeprefix("/media/")
        texts = await message_texts(bot.hub.store, await bot.conversation_id())
        env = {"DATABASE_URL": database_url, "KEFU_DATA_DIR": str(data_dir)}
        out = await asyncio.to_thread(
            kefu, "backup", "--output", str(backup_to), tmp=data_dir, **env
        )
        assert out.returncode == 0, out.stderr
        assert f"backup written to {backup_to}" in out.stdout
    return texts, key


async def message_texts(store: Store, conversation_id: int) -> list[str]:
    return [m.text for m in await store.messages(conversation_id, 0, 1000)]


async def texts_in(database_url: str) -> list[str]:
    db = Database(database_url)
    try:
        store = Store(db)
        conversation = await store.contact_conversation(TestBot.CHANNEL, "tester")
        assert conversation is not None and conversation.id is not None
        return await message_texts(store, conversation.id)
    finally:
        await db.close()


async def test_sqlite_backup_restores_into_a_new_data_folder(
    tmp_path: Path, classifier: IntentClassifier, flows: FlowEngine
) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    archive = tmp_path / "backups" / "kefu.tar.gz"
    url = await asyncio.to_thread(migrated_sqlite, old)
    texts, key = await converse(url, old / "data", classifier, flows, archive)
    assert len(texts) >= 4
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert {"manifest.json", "kefu.db", f"media/{key}"} <= set(names)

    new.mkdir()
    new_url = f"sqlite+aiosqlite:///{new / 'kefu.db'}"
    env = {"DATABASE_URL": new_url, "KEFU_DATA_DIR": str(new / "data")}
    out = await asyncio.to_thread(kefu, "restore", str(archive), tmp=new, **env)
    assert out.returncode == 0, out.stderr
    assert await texts_in(new_url) == texts
    assert (new / "data" / "media" / key).read_bytes() == b"\x89PNG receipt"

    again = await asyncio.to_thread(kefu, "restore", str(archive), tmp=new, **env)
    assert again.returncode == 1 and "--force" in again.stderr
    forced = await asyncio.to_thread(kefu, "restore", str(archive), "--force", tmp=new, **env)
    assert forced.returncode == 0, forced.stderr
    assert await texts_in(new_url) == texts


def test_restore_refuses_what_is_not_a_backup(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.tar.gz"
    with tarfile.open(bogus, "w:gz") as tar:
        tar.add(Path(__file__), "notes.txt")
    out = kefu("restore", str(bogus), tmp=tmp_path)
    assert out.returncode == 1 and "not a kefu backup" in out.stderr
    missing = kefu("restore", str(tmp_path / "nope.tar.gz"), tmp=tmp_path)
    assert missing.returncode == 1 and "no such file" in missing.stderr


async def test_postgresql_backup_restores_into_another_database(
    pg_template: str, tmp_path: Path, classifier: IntentClassifier, flows: FlowEngine
) -> None:
    missing = [tool for tool in ("pg_dump", "pg_restore") if shutil.which(tool) is None]
    if missing:
        need("/".join(missing), "not on PATH (Debian: postgresql-client-15)")
    source, source_url = await asyncio.to_thread(_pg_clone, pg_template)
    target = f"kefu_restore_{uuid.uuid4().hex[:8]}"
    await _pg_execute(f'CREATE DATABASE "{target}"')
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    target_url = f"{base}/{target}"
    archive = tmp_path / "pg.tar.gz"
    try:
        texts, key = await converse(source_url, tmp_path / "data", classifier, flows, archive)
        with tarfile.open(archive) as tar:
            assert {"manifest.json", "kefu.pgdump", f"media/{key}"} <= set(tar.getnames())
        env = {"DATABASE_URL": target_url, "KEFU_DATA_DIR": str(tmp_path / "restored")}
        out = await asyncio.to_thread(kefu, "restore", str(archive), tmp=tmp_path, **env)
        assert out.returncode == 0, out.stderr
        assert await texts_in(target_url) == texts
        assert (tmp_path / "restored" / "media" / key).exists()
    finally:
        for name in (source, target):
            await _pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
