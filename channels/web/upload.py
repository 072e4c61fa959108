"""A widget customer's file: `POST <prefix>/upload?visitor=<id>&token=<token>&name=<file name>`
with the raw bytes as the body and the file's type as Content-Type (raw, not multipart: the hub
has no python-multipart). Answers 201 `{"url", "name", "mime_type", "kind"}`, the attachment
to put in a message frame (see channel.py).

The widget runs on other sites, so the route answers CORS: a preflight (OPTIONS) and every
answer allow any origin (no cookies are involved). A visitor that has a conversation must
bring its token (401 without, 403 with another); uploads are rate-limited per visitor and per
client address (`widget_uploads_per_ip`, 30 a minute by default): 429 with Retry-After."""

from __future__ import annotations

import contextlib
import math
import re
from typing import Any, Protocol

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from channels.web.frames import VISITOR
from channels.web.options import WebOptions
from hub.ports import MediaTooLarge, Receiver

CORS = {"access-control-allow-origin": "*", "access-control-expose-headers": "Retry-After"}

# what the first bytes of each accepted type look like, so a renamed file is refused
_MAGIC: dict[str, Any] = {
    "image/jpeg": lambda b: b.startswith(b"\xff\xd8\xff"),
    "image/png": lambda b: b.startswith(b"\x89PNG"),
    "image/gif": lambda b: b.startswith(b"GIF8"),
    "image/webp": lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP",
    "application/pdf": lambda b: b.startswith(b"%PDF"),
}


def sniff(mime_type: str, data: bytes) -> bool:
    check = _MAGIC.get(mime_type)
    return bool(check and check(data))


_NAME_BAD = re.compile(r"[^\w.\- ()]+")


def clean_name(name: str, mime_type: str) -> str:
    name = _NAME_BAD.sub("_", name.replace("\\", "/").rsplit("/", 1)[-1]).strip(" .")[:120]
    return name or ("file.pdf" if mime_type == "application/pdf" else "image")


def wait_seconds(wait: float) -> int:
    """A wait as Retry-After says it: whole seconds, at least 1."""
    return max(1, math.ceil(wait))


def refuse(status: int, error: str, retry_after: float | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": error, "detail": error}
    headers = dict(CORS)
    if retry_after is not None:
        body["retry_after"] = wait_seconds(retry_after)
        headers["retry-after"] = str(body["retry_after"])
    return JSONResponse(body, status_code=status, headers=headers)


async def preflight() -> Response:
    """The browser's CORS preflight for an upload from a page on another origin."""
    headers = {
        **CORS,
        "access-control-allow-methods": "POST, OPTIONS",
        "access-control-allow-headers": "content-type",
        "access-control-max-age": "86400",
    }
    return Response(status_code=204, headers=headers)


class Uploading(Protocol):
    """What an upload needs of its web channel."""

    name: str
    receiver: Receiver
    options: WebOptions

    def proves(self, visitor: str, token: str | None) -> bool: ...


async def receive_file(channel: Uploading, request: Request) -> JSONResponse:
    """The upload's checks (rate limits, the visitor's token, type, size, the file's first
    bytes), then the file kept by the hub: 201 with the attachment, or the refusal."""
    receiver, opts = channel.receiver, channel.options
    address = request.client.host if request.client else ""
    wait = await receiver.limited("widget_uploads_per_ip", address)
    if wait is not None:
        n = wait_seconds(wait)
        return refuse(429, f"too many uploads from this address: retry in {n} s", wait)
    visitor = request.query_params.get("visitor") or ""
    if not VISITOR.match(visitor):
        return refuse(400, "visitor: a valid visitor id is required")
    token = request.query_params.get("token")
    if not channel.proves(visitor, token):
        if await receiver.current_conversation(channel.name, visitor) is not None:
            if not token:
                return refuse(401, "token: this visitor has a conversation; send its token")
            return refuse(403, "token: this is not the visitor's token")
    wait = await receiver.limited("widget_uploads", f"{channel.name}:{visitor}")
    if wait is not None:
        n = wait_seconds(wait)
        return refuse(429, f"too many uploads: retry in {n} s", wait)

    limit = opts.upload_max_bytes
    accepted = ", ".join(opts.upload_types)
    mime_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if not mime_type:
        return refuse(400, "file: send the file as the body, with its Content-Type")
    if mime_type not in opts.upload_types:
        return refuse(415, f"file type {mime_type} is not accepted; accepted: {accepted}")
    too_large = f"file too large: the limit is {limit} bytes"
    with contextlib.suppress(ValueError):
        if int(request.headers.get("content-length") or 0) > limit:
            return refuse(413, too_large)
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:  # read at most limit + 1 bytes' worth of chunks
            return refuse(413, too_large)
    if not data:
        return refuse(400, "file: the body is empty")
    if not sniff(mime_type, bytes(data[:16])):
        return refuse(415, f"the file is not a real {mime_type}; accepted: {accepted}")
    name = clean_name(request.query_params.get("name") or "", mime_type)
    try:
        url = await receiver.save_media(bytes(data), name=name, mime_type=mime_type)
    except MediaTooLarge as e:
        return refuse(413, f"file too large: {e}")
    kind = "image" if mime_type.startswith("image/") else "file"
    return JSONResponse(
        {"url": url, "name": name, "mime_type": mime_type, "kind": kind},
        status_code=201,
        headers=CORS,
    )
