"""Whether the email channel believes a mail's From address (channels/email/auth.py): only
when the receiving server's Authentication-Results says DMARC passed, or DKIM for the From
domain; then the Inbound carries it as verified (and contacts may merge into one customer)."""

from __future__ import annotations

import asyncio
import email.utils
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from channels.email.auth import sender_authenticated
from channels.email.channel import EmailChannel
from hub.messages import Inbound, Outbound

FLANKER = Path(__file__).resolve().parent.parent / "fixtures" / "email" / "flanker"
GMAIL = "mx.google.com; dkim=pass header.i=@customer.test header.s=s1; spf=pass smtp.mailfrom=x"


def mail(sender: str = "ann@customer.test", *results: str) -> bytes:
    message = EmailMessage()
    for value in results:  # the first given is the topmost header
        message["Authentication-Results"] = value
    message["From"] = email.utils.formataddr(("Ann Lee", sender))
    message["To"] = "support@example.com"
    message["Subject"] = "Where is my order?"
    message["Message-ID"] = email.utils.make_msgid(domain="customer.test")
    message.set_content("Hello")
    return bytes(message)


class Receiver:
    """Just what EmailChannel.take needs of the hub."""

    def __init__(self) -> None:
        self.inbound: list[Inbound] = []
        self.state: dict[str, dict[str, Any]] = {}

    async def receive(self, inbound: Inbound, on_stored: Any = None) -> list[Outbound]:
        self.inbound.append(inbound)
        return []

    async def load_state(self, channel: str, key: str) -> dict[str, Any] | None:
        return self.state.get(key)

    async def save_state(self, channel: str, key: str, value: dict[str, Any]) -> None:
        self.state[key] = value

    async def conversation_of(self, channel: str, channel_message_id: str) -> int | None:
        return None

    async def save_media(self, data: bytes, **_: Any) -> str:
        return "/media/x/original.eml"


def taken(raw: bytes, **options: Any) -> Inbound:
    receiver = Receiver()
    channel = EmailChannel(
        "mail",
        {"address": "support@example.com", **options},
        receiver,  # type: ignore[arg-type]
    )
    asyncio.run(channel.take(raw))
    [inbound] = receiver.inbound
    return inbound


@pytest.mark.parametrize(
    ("results", "believed"),
    [
        ([GMAIL], True),
        (["mx.example.com; dmarc=pass (p=REJECT) header.from=customer.test"], True),
        (["mx.example.com; dkim=pass header.d=customer.test"], True),
        (["spf=pass smtp.mailfrom=customer.test; dkim=pass header.d=customer.test;"], True),
        (["mx.example.com; dkim=pass header.d=other.test"], False),  # signed by someone else
        (["mx.example.com; dmarc=fail header.from=customer.test"], False),
        (["mx.example.com; spf=pass smtp.mailfrom=customer.test"], False),  # SPF: not the From
        (["mx.example.com; dkim=fail", "mx.evil; dmarc=pass"], False),  # a forged one below
        ([], False),
    ],
)
def test_the_from_address_is_believed_only_when_authenticated(
    results: list[str], believed: bool
) -> None:
    assert sender_authenticated(mail("ann@customer.test", *results), "ann@customer.test") is (
        believed
    )


def test_authserv_id_names_the_only_server_believed() -> None:
    raw = mail("ann@customer.test", "mx.evil; dmarc=pass", "mx.example.com; dkim=fail")
    assert not sender_authenticated(raw, "ann@customer.test", "mx.example.com")
    raw = mail("ann@customer.test", "mx.evil; dkim=fail", "mx.example.com; dmarc=pass")
    assert sender_authenticated(raw, "ann@customer.test", "mx.example.com")


def test_a_real_gmail_header_with_a_comment() -> None:
    raw = (FLANKER / "iphone.eml").read_bytes()
    assert sender_authenticated(raw, "someone@gmail.com")
    assert not sender_authenticated(raw, "someone@somewhere.com")


def test_the_channel_hands_the_hub_an_authenticated_sender_as_verified() -> None:
    assert taken(mail("ann@customer.test", GMAIL)).verified is not None
    assert taken(mail("ann@customer.test", GMAIL)).verified.email == "ann@customer.test"  # type: ignore[union-attr]
    assert taken(mail("ann@customer.test")).verified is None
    assert taken(mail("ann@customer.test"), sender_verified="always").verified is not None
    assert taken(mail("ann@customer.test", GMAIL), sender_verified="never").verified is None
