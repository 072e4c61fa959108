"""A web chat channel's keys in config.yaml."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class WebOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_frame_bytes: int = 64_000
    # signs visitors' identities (email, phone) on the site's server; unset: none are taken
    identity_secret: str | None = Field(default=None, min_length=16)
    upload_max_bytes: int = 10_000_000
    upload_types: list[str] = Field(
        default_factory=lambda: [
            "image/jpeg",
            "image/png",
            "image/gif",
            "image/webp",
            "application/pdf",
        ]
    )
