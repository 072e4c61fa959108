"""The WeChat official account channel: channel.py (the webhook, its answers and send()),
wire.py (signatures, XML, safe mode's AES), inbound.py (WeChat's messages as Inbound),
passive.py (the passive reply), api.py and tokens.py (the account's HTTP API and its
access_token), replay.py (replayed requests refused), options.py (its keys in config.yaml)."""

from channels.wechat.api import WeChatApi
from channels.wechat.channel import WeChatChannel
from channels.wechat.inbound import normalize
from channels.wechat.options import WeChatOptions
from channels.wechat.tokens import AccessToken
from channels.wechat.wire import (
    MAX_TEXT_BYTES,
    Envelope,
    Malformed,
    Refused,
    encrypted_part,
    parse,
    signature,
    split_text,
)

__all__ = [
    "MAX_TEXT_BYTES",
    "AccessToken",
    "Envelope",
    "Malformed",
    "Refused",
    "WeChatApi",
    "WeChatChannel",
    "WeChatOptions",
    "encrypted_part",
    "normalize",
    "parse",
    "signature",
    "split_text",
]
