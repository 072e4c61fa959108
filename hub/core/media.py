"""Files customers send (images, documents, voice): kept in a local folder under unguessable
names and served at `/media/<key>`; the stored message keeps that link for the inbox.

A file is served as an inert download or an image, never as a page of the hub's origin (a
customer's `evil.html` or `<svg onload>` must not run script where an agent's token lives):

- its type is decided once, when it is saved, from an allow-list (`TYPES`), by what the
  channel declared and what the bytes are, never by the file's name. Only real PNG, JPEG, GIF
  and WebP bytes are served inline as images; PDF, text, office documents, audio and video with
  their own type as attachments; anything else (HTML, SVG, XML, script, unknown) as
  `application/octet-stream` attachments;
- the decision is part of the key (`<32 hex>-<code>/<name>`), so it stays with the file in
  backups; a file saved before (`<32 hex>/<name>`) is served by what its bytes are;
- every answer, a 404's too, says `nosniff` and has a sandboxing Content-Security-Policy; the
  name only names the download (`Content-Disposition`, RFC 6266 `filename*`).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

from hub.ports import MediaTooLarge

_UNSAFE = re.compile(r"[^A-Za-z0-9._\-\u4e00-\u9fff]+")
_KEY = re.compile(r"^([0-9a-f]{32})(?:-([a-z0-9]{1,8}))?/([^/\\]{1,120})$")


class Served(NamedTuple):
    mime_type: str
    inline: bool  # shown in the page (raster images); everything else is a download


OCTET = "application/octet-stream"
_OFFICE = "application/vnd.openxmlformats-officedocument"
_OPEN = "application/vnd.oasis.opendocument"

# The allow-list: the code in a key (also the extension of a nameless file) -> how it is served.
TYPES: dict[str, Served] = {
    "png": Served("image/png", True),
    "jpg": Served("image/jpeg", True),
    "gif": Served("image/gif", True),
    "webp": Served("image/webp", True),
    "pdf": Served("application/pdf", False),
    "txt": Served("text/plain", False),
    "csv": Served("text/csv", False),
    "eml": Served("message/rfc822", False),
    "doc": Served("application/msword", False),
    "docx": Served(f"{_OFFICE}.wordprocessingml.document", False),
    "xls": Served("application/vnd.ms-excel", False),
    "xlsx": Served(f"{_OFFICE}.spreadsheetml.sheet", False),
    "ppt": Served("application/vnd.ms-powerpoint", False),
    "pptx": Served(f"{_OFFICE}.presentationml.presentation", False),
    "odt": Served(f"{_OPEN}.text", False),
    "ods": Served(f"{_OPEN}.spreadsheet", False),
    "odp": Served(f"{_OPEN}.presentation", False),
    "zip": Served("application/zip", False),
    "gz": Served("application/gzip", False),
    "mp3": Served("audio/mpeg", False),
    "m4a": Served("audio/mp4", False),
    "aac": Served("audio/aac", False),
    "ogg": Served("audio/ogg", False),
    "opus": Served("audio/opus", False),
    "wav": Served("audio/wav", False),
    "weba": Served("audio/webm", False),
    "amr": Served("audio/amr", False),
    "mp4": Served("video/mp4", False),
    "webm": Served("video/webm", False),
    "ogv": Served("video/ogg", False),
    "mov": Served("video/quicktime", False),
    "3gp": Served("video/3gpp", False),
    "bin": Served(OCTET, False),
}
_CODES = {served.mime_type: code for code, served in TYPES.items()}
_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/x-png": "image/png",
    "application/x-pdf": "application/pdf",
    "audio/mp3": "audio/mpeg",
    "audio/x-m4a": "audio/mp4",
    "audio/x-aac": "audio/aac",
    "audio/x-wav": "audio/wav",
    "audio/wave": "audio/wav",
    "audio/vnd.wave": "audio/wav",
    "text/x-csv": "text/csv",
    "application/x-zip-compressed": "application/zip",
    "application/x-gzip": "application/gzip",
}
# what a channel says when it doesn't know: the bytes may still be a recognizable image or PDF
_UNKNOWN = {"", OCTET, "binary/octet-stream", "application/unknown", "application/x-download"}

# Every /media answer: no type guessing, no script, no plugins, no requests from the file.
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'; style-src 'unsafe-inline'",
    "Referrer-Policy": "no-referrer",
}
# keys are unguessable and files never change; `private`: an erased file leaves no shared copy
CACHE = "private, max-age=86400"


def image_code(head: bytes) -> str | None:
    """The code of the raster image these first bytes start, if any."""
    if head.startswith(b"\x89PNG"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def decide(data: bytes, mime_type: str | None) -> str:
    """The code (in `TYPES`) a file is served as: an image inline only when its bytes are one
    (and nothing else was declared); a declared type from the allow-list as a download; an
    undeclared PDF as a PDF; anything else as bytes."""
    declared = (mime_type or "").split(";")[0].strip().lower()
    declared = _ALIASES.get(declared, declared)
    image = image_code(data[:16])
    if image and (declared in _UNKNOWN or declared.startswith("image/")):
        return image
    if declared in _UNKNOWN:
        return "pdf" if data.startswith(b"%PDF-") else "bin"
    code = _CODES.get(declared, "bin")
    return "bin" if TYPES[code].inline else code


def disposition(inline: bool, name: str) -> str:
    """RFC 6266: an ASCII `filename` for old clients and the real one as `filename*`."""
    fallback = re.sub(r"[^A-Za-z0-9._\- ()]", "_", name) or "file"
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


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
        code = decide(data, mime_type)
        safe = _UNSAFE.sub("_", Path(name or "").name).strip("._")[:100]
        safe = safe or f"file.{code}"
        digest = hashlib.sha256(data).hexdigest()[:16] + secrets.token_hex(8)
        path = self.folder / f"{digest}-{code}" / safe
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return f"/media/{digest}-{code}/{safe}"

    def path(self, key: str) -> Path | None:
        """The file of a `/media/<key>` URL, or None (unknown, or not a key this store made)."""
        if not _KEY.match(key):
            return None
        path = self.folder / key
        return path if path.is_file() else None

    def served(self, key: str, path: Path) -> Served:
        """How the file of `key` is served: as decided when it was saved; a file saved before
        that was recorded, by what its bytes are (its name never counts)."""
        match = _KEY.match(key)
        code = match.group(2) if match else "bin"
        if code is None:
            with path.open("rb") as f:
                code = decide(f.read(16), None)
        return TYPES.get(code, TYPES["bin"])

    def remove(self, url: str) -> bool:
        """Delete the file of a `/media/<key>` URL (an erasure); False when there is none."""
        path = self.path(url.removeprefix("/media/"))
        if path is None:
            return False
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # its folder holds only it
            path.parent.rmdir()
        return True
