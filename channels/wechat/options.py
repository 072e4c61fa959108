"""A WeChat official account channel's keys in config.yaml."""

from __future__ import annotations

import base64
import binascii

from pydantic import BaseModel, ConfigDict, Field, field_validator


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
