"""The channel interface: one module per platform implements it (DESIGN.md section 1).

A channel verifies and parses what its platform sends (its `router()` holds the webhook or
socket endpoints), hands each message to the hub as one `Inbound` through the `Receiver`, and
delivers stored messages back with `send()`. It declares what it can show in `capabilities`.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, ValidationError

from hub.messages import Outbound
from hub.ports import Capabilities, DeliveryError, Receiver

__all__ = ["Capabilities", "Channel", "ChannelConfigError", "DeliveryError", "NoOptions"]


class ChannelConfigError(Exception):
    """A channel's settings in config.yaml are wrong; the message names the channel."""


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Channel(ABC):
    """Base of every channel type. Subclasses set `type`, `capabilities` and `Options`."""

    type: ClassVar[str]
    capabilities: ClassVar[Capabilities] = Capabilities()
    Options: ClassVar[builtins.type[BaseModel]] = NoOptions  # the type's own keys in config.yaml

    def __init__(self, name: str, options: dict[str, Any], receiver: Receiver) -> None:
        self.name = name
        self.receiver = receiver
        try:
            self.options: Any = self.Options.model_validate(options)
        except ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'options'}: {err['msg']}"
                for err in e.errors()
            )
            raise ChannelConfigError(f"channel {name!r} ({self.type}): {problems}") from e

    def router(self) -> APIRouter | None:
        """HTTP and WebSocket endpoints of this instance (mounted at the app's root)."""
        return None

    async def start(self) -> None:  # noqa: B027 - most channels have no background work
        """Begin background work (pollers, sockets to the platform)."""

    async def stop(self) -> None:  # noqa: B027
        """End background work."""

    def problem(self) -> str | None:
        """What keeps the channel from working right now (a lost connection to the platform,
        the last error), for /readyz and the admin pages; None when all is well."""
        return None

    async def on_relay(self, data: dict[str, Any]) -> None:  # noqa: B027 (optional hook)
        """What another hub process relayed to this channel's instance here (see
        Receiver.relay): e.g. a frame for a widget socket open on this process."""

    def body_limits(self) -> dict[str, int]:
        """Paths of this instance whose request bodies may be larger than the hub's
        `max_body_bytes`, with their own limit in bytes (a widget's file upload)."""
        return {}

    def rate_bucket(self, recipient_id: str) -> str:
        """The platform rate limit a send to this recipient counts against (see Capabilities.
        send_interval); by default each recipient has its own."""
        return recipient_id

    @abstractmethod
    async def send(self, message: Outbound) -> None:
        """Deliver a stored message to the customer; raise DeliveryError when it can't."""
