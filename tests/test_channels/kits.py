"""Channel kits: what the shared conformance test (test_conformance.py) needs to drive one
channel type from outside, as its platform would. Each messaging channel's tests module
provides one (tests/test_channels/kit_<type>.py defines `KIT`), and KITS lists them.

A kit signs requests exactly as the platform does and runs a local HTTP server that speaks the
platform's API (the channel's `api_base` points at it), recording what the hub sends.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Request:
    """One HTTP request to the hub, as the platform makes it."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    params: dict[str, str] = field(default_factory=dict)


class FakeApi(Protocol):
    """A running local server speaking the platform's API."""

    @property
    def base(self) -> str:
        """What the channel's `api_base` option is set to."""
        ...

    def texts_to(self, recipient: str) -> list[str]:
        """Texts the hub sent to this customer through the API, in order."""
        ...


class Kit(Protocol):
    type: str  # the channel type, as registered

    def options(self, api_base: str) -> dict[str, Any]:
        """A channel instance's config.yaml options, pointing at the fake API."""
        ...

    def fake_api(self) -> AbstractContextManager[FakeApi]: ...

    def message(self, name: str, sender: str, text: str, message_id: str) -> Request:
        """A customer's text message to the instance `name`, signed as the platform signs."""
        ...

    def forged(self, name: str, sender: str, text: str, message_id: str) -> Request:
        """The same message with a wrong signature (or secret)."""
        ...

    def replies(self, response: Any, api: FakeApi, sender: str) -> list[str]:
        """Texts the customer got for one message: from the HTTP response (a passive reply)
        and/or what the hub sent through the API (the outbox has been drained)."""
        ...

    def verification(self, name: str, challenge: str) -> Request | None:
        """The check the platform makes when the webhook URL is set, which the hub answers
        with `challenge` in the body; None when the platform makes none."""
        ...


# Registered channel types with no platform webhook to drive, tested by their own modules: the
# web widget's socket, the unsigned Rasa REST webhook, email (the hub fetches mail over IMAP:
# test_email.py against real Dovecot and SMTP servers), and the test-only memory channel.
WITHOUT_KIT = frozenset({"web", "rest", "email", "memory"})


def kits(types: Iterable[str]) -> Iterator[Kit]:
    """The kit of each channel type; a type with none is an ImportError naming it."""
    for name in sorted(set(types) - WITHOUT_KIT):
        try:
            module = importlib.import_module(f"tests.test_channels.kit_{name}")
        except ModuleNotFoundError as e:
            raise ImportError(
                f"channel type {name!r} has no tests/test_channels/kit_{name}.py"
            ) from e
        yield module.KIT
