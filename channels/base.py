"""The channel interface: one module or package per platform implements it (README.md
"Architecture").

A channel verifies and parses what its platform sends (its `router()` holds the webhook or
socket endpoints), hands each message to the hub as one `Inbound` through the `Receiver`, and
delivers stored messages back with `send()`. It declares what it can show in `capabilities`.
A channel type is generic over its options, the pydantic model of its own keys in config.yaml:
`class WeChatChannel(Channel[WeChatOptions])` with `Options = WeChatOptions` reads
`self.options.token` typed.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Generic

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, ValidationError
from typing_extensions import TypeVar

from channels.common import problems
from hub.messages import Outbound
from hub.ports import Capabilities, ChannelConfigError, DeliveryError, Receiver

__all__ = [
    "Capabilities",
    "Channel",
    "ChannelConfigError",
    "DeliveryError",
    "NoOptions",
    "OptionsT",
]


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


# A channel type's options model; a type that has no keys of its own is a plain `Channel`
OptionsT = TypeVar("OptionsT", bound=BaseModel, default=NoOptions)


class Channel(ABC, Generic[OptionsT]):
    """Base of every channel type. Subclasses set `type`, `capabilities` and `Options`."""

    type: ClassVar[str]
    capabilities: ClassVar[Capabilities] = Capabilities()
    # the type's own keys in config.yaml; NoOptions is right only for the default OptionsT, so a
    # type with options sets its own model here (mypy checks it against Channel[...])
    Options: ClassVar[builtins.type[OptionsT]] = NoOptions  # type: ignore[assignment]

    def __init__(self, name: str, options: dict[str, Any], receiver: Receiver) -> None:
        self.name = name
        self.receiver = receiver
        try:
            self.options: OptionsT = self.Options.model_validate(options)
        except ValidationError as e:
            wrong = problems(e, whole="options")
            raise ChannelConfigError(f"channel {name!r} ({self.type}): {wrong}") from e

    def router(self) -> APIRouter | None:
        """HTTP and WebSocket endpoints of this instance (mounted at the app's root)."""
        return None

    async def start(self) -> None:
        """Begin background work (pollers, sockets to the platform)."""

    async def stop(self) -> None:
        """End background work."""

    def problem(self) -> str | None:
        """What keeps the channel from working right now (a lost connection to the platform,
        the last error), for /readyz and the admin pages; None when all is well."""
        return None

    async def on_relay(self, data: dict[str, Any]) -> None:
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
