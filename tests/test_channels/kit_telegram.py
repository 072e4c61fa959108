"""The Telegram channel's kit for the conformance test (tests/test_channels/kits.py): updates
as Telegram posts them to the webhook, with its secret-token header, and a local Bot API
server (fake_telegram.py) that the hub's aiogram client talks to."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from channels.telegram import SECRET_HEADER
from tests.test_channels.fake_telegram import FakeTelegram, numeric_id, running_fake
from tests.test_channels.kits import Request

TOKEN = "123456789:AAE-kefu-test-token_0123456789abcdef"
SECRET = "kefu-test-secret_0123456789"


def text_update(
    sender: str | int, text: str, message_id: str | int, first_name: str = "Test"
) -> dict[str, Any]:
    """A private chat's text message as Telegram posts it; the update_id and message_id are
    derived from `message_id`, so sending it again is a redelivery."""
    number = numeric_id(message_id) if isinstance(message_id, int) else _number(message_id)
    user = {"id": numeric_id(sender), "is_bot": False, "first_name": first_name}
    return {
        "update_id": number,
        "message": {
            "message_id": number,
            "date": 1_700_000_000,
            "chat": {"id": numeric_id(sender), "type": "private", "first_name": first_name},
            "from": user,
            "text": text,
        },
    }


def _number(message_id: str) -> int:
    return zlib.crc32(message_id.encode()) & 0x7FFFFFFF or 1


def webhook_request(name: str, update: dict[str, Any], secret: str | None = SECRET) -> Request:
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    return Request("POST", f"/channels/telegram/{name}", headers, json.dumps(update).encode())


class TelegramKit:
    type = "telegram"

    def options(self, api_base: str) -> dict[str, Any]:
        return {"token": TOKEN, "secret_token": SECRET, "api_base": api_base}

    @contextmanager
    def fake_api(self) -> Iterator[FakeTelegram]:
        with running_fake(TOKEN) as api:
            yield api

    def message(self, name: str, sender: str, text: str, message_id: str) -> Request:
        return webhook_request(name, text_update(sender, text, message_id))

    def forged(self, name: str, sender: str, text: str, message_id: str) -> Request:
        return webhook_request(name, text_update(sender, text, message_id), secret="forged")

    def replies(self, response: Any, api: FakeTelegram, sender: str) -> list[str]:
        # The webhook answers {"ok": true} at once; the replies go out through sendMessage.
        return api.texts_to(sender)

    def verification(self, name: str, challenge: str) -> None:
        return None  # setWebhook is a call the bot makes; Telegram checks nothing at our URL


KIT = TelegramKit()
