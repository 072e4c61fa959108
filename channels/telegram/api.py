"""The Bot API client and its refusals: the bot the channel calls Telegram with, and
Telegram's errors as the outbox understands them."""

from __future__ import annotations

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramEntityTooLarge,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)

from channels.base import DeliveryError
from channels.telegram.options import TelegramOptions


def make_bot(options: TelegramOptions) -> Bot:
    api = TelegramAPIServer.from_base(options.api_base)
    return Bot(options.token, session=AiohttpSession(api=api, timeout=options.request_timeout))


def delivery_error(e: TelegramAPIError | ClientDecodeError) -> DeliveryError:
    """Telegram's refusal as the outbox understands it: a flood limit says when to try
    again; server and network trouble may pass; a bad request, a blocked bot or a chat that
    doesn't exist won't, and the agent sees Telegram's description."""
    if isinstance(e, ClientDecodeError):  # not Telegram's JSON: a proxy's error page
        return DeliveryError(f"telegram: unreadable answer: {e.message}")
    where = f"telegram {e.method.__api_method__}"
    if isinstance(e, TelegramRetryAfter):
        return DeliveryError(f"{where}: {e.message}", retry_after=float(e.retry_after))
    if isinstance(e, TelegramMigrateToChat):
        return DeliveryError(
            f"{where}: the group is now the supergroup {e.migrate_to_chat_id}", retryable=False
        )
    retryable = not isinstance(e, TelegramEntityTooLarge) and (
        isinstance(e, TelegramServerError | TelegramNetworkError) or type(e) is TelegramAPIError
    )
    return DeliveryError(f"{where}: {e.message}", retryable=retryable)
