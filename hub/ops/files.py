"""Files only the hub's user may read: the generated secret key, the SQLite database (its -wal
and -shm files take the database file's mode) and the data folder they are created in. The
modes are set when the file is made, whatever the process's umask."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> None:
    """Make the folder `path` (and its missing parents) if missing; the folder itself is made
    owner-only (an existing one is left as it is)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # made meanwhile by another process
            path.mkdir(mode=DIR_MODE)


def create_private(path: Path, content: bytes = b"") -> bool:
    """Create `path` with `content`, owner-only (0600), complete before anyone can open it;
    False when it exists already (nothing written)."""
    private_dir(path.parent)
    if path.exists():
        return False
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
        os.link(temporary, path)  # fails if another process made it first
        return True
    except FileExistsError:
        return False
    except OSError:  # a file system without hard links: rename (the last writer wins)
        if path.exists():
            return False
        os.replace(temporary, path)
        return True
    finally:
        temporary.unlink(missing_ok=True)
