"""The email transport against real servers: aiosmtpd for SMTP out, Dovecot for IMAP in."""

from __future__ import annotations

import asyncio
import email
import email.policy
import gc
import logging
import warnings
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import pytest
from pydantic import ValidationError

from channels.base import DeliveryError
from channels.email.imap import ImapError, ImapInbox, ImapSettings, imap_utf7, parse_fetch
from channels.email.smtp import SmtpSender, SmtpSettings
from tests.test_channels.mailservers import (  # noqa: F401 - the *_fixture are fixtures
    Dovecot,
    Mailbox,
    SmtpServer,
    dovecot_fixture,
    free_port,
    mailbox_fixture,
    smtp_server_fixture,
    smtp_server_starttls_fixture,
    smtp_server_tls_fixture,
)


class MemoryState:
    """The StateStore the inbox keeps its progress in, in memory."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, Any]] = {}

    async def get(self, key: str) -> dict[str, Any] | None:
        return dict(self.values[key]) if key in self.values else None

    async def put(self, key: str, value: dict[str, Any]) -> None:
        self.values[key] = dict(value)


class Handler:
    """Records the Subject of every message handed over; `fail_once` subjects raise the first
    time they are seen."""

    def __init__(self, fail_once: set[str] | None = None) -> None:
        self.subjects: list[str] = []
        self.fail_once = set(fail_once or ())

    async def __call__(self, raw: bytes) -> None:
        subject = str(email.message_from_bytes(raw, policy=email.policy.default)["Subject"])
        if subject in self.fail_once:
            self.fail_once.discard(subject)
            raise RuntimeError(f"the hub could not take {subject}")
        self.subjects.append(subject)


def mail(subject: str) -> bytes:
    return (
        f"From: customer@example.org\r\nTo: support@example.com\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject}@example.org>\r\n\r\nAbout {subject}.\r\n"
    ).encode()


def outgoing(subject: str = "回复：订单 42") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "support@example.com"
    message["To"] = "customer@example.org"
    message["Subject"] = subject
    message.set_content("您的订单已发货。")
    return message


async def wait_until(condition: Callable[[], bool], seconds: float = 10) -> None:
    """Poll `condition` (the inbox's status attributes: nothing to await) until it holds."""
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"still not true after {seconds} s")


def inbox(mailbox: Mailbox, state: MemoryState, handle: Handler, **settings: Any) -> ImapInbox:
    return ImapInbox(
        ImapSettings(**mailbox.imap_settings(**settings)),
        state,
        handle,
        retry_delay=0.05,
        max_retry_delay=0.5,
    )


# --- SMTP -------------------------------------------------------------------------------------


async def test_smtp_plain_with_auth(smtp_server: SmtpServer) -> None:
    await SmtpSender(SmtpSettings(**smtp_server.smtp_settings())).send(outgoing())

    [received] = smtp_server.messages
    assert received.mail_from == "support@example.com"
    assert received.rcpt_tos == ["customer@example.org"]
    assert received.message["Subject"] == "回复：订单 42"
    assert received.message.get_content().strip() == "您的订单已发货。"


async def test_smtp_explicit_envelope(smtp_server: SmtpServer) -> None:
    sender = SmtpSender(SmtpSettings(**smtp_server.smtp_settings()))
    await sender.send(outgoing(), sender="bounces@example.com", recipients=["a@x.org", "b@x.org"])

    [received] = smtp_server.messages
    assert (received.mail_from, received.rcpt_tos) == (
        "bounces@example.com",
        ["a@x.org", "b@x.org"],
    )


async def test_smtp_starttls(smtp_server_starttls: SmtpServer) -> None:
    settings = SmtpSettings(**smtp_server_starttls.smtp_settings())
    assert settings.starttls and not settings.tls
    await SmtpSender(settings).send(outgoing())
    assert len(smtp_server_starttls.messages) == 1


async def test_smtp_implicit_tls_trusting_ca_file(smtp_server_tls: SmtpServer) -> None:
    await SmtpSender(SmtpSettings(**smtp_server_tls.smtp_settings())).send(outgoing())
    assert len(smtp_server_tls.messages) == 1


async def release_failed_handshakes() -> None:
    """CPython 3.11's asyncio leaves the socket of a failed TLS handshake to the garbage
    collector (its ResourceWarning, an error under this suite's filters, would surface in
    whichever test happens to run the collector next). Collect it where the failure is
    expected."""
    await asyncio.sleep(0.05)  # let the loop run the transport's close callbacks
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


async def test_smtp_untrusted_certificate_is_retryable(smtp_server_tls: SmtpServer) -> None:
    """A TLS failure may be a passing problem (a certificate being renewed): retry."""
    sender = SmtpSender(SmtpSettings(**smtp_server_tls.smtp_settings(ca_file=None)))
    with pytest.raises(DeliveryError, match="CERTIFICATE_VERIFY_FAILED") as failure:
        await sender.send(outgoing())
    assert failure.value.retryable
    assert smtp_server_tls.messages == []
    await release_failed_handshakes()


async def test_smtp_wrong_password_is_final_and_not_shown(smtp_server: SmtpServer) -> None:
    sender = SmtpSender(SmtpSettings(**smtp_server.smtp_settings(password="hunter2-wrong")))
    with pytest.raises(DeliveryError) as failure:
        await sender.send(outgoing())

    assert not failure.value.retryable
    assert f"{smtp_server.host}:{smtp_server.port}" in str(failure.value)
    assert "535" in str(failure.value)
    assert "hunter2" not in str(failure.value)


@pytest.mark.parametrize(
    ("command", "reply", "retryable"),
    [
        ("RCPT", "451 4.3.0 Mailbox busy, try later", True),
        ("RCPT", "550 5.1.1 No such user", False),
        ("DATA", "451 4.7.1 Greylisted", True),
        ("DATA", "554 5.6.0 Message rejected", False),
    ],
)
async def test_smtp_reply_codes_decide_retry(
    smtp_server: SmtpServer, command: str, reply: str, retryable: bool
) -> None:
    smtp_server.fail_next(command, reply)
    sender = SmtpSender(SmtpSettings(**smtp_server.smtp_settings()))

    with pytest.raises(DeliveryError) as failure:
        await sender.send(outgoing())
    assert failure.value.retryable is retryable
    assert reply.split()[0] in str(failure.value) and str(smtp_server.port) in str(failure.value)

    if retryable:  # and the retry goes through
        await sender.send(outgoing())
        assert len(smtp_server.messages) == 1


async def test_smtp_some_recipients_refused_is_final(smtp_server: SmtpServer) -> None:
    """The others already have the message; a retry would send it to them twice."""
    smtp_server.fail_next("RCPT", "550 5.1.1 No such user")
    sender = SmtpSender(SmtpSettings(**smtp_server.smtp_settings()))
    with pytest.raises(DeliveryError, match="refused some recipients") as failure:
        await sender.send(outgoing(), recipients=["gone@x.org", "customer@example.org"])
    assert not failure.value.retryable
    assert smtp_server.messages[0].rcpt_tos == ["customer@example.org"]


async def test_smtp_server_down_is_retryable() -> None:
    port = free_port()
    settings = SmtpSettings(host="127.0.0.1", port=port, tls=False, password="pw-123", timeout=5)
    with pytest.raises(DeliveryError) as failure:
        await SmtpSender(settings).send(outgoing())
    assert failure.value.retryable
    assert f"127.0.0.1:{port}" in str(failure.value)


def test_tls_and_starttls_exclude_each_other() -> None:
    with pytest.raises(ValidationError, match="exclude each other"):
        SmtpSettings(host="smtp.example.com", port=587, starttls=True)  # tls defaults to True
    with pytest.raises(ValidationError, match="exclude each other"):
        ImapSettings(host="imap.example.com", user="u", password="p", starttls=True)


# --- IMAP: what is fetched --------------------------------------------------------------------


async def test_first_run_takes_only_unread_mail(mailbox: Mailbox) -> None:
    old = mailbox.deliver(mail("old"), seen=True)
    unread = [mailbox.deliver(mail("unread-1")), mailbox.deliver(mail("unread-2"))]
    state, handler = MemoryState(), Handler()
    reader = inbox(mailbox, state, handler, tls=False)

    assert await reader.fetch_new() == 2
    assert handler.subjects == ["unread-1", "unread-2"]
    assert mailbox.seen_uids() == {old, *unread}
    assert state.values["imap:INBOX"]["last_uid"] == unread[-1]
    assert await reader.fetch_new() == 0
    await reader.close()


async def test_after_the_first_run_read_mail_counts_too(mailbox: Mailbox) -> None:
    """From then on new means a higher UID: mail someone read in webmail first still comes."""
    mailbox.deliver(mail("old"), seen=True)
    state, handler = MemoryState(), Handler()
    reader = inbox(mailbox, state, handler)
    assert await reader.fetch_new() == 0

    mailbox.deliver(mail("read-by-a-colleague"), seen=True)
    assert await reader.fetch_new() == 1
    assert handler.subjects == ["read-by-a-colleague"]
    await reader.close()


async def test_new_mail_in_uid_order_in_chunks(mailbox: Mailbox) -> None:
    state, handler = MemoryState(), Handler()
    reader = inbox(mailbox, state, handler)
    reader.FETCH_CHUNK = 2
    assert await reader.fetch_new() == 0

    uids = [mailbox.deliver(mail(f"m{i}")) for i in range(5)]
    assert await reader.fetch_new() == 5
    assert handler.subjects == [f"m{i}" for i in range(5)]
    assert state.values["imap:INBOX"]["last_uid"] == uids[-1]
    assert mailbox.seen_uids() == set(uids)
    await reader.close()


async def test_seen_only_after_the_handler_returned(mailbox: Mailbox) -> None:
    uid = mailbox.deliver(mail("question"))
    flags_while_handling: list[set[str]] = []

    async def handle(raw: bytes) -> None:
        flags_while_handling.append(await asyncio.to_thread(mailbox.flags, uid))

    reader = ImapInbox(ImapSettings(**mailbox.imap_settings()), MemoryState(), handle)
    assert await reader.fetch_new() == 1
    assert flags_while_handling == [set()]  # fetching (BODY.PEEK) didn't mark it
    assert "\\Seen" in mailbox.flags(uid)
    await reader.close()


@pytest.mark.parametrize("first_run", [True, False])
async def test_failing_handler_loses_nothing_and_keeps_order(
    mailbox: Mailbox, first_run: bool
) -> None:
    state, handler = MemoryState(), Handler(fail_once={"b"})
    reader = inbox(mailbox, state, handler)
    if not first_run:
        assert await reader.fetch_new() == 0
    a, b, c = (mailbox.deliver(mail(s)) for s in "abc")

    assert await reader.fetch_new() == 1  # stopped at b
    assert handler.subjects == ["a"]
    assert mailbox.seen_uids() == {a}
    assert reader.last_error is not None and f"UID {b}" in reader.last_error

    assert await reader.fetch_new() == 2
    assert handler.subjects == ["a", "b", "c"]
    assert mailbox.seen_uids() == {a, b, c}
    assert state.values["imap:INBOX"]["last_uid"] == c
    assert reader.last_error is None
    await reader.close()


async def test_restart_repeats_nothing_and_loses_nothing(mailbox: Mailbox) -> None:
    state, handler = MemoryState(), Handler()
    first = inbox(mailbox, state, handler)
    mailbox.deliver(mail("before"))
    assert await first.fetch_new() == 1
    await first.close()

    mailbox.deliver(mail("while-down"), seen=True)  # read elsewhere meanwhile: still new
    second = inbox(mailbox, state, handler)
    assert await second.fetch_new() == 1
    mailbox.deliver(mail("after"))
    assert await second.fetch_new() == 1
    assert handler.subjects == ["before", "while-down", "after"]
    await second.close()


async def test_uidvalidity_change_starts_over_with_unread_mail(
    mailbox: Mailbox, caplog: pytest.LogCaptureFixture
) -> None:
    folder = "客服 Support"  # a non-ASCII name goes over the wire in modified UTF-7
    mailbox.create_folder(folder)
    state, handler = MemoryState(), Handler()
    for subject in ("one", "two"):
        mailbox.deliver(mail(subject), folder=folder)
    reader = inbox(mailbox, state, handler, folder=folder)
    assert await reader.fetch_new() == 2
    await reader.close()
    before = state.values[f"imap:{folder}"]

    mailbox.recreate_folder(folder)  # UIDs start again at 1
    mailbox.deliver(mail("old-read"), seen=True, folder=folder)
    mailbox.deliver(mail("three"), folder=folder)
    reader = inbox(mailbox, state, handler, folder=folder)
    with caplog.at_level(logging.WARNING, logger="channels.email.imap"):
        assert await reader.fetch_new() == 1

    assert handler.subjects == ["one", "two", "three"]
    after = state.values[f"imap:{folder}"]
    assert after["uidvalidity"] != before["uidvalidity"] and after["last_uid"] == 2
    assert "UIDVALIDITY" in caplog.text
    await reader.close()


# --- IMAP: connections ------------------------------------------------------------------------


async def test_implicit_tls_trusting_ca_file(mailbox: Mailbox) -> None:
    mailbox.deliver(mail("over-tls"))
    handler = Handler()
    reader = inbox(mailbox, MemoryState(), handler, tls=True)
    assert reader.settings.port == mailbox.server.tls_port
    assert await reader.fetch_new() == 1
    assert handler.subjects == ["over-tls"]
    await reader.close()


async def test_starttls(mailbox: Mailbox) -> None:
    mailbox.deliver(mail("upgraded"))
    handler = Handler()
    reader = inbox(mailbox, MemoryState(), handler, starttls=True, ca_file=mailbox.server.ca_file)
    assert await reader.fetch_new() == 1
    assert handler.subjects == ["upgraded"]
    await reader.close()


async def test_untrusted_certificate_fails(mailbox: Mailbox) -> None:
    reader = inbox(mailbox, MemoryState(), Handler(), tls=True, ca_file=None)
    with pytest.raises(OSError, match="CERTIFICATE_VERIFY_FAILED"):
        await reader.fetch_new()
    assert reader.last_error and "CERTIFICATE_VERIFY_FAILED" in reader.last_error
    assert not reader.connected
    await reader.close()
    await release_failed_handshakes()


async def test_wrong_password_is_reported_without_it(
    mailbox: Mailbox, caplog: pytest.LogCaptureFixture
) -> None:
    reader = inbox(mailbox, MemoryState(), Handler(), password="hunter2-wrong")
    with pytest.raises(ImapError, match="refused the login"):
        await reader.fetch_new()

    with caplog.at_level(logging.DEBUG):
        task = asyncio.create_task(reader.run())
        await wait_until(lambda: "retrying" in caplog.text)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert "refused the login" in caplog.text
    assert "hunter2" not in caplog.text and "hunter2" not in str(reader.last_error)


async def test_idle_picks_up_mail_as_it_arrives(mailbox: Mailbox) -> None:
    handler = Handler()
    reader = inbox(mailbox, MemoryState(), handler, poll_interval=600)  # no polling to help
    task = asyncio.create_task(reader.run())
    await wait_until(lambda: reader.idling)

    await asyncio.to_thread(mailbox.deliver, mail("pushed"))
    await wait_until(lambda: handler.subjects == ["pushed"])
    await wait_until(lambda: reader.idling)  # and back to waiting

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not reader.connected and not reader.idling


async def test_polling_when_idle_is_off(mailbox: Mailbox) -> None:
    handler = Handler()
    reader = inbox(mailbox, MemoryState(), handler, idle=False, poll_interval=0.1)
    idled: list[bool] = []
    task = asyncio.create_task(reader.run())
    await wait_until(lambda: reader.connected)

    def handled() -> bool:
        idled.append(reader.idling)
        return handler.subjects == ["polled"]

    await asyncio.to_thread(mailbox.deliver, mail("polled"))
    await wait_until(handled)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not any(idled)


async def test_reconnects_after_the_server_restarted(mailbox: Mailbox, dovecot: Dovecot) -> None:
    handler = Handler()
    reader = inbox(mailbox, MemoryState(), handler, poll_interval=600)
    task = asyncio.create_task(reader.run())
    await asyncio.to_thread(mailbox.deliver, mail("before"))
    await wait_until(lambda: handler.subjects == ["before"] and reader.idling)

    await asyncio.to_thread(dovecot.restart)
    await asyncio.to_thread(mailbox.deliver, mail("after"))
    await wait_until(lambda: handler.subjects == ["before", "after"])
    await wait_until(lambda: reader.idling)
    assert reader.last_error is None

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_run_survives_a_server_that_is_down(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    settings = ImapSettings(host="127.0.0.1", port=port, tls=False, user="u", password="pw-123")
    reader = ImapInbox(settings, MemoryState(), Handler(), retry_delay=0.01, max_retry_delay=0.05)
    with caplog.at_level(logging.WARNING, logger="channels.email.imap"):
        task = asyncio.create_task(reader.run())
        await wait_until(lambda: caplog.text.count("retrying") >= 3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert reader.last_error and f"127.0.0.1:{port}" in reader.last_error
    assert "pw-123" not in caplog.text


# --- parsing ----------------------------------------------------------------------------------


def test_parse_fetch_takes_uid_wherever_it_is_and_skips_flag_updates() -> None:
    lines: list[bytes | bytearray] = [
        b"1 FETCH (UID 7 BODY[] {5}",
        bytearray(b"first"),
        b")",
        b"2 FETCH (FLAGS (\\Seen) UID 8)",  # unsolicited: someone flagged another message
        b"3 FETCH (BODY[] {6}",
        bytearray(b"second"),
        b" UID 9)",
    ]
    assert parse_fetch(lines) == [(7, b"first"), (9, b"second")]


def test_folder_names_in_modified_utf7() -> None:
    assert imap_utf7("INBOX") == "INBOX"
    assert imap_utf7("Entwürfe") == "Entw&APw-rfe"  # RFC 3501's example
    assert imap_utf7("客服 & Co") == "&W6JnDQ- &- Co"
