"""The Telegram channel: channel.py (webhook or long polling through aiogram's dispatcher,
updates to Inbound, send()), wire.py (pure functions over aiogram's types, both ways), api.py
(the bot and Telegram's refusals), options.py (its keys in config.yaml)."""

from channels.telegram.channel import RecentUpdates, TelegramChannel
from channels.telegram.options import TelegramOptions
from channels.telegram.wire import (
    CALLBACK_DATA_LIMIT,
    SECRET_HEADER,
    TEXT_LIMIT,
    callback_data,
    split_text,
)

__all__ = [
    "CALLBACK_DATA_LIMIT",
    "SECRET_HEADER",
    "TEXT_LIMIT",
    "RecentUpdates",
    "TelegramChannel",
    "TelegramOptions",
    "callback_data",
    "split_text",
]
