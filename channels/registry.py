"""Channel types by name: the entry-point group `kefu.channels` (pyproject.toml), so a channel
is one module and one line, and another package can add one the same way."""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import Any

from channels.base import Channel, ChannelConfigError
from hub.ports import Receiver

_extra: dict[str, type[Channel[Any]]] = {}


def register(type_name: str, cls: type[Channel[Any]]) -> None:
    """Add a channel type without an entry point (tests, embedding)."""
    _extra[type_name] = cls


def channel_types() -> dict[str, type[Channel[Any]]]:
    found: dict[str, type[Channel[Any]]] = {}
    for ep in entry_points(group="kefu.channels"):
        found[ep.name] = ep.load()
    return {**found, **_extra}


def build_channels(
    configs: Iterable[tuple[str, str, dict[str, Any]]], receiver: Receiver
) -> dict[str, Channel[Any]]:
    """Instances from (name, type, options) triples; unknown types are a ChannelConfigError."""
    types = channel_types()
    built: dict[str, Channel[Any]] = {}
    for name, type_name, options in configs:
        cls = types.get(type_name)
        if cls is None:
            known = ", ".join(sorted(types))
            raise ChannelConfigError(
                f"channel {name!r}: unknown type {type_name!r} (known: {known})"
            )
        built[name] = cls(name, options, receiver)
    return built
