"""A Telegram channel's keys in config.yaml."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TelegramOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(default="", pattern=r"^(\d+:[\w-]+)?$")  # from @BotFather
    mode: Literal["webhook", "polling"] = "webhook"
    # what setWebhook was given; Telegram sends it back in SECRET_HEADER with every update
    secret_token: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,256}$")
    api_base: str = "https://api.telegram.org"
    # in groups: answer messages that address the bot (mention), every message, or none
    group_mode: Literal["mention", "all", "off"] = "mention"
    polling_timeout: int = Field(default=30, ge=0, le=50)  # seconds a getUpdates waits
    request_timeout: float = Field(default=30.0, gt=0)
    dedupe_seconds: float = Field(default=3600.0, gt=0)  # how long an update_id is remembered
    # the payload `/start` (a customer's first message, or a t.me/<bot>?start=X link) sends to
    # the bot; None: `/start` is text like any other
    greeting: str | None = "/greet"
