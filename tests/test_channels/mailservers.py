"""Real mail servers for the email tests: Dovecot for IMAP, aiosmtpd for SMTP.

A fake IMAP server would agree with whatever our client expects; Dovecot is what customers'
mail providers run, so UIDs, UIDVALIDITY, IDLE and \\Seen behave as they do in production.

Use from another test module: import the fixture functions (each is registered under the
name without `_fixture`; `mailbox` needs `dovecot` too), or import them into a conftest.py:

    from tests.test_channels.mailservers import (  # noqa: F401 - fixtures
        Mailbox, dovecot_fixture, mailbox_fixture, smtp_server_fixture,
    )

    async def test_reads_mail(mailbox: Mailbox) -> None:
        uid = mailbox.deliver(b"Subject: hi\\r\\n\\r\\nhello\\r\\n")
        settings = ImapSettings(**mailbox.imap_settings())
        ...

`dovecot` is one server per test module; `mailbox` is a fresh user on it for each test, so
tests never see each other's mail. `smtp_server`, `smtp_server_starttls` and `smtp_server_tls`
capture what is sent to them in `.messages`.
"""

from __future__ import annotations

import contextlib
import datetime
import email
import email.policy
import getpass
import imaplib
import ipaddress
import itertools
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from channels.email.imap import imap_utf7

DOVECOT = "/usr/sbin/dovecot"
HOST = "127.0.0.1"


def free_port() -> int:
    """A port nobody listens on now (the server binds it a moment later)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


# --- TLS: one throwaway CA and a server certificate for localhost / 127.0.0.1 ---------------


@dataclass(frozen=True)
class TestCertificates:
    """PEM bytes of a CA and a server certificate it signed; `write()` puts them in files."""

    __test__ = False  # not a test class, whatever its name

    ca: bytes
    cert: bytes
    key: bytes

    def write(self, directory: Path) -> tuple[str, str, str]:
        """Write ca.pem, cert.pem (server certificate) and key.pem; return their paths."""
        paths = []
        for name, data in (("ca.pem", self.ca), ("cert.pem", self.cert), ("key.pem", self.key)):
            path = directory / name
            path.write_bytes(data)
            paths.append(str(path))
        return paths[0], paths[1], paths[2]


@cache
def certificates() -> TestCertificates:
    """Made once per test run: a CA (so clients verify a chain, as with a real server's
    certificate) and a localhost certificate, EC keys because they are quick to make."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Kefu Hub test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return TestCertificates(
        ca=ca.public_bytes(pem),
        cert=cert.public_bytes(pem),
        key=key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


# --- Dovecot ----------------------------------------------------------------------------------

_CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = {host}
default_internal_user = {internal_user}
default_login_user = {login_user}
first_valid_uid = {uid}
first_valid_gid = {gid}
disable_plaintext_auth = no
auth_failure_delay = 0
auth_mechanisms = plain login
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = {host}
    port = {port}
  }}
  inet_listener imaps {{
    address = {host}
    port = {tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
  # mode 0: the auth process can't reach it, which turns the per-IP penalty off (else every
  # login from 127.0.0.1 is delayed seconds after a wrong-password test)
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


class Dovecot:
    """A Dovecot IMAP server of our own: its config, maildirs and log in a temporary directory,
    a plain listener (`port`, STARTTLS offered) and an implicit-TLS one (`tls_port`, trust
    `ca_file`). Users come from a passwd-file that Dovecot rereads, so `add_user` works while
    it runs; each has the password `password`."""

    def __init__(self) -> None:
        if not os.path.exists(DOVECOT):
            pytest.fail(
                f"{DOVECOT} not found: the email tests need a real IMAP server; "
                "install it with `apt-get install dovecot-imapd` (CI installs it)"
            )
        # Not pytest's tmp_path: that lies under a 0700 directory Dovecot's unprivileged
        # processes can't enter.
        self.root = Path(tempfile.mkdtemp(prefix="kefu-dovecot-"))
        self.root.chmod(0o755)
        self.host = HOST
        self.port = free_port()
        self.tls_port = free_port()
        self.ca_file, _, _ = certificates().write(self.root)
        self.log_path = self.root / "dovecot.log"
        self.password = "imap-secret"  # every user's
        self._users = itertools.count(1)
        self._user_count = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._write_config()

    def _write_config(self) -> None:
        self._add_users(100)  # made in advance: see add_user
        mail = self.root / "mail"
        mail.mkdir()
        if os.geteuid() == 0:
            internal_user, login_user = "dovecot", "dovenull"
            entry = pwd.getpwnam("dovecot")
            uid, gid = entry.pw_uid, entry.pw_gid
            os.chown(mail, uid, gid)
        else:  # a developer's own account runs everything
            internal_user = login_user = getpass.getuser()
            uid, gid = os.getuid(), os.getgid()
        (self.root / "dovecot.conf").write_text(
            _CONFIG.format(
                root=self.root,
                host=self.host,
                port=self.port,
                tls_port=self.tls_port,
                internal_user=internal_user,
                login_user=login_user,
                uid=uid,
                gid=gid,
            )
        )

    def start(self) -> None:
        """Start Dovecot and wait until both listeners accept connections."""
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                [DOVECOT, "-F", "-c", str(self.root / "dovecot.conf")],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 15
        for port in (self.port, self.tls_port):
            while not _accepts(self.host, port):
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"Dovecot did not start; its log:\n{self.log()}")
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop Dovecot (its clients see the connection close); the mail stays."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def restart(self) -> None:
        """Stop and start on the same ports, as an IMAP server restarted by its admin."""
        self.stop()
        self.start()

    def cleanup(self) -> None:
        """Stop and delete the directory with the mail and config."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        """Dovecot's log, to show in failures."""
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def add_user(self) -> Mailbox:
        """A new user with an empty mailbox (created on first login)."""
        number = next(self._users)
        if number > self._user_count:
            # Dovecot looks at the passwd-file at most once a second: wait until it notices
            self._add_users(100)
            time.sleep(1.1)
        return Mailbox(self, f"user{number}", self.password)

    def _add_users(self, count: int) -> None:
        with open(self.root / "passwd", "a") as f:
            for number in range(self._user_count + 1, self._user_count + count + 1):
                f.write(f"user{number}:{{PLAIN}}{self.password}::::::\n")
        self._user_count += count


def _accepts(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


@dataclass
class Mailbox:
    """One Dovecot user: put mail in with `deliver`, look at flags, recreate folders. Talks
    to the server with the stdlib's imaplib, as any other mail client would."""

    server: Dovecot
    user: str
    password: str

    def imap_settings(self, tls: bool = False, **overrides: Any) -> dict[str, Any]:
        """Keyword arguments for ImapSettings: the plain port, or implicit TLS with ca_file."""
        settings: dict[str, Any] = {
            "host": self.server.host,
            "port": self.server.tls_port if tls else self.server.port,
            "user": self.user,
            "password": self.password,
            "tls": tls,
            "ca_file": self.server.ca_file if tls else None,
        }
        return settings | overrides

    @contextlib.contextmanager
    def _client(self, folder: str | None = None) -> Iterator[imaplib.IMAP4]:
        client = imaplib.IMAP4(self.server.host, self.server.port, timeout=10)
        try:
            client.login(self.user, self.password)
            if folder is not None:
                _check(client.select(_name(folder)), "SELECT")
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def deliver(self, raw: bytes, seen: bool = False, folder: str = "INBOX") -> int:
        """APPEND a message (clients in IDLE are told at once); return its UID."""
        with self._client() as client:
            typ, data = client.append(_name(folder), r"(\Seen)" if seen else None, None, raw)
            _check((typ, data), "APPEND")
        match = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
        assert match, data
        return int(match.group(1))

    def flags(self, uid: int, folder: str = "INBOX") -> set[str]:
        """The flags of message `uid`, e.g. {"\\Seen"}."""
        with self._client(folder) as client:
            typ, data = client.uid("FETCH", str(uid), "(FLAGS)")
            _check((typ, data), "FETCH")
        match = re.search(rb"FLAGS \(([^)]*)\)", data[0] or b"")
        return set(match.group(1).decode().split()) if match else set()

    def seen_uids(self, folder: str = "INBOX") -> set[int]:
        """UIDs of the messages flagged \\Seen."""
        with self._client(folder) as client:
            typ, data = client.uid("SEARCH", "SEEN")
            _check((typ, data), "SEARCH")
        return {int(uid) for uid in (data[0] or b"").split()}

    def recreate_folder(self, folder: str) -> None:
        """Delete `folder` (if present) and create it again: a new UIDVALIDITY. Dovecot won't
        delete INBOX, so use another folder for this."""
        with self._client() as client:
            client.delete(_name(folder))
            _check(client.create(_name(folder)), "CREATE")

    def create_folder(self, folder: str) -> None:
        with self._client() as client:
            _check(client.create(_name(folder)), "CREATE")


def _name(folder: str) -> str:
    return '"' + imap_utf7(folder) + '"'


def _check(response: tuple[str, list[Any]], what: str) -> None:
    typ, data = response
    if typ != "OK":
        raise AssertionError(f"IMAP {what} failed: {typ} {data}")


@pytest.fixture(scope="module", name="dovecot")
def dovecot_fixture() -> Iterator[Dovecot]:
    """One Dovecot per test module; tests take a fresh user each with `mailbox`."""
    server = Dovecot()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(name="mailbox")
def mailbox_fixture(dovecot: Dovecot) -> Mailbox:
    """A new user on the module's Dovecot, with an empty INBOX. Restarts the server first if an
    earlier test stopped it."""
    if not dovecot.running:
        dovecot.start()
    return dovecot.add_user()


# --- SMTP -------------------------------------------------------------------------------------


@dataclass
class ReceivedMail:
    """One message the SMTP server accepted: the envelope and the bytes, parsed."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage


class SmtpServer:
    """aiosmtpd in its own thread, capturing every message in `messages`.

    mode "plain" (AUTH without TLS), "starttls" (STARTTLS required before anything) or "tls"
    (implicit TLS). Every mode requires AUTH as `user`/`password` before MAIL, as a
    submission server does. `fail_next("RCPT", "451 4.3.0 Try again later")` makes the next
    RCPT (or DATA) get that reply instead of succeeding.
    """

    user = "hub@example.com"
    password = "smtp-secret"

    def __init__(self, mode: str = "plain") -> None:
        assert mode in ("plain", "starttls", "tls"), mode
        self.mode = mode
        self.host = HOST
        self.port = free_port()
        self.messages: list[ReceivedMail] = []
        self._failures: dict[str, deque[str]] = {"RCPT": deque(), "DATA": deque()}
        self._lock = threading.Lock()
        self._dir = tempfile.TemporaryDirectory(prefix="kefu-smtp-")
        self.ca_file, cert, key = certificates().write(Path(self._dir.name))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        self._controller = Controller(
            self,
            hostname=self.host,
            port=self.port,
            authenticator=self._authenticate,
            auth_require_tls=mode == "starttls",
            ssl_context=context if mode == "tls" else None,
            tls_context=context if mode == "starttls" else None,
            require_starttls=mode == "starttls",
        )

    def smtp_settings(self, **overrides: Any) -> dict[str, Any]:
        """Keyword arguments for SmtpSettings that reach this server."""
        settings: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "tls": self.mode == "tls",
            "starttls": self.mode == "starttls",
            "ca_file": self.ca_file if self.mode != "plain" else None,
            "timeout": 10,
        }
        return settings | overrides

    def fail_next(self, command: str, reply: str) -> None:
        """Answer the next `command` ("RCPT" or "DATA") with `reply`, e.g. "550 5.1.1 No"."""
        with self._lock:
            self._failures[command].append(reply)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()
        self._dir.cleanup()

    def __enter__(self) -> SmtpServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _failure(self, command: str) -> str | None:
        with self._lock:
            queue = self._failures[command]
            return queue.popleft() if queue else None

    # aiosmtpd handler hooks and authenticator (run in the server's thread)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data == (
            self.user.encode(),
            self.password.encode(),
        )
        return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        if not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        if failure := self._failure("RCPT"):
            return failure
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if failure := self._failure("DATA"):
            return failure
        raw = envelope.original_content or b""  # the bytes as sent, before any decoding
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.messages.append(
                ReceivedMail(str(envelope.mail_from), list(envelope.rcpt_tos), raw, message)
            )
        return "250 Message accepted for delivery"


@pytest.fixture(name="smtp_server")
def smtp_server_fixture() -> Iterator[SmtpServer]:
    """A plain SMTP server with AUTH (see SmtpServer)."""
    with SmtpServer("plain") as server:
        yield server


@pytest.fixture(name="smtp_server_starttls")
def smtp_server_starttls_fixture() -> Iterator[SmtpServer]:
    """An SMTP server that requires STARTTLS; trust its `ca_file`."""
    with SmtpServer("starttls") as server:
        yield server


@pytest.fixture(name="smtp_server_tls")
def smtp_server_tls_fixture() -> Iterator[SmtpServer]:
    """An SMTP server with implicit TLS; trust its `ca_file`."""
    with SmtpServer("tls") as server:
        yield server


__all__ = [
    "Dovecot",
    "Mailbox",
    "ReceivedMail",
    "SmtpServer",
    "TestCertificates",
    "certificates",
    "dovecot_fixture",
    "free_port",
    "mailbox_fixture",
    "smtp_server_fixture",
    "smtp_server_starttls_fixture",
    "smtp_server_tls_fixture",
]
