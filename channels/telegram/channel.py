"""Telegram channel on aiogram 3: a bot receives customers' messages by webhook or by long
polling and answers through the Bot API (docs/channels/telegram.md).

    POST /channels/telegram/{name}    header X-Telegram-Bot-Api-Secret-Token: <secret_token>

The webhook checks the secret, parses the update and answers 200 once the customer's message
is stored (at most STORE_WAIT_SECONDS); aiogram's dispatcher goes on with the bot's turn after
the answer is sent, so a slow bot turn never makes Telegram time out and redeliver. A hub that
can't store it (its database is down) answers 503, and Telegram delivers it again.

In `mode: polling` (a hub without a public URL) the same dispatcher runs aiogram's long polling
between start() and stop().

Ids: a private chat's id is the customer (`sender_id`); a group is one conversation whose
`sender_id` is the group's chat id and whose `sender_name` is whoever wrote. Message ids are
only unique within a chat, so `channel_message_id` is "<chat_id>:<message_id>"; a button
press is "callback:<callback_query_id>".
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import io
import logging
from collections.abc import Awaitable, Callable
from pathlib import PurePosixPath
from typing import Any, ClassVar

import aiohttp
from aiogram import Bot, Dispatcher
from aiogram.enums import ChatType
from aiogram.exceptions import ClientDecodeError, TelegramAPIError
from aiogram.types import CallbackQuery, Message, TelegramObject, Update
from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse

from channels import acknowledge, jsonbody
from channels.base import Capabilities, Channel, ChannelConfigError, DeliveryError
from channels.common import SeenIds
from channels.telegram import wire
from channels.telegram.api import delivery_error, make_bot
from channels.telegram.options import TelegramOptions
from channels.telegram.wire import (
    BUTTON_KEY,
    SECRET_HEADER,
    START,
    TEXT_LIMIT,
    Media,
    addresses_bot,
    button_title,
    callback_data,
    media_of,
    message_key,
    own_phone,
    telegram_context,
    telegram_methods,
    without_mentions,
)
from hub.messages import Attachment, Inbound, Kind, Outbound
from hub.ports import MediaTooLarge, Unavailable

log = logging.getLogger(__name__)


class RecentUpdates(SeenIds[int]):
    """The update_ids seen in the last `ttl` seconds, so a redelivered update is handled once.
    Ids expire because Telegram restarts update_id at random after a week without updates."""


class TelegramChannel(Channel[TelegramOptions]):
    type: ClassVar[str] = "telegram"
    capabilities: ClassVar[Capabilities] = Capabilities(
        buttons=True, images=True, max_text_length=TEXT_LIMIT, send_interval=1.0
    )
    Options = TelegramOptions
    STOP_GRACE_SECONDS = 10.0  # how long stop() lets updates in progress finish
    STORE_WAIT_SECONDS = 10.0  # how long the webhook waits for an update's message to be stored
    POLL_RETRY_SECONDS = 5.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = self.options
        self._bot = make_bot(options) if options.token else None
        self.recent = RecentUpdates(options.dedupe_seconds)
        self.dispatcher = self.make_dispatcher()
        self._polling: asyncio.Task[None] | None = None
        self._handling: set[asyncio.Task[Any]] = set()
        self._parts_sent: dict[int, int] = {}  # message id -> parts delivered before a failure
        self._stopped = False

    @property
    def path(self) -> str:
        return f"/channels/telegram/{self.name}"

    @property
    def bot(self) -> Bot:
        if self._bot is None:
            raise ChannelConfigError(f"channel {self.name!r} (telegram): no token")
        return self._bot

    def make_dispatcher(self) -> Dispatcher:
        dispatcher = Dispatcher()
        dispatcher.update.outer_middleware(self.once_per_update)
        dispatcher.message.register(self.on_message)
        dispatcher.edited_message.register(self.on_edited_message)
        dispatcher.callback_query.register(self.on_callback_query)
        return dispatcher

    # ---- life cycle ---------------------------------------------------------------------

    async def start(self) -> None:
        if not self.options.token:
            raise ChannelConfigError(f"channel {self.name!r} (telegram): token is required")
        if self.options.mode == "webhook" and not self.options.secret_token:
            raise ChannelConfigError(
                f"channel {self.name!r} (telegram): secret_token is required in webhook mode "
                "(give setWebhook the same one), so forged updates can be refused"
            )
        self._stopped = False
        if self.options.mode == "polling":
            self._polling = asyncio.create_task(self.poll())

    async def stop(self) -> None:
        self._stopped = True  # a send now would open a new HTTP session nobody closes
        await self.stop_polling()
        busy = {task for task in self._handling if task is not asyncio.current_task()}
        if busy:
            await asyncio.wait(busy, timeout=self.STOP_GRACE_SECONDS)
        if self._bot is not None:
            await self._bot.session.close()

    async def poll(self) -> None:
        """Long polling until stop(). The webhook is removed first (Telegram refuses
        getUpdates while one is set); a failed start is retried, so a hub started while
        Telegram is unreachable begins polling once it is."""
        while True:
            try:
                await self.bot.delete_webhook()
                await self.dispatcher.start_polling(
                    self.bot,
                    polling_timeout=self.options.polling_timeout,
                    handle_signals=False,  # the hub's server owns the signals
                    close_bot_session=False,  # send() still needs it until stop()
                )
                return
            except Exception:
                log.exception("telegram %s: polling failed; retrying", self.name)
                await asyncio.sleep(self.POLL_RETRY_SECONDS)

    async def stop_polling(self) -> None:
        task, self._polling = self._polling, None
        if task is None:
            return
        with contextlib.suppress(RuntimeError):  # polling had not started, or has ended
            await self.dispatcher.stop_polling()
        task.cancel()  # still in delete_webhook or waiting to retry
        with contextlib.suppress(asyncio.CancelledError):
            await task

    # ---- webhook ------------------------------------------------------------------------

    def router(self) -> APIRouter | None:
        if self.options.mode != "webhook":
            return None
        router = APIRouter(tags=[f"channel {self.name}"])
        router.add_api_route(self.path, self.webhook, methods=["POST"], response_model=None)
        return router

    async def webhook(self, request: Request, background: BackgroundTasks) -> JSONResponse:
        """Verify, parse, store, answer; the bot's turn goes on once the answer is sent."""
        secret = request.headers.get(SECRET_HEADER)
        if secret is None:
            return JSONResponse({"detail": f"missing {SECRET_HEADER}"}, status_code=401)
        if not self.secret_matches(secret):
            return JSONResponse({"detail": f"wrong {SECRET_HEADER}"}, status_code=403)
        try:  # nested 20,000 deep or a 5,000-digit number too: 400, not a 500
            raw = jsonbody.loads(await request.body())
        except jsonbody.Unreadable as e:
            return JSONResponse({"detail": f"unreadable body: {e}"}, status_code=400)
        if not isinstance(raw, dict) or type(raw.get("update_id")) is not int:
            return JSONResponse(
                {"detail": "not a Telegram update: no integer update_id"}, status_code=400
            )
        update, problem = self.parse_update(raw)
        if update is None:
            # Telegram would redeliver an update we refuse, again and again: say why, take it.
            log.warning("telegram %s: update %s ignored: %s", self.name, raw["update_id"], problem)
            return JSONResponse({"ok": True, "ignored": problem})
        task, stored = acknowledge.start(self.handle_update(update))
        # Unavailable: the hub answers 503 and Telegram delivers it again; not stored in time:
        # the turn goes on, the answer waits no more
        await acknowledge.until_stored(task, stored, self.STORE_WAIT_SECONDS)
        # Starlette runs it after the response is sent, within the request, so a server's
        # graceful shutdown waits for the turn (a detached task would be cut off).
        background.add_task(asyncio.wait, {task})
        return JSONResponse({"ok": True})

    def secret_matches(self, secret: str) -> bool:
        expected = self.options.secret_token or ""
        # bytes: compare_digest refuses str with non-ASCII characters
        return bool(expected) and hmac.compare_digest(secret.encode(), expected.encode())

    def parse_update(self, raw: dict[str, Any]) -> tuple[Update | None, str]:
        """The update as aiogram reads it, or None and what is wrong with it."""
        return wire.parse_update(raw, self._bot)

    async def handle_update(self, update: Update) -> None:
        """Feed one update to the dispatcher. Errors are logged, not raised: a redelivery
        would fail the same way. But when the hub can't take it now (Unavailable), the webhook
        still waiting answers 503 so that Telegram delivers it again."""
        try:
            await self.dispatcher.feed_update(self.bot, update)
        except Unavailable as e:
            self.recent.forget(update.update_id)
            if not acknowledge.mark_failed(e):
                log.warning(
                    "telegram %s: update %s not handled: %s", self.name, update.update_id, e
                )
        except Exception:
            log.exception("telegram %s: update %s failed", self.name, update.update_id)

    async def once_per_update(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        update: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        """Outer middleware of every update (webhook and polling): drops a redelivered
        update_id, and keeps track of the updates in progress so stop() can let them end."""
        assert isinstance(update, Update)
        if self.recent.seen(update.update_id):
            log.info("telegram %s: update %s redelivered; skipped", self.name, update.update_id)
            return None
        task = asyncio.current_task()
        if task is not None:
            self._handling.add(task)
        try:
            return await handler(update, data)
        finally:
            if task is not None:
                self._handling.discard(task)

    # ---- updates to Inbound -------------------------------------------------------------

    async def on_message(self, message: Message, bot: Bot) -> None:
        inbound = await self.message_inbound(message, bot)
        if inbound is not None:
            await self.receiver.receive(inbound, on_stored=acknowledge.mark_stored)

    async def on_edited_message(self, message: Message, bot: Bot) -> None:
        text = message.text if message.text is not None else message.caption
        if text is None:
            return
        if message.chat.type != ChatType.PRIVATE:
            text = without_mentions(text, (await bot.me()).username)
        if not await self.receiver.edit(self.name, message_key(message), text):
            log.debug("telegram %s: edit of a message not stored", self.name)

    async def on_callback_query(self, query: CallbackQuery, bot: Bot) -> None:
        """A button pressed: the button's payload is the postback and its title the text."""
        await self.answer_callback(query, bot)
        chat = query.message.chat if query.message else None
        if query.data is None or (
            chat is not None and chat.type != ChatType.PRIVATE and self.options.group_mode == "off"
        ):
            return
        # an inline message has no chat: the presser's private chat has their user id
        sender_id = str(chat.id if chat else query.from_user.id)
        title = button_title(query)
        payload = await self.payload_of(query.data, sender_id)
        if payload is None and title is None:
            log.info("telegram %s: a button of an unknown message was pressed", self.name)
            return
        inbound = Inbound(
            channel=self.name,
            sender_id=sender_id,
            channel_message_id=f"callback:{query.id}",
            text=title or payload or "",
            postback=payload,
            sender_name=query.from_user.full_name,
            payload={"telegram": {"from_id": query.from_user.id, "callback_data": query.data}},
        )
        await self.receiver.receive(inbound, on_stored=acknowledge.mark_stored)

    async def answer_callback(self, query: CallbackQuery, bot: Bot) -> None:
        """Stop the spinner on the customer's button at once; a failure (an old query)
        doesn't stop the press from being handled."""
        try:
            await bot.answer_callback_query(callback_query_id=query.id)
        except (TelegramAPIError, ClientDecodeError) as e:
            log.warning("telegram %s: answerCallbackQuery failed: %s", self.name, e)

    async def payload_of(self, data: str, sender_id: str) -> str | None:
        """The payload a button's callback_data stands for. A long payload went out as a key
        (see `callback_data`): it is found again among the buttons of the conversation's
        stored messages, which every hub process can read, across restarts."""
        if not data.startswith(BUTTON_KEY):
            return data
        for message in reversed(await self.receiver.history(self.name, sender_id, 0)):
            for button in message.buttons:
                if callback_data(button.payload) == data:
                    return button.payload
        return None

    async def message_inbound(self, message: Message, bot: Bot) -> Inbound | None:
        """The Inbound of a customer's message, or None when the bot should not see it (a
        group message not meant for it, a kind of message the hub doesn't take)."""
        text = message.text if message.text is not None else (message.caption or "")
        if message.chat.type != ChatType.PRIVATE:
            if not await self.listens_in_group(message, bot):
                return None
            text = without_mentions(text, (await bot.me()).username)
        content = await self.content_of(message, bot)
        if content is None:
            log.info("telegram %s: %s message ignored", self.name, message.content_type)
            return None
        kind, payload, attachments = content
        user = message.from_user
        shared = message.contact
        if shared is not None:  # a contact card: its number is what the customer said
            text = shared.phone_number
        postback = None
        start = START.match(text) if self.options.greeting else None
        if start:  # the customer opened the chat (or a deep link): greet, keep the parameter
            postback = self.options.greeting
            if start.group(1):
                payload = {**payload, "start": start.group(1)}
        return Inbound(
            channel=self.name,
            sender_id=str(message.chat.id),
            channel_message_id=message_key(message),
            text=text,
            kind=kind,
            payload={**payload, "telegram": telegram_context(message)},
            attachments=attachments,
            sender_name=user.full_name if user else message.chat.title,
            postback=postback,
            verified=own_phone(message),
        )

    async def content_of(
        self, message: Message, bot: Bot
    ) -> tuple[Kind, dict[str, Any], tuple[Attachment, ...]] | None:
        """Kind, payload and attachments of a text, file, location or contact card message;
        None for other kinds (stickers, polls, service messages)."""
        media = media_of(message)
        if media is not None:
            attachment, problem = await self.fetch(media, bot)
            if attachment is None:
                return media.kind, {"file_error": problem}, ()
            return media.kind, {}, (attachment,)
        if message.location is not None:
            where = {"lat": message.location.latitude, "lon": message.location.longitude}
            return Kind.LOCATION, where, ()
        if message.contact is not None:
            shared = message.contact
            card = {"phone": shared.phone_number, "user_id": shared.user_id}
            card["name"] = " ".join(filter(None, (shared.first_name, shared.last_name)))
            return Kind.TEXT, {"contact": card}, ()
        if message.text is not None:
            return Kind.TEXT, {}, ()
        return None

    async def listens_in_group(self, message: Message, bot: Bot) -> bool:
        mode = self.options.group_mode
        if mode == "off":
            return False
        return mode == "all" or addresses_bot(message, await bot.me())

    async def fetch(self, media: Media, bot: Bot) -> tuple[Attachment | None, str | None]:
        """Download a customer's file (getFile, then the file URL) into the hub's media
        store. When that fails the message is still stored, saying why it has no file."""
        try:
            file = await bot.get_file(media.file_id)
            if not file.file_path:
                return None, "Telegram gave no file path"
            data = io.BytesIO()
            await bot.download_file(file.file_path, data, timeout=int(self.options.request_timeout))
            name = media.name or PurePosixPath(file.file_path).name
            url = await self.receiver.save_media(
                data.getvalue(), name=name, mime_type=media.mime_type
            )
        except (TelegramAPIError, ClientDecodeError, aiohttp.ClientError, TimeoutError) as e:
            log.warning("telegram %s: file %s not fetched: %s", self.name, media.file_id, e)
            return None, f"not fetched from Telegram: {e}"
        except MediaTooLarge as e:
            return None, str(e)
        return Attachment(kind=media.kind, url=url, name=name, mime_type=media.mime_type), None

    # ---- sending ------------------------------------------------------------------------

    async def send(self, message: Outbound) -> None:
        """Deliver a stored message: its text in parts of at most 4096 characters (the
        buttons under the last), then its attachments. A retry goes on from the part that
        failed, so the customer never gets a part twice."""
        if self._bot is None:
            raise DeliveryError(f"channel {self.name!r} has no token", retryable=False)
        if self._stopped:
            raise DeliveryError(f"channel {self.name!r} is stopping; sent after a restart")
        methods = telegram_methods(message)
        done = self._parts_sent.pop(message.message_id, 0)
        for index in range(done, len(methods)):
            try:
                await self._bot(methods[index])
            except (TelegramAPIError, ClientDecodeError) as e:
                error = delivery_error(e)
                if error.retryable and index:
                    self.remember_progress(message.message_id, index)
                raise error from e

    def remember_progress(self, message_id: int, parts: int) -> None:
        self._parts_sent[message_id] = parts
        if len(self._parts_sent) > 1000:  # the outbox gave up on the oldest ones long ago
            del self._parts_sent[next(iter(self._parts_sent))]
