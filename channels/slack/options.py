"""A Slack channel's keys in config.yaml."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class SlackOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bot_token: str = ""  # xoxb-...: OAuth & Permissions > Bot User OAuth Token
    signing_secret: str = ""  # Basic Information > App Credentials > Signing Secret
    app_token: str | None = None  # xapp-...: Socket Mode instead of a public Request URL
    api_base: str = "https://slack.com/api/"  # overridable, so tests can use a local server
    timeout: int = Field(default=10, ge=1)  # seconds per Web API call or file download
    max_file_bytes: int = Field(default=50_000_000, ge=0)  # larger files aren't downloaded

    @field_validator("api_base")
    @classmethod
    def _ends_with_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"  # slack_sdk appends method names
