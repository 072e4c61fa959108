"""WeChat official account (公众号) channel (DESIGN.md sections 4 and 8).

    GET  /channels/wechat/{name}   URL verification: `echostr` echoed when `signature` is right
    POST /channels/wechat/{name}   messages and events, plaintext or safe mode (AES)

WeChat waits 5 seconds for the HTTP answer to a customer's message, and sends it again (twice)
when none comes. That answer may carry one message, the *passive reply*; everything else goes
through the customer-service API (POST /cgi-bin/message/custom/send), which reaches a customer
for 48 hours after they last wrote.

How the two ways meet, so that nothing is sent twice and nothing is lost: the channel declares
`inline_replies=False`, so every reply is stored `queued` and delivered by the outbox through
`send()`, as on every other channel. While a customer's request waits for its answer (at most
`reply_within` seconds, 4 by default), it holds a `_Window`: the first bot message `send()` is
given for that customer goes out in the HTTP response, and `send()` returns only once that
response has been written, so the outbox marks it sent and the customer's next message follows
it in order. Later replies, replies that come after the window closed (the request then answers
`success` once the message is stored, 503 if it can't be: WeChat sends it again), agents'
messages and texts too long for one message go through the API. Each message passes `send()`
once and leaves by exactly one way. (Answering inline instead would leave the late replies to
be pushed by hand, outside the outbox's retries and delivery status.)

WeChat's retries of one message (same MsgId; events: same FromUserName, CreateTime and Event)
are one message: the hub stores it once, and a retry that comes while the first is still being
handled here waits for it to be stored and answers `success`.

Replays are refused (403, channels/replay.py): a `timestamp` more than `max_age` seconds (300)
from the hub's clock, and a `nonce` that came with another message within that window (the
plaintext signature covers the token, timestamp and nonce, not the body). The same request
again is WeChat's retry, answered as above. The nonces are kept in the `token_cache` Redis when
it is one (every hub process sees them), else in the process.

Events that are not the customer speaking (unsubscribe, a menu link opened, location reports,
notifications) are not answered: the Receiver port can store a message only with a bot turn, so
they are not stored either; an unsubscribe is published to the inbox as `contact.unsubscribed`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import builtins
import contextlib
import functools
import hmac
import json
import logging
import math
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, ClassVar
from xml.parsers.expat import ExpatError

import httpx
import xmltodict
from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.types import Receive, Scope, Send
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException
from wechatpy.replies import TextReply
from wechatpy.utils import WeChatSigner

from channels import stored as handed_over
from channels.base import Capabilities, Channel, ChannelConfigError, DeliveryError
from channels.replay import MemoryNonces, RedisNonces, Replay, Replayed
from channels.wechat_tokens import MemoryTokenCache, RedisTokenCache, TokenCache
from hub.messages import Attachment, Event, Inbound, Kind, Outbound, Sender
from hub.ports import Unavailable

log = logging.getLogger(__name__)

MAX_TEXT_BYTES = 2048  # one text message, passive or through the API
TOKEN_ERRCODES = frozenset({40001, 40014, 42001})  # the access_token is invalid or expired
RETRY_AFTER = {-1: 1.0, 45011: 60.0}  # "system busy", "API minute quota reached"
HINTS = {
    40013: "app_id is wrong",
    40125: "app_secret is wrong",
    40164: "the hub's IP address is not on the account's IP whitelist",
    43004: "the customer does not follow the account",
    45015: "the customer last wrote more than 48 hours ago; the customer-service API can't "
    "reach them until they write again",
    45047: "too many customer-service messages since the customer last wrote",
}
SUCCESS = "success"  # WeChat's "received, no passive reply"
CARRY_TIMEOUT = 30.0  # how long send() waits for a passive reply's response to be written
RECENT = 1000  # message ids remembered to recognize WeChat's retries
MEDIA_KINDS = {
    "image": Kind.IMAGE,
    "voice": Kind.AUDIO,
    "video": Kind.VIDEO,
    "shortvideo": Kind.VIDEO,
}
GREETING_EVENTS = frozenset({"subscribe", "subscribe_scan", "subscribe_scan_product", "scan"})
# The elements the hub reads: plain text in every message and event WeChat sends (others, such
# as ScanCodeInfo or SendPicsInfo, nest elements).
FLAT_FIELDS = (
    "ToUserName", "FromUserName", "CreateTime", "MsgType", "MsgId", "Content", "MediaId",
    "PicUrl", "Format", "Recognition", "ThumbMediaId", "Location_X", "Location_Y", "Scale",
    "Label", "Title", "Description", "Url", "Event", "EventKey", "Ticket", "Latitude",
    "Longitude", "Precision",
)  # fmt: skip
_DOCTYPE = re.compile(r"<!(DOCTYPE|ENTITY)", re.IGNORECASE)


class WeChatOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = ""  # the Token set on mp.weixin.qq.com: WeChat signs every request with it
    app_id: str = ""
    app_secret: str = ""
    encoding_aes_key: str | None = None  # EncodingAESKey: safe mode; unset: plaintext only
    api_base: str = "https://api.weixin.qq.com"
    reply_within: float = Field(default=4.0, ge=0, lt=5)  # passive reply budget; 0: API only
    greeting: str | None = "/greet"  # the payload a follow or a QR-code scan sends to the bot
    token_cache: str = "memory"  # or a redis:// URL: one access_token (and nonce memory) for all
    max_age: int = Field(default=300, ge=1)  # seconds a request's timestamp may be off (replays)
    public_url: str | None = None  # the hub's public URL, for links to files under /media
    api_timeout: float = Field(default=10.0, gt=0)

    @field_validator("encoding_aes_key")
    @classmethod
    def _aes_key(cls, value: str | None) -> str | None:
        if not value:
            return None
        try:
            key = base64.b64decode(value + "=", validate=True)
        except binascii.Error:
            key = b""
        if len(value) != 43 or len(key) != 32:
            raise ValueError("must be the 43-character EncodingAESKey from mp.weixin.qq.com")
        return value

    @field_validator("token_cache")
    @classmethod
    def _cache(cls, value: str) -> str:
        if value != "memory" and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be 'memory' or a redis:// URL")
        return value


# ---- requests from WeChat ----------------------------------------------------------------


class Refused(Exception):
    """Not from WeChat for this account: a wrong signature or app id (403)."""


class Malformed(Exception):
    """A request that can't be read (400)."""


def signature(*parts: str) -> str:
    """WeChat's signature: SHA-1 of the parts sorted and joined (token, timestamp, nonce, and
    in safe mode the Encrypt text)."""
    signer = WeChatSigner()
    signer.add_data(*parts)
    return str(signer.signature)


def check_signature(given: str | None, *parts: str) -> None:
    # compared in constant time (wechatpy's check_signature uses !=)
    if not given or not hmac.compare_digest(given.encode(), signature(*parts).encode()):
        raise Refused("wrong signature")


@dataclass(frozen=True)
class Envelope:
    """A request's message as XML, and how to seal the answer (encrypted like the request)."""

    xml: str
    encrypted: bool
    nonce: str


def parse(xml: str) -> Any:
    """The wechatpy message or event; Malformed when the XML isn't one."""
    if _DOCTYPE.search(xml):  # WeChat never sends one; entity expansion is an attack
        raise Malformed("XML with a document type declaration is not accepted")
    try:
        message = parse_message(xml)
    except (ExpatError, KeyError, TypeError, AttributeError, ValueError) as e:
        raise Malformed(f"not a WeChat message: {type(e).__name__}: {e}") from e
    if message is None or not isinstance(message.source, str) or not message.source:
        raise Malformed("not a WeChat message: no FromUserName")
    for name in FLAT_FIELDS:  # a repeated or nested element of these is no message of WeChat's
        if not isinstance(message._data.get(name, ""), str | None):
            raise Malformed(f"not a WeChat message: <{name}> is not a single plain value")
    return message


def escape_cdata(text: str) -> str:
    """wechatpy writes text into CDATA as is: a "]]>" in it would end the section early."""
    return text.replace("]]>", "]]]]><![CDATA[>")


def split_text(text: str, limit: int = MAX_TEXT_BYTES) -> list[str]:
    """Pieces of at most `limit` UTF-8 bytes, cut after a line where one fits."""
    pieces: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        while len(line.encode()) > limit:  # a line alone too long: cut it by characters
            head = line.encode()[:limit].decode(errors="ignore")
            if current:
                pieces.append(current)
                current = ""
            pieces.append(head)
            line = line[len(head) :]
        if len((current + line).encode()) > limit:
            pieces.append(current)
            current = ""
        current += line
    if current:
        pieces.append(current)
    return [p.rstrip("\n") for p in pieces if p.strip()]


# ---- normalizing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Incoming:
    """One WeChat message or event as the hub takes it."""

    inbound: Inbound
    # False: not the customer speaking (unsubscribe, a menu link opened, a location report,
    # notifications to the account): nothing to answer
    conversational: bool
    media_id: str | None = None  # a file to fetch through the API before it reaches the hub


def channel_message_id(message: Any) -> str:
    """The MsgId; events have none, and WeChat's retries of one keep its sender, CreateTime
    and Event."""
    fields = message._data  # the XML's elements as wechatpy read them
    msg_id = fields.get("MsgId")
    if fields.get("MsgType") != "event" and isinstance(msg_id, str) and msg_id:
        return msg_id
    what = fields.get("Event") or fields.get("MsgType")
    return f"{message.source}:{fields.get('CreateTime')}:{what}"


def normalize(message: Any, channel: str, greeting: str | None) -> Incoming:
    """A parsed WeChat message as an Inbound. Raises ValueError on unreadable numbers."""
    new = functools.partial(
        Inbound,
        channel=channel,
        sender_id=message.source,
        channel_message_id=channel_message_id(message),
    )
    kind = message.type
    if kind == "text":
        return Incoming(new(text=message.content or ""), True)
    if kind in MEDIA_KINDS:
        media = {
            "media_id": message.media_id,
            "pic_url": getattr(message, "image", None),  # each kind has some of these
            "format": getattr(message, "format", None),
            "thumb_media_id": getattr(message, "thumb_media_id", None),
        }
        media = {k: v for k, v in media.items() if v}
        text = (message.recognition or "") if kind == "voice" else ""  # speech recognition
        inbound = new(kind=MEDIA_KINDS[kind], text=text, payload={"media": media})
        return Incoming(inbound, True, media_id=message.media_id or None)
    if kind == "location":
        try:
            lat, lng = float(message.location_x), float(message.location_y)
        except TypeError as e:  # Location_X or Location_Y missing, or not a plain value
            raise ValueError(f"a location without its coordinates: {e}") from e
        if not (math.isfinite(lat) and math.isfinite(lng)):  # NaN can't be stored as JSON
            raise ValueError(f"a location at {lat}, {lng}")
        place = {"latitude": lat, "longitude": lng, "label": message.label, "scale": message.scale}
        text = message.label or f"{lat}, {lng}"
        return Incoming(new(kind=Kind.LOCATION, text=text, payload={"location": place}), True)
    if kind == "link":
        link = {"title": message.title, "description": message.description, "url": message.url}
        text = "\n".join(v for v in (message.title, message.url) if v)
        return Incoming(new(text=text, payload={"link": link}), True)
    if kind == "event":
        return normalize_event(message, new, greeting)
    raw_type = str(message._data.get("MsgType"))
    # a kind of message this channel doesn't know (wechatpy says "unknown"): kept, text-less
    conversational = raw_type != "event" and not raw_type.startswith("device_")
    return Incoming(
        new(kind=Kind.EVENT if not conversational else Kind.TEXT, payload={"msg_type": raw_type}),
        conversational,
    )


def normalize_event(message: Any, new: Callable[..., Inbound], greeting: str | None) -> Incoming:
    """A follow or QR-code scan greets (the `greeting` payload); a menu click is a postback
    when its key is a payload ("/human") and text otherwise; the rest is not conversation."""
    event = message.event  # lowercased by wechatpy; subscribe + qrscene_ is subscribe_scan
    details: dict[str, Any] = {"type": event}
    key = message._data.get("EventKey")
    if isinstance(key, str) and key:
        details["key"] = key
    if event in ("subscribe_scan", "scan"):
        details.update(scene=message.scene_id, ticket=message.ticket)
    if event == "location":
        place = {
            "latitude": message.latitude,
            "longitude": message.longitude,
            "precision": message.precision,
        }
        return Incoming(
            new(kind=Kind.LOCATION, payload={"event": details, "location": place}), False
        )
    if event in GREETING_EVENTS and greeting:
        return Incoming(new(kind=Kind.EVENT, postback=greeting, payload={"event": details}), True)
    if event == "click" and isinstance(key, str) and key:
        payload = key if key.startswith("/") else None
        inbound = new(
            kind=Kind.EVENT,
            text="" if payload else key,
            postback=payload,
            payload={"event": details},
        )
        return Incoming(inbound, True)
    return Incoming(new(kind=Kind.EVENT, payload={"event": details}), False)


# ---- the official account's API ----------------------------------------------------------


class WeChatError(DeliveryError):
    """An errcode from the API, with WeChat's errmsg (what the agent sees on a failed send)."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        hint = HINTS.get(errcode)
        text = f"WeChat errcode {errcode}: {errmsg}" + (f" ({hint})" if hint else "")
        super().__init__(
            text, retryable=errcode in RETRY_AFTER, retry_after=RETRY_AFTER.get(errcode)
        )
        self.errcode, self.errmsg = errcode, errmsg


class AccessToken:
    """The account's access_token: fetched once and shared by every call, fetched again
    `margin` seconds before it expires (WeChat keeps the old one valid 5 more minutes) or when
    WeChat rejects it. One fetch at a time: a fetch replaces the token every caller holds."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[tuple[str, float]]],
        cache: TokenCache,
        margin: float = 300.0,
    ) -> None:
        self.fetch, self.cache, self.margin = fetch, cache, margin
        self._lock: asyncio.Lock | None = None

    async def get(self) -> str:
        token = await self.cache.get()
        if token:
            return token
        self._lock = self._lock or asyncio.Lock()
        async with self._lock:
            token = await self.cache.get()  # fetched while this call waited
            if token:
                return token
            token, expires_in = await self.fetch()
            await self.cache.put(token, max(1.0, expires_in - self.margin))
            return token

    async def refresh(self, rejected: str) -> str:
        await self.cache.drop(rejected)
        return await self.get()


@dataclass(frozen=True)
class Media:
    data: bytes
    name: str | None
    mime_type: str | None


def errcode_of(response: httpx.Response) -> tuple[int, str] | None:
    """WeChat's (errcode, errmsg) when the answer is a JSON error; None for success or a file."""
    if not response.content.startswith(b"{"):
        return None
    try:
        data = response.json()
    except ValueError:
        return None
    code = data.get("errcode", 0) if isinstance(data, dict) else 0
    return (int(code), str(data.get("errmsg", ""))) if code else None


class WeChatApi:
    """The API calls the channel makes, with the access_token added and renewed once when
    WeChat rejects it. Errors are DeliveryErrors that never show the token or the secret."""

    def __init__(self, options: WeChatOptions, cache: TokenCache) -> None:
        self.options = options
        self.base = options.api_base.rstrip("/")
        self.tokens = AccessToken(self.fetch_token, cache)
        self._http: httpx.AsyncClient | None = None

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.options.api_timeout)
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        await self.tokens.cache.close()

    async def request(
        self, method: str, path: str, params: dict[str, str], body: bytes | None = None
    ) -> httpx.Response:
        url = path if path.startswith("http") else self.base + path
        where = f"WeChat API {path.split('?')[0]}"  # never the query: it holds the token
        try:
            response = await self.http.request(
                method,
                url,
                params=params,
                content=body,
                headers={"content-type": "application/json; charset=utf-8"} if body else None,
            )
        except httpx.HTTPError as e:
            raise DeliveryError(f"{where}: {type(e).__name__}") from e
        if response.status_code >= 400:
            status = response.status_code
            raise DeliveryError(
                f"{where} answered HTTP {status}", retryable=status >= 500 or status == 429
            )
        return response

    async def fetch_token(self) -> tuple[str, float]:
        params = {
            "grant_type": "client_credential",
            "appid": self.options.app_id,
            "secret": self.options.app_secret,
        }
        response = await self.request("GET", "/cgi-bin/token", params)
        error = errcode_of(response)
        if error:
            raise WeChatError(*error)
        data = response.json()
        return str(data["access_token"]), float(data.get("expires_in", 7200))

    async def call(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> httpx.Response:
        token = await self.tokens.get()
        response = await self.request(method, path, {**(params or {}), "access_token": token}, body)
        error = errcode_of(response)
        if error and error[0] in TOKEN_ERRCODES:  # renewed, and the call made once more
            token = await self.tokens.refresh(token)
            response = await self.request(
                method, path, {**(params or {}), "access_token": token}, body
            )
            error = errcode_of(response)
        if error:
            raise WeChatError(*error)
        return response

    async def send_text(self, openid: str, text: str) -> None:
        message = {"touser": openid, "msgtype": "text", "text": {"content": text}}
        # raw UTF-8: WeChat shows \\uXXXX escapes literally
        body = json.dumps(message, ensure_ascii=False).encode()
        await self.call("POST", "/cgi-bin/message/custom/send", body=body)

    async def media(self, media_id: str) -> Media:
        """A file the customer sent (temporary media, kept 3 days by WeChat)."""
        response = await self.call("GET", "/cgi-bin/media/get", {"media_id": media_id})
        if response.content.startswith(b"{"):  # a video: WeChat answers with its URL
            video_url = response.json().get("video_url")
            if not video_url:
                raise DeliveryError("WeChat API /cgi-bin/media/get: no file in the answer", False)
            response = await self.request("GET", str(video_url), {})
        found = re.search(r'filename="?([^";]+)', response.headers.get("content-disposition", ""))
        mime = response.headers.get("content-type", "").split(";")[0].strip() or None
        return Media(response.content, found.group(1) if found else media_id, mime)


class _RedactSecrets(logging.Filter):
    """httpx logs each request's URL at INFO; the token API's has the app secret in it."""

    _SECRET = re.compile(r"((?:secret|access_token)=)[^&\s\"]+")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "secret=" in message or "access_token=" in message:
            record.msg, record.args = self._SECRET.sub(r"\1***", message), ()
        return True


_redact = _RedactSecrets()


# ---- the channel ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Handling:
    """A customer message on its way into the hub: the work, and whether it is stored yet."""

    task: asyncio.Task[list[Outbound]]
    stored: asyncio.Future[None]


class _Window:
    """A customer's request waiting for its answer, which can carry one message."""

    def __init__(self) -> None:
        self.open = True
        self.message: Outbound | None = None
        self.text = ""
        self.filled = asyncio.Event()
        self.carried: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def take(self, message: Outbound, text: str) -> bool:
        if not self.open or self.message is not None:
            return False
        self.message, self.text = message, text
        self.filled.set()
        return True

    def settle(self, carried: bool) -> None:
        if not self.carried.done():
            self.carried.set_result(carried)


class _PassiveReply(Response):
    """The reply XML; its window learns whether it was written (send() waits for that)."""

    media_type = "application/xml"

    def __init__(self, content: str, window: _Window) -> None:
        super().__init__(content)
        self.window = window

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        written = False
        try:
            await super().__call__(scope, receive, send)
            written = True
        finally:
            self.window.settle(written)


class WeChatChannel(Channel):
    type: ClassVar[str] = "wechat"
    # `success` only once the message is stored, within WeChat's 5 s (else it is sent again)
    STORE_WAIT_SECONDS = 4.5
    capabilities: ClassVar[Capabilities] = Capabilities(
        buttons=False,  # the hub sends numbered options instead
        images=False,  # an image goes out as a link in the text
        max_text_length=MAX_TEXT_BYTES // 3,  # Chinese characters in one message; longer: split
    )
    Options: ClassVar[builtins.type[BaseModel]] = WeChatOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        o: WeChatOptions = self.options
        self.crypto = (
            WeChatCrypto(o.token, o.encoding_aes_key, o.app_id) if o.encoding_aes_key else None
        )
        shared = RedisTokenCache(o.token_cache, o.app_id) if o.token_cache != "memory" else None
        self.api = WeChatApi(o, shared or MemoryTokenCache())
        nonces = RedisNonces(shared.redis, f"kefu:wechat:{o.app_id}:nonce:") if shared else None
        self.replay = Replay(o.max_age, nonces or MemoryNonces())  # timestamps, nonces seen
        self._windows: dict[str, list[_Window]] = {}  # by customer (openid), oldest first
        self._recent: OrderedDict[str, _Handling] = OrderedDict()
        self._tasks: set[asyncio.Task[list[Outbound]]] = set()
        self._pieces_sent: dict[int, int] = {}  # a long message's pieces already sent
        logging.getLogger("httpx").addFilter(_redact)  # added once however many instances

    @property
    def path(self) -> str:
        return f"/channels/wechat/{self.name}"

    def router(self) -> APIRouter:
        router = APIRouter(tags=[f"channel {self.name}"])
        router.add_api_route(self.path, self.verify_url, methods=["GET"], response_model=None)
        router.add_api_route(self.path, self.webhook, methods=["POST"], response_model=None)
        return router

    async def start(self) -> None:
        missing = [k for k in ("token", "app_id", "app_secret") if not getattr(self.options, k)]
        if missing:
            raise ChannelConfigError(f"channel {self.name!r} (wechat): set {', '.join(missing)}")

    async def stop(self) -> None:
        if self._tasks:  # messages still on their way into the hub
            await asyncio.wait(self._tasks, timeout=5)
        await self.api.close()

    # ---- from WeChat ---------------------------------------------------------------------

    async def verify_url(self, request: Request) -> Response:
        """The check mp.weixin.qq.com makes when the server URL is saved."""
        q = request.query_params
        try:
            self._configured()
            check_signature(
                q.get("signature"), self.options.token, q.get("timestamp", ""), q.get("nonce", "")
            )
            self.replay.fresh(q.get("timestamp", ""))
        except (Refused, Replayed) as e:
            return PlainTextResponse(str(e), status_code=403)
        return PlainTextResponse(q.get("echostr", ""))

    async def webhook(self, request: Request) -> Response:
        try:
            q = request.query_params
            envelope = self.unseal(q, await request.body())
            await self.replay.admit(q.get("timestamp", ""), q.get("nonce", ""), envelope.xml)
            message = parse(envelope.xml)
            incoming = normalize(message, self.name, self.options.greeting)
        except (Refused, Replayed) as e:
            log.warning("wechat %s: request refused: %s", self.name, e)
            return PlainTextResponse(str(e), status_code=403)
        except Unavailable as e:  # the nonce memory (Redis): WeChat sends the request again
            return PlainTextResponse(str(e), status_code=503)
        except (Malformed, ValueError) as e:
            return PlainTextResponse(f"bad request: {e}", status_code=400)
        if not incoming.conversational:
            await self.note(incoming.inbound)
            return PlainTextResponse(SUCCESS)
        return await self.answer(incoming, lambda text: self.seal(message, envelope, text))

    def _configured(self) -> None:
        if not self.options.token:  # an empty token would make every signature guessable
            raise Refused(f"channel {self.name!r} has no token configured")

    def unseal(self, params: Any, body: bytes) -> Envelope:
        """The request's message XML, its signature checked (and decrypted in safe mode)."""
        self._configured()
        token, timestamp, nonce = (
            self.options.token,
            params.get("timestamp", ""),
            params.get("nonce", ""),
        )
        try:
            text = body.decode()
        except UnicodeDecodeError as e:
            raise Malformed("the body is not UTF-8") from e
        if params.get("encrypt_type") != "aes" or self.crypto is None:
            check_signature(params.get("signature"), token, timestamp, nonce)
            return Envelope(text, encrypted=False, nonce=nonce)
        encrypt = encrypted_part(text)
        msg_signature = params.get("msg_signature")
        check_signature(msg_signature, token, timestamp, nonce, encrypt)
        try:
            xml = self.crypto.decrypt_message({"Encrypt": encrypt}, msg_signature, timestamp, nonce)
        except InvalidAppIdException as e:
            raise Refused("the message is for another app_id") from e
        except Exception as e:  # bad base64, padding or length: cryptography's and struct's errors
            raise Malformed(f"the message can't be decrypted ({type(e).__name__})") from e
        return Envelope(str(xml), encrypted=True, nonce=nonce)

    def seal(self, message: Any, envelope: Envelope, text: str) -> str:
        """A passive text reply, encrypted when the request was."""
        reply = TextReply(source=message.target, target=message.source, content=escape_cdata(text))
        xml = reply.render()
        if envelope.encrypted and self.crypto is not None:
            return str(self.crypto.encrypt_message(xml, envelope.nonce))
        return str(xml)

    async def answer(self, incoming: Incoming, seal: Callable[[str], str]) -> Response:
        """Hand the message to the hub and answer WeChat within `reply_within` seconds: with
        the first message send() is given for this customer meanwhile, else `success`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.reply_within
        stored_by = loop.time() + self.STORE_WAIT_SECONDS
        key = str(incoming.inbound.channel_message_id)
        earlier = self._recent.get(key)
        if earlier is not None:  # WeChat's retry of a message handled (or being handled) here
            return await self._acknowledge(earlier, stored_by)
        openid = incoming.inbound.sender_id
        window = self._open(openid) if self.options.reply_within > 0 else None
        handling = self._hand_over(key, self._take(incoming))
        response: Response = PlainTextResponse(SUCCESS)
        try:
            await self._wait(handling.task, window, deadline)
            if window is not None and window.message is not None:
                response = _PassiveReply(seal(window.text), window)
            else:
                response = await self._acknowledge(handling, stored_by)
        finally:
            if window is not None:
                self._close(openid, window)
                if not isinstance(response, _PassiveReply):
                    window.settle(False)  # what it took goes through the API
        return response

    async def _acknowledge(self, handling: _Handling, stored_by: float) -> Response:
        """`success` once the message is stored; otherwise an error, so that WeChat sends it
        again (three times in all, 5 s apart): the hub could not store it (its database
        down), the work failed, or it is not stored yet (the retry waits for this work)."""
        wait = max(0.0, stored_by - asyncio.get_running_loop().time())
        try:
            if await handed_over.until_stored(handling.task, handling.stored, wait):
                return PlainTextResponse(SUCCESS)
        except Unavailable:
            return PlainTextResponse("the hub can't store messages now", status_code=503)
        task = handling.task
        if not task.done():
            return PlainTextResponse("the message is not stored yet", status_code=503)
        if not task.cancelled() and task.exception() is not None:
            return PlainTextResponse("the hub could not take the message", status_code=500)
        return PlainTextResponse(SUCCESS)

    async def _wait(
        self, task: asyncio.Task[list[Outbound]], window: _Window | None, deadline: float
    ) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.wait({task}, timeout=max(0.0, deadline - loop.time()))
        if window is None or window.message is not None or not task.done():
            return
        if not task.cancelled() and task.exception() is None and task.result():
            # replies are on their way through the outbox: the first may still make it
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(window.filled.wait(), max(0.0, deadline - loop.time()))

    def _open(self, openid: str) -> _Window:
        window = _Window()
        self._windows.setdefault(openid, []).append(window)
        return window

    def _close(self, openid: str, window: _Window) -> None:
        window.open = False
        windows = self._windows.get(openid, [])
        if window in windows:
            windows.remove(window)
        if not windows:
            self._windows.pop(openid, None)

    def _hand_over(self, key: str, work: Coroutine[Any, Any, list[Outbound]]) -> _Handling:
        """Run it to the end even when WeChat gets `success` first."""
        task, stored = handed_over.start(work)
        handling = _Handling(task, stored)
        self._tasks.add(task)
        self._recent[key] = handling
        while len(self._recent) > RECENT:
            self._recent.popitem(last=False)

        def done(task: asyncio.Task[list[Outbound]]) -> None:
            self._tasks.discard(task)
            if task.cancelled() or task.exception() is None:
                return
            if self._recent.get(key) is handling:
                del self._recent[key]  # a retry is handled afresh
            log.error("wechat %s: message %s failed", self.name, key, exc_info=task.exception())

        task.add_done_callback(done)
        return handling

    async def _take(self, incoming: Incoming) -> list[Outbound]:
        inbound = incoming.inbound
        if incoming.media_id:
            inbound = await self._with_media(inbound, incoming.media_id)
        return await self.receiver.receive(inbound, on_stored=handed_over.mark_stored)

    async def _with_media(self, inbound: Inbound, media_id: str) -> Inbound:
        """The customer's file, stored by the hub and attached. One that can't be fetched or
        kept leaves a note instead, and the message still reaches the hub."""
        try:
            media = await self.api.media(media_id)
            url = await self.receiver.save_media(
                media.data, name=media.name, mime_type=media.mime_type
            )
        except Unavailable:
            raise
        except Exception as e:  # DeliveryError, MediaTooLarge, an answer that isn't WeChat's
            log.warning("wechat %s: %s %s not kept: %s", self.name, inbound.kind, media_id, e)
            payload = {**inbound.payload, "media_error": str(e)}
            return inbound.model_copy(
                update={
                    "text": inbound.text or f"[{inbound.kind} not kept: {e}]",
                    "payload": payload,
                }
            )
        attachment = Attachment(
            kind=inbound.kind, url=url, name=media.name, mime_type=media.mime_type
        )
        return inbound.model_copy(update={"attachments": (attachment,)})

    async def note(self, inbound: Inbound) -> None:
        """An event that is not the customer speaking. It is not stored: the Receiver port
        stores a message only with a bot turn, which an unfollow or a location report must not
        get. An unsubscribe is told to the inbox."""
        event = inbound.payload.get("event", {}).get("type")
        log.info("wechat %s: event %s from %s", self.name, event, inbound.sender_id)
        if event != "unsubscribe":
            return
        conversation_id = await self.receiver.current_conversation(self.name, inbound.sender_id)
        if conversation_id is not None:
            data = {"channel": self.name, "sender_id": inbound.sender_id}
            await self.receiver.publish(
                Event(type="contact.unsubscribed", conversation_id=conversation_id, data=data)
            )

    # ---- to WeChat -----------------------------------------------------------------------

    async def send(self, message: Outbound) -> None:
        """In the HTTP response of the customer's waiting request when there is one (a bot or
        hub message that fits in one text), else through the customer-service API."""
        pieces = split_text(self.render(message))
        if not pieces:
            return
        if (
            len(pieces) == 1
            and message.sender != Sender.AGENT
            and await self._carry(message, pieces[0])
        ):
            return
        first = self._pieces_sent.get(message.message_id, 0)  # a retry goes on where it stopped
        try:
            for i, piece in enumerate(pieces[first:], first):
                await self.api.send_text(message.recipient_id, piece)
                self._pieces_sent[message.message_id] = i + 1
        except DeliveryError as e:
            if not e.retryable:
                self._pieces_sent.pop(message.message_id, None)
            raise
        self._pieces_sent.pop(message.message_id, None)

    def render(self, message: Outbound) -> str:
        """The text, and a link to each attachment (files are not uploaded to WeChat)."""
        links = [self._absolute(a.url) for a in message.attachments]
        return "\n".join(t for t in (message.text, *links) if t)

    def _absolute(self, url: str) -> str:
        base = self.options.public_url
        return base.rstrip("/") + url if base and url.startswith("/") else url

    async def _carry(self, message: Outbound, text: str) -> bool:
        """Give the message to the customer's waiting request; True once its response (the
        passive reply) has been written."""
        windows = self._windows.get(message.recipient_id, [])
        window = next((w for w in windows if w.take(message, text)), None)
        if window is None:
            return False
        try:
            return await asyncio.wait_for(asyncio.shield(window.carried), CARRY_TIMEOUT)
        except TimeoutError:
            return False


def encrypted_part(xml: str) -> str:
    """The <Encrypt> text of a safe-mode request."""
    if _DOCTYPE.search(xml):
        raise Malformed("XML with a document type declaration is not accepted")
    try:
        fields = xmltodict.parse(xml).get("xml")
    except ExpatError as e:
        raise Malformed(f"not XML: {e}") from e
    encrypt = fields.get("Encrypt") if isinstance(fields, dict) else None
    if not isinstance(encrypt, str) or not encrypt:
        raise Malformed("a safe-mode message without <Encrypt>")
    return encrypt
