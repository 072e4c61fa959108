"""The web chat widget's channel: a WebSocket per browser tab (README.md "The chat widget").

    /channels/web/ws?visitor=<id>&token=<token>     (the instance named `web`)
    /channels/web/X/ws?visitor=<id>&token=<token>   (another web instance, named X)

Server frames: hello, ack, message, typing, identified, error. Client frames: message,
postback, resume, typing, identify (frames.py). Every message is stored before it
is acknowledged, and `resume` resends everything after the last id the widget saw, so a
reconnect loses nothing.

A visitor id is not a secret (agents, the inbox and merged customers' views show it), so the
server proves it: `hello` carries `token`, an HMAC of the channel's name and the visitor id
under a key derived from the hub's secret (Receiver.sender_token), and the widget keeps it with
the id. A socket that names a visitor with a conversation but brings no token or another one
is not that visitor: its hello names a new visitor id (with that one's token), followed by an
`error` frame saying why, and the widget starts a new conversation; nothing of the named
visitor's conversation (history, resume, agents' live messages) ever reaches it. A visitor id
with no conversation yet needs no token (a first visit, or an id the site chose) and gets its
token in hello. Only sockets with a proven visitor (or a first visit) are registered for live
messages.

Limits (config.yaml `limits:`, Receiver.limited): per visitor, `widget_frames` (any frame) and
`widget_messages` (message and postback frames): a refused frame gets `{"type": "error",
"error", "retry_after", "client_id"}`, is not stored and not acknowledged, and the widget sends
it again after `retry_after` seconds. `widget_sockets`: open sockets per visitor in this hub
process (each process counts its own). `widget_sockets_per_ip` (off by default): new sockets
per client address. A refused socket gets an `error` frame with `retry_after` (when waiting
helps) and is closed with 1013 (try again later).

A customer's image or PDF is uploaded first (upload.py) with the visitor's token,
then sent as an attachment of a message frame.

A site that knows who its visitor is (logged in) may say so, signed with the channel's
`identity_secret`: `email` and `hash` = hex HMAC-SHA256(secret, email), and/or `phone` (E.164)
and `phone_hash` = HMAC-SHA256(secret, phone), in the socket's query string or an `identify`
frame. The server answers `identified` with what it verified; the socket's later messages carry
it (`Inbound.verified`), so the visitor is one customer with their contacts on other channels.
An unsigned or wrongly signed identity is refused (an `error` frame) and never used.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, JSONResponse
from pydantic import ValidationError

from channels.base import Capabilities, Channel
from channels.common import problems
from channels.web.frames import (
    MAX_MESSAGE_ID,
    VISITOR,
    Frame,
    IdentifyFrame,
    MessageFrame,
    PostbackFrame,
    ResumeFrame,
    TypingFrame,
    message_frame,
    parse_frame,
    verified_identity,
)
from channels.web.options import WebOptions
from channels.web.upload import preflight, receive_file, wait_seconds
from hub.messages import Attachment, Event, Inbound, Kind, Outbound, Verified

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"


def refused(frame: Frame | str | None, wait: float) -> dict[str, Any]:
    """The error frame for a frame refused by a rate limit: when to send it again and which
    it was (a message's client_id, a button's payload)."""
    n = wait_seconds(wait)
    what = "messages" if isinstance(frame, MessageFrame | PostbackFrame) else "frames"
    error: dict[str, Any] = {"type": "error", "error": f"too many {what}: retry in {n} s"}
    error["retry_after"] = n
    if isinstance(frame, MessageFrame):
        error["client_id"] = frame.client_id
    elif isinstance(frame, PostbackFrame):
        error["payload"] = frame.payload
    return error


class _Socket:
    """One open widget connection; sends are serialized so frames never interleave."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.lock = asyncio.Lock()
        self.verified: Verified | None = None  # who the site says the visitor is, signed

    async def send(self, frame: dict[str, Any]) -> None:
        async with self.lock:
            await self.websocket.send_json(frame)


class WebChannel(Channel[WebOptions]):
    type: ClassVar[str] = "web"
    capabilities: ClassVar[Capabilities] = Capabilities(buttons=True, images=True)
    Options = WebOptions

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
        path = f"{self.prefix}/upload"
        router.add_api_route(path, self.upload, methods=["POST"], status_code=201)
        # the widget uploads from the pages of other sites: the browser asks first (CORS)
        router.add_api_route(path, preflight, methods=["OPTIONS"], include_in_schema=False)
        # the embeddable widget and the demo page that embeds it (one set, whatever the number
        # of web instances: the widget picks its instance with data-channel)
        router.add_api_route("/widget.js", widget_js, methods=["GET"], include_in_schema=False)
        router.add_api_route("/", demo_page, methods=["GET"], include_in_schema=False)
        return router

    def body_limits(self) -> dict[str, int]:
        return {f"{self.prefix}/upload": self.options.upload_max_bytes}

    def token(self, visitor: str) -> str:
        """What proves `visitor` (given in its hello)."""
        return self.receiver.sender_token(self.name, visitor)

    def proves(self, visitor: str, token: str | None) -> bool:
        """Whether `token` is the visitor's own."""
        if not token:
            return False
        expected = self.token(visitor).encode()
        return hmac.compare_digest(expected, token.encode("utf-8", "replace"))

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
        file name in `name`, the visitor's `token` once it has a conversation. Answers 201 with
        the attachment to put in a message frame."""
        return await receive_file(self, request)

    async def visitor_of(self, query: Mapping[str, str]) -> tuple[str, int | None, str | None]:
        """The socket's visitor, its conversation, and why it is not the one named (or None):
        the named visitor when the socket proves it (its token) or when that visitor has no
        conversation yet (a first visit); else a new visitor."""
        visitor = query.get("visitor") or ""
        if not VISITOR.match(visitor):  # missing or unusable: the widget keeps the new one
            return secrets.token_urlsafe(16), None, None
        conversation_id = await self.receiver.current_conversation(self.name, visitor)
        if conversation_id is None or self.proves(visitor, query.get("token")):
            return visitor, conversation_id, None
        why = "token: missing or not this visitor's, so this socket is a new visitor"
        return secrets.token_urlsafe(16), None, why

    async def refuse(self, websocket: WebSocket, error: str, wait: float | None) -> None:
        """Turn a socket away: an error frame (with when to try again), then 1013."""
        frame: dict[str, Any] = {"type": "error", "error": error}
        if wait is not None:
            frame["retry_after"] = wait_seconds(wait)
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await websocket.send_json(frame)
            await websocket.close(code=1013, reason=error[:120])

    async def connect(self, websocket: WebSocket) -> None:
        await websocket.accept()
        address = websocket.client.host if websocket.client else ""
        wait = await self.receiver.limited("widget_sockets_per_ip", address)
        if wait is not None:
            n = wait_seconds(wait)
            await self.refuse(
                websocket, f"too many new sockets from this address: retry in {n} s", wait
            )
            return
        query = websocket.query_params
        visitor, conversation_id, why = await self.visitor_of(query)
        cap = self.receiver.cap("widget_sockets")
        if cap is not None and len(self.sockets.get(visitor, ())) >= cap:
            await self.refuse(websocket, f"this visitor already has {cap} sockets open", None)
            return
        socket = _Socket(websocket)
        self.sockets[visitor].add(socket)  # before hello: no live message falls between
        try:
            await socket.send(
                {
                    "type": "hello",
                    "visitor": visitor,
                    "conversation_id": str(conversation_id) if conversation_id else None,
                    "token": self.token(visitor),
                }
            )
            if why:
                await socket.send({"type": "error", "error": why})
            if query.get("email") or query.get("phone"):  # an identity in the socket's URL
                fields = {k: query.get(k) for k in ("email", "hash", "phone", "phone_hash")}
                await self.identify(socket, {"type": "identify", **fields})
            while True:
                frame = await websocket.receive()
                if frame["type"] == "websocket.disconnect":
                    break
                await self.handle(socket, visitor, frame.get("text"))
        except WebSocketDisconnect:
            pass
        finally:
            self.sockets[visitor].discard(socket)
            if not self.sockets[visitor]:
                del self.sockets[visitor]

    async def handle(self, socket: _Socket, visitor: str, raw: str | None) -> None:
        frame = parse_frame(raw, self.options.max_frame_bytes) if raw is not None else None
        key = f"{self.name}:{visitor}"
        wait = await self.receiver.limited("widget_frames", key)
        if wait is None and isinstance(frame, MessageFrame | PostbackFrame):
            wait = await self.receiver.limited("widget_messages", key)
        if wait is not None:  # refused: not stored, not acknowledged; the widget sends it again
            await socket.send(refused(frame, wait))
            return
        if frame is None or isinstance(frame, str):
            await socket.send({"type": "error", "error": frame or "frames are JSON text"})
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
            wrong = problems(e, whole="type")
            await socket.send({"type": "error", "error": f"invalid identity: {wrong}"})
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
