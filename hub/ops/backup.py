"""`kefu backup` and `kefu restore`: the database and the customers' files in one archive.

The archive is a .tar.gz holding `manifest.json` (backend, time, schema revision), the database
(`kefu.db`, a consistent copy made with SQLite's online backup API while the hub runs; or
`kefu.pgdump`, PostgreSQL's `pg_dump --format=custom`) and `media/` (the data folder's media).
Restoring SQLite writes the database file and the media back; restoring PostgreSQL runs
`pg_restore` into the database DATABASE_URL names (or prints the command when it isn't here).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url

from hub.ops.settings import Settings
from hub.store.database import is_sqlite

SQLITE_FILE = "kefu.db"
PG_FILE = "kefu.pgdump"


class BackupError(Exception):
    """A backup or restore that can't be done; the message says why and what to do."""


def default_output(settings: Settings) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return settings.data_dir / "backups" / f"kefu-{stamp}.tar.gz"


def backup(settings: Settings, output: Path | None = None) -> Path:
    """Write the archive (default: data/backups/kefu-<UTC time>.tar.gz); returns its path."""
    output = output or default_output(settings)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kefu-backup-") as tmp:
        if is_sqlite(settings.database_url):
            name = SQLITE_FILE
            _sqlite_copy(_sqlite_path(settings), Path(tmp) / name)
            revision = _sqlite_revision(Path(tmp) / name)
        else:
            name = PG_FILE
            _pg_dump(settings.database_url, Path(tmp) / name)
            revision = None
        manifest = {
            "format": 1,
            "backend": "sqlite" if name == SQLITE_FILE else "postgresql",
            "created_at": datetime.now(UTC).isoformat(),
            "schema_revision": revision,
        }
        (Path(tmp) / "manifest.json").write_text(json.dumps(manifest, indent=2))
        partial = output.with_name(output.name + ".partial")
        with tarfile.open(partial, "w:gz") as archive:
            archive.add(Path(tmp) / "manifest.json", "manifest.json")
            archive.add(Path(tmp) / name, name)
            media = settings.data_dir / "media"
            if media.is_dir():
                archive.add(media, "media")
        partial.replace(output)  # a backup cut off half-way never looks like a whole one
    return output


def restore(settings: Settings, archive_path: Path, force: bool = False) -> str:
    """Put an archive's database and media back; returns what was done. SQLite refuses to
    replace a database that has conversations unless `force`."""
    if not archive_path.is_file():
        raise BackupError(f"{archive_path}: no such file")
    with (
        tempfile.TemporaryDirectory(prefix="kefu-restore-") as tmp,
        tarfile.open(archive_path, "r:gz") as archive,
    ):
        archive.extractall(tmp, filter="data")
        manifest = _manifest(Path(tmp), archive_path)
        if manifest["backend"] == "sqlite":
            if not is_sqlite(settings.database_url):
                raise BackupError(
                    f"{archive_path} is a SQLite backup but DATABASE_URL is not SQLite"
                )
            target = _sqlite_path(settings)
            _sqlite_restore(Path(tmp) / SQLITE_FILE, target, force)
            done = f"database restored to {target}"
        else:
            if is_sqlite(settings.database_url):
                raise BackupError(
                    f"{archive_path} is a PostgreSQL backup but DATABASE_URL is SQLite"
                )
            _pg_restore(settings.database_url, Path(tmp) / PG_FILE)
            done = "database restored with pg_restore"
        media = Path(tmp) / "media"
        if media.is_dir():
            shutil.copytree(media, settings.data_dir / "media", dirs_exist_ok=True)
            done += f"; media restored to {settings.data_dir / 'media'}"
    return done


def _manifest(folder: Path, archive_path: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError) as e:
        raise BackupError(f"{archive_path}: not a kefu backup (manifest.json: {e})") from e
    if manifest.get("backend") not in ("sqlite", "postgresql"):
        raise BackupError(f"{archive_path}: unknown backend {manifest.get('backend')!r}")
    return manifest


# ---- SQLite ------------------------------------------------------------------------------


def _sqlite_path(settings: Settings) -> Path:
    database = make_url(settings.database_url).database
    if not database or database == ":memory:":
        raise BackupError("DATABASE_URL names an in-memory SQLite database: nothing to back up")
    return Path(database)


def _sqlite_copy(source: Path, target: Path) -> None:
    """A consistent copy while the hub may be writing (the WAL's content included)."""
    if not source.is_file():
        raise BackupError(f"{source}: no such database (run `kefu migrate` or `kefu run` first)")
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def _sqlite_revision(path: Path) -> str | None:
    db = sqlite3.connect(path)
    try:
        row = db.execute("SELECT version_num FROM alembic_version").fetchone()
        return str(row[0]) if row else None
    except sqlite3.Error:
        return None
    finally:
        db.close()


def _sqlite_has_conversations(path: Path) -> bool:
    if not path.is_file():
        return False
    db = sqlite3.connect(path)
    try:
        return bool(db.execute("SELECT count(*) FROM conversation").fetchone()[0])
    except sqlite3.Error:  # no schema yet
        return False
    finally:
        db.close()


def _sqlite_restore(backup_file: Path, target: Path, force: bool) -> None:
    if _sqlite_has_conversations(target) and not force:
        raise BackupError(
            f"{target} already holds conversations; stop the hub and pass --force to replace it"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(target.name + ".restoring")
    shutil.copyfile(backup_file, staged)
    for suffix in ("-wal", "-shm"):  # the old database's log must not be replayed onto this one
        target.with_name(target.name + suffix).unlink(missing_ok=True)
    staged.replace(target)


# ---- PostgreSQL --------------------------------------------------------------------------


def _libpq(database_url: str) -> tuple[str, dict[str, str]]:
    """The URL for pg_dump/pg_restore (no driver, no password) and the environment holding
    the password, so it doesn't show in the process list."""
    url: URL = make_url(database_url)
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _run(command: list[str], env: dict[str, str]) -> None:
    try:
        subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as e:
        raise BackupError(f"{command[0]} failed ({e.returncode}): {e.stderr.strip()}") from e


def _pg_dump(database_url: str, target: Path) -> None:
    url, env = _libpq(database_url)
    if shutil.which("pg_dump") is None:
        raise BackupError(
            "pg_dump is not on PATH: install the PostgreSQL client tools (the server's major "
            "version or newer), or dump by hand: "
            "pg_dump --format=custom --file=kefu.pgdump 'postgresql://user@host/db'"
        )
    _run(["pg_dump", "--format=custom", "--no-owner", f"--file={target}", url], env)


def _pg_restore(database_url: str, dump: Path) -> None:
    url, env = _libpq(database_url)
    if shutil.which("pg_restore") is None:
        raise BackupError(
            "pg_restore is not on PATH: install the PostgreSQL client tools, take kefu.pgdump "
            "out of the archive (tar xzf BACKUP kefu.pgdump) and run: pg_restore --clean "
            "--if-exists --no-owner --dbname='postgresql://user@host/db' kefu.pgdump"
        )
    _run(["pg_restore", "--clean", "--if-exists", "--no-owner", f"--dbname={url}", str(dump)], env)
