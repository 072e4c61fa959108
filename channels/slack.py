"""Slack: the Events API and interactivity through slack-bolt (DESIGN.md sections 1, 4 and 8).

    POST /channels/slack/{name}/events   Slack's Event Subscriptions *and* Interactivity
                                         Request URL (one URL serves both)
    Socket Mode (`app_token` set)        the same events over a WebSocket the hub opens to
                                         Slack, for a hub without a public URL

Where a conversation lives is its contact's id (the pipeline's `sender_id`, the outbox's
recipient), so a reply, an agent's message and a retry after a restart all find their way:
- a direct message: one conversation per DM channel, `{team}:{channel}`. Replies go to the DM
  itself, not into threads: a DM is already a private place for one customer.
- a channel: one conversation per thread, `{team}:{channel}:{root ts}`, started by a mention
  of the bot. Replies go into that thread; later messages in the thread need no mention.
  Other channel messages are not for the bot and are ignored.

bolt verifies every request (HMAC of the raw body, 5-minute clock window), answers
url_verification and drops our own bot's events. The rest is ours: Slack's retries are dropped
by event id (bolt doesn't dedupe them), other bots are ignored so two bots can't loop, and the
answer comes once the message is stored (503 when the hub can't store it, so Slack delivers it
again), with the bot's turn after it, because Slack gives up on an answer after 3 seconds.
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
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiohttp
import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from starlette.background import BackgroundTask

from channels import stored as handed_over
from channels.base import Capabilities, Channel, ChannelConfigError, DeliveryError
from channels.slack_names import UserNames
from hub.messages import Attachment, Inbound, Kind, Outbound
from hub.ports import Unavailable

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]
Body = Mapping[str, Any]

WORK = "kefu_work"  # bolt context key: the request's jobs, run after the HTTP response
BUTTON = "kefu_button_"  # action_id prefix of the buttons this channel sends

SECTION_LIMIT = 3000  # characters of one section block's text
MESSAGE_LIMIT = 40_000  # characters of a message's text (Slack truncates beyond)
BLOCK_LIMIT = 50  # blocks in one message
BUTTONS_PER_ACTIONS = 25  # elements in one actions block
# Message subtypes that are a person writing; the others are joins, topics, bots and so on.
CUSTOMER_SUBTYPES = frozenset({None, "file_share", "thread_broadcast", "me_message"})
# Slack's own trouble: trying again later may work. Any other error name won't get better.
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


class SlackOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bot_token: str = ""  # xoxb-...: OAuth & Permissions > Bot User OAuth Token
    signing_secret: str = ""  # Basic Information > App Credentials > Signing Secret
    app_token: str | None = None  # xapp-...: Socket Mode instead of a public Request URL
    api_base: str = "https://slack.com/api/"  # overridable, so tests can use a local server
    timeout: int = Field(default=10, ge=1)  # seconds per Web API call or file download
    max_file_bytes: int = Field(default=50_000_000, ge=0)  # larger files aren't downloaded

    @field_validator("api_base")
    @classmethod
    def _ends_with_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"  # slack_sdk appends method names


@dataclass(frozen=True)
class Place:
    """Where a conversation lives on Slack: a DM channel, or one thread of a channel."""

    team: str
    channel: str
    thread_ts: str | None = None

    @property
    def sender_id(self) -> str:
        parts = [self.team, self.channel] + ([self.thread_ts] if self.thread_ts else [])
        return ":".join(parts)

    @classmethod
    def parse(cls, sender_id: str) -> Place:
        team, _, rest = sender_id.partition(":")
        channel, _, thread_ts = rest.partition(":")
        if not team or not channel:
            raise ValueError(f"not a Slack conversation id: {sender_id!r}")
        return cls(team, channel, thread_ts or None)


class SeenEvents:
    """Event ids seen lately. Slack delivers an event again when our answer was slow or lost
    (X-Slack-Retry-Num 1 to 3, within minutes) and bolt passes every copy on. One process's
    memory: across processes the pipeline's dedupe on the message id is the second line."""

    def __init__(self, ttl: float = 3600.0, limit: int = 100_000) -> None:
        self.ttl, self.limit = ttl, limit
        self._expiry: OrderedDict[str, float] = OrderedDict()

    def first_time(self, event_id: str | None) -> bool:
        """True once per event id within the TTL (and for events without one)."""
        if not event_id:
            return True
        now = time.monotonic()
        while self._expiry and (
            next(iter(self._expiry.values())) < now or len(self._expiry) >= self.limit
        ):
            self._expiry.popitem(last=False)
        if event_id in self._expiry:
            return False
        self._expiry[event_id] = now + self.ttl
        return True

    def forget(self, event_id: str) -> None:
        """Its next delivery is taken (the hub could not take this one)."""
        self._expiry.pop(event_id, None)


def event_id(body: bytes) -> str:
    """The Events API body's event_id ("" for interactivity's form bodies and the unreadable)."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return ""
    return str(parsed.get("event_id") or "") if isinstance(parsed, dict) else ""


# ---- text both ways ----------------------------------------------------------------------

_LINK = re.compile(r"<((?:https?|mailto|tel):[^|>]+)(?:\|([^>]*))?>")
_CHANNEL_REF = re.compile(r"<#[A-Z0-9]+\|([^>]*)>")
_SPECIAL = re.compile(r"<!(here|channel|everyone)(?:\|[^>]*)?>")
_MD_BOLD = re.compile(r"\*\*(.+?)\*\*")
_MD_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")
_MD_HEADING = re.compile(r"^#{1,6}\s+(.+)$", re.MULTILINE)


def plain_text(text: str, bot_user_id: str | None) -> str:
    """What the customer wrote, from Slack's markup: the mention that addressed the bot is
    dropped (the NLU should read "where is my order", not "<@U123> where is my order"), links
    show as typed, and Slack's three escapes are undone. Other people's mentions stay."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>\s*", "", text)

    def link(match: re.Match[str]) -> str:
        url, label = match.group(1), match.group(2)
        if not label:
            return url
        return label if label in url else f"{label} ({url})"

    text = _LINK.sub(link, text)
    text = _CHANNEL_REF.sub(r"#\1", text)
    text = _SPECIAL.sub(r"@\1", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()


def mentions(text: str, user_id: str | None) -> bool:
    return bool(user_id) and f"<@{user_id}" in text


def to_mrkdwn(text: str) -> str:
    """Markdown as Slack's mrkdwn: &, < and > escaped (Slack reads them as markup), **bold**
    as *bold*, [label](url) as <url|label>, headings as bold lines."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_LINK.sub(r"<\2|\1>", text)
    text = _MD_BOLD.sub(r"*\1*", text)
    return _MD_HEADING.sub(r"*\1*", text)


def chunks(text: str, size: int) -> Iterator[str]:
    """`text` in pieces of at most `size` characters, cut at a line break or space if one is
    near (a section block holds 3,000 characters)."""
    while len(text) > size:
        cut = max(text.rfind("\n", 0, size), text.rfind(" ", 0, size))
        cut = cut if cut > size // 2 else size
        yield text[:cut]
        text = text[cut:].lstrip("\n ")
    if text:
        yield text


def is_absolute(url: str) -> bool:
    return urlsplit(url).scheme in ("http", "https")


def render(message: Outbound) -> dict[str, Any]:
    """chat.postMessage arguments for a stored message. Plain text needs no blocks; buttons
    become an actions block under the text's section(s), image attachments image blocks."""
    text = to_mrkdwn(message.text)
    images = [a for a in message.attachments if a.kind == Kind.IMAGE and is_absolute(a.url)]
    files = [a for a in message.attachments if a not in images]
    lines = [f"<{a.url}|{a.name or a.url}>" if is_absolute(a.url) else a.url for a in files]
    text = "\n".join([text, *lines] if text else lines)
    if len(text) > MESSAGE_LIMIT:
        log.warning("slack: message %s cut to %d characters", message.message_id, MESSAGE_LIMIT)
        text = text[: MESSAGE_LIMIT - 1] + "…"
    if not message.buttons and not images:
        return {"text": text}
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": piece}}
        for piece in chunks(text, SECTION_LIMIT)
    ]
    blocks += [
        {"type": "image", "image_url": a.url, "alt_text": (a.name or "image")[:2000]}
        for a in images
    ]
    buttons = [
        {
            "type": "button",
            "text": {"type": "plain_text", "text": b.title[:75] or "?", "emoji": True},
            "value": b.payload[:2000],
            "action_id": f"{BUTTON}{i}",
        }
        for i, b in enumerate(message.buttons)
    ]
    for start in range(0, len(buttons), BUTTONS_PER_ACTIONS):
        blocks.append({"type": "actions", "elements": buttons[start : start + BUTTONS_PER_ACTIONS]})
    # `text` is what notifications show when there are blocks
    fallback = text or " / ".join(b.title for b in message.buttons) or "image"
    return {"text": fallback, "blocks": blocks[:BLOCK_LIMIT]}


def api_failure(method: str, e: SlackApiError) -> DeliveryError:
    """A Web API error as the outbox understands it: Slack's error name in the message (the
    agent sees it), retryable only when Slack's side is at fault, Retry-After kept."""
    response = e.response
    status = getattr(response, "status_code", None) or getattr(response, "status", None) or 0
    data = getattr(response, "data", None)
    error = data.get("error") if isinstance(data, dict) else None
    if status == 429 or error == "ratelimited":
        headers = getattr(response, "headers", None) or {}
        retry_after = _seconds(headers.get("Retry-After") or headers.get("retry-after"))
        return DeliveryError(
            f"{method}: ratelimited (retry after {retry_after or '?'}s)",
            retryable=True,
            retry_after=retry_after,
        )
    if status >= 500 or error in TRANSIENT_ERRORS:
        return DeliveryError(f"{method}: {error or f'HTTP {status}'}", retryable=True)
    return DeliveryError(f"{method}: {error or f'HTTP {status}'}", retryable=False)


def _seconds(value: Any) -> float | None:
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None


def is_signed(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """Slack's signature check (what bolt does), on bytes that need not be UTF-8."""
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
        return False
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def is_from_a_bot(event: Mapping[str, Any]) -> bool:
    """Any bot's message, ours or another app's (bolt drops only ours): answering another
    bot could start two bots talking to each other forever."""
    return bool(event.get("bot_id") or event.get("subtype") == "bot_message")


def kind_of(mime_type: str | None) -> Kind:
    major = (mime_type or "").split("/")[0]
    return {"image": Kind.IMAGE, "audio": Kind.AUDIO, "video": Kind.VIDEO}.get(major, Kind.FILE)


class FileRefused(Exception):
    """A shared file that can't be fetched (untrusted host, login page, too large)."""


# ---- the channel ---------------------------------------------------------------------------


class SlackChannel(Channel):
    type: ClassVar[str] = "slack"
    STORE_WAIT_SECONDS = 2.5  # for the event's message to be stored (Slack waits 3 s in all)
    capabilities: ClassVar[Capabilities] = Capabilities(
        buttons=True,
        images=True,
        markdown=True,
        max_text_length=MESSAGE_LIMIT,
        send_interval=1.0,  # chat.postMessage: about one message per second per channel
    )
    Options: ClassVar[builtins.type[BaseModel]] = SlackOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options: SlackOptions = self.options
        self.client = AsyncWebClient(
            token=options.bot_token or None, base_url=options.api_base, timeout=options.timeout
        )
        self.seen = SeenEvents()
        self._identity: AuthorizeResult | None = None
        self.names = UserNames(self.client, self.name)  # users.info, remembered; optional
        self._tasks: set[asyncio.Task[None]] = set()
        self._socket: AsyncSocketModeHandler | None = None
        self._connecting: asyncio.Task[None] | None = None
        self.app = self._build_app()
        self.handler = AsyncSlackRequestHandler(self.app)

    @property
    def path(self) -> str:
        return f"/channels/slack/{self.name}/events"

    def _build_app(self) -> AsyncApp:
        """The bolt app. Its listeners only acknowledge and hand the work over (see `_defer`);
        `process_before_response=True` so they have done that before bolt answers, and the
        work itself runs after the answer, under our control rather than in bolt's tasks."""

        async def authorize() -> AuthorizeResult:  # bolt passes `self` to a bound method
            return await self._identify()

        app = AsyncApp(
            name=f"kefu-slack-{self.name}",
            # bolt's own client carries no token: `authorize` supplies it per request (with a
            # token as well, bolt logs that it ignores it); Socket Mode opens its connection
            # through this client, with the app token.
            client=AsyncWebClient(base_url=self.options.api_base, timeout=self.options.timeout),
            signing_secret=self.options.signing_secret,
            authorize=authorize,
            request_verification_enabled=True,
            ignoring_self_events_enabled=True,
            url_verification_enabled=True,
            process_before_response=True,
        )
        app.event("message")(self._on_message)
        app.event("app_mention")(self._on_mention)
        app.action(re.compile(f"^{BUTTON}"))(self._on_button)
        # Answer 200 to whatever else the app is sent (bolt answers 404, and Slack retries).
        app.event(re.compile(".*"))(self._ack_only)
        app.action(re.compile(".*"))(self._ack_only)
        return app

    async def _identify(self) -> AuthorizeResult:
        """Who the bot is (its user and bot ids, for bolt's self-event filter and for mentions):
        auth.test on the first event, then remembered. AsyncApp has no
        `token_verification_enabled`; with `authorize` it calls nothing at start-up, and a
        channel whose token is missing can still be built (config checks, tests)."""
        if self._identity is None:
            try:
                response = await self.client.auth_test()
            except SlackApiError as e:
                # bolt would answer 200 and drop the event; failing makes Slack retry it
                raise RuntimeError(f"slack {self.name}: auth.test failed, check bot_token") from e
            self._identity = AuthorizeResult.from_auth_test_response(
                auth_test_response=response, bot_token=self.options.bot_token
            )
        return self._identity

    # ---- HTTP and Socket Mode ------------------------------------------------------------

    def router(self) -> APIRouter:
        router = APIRouter(tags=[f"channel {self.name}"])
        router.add_api_route(self.path, self.events, methods=["POST"], response_model=None)
        return router

    async def events(self, request: Request) -> Response:
        """Events and interactions: bolt verifies and acknowledges; the jobs the listeners
        left run as a background task, after the response has been sent to Slack."""
        if not self.options.signing_secret:
            log.error("slack %s: no signing_secret configured; refusing the request", self.name)
            return JSONResponse({"detail": "signing_secret is not configured"}, status_code=401)
        if not request.headers.get("x-slack-request-timestamp", "").isdigit():
            # not Slack's (and bolt's check would raise on it: a 500)
            return JSONResponse({"detail": "invalid signature"}, status_code=401)
        work: list[Job] = []
        try:
            response = await self.handler.handle(request, {WORK: work})
        except Exception as e:  # bolt parses the body before it checks the signature
            return self._unreadable(request.headers, await request.body(), e)
        if response.status_code >= 500:
            # bolt's middleware choked on a body of Slack's shape but not its content (an
            # event_callback whose "event" is null, say): bolt logged it and answers 500, but
            # the fault is the request's, and its listeners deferred nothing to run
            error = RuntimeError("bolt could not handle the body")
            return self._unreadable(request.headers, await request.body(), error)
        retry = request.headers.get("x-slack-retry-num")
        if retry:
            reason = request.headers.get("x-slack-retry-reason")
            log.info("slack %s: Slack's retry %s (%s)", self.name, retry, reason)
        if work:
            # Answered once the message is stored: when the hub can't store it (its database
            # down), 503, and Slack delivers the event again. Slack waits 3 s for the answer;
            # the turn goes on after it, in the request's background (a graceful shutdown
            # waits for it).
            task, stored = handed_over.start(self._run(work))
            try:
                await handed_over.until_stored(task, stored, self.STORE_WAIT_SECONDS)
            except Unavailable:
                self.seen.forget(event_id(await request.body()))
                raise
            except Exception:  # failed before the message was stored: Slack delivers it again
                self.seen.forget(event_id(await request.body()))
                response = JSONResponse({"detail": "the event was not handled"}, status_code=500)
            response.background = BackgroundTask(asyncio.wait, {task})
        return response

    def _unreadable(self, headers: Mapping[str, str], body: bytes, error: Exception) -> Response:
        """A body bolt can't read: 401 if it isn't Slack's either, else 400 (never a 500)."""
        timestamp = headers.get("x-slack-request-timestamp", "")
        if not is_signed(
            self.options.signing_secret, timestamp, body, headers.get("x-slack-signature", "")
        ):
            return JSONResponse({"detail": "invalid signature"}, status_code=401)
        log.warning("slack %s: unreadable request: %s: %s", self.name, type(error).__name__, error)
        return JSONResponse({"detail": f"unreadable body: {type(error).__name__}"}, status_code=400)

    async def start(self) -> None:
        """Refuse to run half-configured; with an app token, connect in Socket Mode."""
        if not self.options.bot_token:
            raise ChannelConfigError(f"channel {self.name!r} (slack): bot_token is required")
        if not self.options.signing_secret and not self.options.app_token:
            raise ChannelConfigError(
                f"channel {self.name!r} (slack): signing_secret is required (or app_token, "
                "for Socket Mode), so forged requests can be refused"
            )
        if self.options.app_token:
            self._socket = AsyncSocketModeHandler(self.app, self.options.app_token)
            # connect() retries until Slack answers: don't hold up the hub's start for it
            self._connecting = asyncio.create_task(self._socket.connect_async())
            log.info("slack %s: Socket Mode via %s", self.name, self.options.api_base)

    async def stop(self) -> None:
        if self._connecting is not None:  # a connection half made would be left open
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connecting
            self._connecting = None
        if self._socket is not None:
            await self._socket.close_async()
            self._socket = None
        if self._tasks:  # let jobs in flight finish briefly, then stop them
            _, late = await asyncio.wait(set(self._tasks), timeout=5)
            for task in late:
                task.cancel()
            for task in late:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def _defer(self, context: AsyncBoltContext, job: Job) -> None:
        """Run `job` after Slack has its acknowledgement: with the HTTP request's background
        task, or (Socket Mode, where the envelope is acknowledged when the listener returns)
        as a task of our own that `stop()` waits for."""
        work = context.get(WORK)
        if work is not None:
            work.append(job)
        else:
            self._spawn(partial(self._run, [job]))

    def _spawn(self, job: Job) -> None:
        async def run() -> None:
            await job()

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, jobs: list[Job]) -> None:
        for job in jobs:
            try:
                await job()
            except Unavailable as e:  # the webhook waiting for it answers 503: all again
                if not handed_over.mark_failed(e):
                    log.warning("slack %s: an event was not handled: %s", self.name, e)
                return
            except Exception as e:  # logged; the next job runs. The message not stored yet:
                log.exception("slack %s: handling an event failed", self.name)
                handed_over.mark_failed(e)  # the webhook answers 500, Slack sends it again

    # ---- bolt listeners: acknowledge, decide, defer -------------------------------------

    async def _ack_only(self, ack: AsyncAck) -> None:
        await ack()

    async def _on_message(
        self, ack: AsyncAck, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        await ack()
        if not self.seen.first_time(body.get("event_id")):
            return
        job = self._message_job(body, event, context.bot_user_id)
        if job is not None:
            self._defer(context, job)

    def _message_job(self, body: Body, event: Body, bot_user_id: str | None) -> Job | None:
        """What a `message` event asks of the hub, if anything."""
        subtype = event.get("subtype")
        if is_from_a_bot(event) or is_from_a_bot(event.get("message") or {}):
            return None
        if subtype == "message_changed":
            return partial(self._edit, event, bot_user_id)
        if subtype == "message_deleted":
            return partial(self._delete, event)
        if subtype not in CUSTOMER_SUBTYPES or not event.get("user") or not event.get("channel"):
            return None  # (a message with no channel has nowhere to be answered)
        team, channel = self._team(body, event), event["channel"]
        if event.get("channel_type") == "im":
            return partial(self._take, body, event, Place(team, channel), bot_user_id)
        thread_ts = event.get("thread_ts")
        if thread_ts and not mentions(event.get("text") or "", bot_user_id):
            place = Place(team, channel, thread_ts)
            return partial(self._take_follow_up, body, event, place, bot_user_id)
        # A channel message that doesn't address the bot (a mention arrives as app_mention).
        return None

    async def _on_mention(
        self, ack: AsyncAck, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        """Someone mentioned the bot in a channel: the thread under that message (or the one
        it is in) becomes a conversation."""
        await ack()
        if not self.seen.first_time(body.get("event_id")) or is_from_a_bot(event):
            return
        if not event.get("channel"):
            return  # nowhere to answer
        root = event.get("thread_ts") or event["ts"]
        place = Place(self._team(body, event), event["channel"], root)
        self._defer(context, partial(self._take, body, event, place, context.bot_user_id))

    async def _on_button(
        self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        """A button of ours was clicked: its value is the postback, in the conversation the
        button was sent to (a thread of a channel, or a DM, where we don't use threads)."""
        await ack()
        if body.get("channel"):  # not a button in a modal or the app's home tab
            self._defer(context, partial(self._take_click, body, action))

    @staticmethod
    def _team(body: Body, event: Body) -> str:
        return str(body.get("team_id") or event.get("team") or "-")

    # ---- the work: customer messages, edits, deletions, clicks ---------------------------

    async def _take(self, body: Body, event: Body, place: Place, bot_user_id: str | None) -> None:
        attachments, problems = await self._files(event.get("files") or [])
        details = {
            "team": place.team,
            "channel": event["channel"],
            "ts": event["ts"],
            "thread_ts": event.get("thread_ts"),
            "user": event.get("user"),
            "event_id": body.get("event_id"),
        }
        if problems:
            details["files_not_saved"] = problems
        payload: dict[str, Any] = {"slack": details}
        inbound = Inbound(
            channel=self.name,
            sender_id=place.sender_id,
            channel_message_id=f"{event['channel']}:{event['ts']}",
            text=plain_text(event.get("text") or "", bot_user_id),
            kind=attachments[0].kind if attachments else Kind.TEXT,
            attachments=tuple(attachments),
            sender_name=await self.names.get(event.get("user")),
            payload=payload,
        )
        await self.receiver.receive(inbound, on_stored=handed_over.mark_stored)

    async def _take_follow_up(
        self, body: Body, event: Body, place: Place, bot_user_id: str | None
    ) -> None:
        """A thread reply without a mention is for the bot only if the thread is already a
        conversation with it (the store knows, whichever process started it)."""
        if await self.receiver.current_conversation(self.name, place.sender_id) is None:
            return
        await self._take(body, event, place, bot_user_id)

    async def _edit(self, event: Body, bot_user_id: str | None) -> None:
        message, before = event.get("message") or {}, event.get("previous_message") or {}
        ts = message.get("ts") or before.get("ts")
        text = plain_text(message.get("text") or "", bot_user_id)
        # Slack also sends message_changed for unfurls and thread counts: same text, no edit.
        if ts and text != plain_text(before.get("text") or "", bot_user_id):
            await self.receiver.edit(self.name, f"{event['channel']}:{ts}", text)

    async def _delete(self, event: Body) -> None:
        ts = event.get("deleted_ts") or (event.get("previous_message") or {}).get("ts")
        if ts:
            await self.receiver.delete(self.name, f"{event['channel']}:{ts}")

    async def _take_click(self, body: Body, action: Body) -> None:
        channel = body["channel"]["id"]
        container, message = body.get("container") or {}, body.get("message") or {}
        thread_ts = container.get("thread_ts") or message.get("thread_ts")
        team = (body.get("team") or {}).get("id") or body["user"].get("team_id") or "-"
        message_ts = container.get("message_ts") or message.get("ts")
        user = body["user"]
        inbound = Inbound(
            channel=self.name,
            sender_id=Place(team, channel, thread_ts).sender_id,
            channel_message_id=f"{channel}:{message_ts}:{action.get('action_ts')}",
            text=(action.get("text") or {}).get("text") or action.get("value") or "",
            postback=action.get("value"),
            sender_name=await self.names.get(user.get("id"), user.get("name")),
            payload={"slack": {"team": team, "channel": channel, "message_ts": message_ts}},
        )
        await self.receiver.receive(inbound, on_stored=handed_over.mark_stored)

    async def _files(self, files: list[Body]) -> tuple[list[Attachment], list[str]]:
        """The files shared with a message, fetched with the bot token and kept by the hub;
        also what could not be kept, and why (it goes in the message's payload)."""
        attachments: list[Attachment] = []
        problems: list[str] = []
        listed = files[:10] if isinstance(files, list) else []
        for file in (f if isinstance(f, dict) else {} for f in listed):
            name = str(file.get("name") or file.get("title") or file.get("id") or "file")
            mime_type = file.get("mimetype")
            try:
                data = await self._download(file)
                url = await self.receiver.save_media(data, name=name, mime_type=mime_type)
                attachment = Attachment(
                    kind=kind_of(mime_type), url=url, name=name, mime_type=mime_type
                )
            except Unavailable:
                raise
            except Exception as e:  # FileRefused, MediaTooLarge, httpx's, the unforeseen
                log.warning("slack %s: file %s not saved: %s", self.name, name, e)
                problems.append(f"{name}: {e}")
                continue
            attachments.append(attachment)
        return attachments, problems

    async def _download(self, file: Body) -> bytes:
        url = file.get("url_private_download") or file.get("url_private")
        if not url:
            raise FileRefused(f"no download URL (mode {file.get('mode')!r})")
        if not self._is_slack_url(url):
            raise FileRefused(f"not a Slack URL, the bot token stays home: {url}")
        limit = self.options.max_file_bytes
        if (file.get("size") or 0) > limit:
            raise FileRefused(f"{file['size']:,} bytes, over max_file_bytes ({limit:,})")
        headers = {"Authorization": f"Bearer {self.options.bot_token}"}
        # httpx drops the Authorization header when a redirect leaves the host
        async with (
            httpx.AsyncClient(timeout=self.options.timeout, follow_redirects=True) as http,
            http.stream("GET", url, headers=headers) as response,
        ):
            response.raise_for_status()
            kind = response.headers.get("content-type", "")
            if kind.startswith("text/html") and "html" not in (file.get("mimetype") or ""):
                raise FileRefused("Slack answered a login page: does the app have files:read?")
            data = bytearray()
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > limit:
                    raise FileRefused(f"over max_file_bytes ({limit:,})")
        return bytes(data)

    def _is_slack_url(self, url: str) -> bool:
        host = urlsplit(url).hostname or ""
        api_host = urlsplit(self.options.api_base).hostname
        return host == api_host or host == "slack.com" or host.endswith(".slack.com")

    # ---- sending -------------------------------------------------------------------------

    def rate_bucket(self, recipient_id: str) -> str:
        """chat.postMessage allows about one message per second per channel, whatever the
        thread: all of a channel's threads share one bucket."""
        place = Place.parse(recipient_id)
        return f"{place.team}:{place.channel}"

    async def send(self, message: Outbound) -> None:
        """chat.postMessage into the conversation's DM or thread."""
        try:
            place = Place.parse(message.recipient_id)
        except ValueError as e:
            raise DeliveryError(str(e), retryable=False) from e
        try:
            await self.client.chat_postMessage(
                channel=place.channel,
                thread_ts=place.thread_ts,
                unfurl_links=False,
                **render(message),
            )
        except SlackApiError as e:
            raise api_failure("chat.postMessage", e) from e
        except (aiohttp.ClientError, TimeoutError) as e:
            raise DeliveryError(f"chat.postMessage: {type(e).__name__}: {e}") from e
