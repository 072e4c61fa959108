"""The web chat widget's channel: a WebSocket per browser tab (DESIGN.md section 4).

    /channels/web/ws?visitor=<id>     (the instance named `web`)
    /channels/web/X/ws?visitor=<id>   (another web instance, named X)

Server frames: hello, ack, message, typing, error. Client frames: message, postback, resume,
typing. Every message is stored before it is acknowledged, and `resume` resends everything
after the last id the widget saw, so a reconnect loses nothing.

A customer's image or PDF is uploaded first, `POST <prefix>/upload?visitor=<id>&name=<file name>`
with the raw bytes as the body and the file's type as Content-Type (raw, not multipart: the hub
has no python-multipart), then sent as an attachment of a message frame.

A site that knows who its visitor is (logged in) may say so, signed with the channel's
`identity_secret`: `email` and `hash` = hex HMAC-SHA256(secret, email), and/or `phone` (E.164)
and `phone_hash` = HMAC-SHA256(secret, phone), in the socket's query string or an `identify`
frame. The server answers `identified` with what it verified; the socket's later messages carry
it (`Inbound.verified`), so the visitor is one customer with their contacts on other channels.
An unsigned or wrongly signed identity is refused (an `error` frame) and never used.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import hashlib
import hmac
import json
import logging
import re
import secrets
from collections import defaultdict
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from channels.base import Capabilities, Channel
from hub.messages import Attachment, Event, Inbound, Kind, Outbound, Verified
from hub.ports import MediaTooLarge

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"

MAX_MESSAGE_ID = 2**31 - 1  # message ids are INTEGER columns (PostgreSQL's int4)
_VISITOR = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


class WebOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_frame_bytes: int = 64_000
    # signs visitors' identities (email, phone) on the site's server; unset: none are taken
    identity_secret: str | None = Field(default=None, min_length=16)
    upload_max_bytes: int = 10_000_000
    upload_types: list[str] = Field(
        default_factory=lambda: [
            "image/jpeg",
            "image/png",
            "image/gif",
            "image/webp",
            "application/pdf",
        ]
    )


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


class _Frame(BaseModel):
    model_config = ConfigDict(extra="ignore")


class AttachmentFrame(_Frame):
    url: str = Field(pattern=r"^/media/[^\s\"'<>\\]+$", max_length=500)
    name: str | None = Field(default=None, max_length=200)
    mime_type: str | None = Field(default=None, max_length=100)
    kind: Literal["image", "file"] = "file"


class MessageFrame(_Frame):
    type: Literal["message"]
    client_id: str | None = Field(default=None, max_length=64)
    text: str = Field(default="", max_length=4000)
    attachments: list[AttachmentFrame] = Field(default_factory=list, max_length=5)

    @model_validator(mode="after")
    def _not_empty(self) -> MessageFrame:
        if not self.text and not self.attachments:
            raise ValueError("a message needs text or an attachment")
        return self


class PostbackFrame(_Frame):
    type: Literal["postback"]
    payload: str = Field(min_length=1, max_length=1000)
    title: str | None = Field(default=None, max_length=200)


class ResumeFrame(_Frame):
    type: Literal["resume"]
    after: int | str | None = None


class TypingFrame(_Frame):
    type: Literal["typing"]
    on: bool = True


class IdentifyFrame(_Frame):
    """Who the visitor is, as the site's server signed it (see the module docstring)."""

    type: Literal["identify"]
    email: str | None = Field(default=None, max_length=255)
    hash: str | None = Field(default=None, max_length=128)
    phone: str | None = Field(default=None, max_length=32)
    phone_hash: str | None = Field(default=None, max_length=128)


ClientFrame = Annotated[
    MessageFrame | PostbackFrame | ResumeFrame | TypingFrame | IdentifyFrame,
    Field(discriminator="type"),
]
_frames: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)


def signed(secret: str, value: str, signature: str | None) -> bool:
    """Whether `signature` is the hex HMAC-SHA256 of `value` (as sent) under `secret`."""
    expected = hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()
    return signature is not None and hmac.compare_digest(expected, signature.strip().lower())


def verified_identity(secret: str | None, frame: IdentifyFrame) -> Verified | str:
    """The identity the site signed, or why it is refused."""
    if not frame.email and not frame.phone:
        return "identify: give email and hash, or phone and phone_hash"
    if secret is None:
        return "identify: this channel has no identity_secret, so it takes no identities"
    if frame.email and not signed(secret, frame.email, frame.hash):
        return "identify: hash is not the HMAC-SHA256 of email with the channel's secret"
    if frame.phone and not signed(secret, frame.phone, frame.phone_hash):
        return "identify: phone_hash is not the HMAC-SHA256 of phone with the channel's secret"
    return Verified(email=frame.email, phone=frame.phone)


def message_frame(message: Outbound) -> dict[str, Any]:
    return {
        "type": "message",
        "id": str(message.message_id),
        "sender": message.sender.value,
        "text": message.text,
        "buttons": [b.model_dump() for b in message.buttons],
        "attachments": [a.model_dump(mode="json") for a in message.attachments],
        "created_at": message.created_at.isoformat(),
    }


class _Socket:
    """One open widget connection; sends are serialized so frames never interleave."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.lock = asyncio.Lock()
        self.verified: Verified | None = None  # who the site says the visitor is, signed

    async def send(self, frame: dict[str, Any]) -> None:
        async with self.lock:
            await self.websocket.send_json(frame)


class WebChannel(Channel):
    type: ClassVar[str] = "web"
    capabilities: ClassVar[Capabilities] = Capabilities(buttons=True, images=True)
    Options: ClassVar[builtins.type[BaseModel]] = WebOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sockets: defaultdict[str, set[_Socket]] = defaultdict(set)

    @property
    def prefix(self) -> str:
        return "/channels/web" if self.name == "web" else f"/channels/web/{self.name}"

    @property
    def path(self) -> str:
        return f"{self.prefix}/ws"

    def router(self) -> APIRouter:
        router = APIRouter(tags=[f"channel {self.name}"])
        router.add_api_websocket_route(self.path, self.connect)
        router.add_api_route(
            f"{self.prefix}/upload", self.upload, methods=["POST"], status_code=201
        )
        # the embeddable widget and the demo page that embeds it (one set, whatever the number
        # of web instances: the widget picks its instance with data-channel)
        router.add_api_route("/widget.js", widget_js, methods=["GET"], include_in_schema=False)
        router.add_api_route("/", demo_page, methods=["GET"], include_in_schema=False)
        return router

    async def send(self, message: Outbound) -> None:
        """Push to every open tab of the visitor, on whichever hub process it is connected.
        With none open, the message waits in the store and reaches the widget with its next
        `resume`."""
        frame = message_frame(message)
        await self.receiver.relay(self.name, {"visitor": message.recipient_id, "frame": frame})

    async def on_relay(self, data: dict[str, Any]) -> None:
        visitor = str(data.get("visitor"))
        for socket in list(self.sockets.get(visitor, ())):
            try:
                await socket.send(data["frame"])
            except (WebSocketDisconnect, RuntimeError):
                self.sockets[visitor].discard(socket)

    async def upload(self, request: Request) -> JSONResponse:
        """A customer's image or PDF: the raw bytes as the body, the type as Content-Type, the
        file name in `name`. Answers 201 with the attachment to put in a message frame."""

        def refuse(status: int, error: str) -> JSONResponse:
            return JSONResponse({"error": error, "detail": error}, status_code=status)

        opts = self.options
        limit = opts.upload_max_bytes
        accepted = ", ".join(opts.upload_types)
        if not _VISITOR.match(request.query_params.get("visitor") or ""):
            return refuse(400, "visitor: a valid visitor id is required")
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
            url = await self.receiver.save_media(bytes(data), name=name, mime_type=mime_type)
        except MediaTooLarge as e:
            return refuse(413, f"file too large: {e}")
        kind = "image" if mime_type.startswith("image/") else "file"
        return JSONResponse(
            {"url": url, "name": name, "mime_type": mime_type, "kind": kind}, status_code=201
        )

    async def connect(self, websocket: WebSocket) -> None:
        visitor = websocket.query_params.get("visitor") or ""
        if not _VISITOR.match(visitor):
            visitor = secrets.token_urlsafe(16)  # missing or unusable: the widget keeps this one
        await websocket.accept()
        socket = _Socket(websocket)
        self.sockets[visitor].add(socket)
        try:
            conversation_id = await self.receiver.current_conversation(self.name, visitor)
            await socket.send(
                {
                    "type": "hello",
                    "visitor": visitor,
                    "conversation_id": str(conversation_id) if conversation_id else None,
                }
            )
            query = websocket.query_params
            if query.get("email") or query.get("phone"):  # an identity in the socket's URL
                fields = {k: query.get(k) for k in ("email", "hash", "phone", "phone_hash")}
                await self.identify(socket, {"type": "identify", **fields})
            while True:
                frame = await websocket.receive()
                if frame["type"] == "websocket.disconnect":
                    break
                if frame.get("text") is None:
                    await socket.send({"type": "error", "error": "frames are JSON text"})
                    continue
                await self.handle(socket, visitor, frame["text"])
        except WebSocketDisconnect:
            pass
        finally:
            self.sockets[visitor].discard(socket)
            if not self.sockets[visitor]:
                del self.sockets[visitor]

    async def handle(self, socket: _Socket, visitor: str, raw: str) -> None:
        if len(raw.encode()) > self.options.max_frame_bytes:
            await socket.send({"type": "error", "error": "frame too large"})
            return
        try:
            frame = _frames.validate_python(json.loads(raw))
        except json.JSONDecodeError:
            await socket.send({"type": "error", "error": "frames are JSON objects"})
            return
        except ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'][1:]) or 'type'}: {err['msg']}"
                for err in e.errors()
            )
            await socket.send({"type": "error", "error": f"invalid frame: {problems}"})
            return
        if isinstance(frame, MessageFrame):
            await self.receive_message(socket, visitor, frame)
        elif isinstance(frame, PostbackFrame):
            inbound = Inbound(
                channel=self.name,
                sender_id=visitor,
                text=frame.title or frame.payload,
                postback=frame.payload,
                verified=socket.verified,
            )
            await self.receiver.receive(inbound)
        elif isinstance(frame, ResumeFrame):
            await self.resume(socket, visitor, frame.after)
        elif isinstance(frame, IdentifyFrame):
            await self.identify(socket, frame)
        elif isinstance(frame, TypingFrame):
            conversation_id = await self.receiver.current_conversation(self.name, visitor)
            if conversation_id is not None:
                await self.receiver.publish(
                    Event(
                        type="conversation.typing",
                        conversation_id=conversation_id,
                        data={"sender": "contact", "on": frame.on},
                    )
                )

    async def receive_message(self, socket: _Socket, visitor: str, frame: MessageFrame) -> None:
        async def ack(message_id: int) -> None:
            await socket.send({"type": "ack", "client_id": frame.client_id, "id": str(message_id)})

        inbound = Inbound(
            channel=self.name,
            sender_id=visitor,
            # a resend of the same client_id (after a reconnect) is the same message
            channel_message_id=f"{visitor}:{frame.client_id}" if frame.client_id else None,
            text=frame.text,
            kind=Kind(frame.attachments[0].kind) if frame.attachments else Kind.TEXT,
            attachments=tuple(
                Attachment(kind=Kind(a.kind), url=a.url, name=a.name, mime_type=a.mime_type)
                for a in frame.attachments
            ),
            verified=socket.verified,
        )
        await self.receiver.receive(inbound, on_stored=ack)

    async def identify(self, socket: _Socket, frame: IdentifyFrame | dict[str, Any]) -> None:
        """Take the site's signed identity for this socket's messages, or say why not."""
        try:
            frame = IdentifyFrame.model_validate(frame)
        except ValidationError as e:
            problems = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
            await socket.send({"type": "error", "error": f"invalid identity: {problems}"})
            return
        identity = verified_identity(self.options.identity_secret, frame)
        if isinstance(identity, str):
            await socket.send({"type": "error", "error": identity})
            return
        socket.verified = identity
        await socket.send({"type": "identified", "email": identity.email, "phone": identity.phone})

    async def resume(self, socket: _Socket, visitor: str, after: int | str | None) -> None:
        try:
            after_id = int(after or 0)
        except ValueError:
            after_id = -1
        if not 0 <= after_id <= MAX_MESSAGE_ID:  # beyond the id column: no message has it
            await socket.send({"type": "error", "error": "resume.after must be a message id"})
            return
        for message in await self.receiver.history(self.name, visitor, after_id):
            with contextlib.suppress(WebSocketDisconnect):
                await socket.send(message_frame(message))


async def widget_js() -> FileResponse:
    """`<script src="https://HOST/widget.js" data-channel="web"></script>` on any page."""
    return FileResponse(
        STATIC / "widget.js",
        media_type="application/javascript",
        headers={"cache-control": "public, max-age=300", "access-control-allow-origin": "*"},
    )


async def demo_page() -> FileResponse:
    """A demo shop page with the widget on it."""
    return FileResponse(STATIC / "demo.html", media_type="text/html")
