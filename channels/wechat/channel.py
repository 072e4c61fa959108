"""WeChat official account (公众号) channel (docs/channels/wechat.md).

    GET  /channels/wechat/{name}   URL verification: `echostr` echoed when `signature` is right
    POST /channels/wechat/{name}   messages and events, plaintext or safe mode (AES)

WeChat waits 5 seconds for the HTTP answer to a customer's message, and sends it again (twice)
when none comes. That answer may carry one message, the *passive reply*; everything else goes
through the customer-service API (POST /cgi-bin/message/custom/send), which reaches a customer
for 48 hours after they last wrote.

How the two ways meet, so that nothing is sent twice and nothing is lost: the channel declares
`inline_replies=False`, so every reply is stored `queued` and delivered by the outbox through
`send()`, as on every other channel. While a customer's request waits for its answer (at most
`reply_within` seconds, 4 by default), it holds a window (passive.py): the first bot message
`send()` is given for that customer goes out in the HTTP response, and `send()` returns only
once that response has been written, so the outbox marks it sent and the customer's next
message follows it in order. Later replies, replies that come after the window closed (the
request then answers `success` once the message is stored, 503 if it can't be: WeChat sends
it again), agents' messages and texts too long for one message go through the API. Each
message passes `send()` once and leaves by exactly one way. (Answering inline instead would
leave the late replies to be pushed by hand, outside the outbox's retries and delivery status.)

WeChat's retries of one message (same MsgId; events: same FromUserName, CreateTime and Event)
are one message: the hub stores it once, and a retry that comes while the first is still being
handled here waits for it to be stored and answers `success`.

Replays are refused (403, replay.py): a `timestamp` more than `max_age` seconds (300) from the
hub's clock, and a `nonce` that came with another message within that window (the plaintext
signature covers the token, timestamp and nonce, not the body). The same request
again is WeChat's retry, answered as above. The nonces are kept in the `token_cache` Redis when
it is one (every hub process sees them), else in the process.

Events that are not the customer speaking (unsubscribe, a menu link opened, location reports,
notifications) are not answered: the Receiver port can store a message only with a bot turn, so
they are not stored either; an unsubscribe is published to the inbox as `contact.unsubscribed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, ClassVar

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from wechatpy.crypto import WeChatCrypto

from channels import acknowledge
from channels.base import Capabilities, Channel, ChannelConfigError, DeliveryError
from channels.wechat import wire
from channels.wechat.api import WeChatApi, redact_secrets
from channels.wechat.inbound import Incoming, normalize
from channels.wechat.options import WeChatOptions
from channels.wechat.passive import PassiveReply, Window, Windows
from channels.wechat.replay import MemoryNonces, RedisNonces, Replay, Replayed
from channels.wechat.tokens import MemoryTokenCache, RedisTokenCache
from channels.wechat.wire import (
    MAX_TEXT_BYTES,
    Envelope,
    Malformed,
    Refused,
    check_signature,
    parse,
    split_text,
)
from hub.messages import Attachment, Event, Inbound, Outbound, Sender
from hub.ports import Unavailable

log = logging.getLogger(__name__)

SUCCESS = "success"  # WeChat's "received, no passive reply"
RECENT = 1000  # message ids remembered to recognize WeChat's retries


@dataclass(frozen=True)
class _Handling:
    """A customer message on its way into the hub: the work, and whether it is stored yet."""

    task: asyncio.Task[list[Outbound]]
    stored: asyncio.Future[None]


class WeChatChannel(Channel[WeChatOptions]):
    type: ClassVar[str] = "wechat"
    # `success` only once the message is stored, within WeChat's 5 s (else it is sent again)
    STORE_WAIT_SECONDS = 4.5
    capabilities: ClassVar[Capabilities] = Capabilities(
        buttons=False,  # the hub sends numbered options instead
        images=False,  # an image goes out as a link in the text
        max_text_length=MAX_TEXT_BYTES // 3,  # Chinese characters in one message; longer: split
    )
    Options = WeChatOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        o = self.options
        self.crypto = (
            WeChatCrypto(o.token, o.encoding_aes_key, o.app_id) if o.encoding_aes_key else None
        )
        shared = RedisTokenCache(o.token_cache, o.app_id) if o.token_cache != "memory" else None
        self.api = WeChatApi(o, shared or MemoryTokenCache())
        nonces = RedisNonces(shared.redis, f"kefu:wechat:{o.app_id}:nonce:") if shared else None
        self.replay = Replay(o.max_age, nonces or MemoryNonces())  # timestamps, nonces seen
        self.windows = Windows()  # customers' requests waiting for their answer
        self._recent: OrderedDict[str, _Handling] = OrderedDict()
        self._tasks: set[asyncio.Task[list[Outbound]]] = set()
        self._pieces_sent: dict[int, int] = {}  # a long message's pieces already sent
        logging.getLogger("httpx").addFilter(redact_secrets)  # once however many instances

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
        return wire.unseal(params, body, self.options.token, self.crypto)

    def seal(self, message: Any, envelope: Envelope, text: str) -> str:
        """A passive text reply, encrypted when the request was."""
        return wire.seal(message, envelope, text, self.crypto)

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
        window = self.windows.open(openid) if self.options.reply_within > 0 else None
        handling = self._hand_over(key, self._take(incoming))
        response: Response = PlainTextResponse(SUCCESS)
        try:
            await self._wait(handling.task, window, deadline)
            if window is not None and window.message is not None:
                response = PassiveReply(seal(window.text), window)
            else:
                response = await self._acknowledge(handling, stored_by)
        finally:
            if window is not None:
                self.windows.close(openid, window)
                if not isinstance(response, PassiveReply):
                    window.settle(False)  # what it took goes through the API
        return response

    async def _acknowledge(self, handling: _Handling, stored_by: float) -> Response:
        """`success` once the message is stored; otherwise an error, so that WeChat sends it
        again (three times in all, 5 s apart): the hub could not store it (its database
        down), the work failed, or it is not stored yet (the retry waits for this work)."""
        wait = max(0.0, stored_by - asyncio.get_running_loop().time())
        try:
            if await acknowledge.until_stored(handling.task, handling.stored, wait):
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
        self, task: asyncio.Task[list[Outbound]], window: Window | None, deadline: float
    ) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.wait({task}, timeout=max(0.0, deadline - loop.time()))
        if window is None or window.message is not None or not task.done():
            return
        if not task.cancelled() and task.exception() is None and task.result():
            # replies are on their way through the outbox: the first may still make it
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(window.filled.wait(), max(0.0, deadline - loop.time()))

    def _hand_over(self, key: str, work: Coroutine[Any, Any, list[Outbound]]) -> _Handling:
        """Run it to the end even when WeChat gets `success` first."""
        task, stored = acknowledge.start(work)
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
        return await self.receiver.receive(inbound, on_stored=acknowledge.mark_stored)

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
            and await self.windows.carry(message, pieces[0])
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
