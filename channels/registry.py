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


def type_names() -> list[str]:
    """Every channel type's name, nothing imported."""
    return sorted({ep.name for ep in entry_points(group="kefu.channels")} | set(_extra))


def channel_type(type_name: str) -> type[Channel[Any]] | None:
    """One channel type, its module (and its platform's SDK) imported only now: a hub imports
    the SDKs of the channels it has, not of every channel (aiogram alone is ~130 MB)."""
    if type_name in _extra:
        return _extra[type_name]
    for ep in entry_points(group="kefu.channels", name=type_name):
        return ep.load()
    return None


def channel_types() -> dict[str, type[Channel[Any]]]:
    """Every channel type, each imported (tests, tools)."""
    found = {ep.name: ep.load() for ep in entry_points(group="kefu.channels")}
    return {**found, **_extra}


def build_channels(
    configs: Iterable[tuple[str, str, dict[str, Any]]], receiver: Receiver
) -> dict[str, Channel[Any]]:
    """Instances from (name, type, options) triples; unknown types are a ChannelConfigError."""
    built: dict[str, Channel[Any]] = {}
    for name, type_name, options in configs:
        cls = channel_type(type_name)
        if cls is None:
            known = ", ".join(type_names())
            raise ChannelConfigError(
                f"channel {name!r}: unknown type {type_name!r} (known: {known})"
            )
        built[name] = cls(name, options, receiver)
    return built
