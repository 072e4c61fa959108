"""Tokens that prove a sender id on a channel whose ids are not secrets (the widget's visitor
ids): an HMAC-SHA256 of the channel's name and the id, under a key derived from the hub's
secret (`KEFU_SECRET_KEY`), so every hub process gives the same token and checks it without
storing anything (Receiver.sender_token)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from functools import cached_property


class SenderTokens:
    def __init__(self, secret: Callable[[], str]) -> None:
        self._secret = secret  # read on first use: a hub that never needs one makes no key

    @cached_property
    def _key(self) -> bytes:
        """Derived from the hub's secret, not that secret itself (which also signs logins)."""
        return hmac.new(self._secret().encode(), b"kefu-sender-token", hashlib.sha256).digest()

    def token(self, channel: str, sender_id: str) -> str:
        message = f"{channel}\x00{sender_id}".encode("utf-8", "surrogatepass")
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
