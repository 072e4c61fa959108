"""Settings: config.yaml, `${VAR}` interpolation, and environment overrides.

Precedence: environment (`DATABASE_URL`, `REDIS_URL`, `KEFU_SECRET_KEY`, `KEFU_DATA_DIR`,
`KEFU_LOG_FORMAT`) over config.yaml over defaults. `KEFU_CONFIG` names the config file (default
`./config.yaml`).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from hub.ops.files import create_private
from hub.ops.hours_settings import HoursSettings
from hub.ops.proxies import check_proxies, split_proxies

MIN_SECRET_KEY = 32  # characters of KEFU_SECRET_KEY
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class SettingsError(Exception):
    """The configuration can't be used; the message says where and why."""


class ChannelConfig(BaseModel):
    """One channel instance; keys other than these are the channel type's own settings."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    type: str
    enabled: bool = True

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class FallbackSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    knowledge: bool = True
    clarify: bool = True
    handoff_after: int = Field(default=2, ge=1)


class BotSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: Path = Path("examples/shop")
    language: str = "zh"
    nlu_threshold: Literal["auto"] | float = "auto"
    # what "auto" aims for: the share of in-scope messages the bot may fail to recognize
    nlu_false_reject: float = Field(default=0.05, gt=0.0, lt=1.0)
    # top two intents closer than this: the parse is "ambiguous" (the bot can ask which)
    nlu_ambiguity_margin: float = Field(default=0.1, ge=0.0, lt=1.0)
    # optional static subword vectors (`make vectors`) added to the classifier's features
    nlu_vectors: Path | None = None
    fallback: FallbackSettings = FallbackSettings()
    handoff_intents: list[str] = ["human"]
    # business hours, holidays and first-response SLAs per team (hub/features/hours/hours.py)
    hours: HoursSettings = HoursSettings()
    # a Rasa action server's webhook (http://host:5055/webhook); unset: the bot's actions.py
    action_endpoint: str | None = None
    action_timeout: float = Field(default=10.0, gt=0, le=120)
    # the NLU confidence an intent needs to interrupt a flow's question (interruptible flows)
    interrupt_confidence: float = Field(default=0.5, ge=0.0, le=1.0)
    # reload changed flows, NLU data and bot settings while running (retraining when needed)
    reload: bool = True

    @field_validator("nlu_threshold")
    @classmethod
    def _threshold_in_range(cls, v: Literal["auto"] | float) -> Literal["auto"] | float:
        if v != "auto" and not 0.0 <= float(v) <= 1.0:
            raise ValueError("must be 'auto' or a number in [0, 1]")
        return v


class WebhookSettings(BaseModel):
    """Outgoing webhooks' delivery: a failed attempt is retried after `backoff` seconds,
    doubling each time up to `backoff_max`, until `attempts` were made. Loopback, private,
    link-local and cloud metadata addresses are refused unless `allow_hosts` lists the host
    name, the address or a network holding it (hub/ops/netguard.py)."""

    model_config = ConfigDict(extra="forbid")

    attempts: int = Field(default=8, ge=1, le=30)
    timeout: float = Field(default=10.0, gt=0, le=120)
    backoff: float = Field(default=10.0, gt=0, le=3600)
    backoff_max: float = Field(default=3600.0, gt=0)
    allow_hosts: list[str] = Field(default_factory=list, max_length=500)

    @field_validator("allow_hosts")
    @classmethod
    def _allow_hosts(cls, entries: list[str]) -> list[str]:
        from hub.ops.netguard import AllowList  # (it imports httpx: not at settings' import)

        AllowList(entries)  # ValueError naming the entry that is neither a host nor a network
        return entries


class CsatSettings(BaseModel):
    """The satisfaction question sent after an agent resolves a conversation
    (hub/features/csat/survey.py)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # an answer later than this after the question is an ordinary message
    answer_within_hours: float = Field(default=24.0, gt=0, le=24 * 30)


class AssignmentSettings(BaseModel):
    """Auto-assignment of pending conversations to online agents
    (hub/features/routing/assignment.py). Off by
    default: a new hub (one admin, no teams yet) leaves taking conversations to the agents."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    # seconds between sweeps besides the events that start one (a missed event, a new agent)
    every: float = Field(default=30.0, gt=0, le=3600)
    # the expected wait a queued customer is told: the median of this many recent waits of
    # their team (in the last 24 hours); none: they are told only their place
    sample: int = Field(default=20, ge=1, le=1000)


class Rate(BaseModel):
    """At most `count` uses within any `seconds` (a sliding window)."""

    model_config = ConfigDict(extra="forbid")

    count: int = Field(ge=1, le=1_000_000)
    seconds: float = Field(gt=0, le=86_400)


class LimitSettings(BaseModel):
    """Rate limits on the public endpoints (hub/ops/ratelimit.py); null turns one off. Over one:
    429 with Retry-After (on a widget socket, an `error` frame with `retry_after`), and
    nothing is stored. No per-address limit on REST or platform webhooks: many customers
    share one NAT, and platforms call from a few addresses."""

    model_config = ConfigDict(extra="forbid")

    rest_messages: Rate | None = Rate(count=20, seconds=10)  # per REST sender
    widget_messages: Rate | None = Rate(count=20, seconds=10)  # per visitor: messages, buttons
    widget_frames: Rate | None = Rate(count=60, seconds=10)  # per visitor: any frame
    widget_sockets: int | None = Field(default=10, ge=1)  # open per visitor, per hub process
    widget_uploads: Rate | None = Rate(count=10, seconds=60)  # per visitor
    widget_sockets_per_ip: Rate | None = None  # new widget sockets per client address
    # uploads per client address: anonymous visitors can take new ids at will, and files fill
    # the disk; generous, since customers behind one NAT share an address
    widget_uploads_per_ip: Rate | None = Rate(count=30, seconds=60)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="forbid", populate_by_name=True)

    database_url: str = Field(
        default="sqlite+aiosqlite:///data/kefu.db", validation_alias="DATABASE_URL"
    )
    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")
    # the hub's Redis keys start with this: hubs of separate deployments can share one Redis
    redis_prefix: str = Field(
        default="kefu:", min_length=1, max_length=64, validation_alias="KEFU_REDIS_PREFIX"
    )
    # the file these settings came from (set by load_settings; the hot reload rereads it)
    config_path: Path | None = Field(default=None, exclude=True)
    # signs the agents' tokens: at least MIN_SECRET_KEY characters; unset: generated once
    secret_key: str | None = Field(default=None, validation_alias="KEFU_SECRET_KEY")
    # reverse proxies (IPs, CIDR networks) whose X-Forwarded-For names the client
    # (hub/ops/proxies.py)
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="KEFU_TRUSTED_PROXIES"
    )
    data_dir: Path = Field(default=Path("data"), validation_alias="KEFU_DATA_DIR")
    max_body_bytes: int = 1_000_000
    # files customers send, stored under data_dir/media; larger ones are refused
    media_max_bytes: int = Field(default=20_000_000, gt=0)
    # logs on stderr: `text` lines, or `json` (one object a line, for a log collector)
    log_format: Literal["text", "json"] = Field(default="text", validation_alias="KEFU_LOG_FORMAT")
    # seconds a stopping hub waits for messages being handled and their replies to be sent
    shutdown_grace: float = Field(default=10.0, ge=0, le=300)
    bot: BotSettings = BotSettings()
    webhooks: WebhookSettings = WebhookSettings()
    assignment: AssignmentSettings = AssignmentSettings()
    csat: CsatSettings = CsatSettings()
    # rate limits on the public endpoints (REST, the widget); login throttling is
    # hub/features/access/lockout.py
    limits: LimitSettings = LimitSettings()
    # resolved conversations older than this many days are deleted; None keeps them forever
    retention_days: int | None = Field(default=None, ge=1)
    channels: list[ChannelConfig] = [
        ChannelConfig(name="web", type="web"),
        ChannelConfig(name="rest", type="rest"),
    ]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (env_settings, init_settings)  # the environment overrides config.yaml

    @field_validator("channels")
    @classmethod
    def _unique_names(cls, channels: list[ChannelConfig]) -> list[ChannelConfig]:
        seen: set[str] = set()
        for c in channels:
            if c.name in seen:
                raise ValueError(f"two channels are named {c.name!r}; names must be unique")
            seen.add(c.name)
        return channels

    @field_validator("secret_key")
    @classmethod
    def _long_enough(cls, key: str | None) -> str | None:
        if key and len(key) < MIN_SECRET_KEY:
            raise ValueError(
                f"KEFU_SECRET_KEY has {len(key)} characters; it needs at least {MIN_SECRET_KEY}"
                " (make one: python -c 'import secrets; print(secrets.token_urlsafe(48))'),"
                " or leave it unset to have one generated into the data folder"
            )
        return key

    _split_proxies = field_validator("trusted_proxies", mode="before")(split_proxies)
    _check_proxies = field_validator("trusted_proxies")(check_proxies)

    @property
    def enabled_channels(self) -> list[ChannelConfig]:
        return [c for c in self.channels if c.enabled]

    def jwt_secret(self) -> str:
        """KEFU_SECRET_KEY, or a key generated once and kept in the data folder (owner-only)."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if not path.exists():
            create_private(path, secrets.token_urlsafe(48).encode())
        return path.read_text().strip()


def interpolate(tree: Any, env: Mapping[str, str], where: str = "") -> tuple[Any, list[str]]:
    """Replace `${VAR}` (or `${VAR:-default}`) in every string; returns (tree, unset names)."""
    missing: list[str] = []
    if isinstance(tree, str):

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            missing.append(f"{where}: ${{{name}}} is not set")
            return m.group(0)

        return _VAR.sub(sub, tree), missing
    if isinstance(tree, list):
        out = []
        for i, item in enumerate(tree):
            label = f"{where}[{i}]"
            if isinstance(item, dict) and "name" in item:
                label = f"{where}[{i}] (channel {item['name']!r})"
            value, errs = interpolate(item, env, label)
            out.append(value)
            missing += errs
        return out, missing
    if isinstance(tree, dict):
        result = {}
        for key, value in tree.items():
            result[key], errs = interpolate(value, env, f"{where}.{key}" if where else str(key))
            missing += errs
        return result, missing
    return tree, missing


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read config.yaml (if there is one), interpolate `${VAR}`, apply the environment."""
    env = os.environ
    path = Path(path or env.get("KEFU_CONFIG") or "config.yaml")
    raw: dict[str, Any] = {}
    if path.exists():
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, ValueError) as e:  # ValueError: a date like 2026-13-01
            raise SettingsError(f"{path}: not valid YAML: {e}") from e
        if not isinstance(raw, dict):
            raise SettingsError(f"{path}: the top level must be a mapping")
    elif path != Path("config.yaml"):
        raise SettingsError(f"{path}: no such config file")
    # A disabled channel may keep unset variables: it is skipped before interpolation.
    channels = raw.get("channels")
    if isinstance(channels, list):
        raw["channels"] = [
            c for c in channels if not (isinstance(c, dict) and c.get("enabled") is False)
        ]
    raw, missing = interpolate(raw, env)
    if missing:
        raise SettingsError("\n".join(f"{path}: {m}" for m in missing))
    bot = raw.get("bot")
    if isinstance(bot, dict) and "path" in bot and not Path(bot["path"]).is_absolute():
        bot["path"] = str(path.parent / bot["path"])
    raw.update(overrides)
    if path.exists():
        raw.setdefault("config_path", path)
    try:
        return Settings(**raw)
    except ValidationError as e:
        lines = [
            f"{path}: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
        ]
        raise SettingsError("\n".join(lines)) from e
