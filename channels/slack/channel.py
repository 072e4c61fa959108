"""Slack: the Events API and interactivity through slack-bolt (docs/channels/slack.md).

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
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any, ClassVar

import aiohttp
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from starlette.background import BackgroundTask

from channels import acknowledge
from channels.base import Capabilities, Channel, ChannelConfigError, DeliveryError
from channels.common import SeenIds
from channels.slack.api import SharedFiles, UserNames, api_failure
from channels.slack.options import SlackOptions
from channels.slack.wire import (
    BUTTON,
    CUSTOMER_SUBTYPES,
    MESSAGE_LIMIT,
    Place,
    event_id,
    is_from_a_bot,
    is_signed,
    mentions,
    plain_text,
    render,
)
from hub.messages import Inbound, Kind, Outbound
from hub.ports import Unavailable

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]
Body = Mapping[str, Any]

WORK = "kefu_work"  # bolt context key: the request's jobs, run after the HTTP response


class SeenEvents(SeenIds[str]):
    """Event ids seen lately. Slack delivers an event again when our answer was slow or lost
    (X-Slack-Retry-Num 1 to 3, within minutes) and bolt passes every copy on. One process's
    memory: across processes the pipeline's dedupe on the message id is the second line."""

    def __init__(self, ttl: float = 3600.0, limit: int = 100_000) -> None:
        super().__init__(ttl, max_size=limit)

    def first_time(self, event_id: str | None) -> bool:
        """True once per event id within the TTL (and for events without one)."""
        return not event_id or not self.seen(event_id)


# ---- the channel ---------------------------------------------------------------------------


class SlackChannel(Channel[SlackOptions]):
    type: ClassVar[str] = "slack"
    STORE_WAIT_SECONDS = 2.5  # for the event's message to be stored (Slack waits 3 s in all)
    capabilities: ClassVar[Capabilities] = Capabilities(
        buttons=True,
        images=True,
        markdown=True,
        max_text_length=MESSAGE_LIMIT,
        send_interval=1.0,  # chat.postMessage: about one message per second per channel
    )
    Options = SlackOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = self.options
        self.client = AsyncWebClient(
            token=options.bot_token or None, base_url=options.api_base, timeout=options.timeout
        )
        self.seen = SeenEvents()
        self._identity: AuthorizeResult | None = None
        self.names = UserNames(self.client, self.name)  # users.info, remembered; optional
        self.files = SharedFiles(options, self.receiver, self.name)
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
            task, stored = acknowledge.start(self._run(work))
            try:
                await acknowledge.until_stored(task, stored, self.STORE_WAIT_SECONDS)
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
                if not acknowledge.mark_failed(e):
                    log.warning("slack %s: an event was not handled: %s", self.name, e)
                return
            except Exception as e:  # logged; the next job runs. The message not stored yet:
                log.exception("slack %s: handling an event failed", self.name)
                acknowledge.mark_failed(e)  # the webhook answers 500, Slack sends it again

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
        attachments, problems = await self.files.keep(event.get("files") or [])
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
        await self.receiver.receive(inbound, on_stored=acknowledge.mark_stored)

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
        await self.receiver.receive(inbound, on_stored=acknowledge.mark_stored)

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
