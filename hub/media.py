"""Files customers send (images, documents, voice): kept in a local folder under unguessable
names and served at `/media/<key>`; the stored message keeps that link for the inbox."""

from __future__ import annotations

import contextlib
import hashlib
import mimetypes
import re
import secrets
from pathlib import Path

from hub.ports import MediaTooLarge

_UNSAFE = re.compile(r"[^A-Za-z0-9._\-\u4e00-\u9fff]+")
_KEY = re.compile(r"^[0-9a-f]{32}/[^/\\]{1,120}$")


class MediaStore:
    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes

    def save(self, data: bytes, name: str | None = None, mime_type: str | None = None) -> str:
        """Write the file; returns its URL path (`/media/<key>`). Raises MediaTooLarge."""
        if len(data) > self.max_bytes:
            raise MediaTooLarge(
                f"the file has {len(data):,} bytes; the limit is {self.max_bytes:,} "
                "(media_max_bytes)"
            )
        suffix = mimetypes.guess_extension(mime_type or "") or ""
        safe = _UNSAFE.sub("_", Path(name or "").name).strip("._")[:100]
        safe = safe or f"file{suffix or '.bin'}"
        digest = hashlib.sha256(data).hexdigest()[:16] + secrets.token_hex(8)
        path = self.folder / digest / safe
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return f"/media/{digest}/{safe}"

    def path(self, key: str) -> Path | None:
        """The file of a `/media/<key>` URL, or None (unknown, or not a key this store made)."""
        if not _KEY.match(key):
            return None
        path = self.folder / key
        return path if path.is_file() else None

    def remove(self, url: str) -> bool:
        """Delete the file of a `/media/<key>` URL (an erasure); False when there is none."""
        path = self.path(url.removeprefix("/media/"))
        if path is None:
            return False
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # its folder holds only it
            path.parent.rmdir()
        return True
