"""Webhook URLs can't reach the hub's own network (P10): loopback, private, link-local and cloud
metadata addresses in any spelling, local names and user:password@ are refused when a URL is
set (422, nothing connected to) and when sending, where a host name's addresses are checked as
resolved and the connection goes to a checked address (DNS rebinding), unless
webhooks.allow_hosts lists the host.

No test here sends to anything but loopback: the names are resolved by a fake resolver, and
`loopback_only` fails a test that would connect anywhere else."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient
from pydantic import ValidationError

from flows import FlowEngine
from hub.ops.netguard import (
    ADVICE,
    Guard,
    GuardedBackend,
    GuardedTransport,
    Refused,
    kind,
    parse_host,
)
from hub.ops.settings import WebhookSettings
from nlu import IntentClassifier
from tests.conftest import client_for, create_agent, login
from tests.test_hub.test_admin_api import wait_for
from tests.test_hub.test_api import customer_says
from tests.test_hub.test_webhooks import V1, Receiver, deliveries, fast_settings, subscribe


class FakeResolver:
    """Answers made-up names from a table, and remembers what it was asked."""

    def __init__(self, table: dict[str, list[str]] | None = None) -> None:
        self.table = table or {}
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append(host)
        if host not in self.table:
            raise OSError(f"[Errno -2] Name or service not known: {host}")
        return self.table[host]


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every TCP connection httpcore makes, recorded; one to a non-loopback address fails the
    test instead of leaving this machine."""
    made: list[str] = []
    original = httpcore.AnyIOBackend.connect_tcp

    async def connect_tcp(self: Any, host: str, port: int, *args: Any, **kw: Any) -> Any:
        made.append(host)
        assert host == "::1" or host.startswith("127."), f"a connection to {host}"
        return await original(self, host, port, *args, **kw)

    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", connect_tcp)
    return made


# ---- the rules, without the app -----------------------------------------------------------

LOOPBACK = ["127.0.0.1", "2130706433", "0x7f.1", "127.1", "0177.0.0.1", "0x7f000001"]


@pytest.mark.parametrize(
    ("host", "address", "what"),
    [
        *[(h, "127.0.0.1", "loopback") for h in LOOPBACK],
        ("127.0.0.1.", "127.0.0.1", "loopback"),
        ("::1", "::1", "loopback"),
        ("::ffff:127.0.0.1", "::ffff:7f00:1", "loopback"),
        ("::ffff:7f00:1", "::ffff:7f00:1", "loopback"),
        ("2002:7f00:1::", "2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("fe80::1%eth0", "fe80::1%eth0", "link-local"),
        ("169.254.1.1", "169.254.1.1", "link-local"),
        ("169.254.169.254", "169.254.169.254", "cloud metadata"),
        ("2852039166", "169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "fd00:ec2::254", "cloud metadata"),
        ("100.100.100.200", "100.100.100.200", "cloud metadata"),
        ("10.0.0.1", "10.0.0.1", "private"),
        ("172.16.5.4", "172.16.5.4", "private"),
        ("192.168.0.1", "192.168.0.1", "private"),
        ("0xc0.0xa8.1", "192.168.0.1", "private"),
        ("fc00::1", "fc00::1", "private"),
        ("::ffff:10.0.0.1", "::ffff:a00:1", "private"),
        ("100.64.0.1", "100.64.0.1", "shared (carrier-grade NAT)"),
        ("0.0.0.0", "0.0.0.0", "unspecified"),
        ("0", "0.0.0.0", "unspecified"),
        ("::", "::", "unspecified"),
        ("224.0.0.1", "224.0.0.1", "multicast"),
        ("ff02::1", "ff02::1", "multicast"),
        ("240.0.0.1", "240.0.0.1", "private"),  # reserved; ipaddress calls it private
        ("192.0.2.1", "192.0.2.1", "private"),
    ],
)
def test_addresses_are_read_as_a_resolver_would_and_refused(
    host: str, address: str, what: str
) -> None:
    parsed = parse_host(host)
    assert str(parsed) == address
    assert not isinstance(parsed, str) and kind(parsed) == what


@pytest.mark.parametrize("host", ["8.8.8.8", "134744072", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_global_addresses_pass(host: str) -> None:
    parsed = parse_host(host)
    assert not isinstance(parsed, str) and kind(parsed) is None


@pytest.mark.parametrize(
    "host", ["1.2.3.4.5", "256.1.1.1", "4294967296", "08.1.1.1", "0x1.0x100.1.1"]
)
def test_hosts_ending_in_a_number_must_be_addresses(host: str) -> None:
    with pytest.raises(Refused, match="neither a host name nor an IP address"):
        parse_host(host)


def test_the_allow_list_takes_names_addresses_and_networks() -> None:
    guard = Guard(["crm.corp.example", "10.0.5.0/24", "127.0.0.1", "fd12::/16"])
    for url in (
        "http://crm.corp.example/hook",
        "http://10.0.5.9:8080/",
        "http://127.0.0.1/",
        "http://2130706433/",  # the same address, spelled otherwise
        "http://[::ffff:127.0.0.1]/",
        "http://[fd12::9]/",
    ):
        guard.check_url(url)
    for url in ("http://10.0.6.1/", "http://127.0.0.2/", "http://crm2.corp.example.local/"):
        with pytest.raises(Refused):
            guard.check_url(url)
    with pytest.raises(ValidationError, match="not a host name, an IP address or a network"):
        WebhookSettings(allow_hosts=["crm.corp.example", "10.0.0.0/33"])
    with pytest.raises(ValidationError, match="not a host name"):
        WebhookSettings(allow_hosts=["http://crm.corp.example/"])


class Inner(httpcore.AsyncNetworkBackend):
    """A network backend that records where it was asked to connect, and connects nowhere."""

    def __init__(self) -> None:
        self.connects: list[tuple[str, int]] = []

    async def connect_tcp(self, host: str, port: int, *args: Any, **kw: Any) -> Any:
        self.connects.append((host, port))
        if host == "203.0.113.9":
            raise httpcore.ConnectError("refused")
        return httpcore.AsyncMockStream([])


def test_a_name_is_resolved_once_checked_and_the_checked_address_connected() -> None:
    resolver = FakeResolver(
        {
            "hooks.example.com": ["203.0.113.9", "2001:db8::9"],
            "rebound.example.com": ["8.8.8.8", "127.0.0.1"],
            "meta.example.com": ["169.254.169.254"],
        }
    )
    inner = Inner()
    # documentation ranges stand for public addresses here: allow-listed, never connected to
    backend = GuardedBackend(Guard(["203.0.113.0/24", "2001:db8::/32"], resolver), inner)

    async def run() -> None:
        await backend.connect_tcp("hooks.example.com", 443, timeout=1)
        assert inner.connects == [("203.0.113.9", 443), ("2001:db8::9", 443)]  # the next one
        assert resolver.asked == ["hooks.example.com"]  # one lookup, its answers connected
        inner.connects.clear()
        for host, what in (("rebound.example.com", "loopback"), ("meta.example.com", "metadata")):
            with pytest.raises(Refused, match=f"{host} resolves to .*{what} address"):
                await backend.connect_tcp(host, 443, timeout=1)
        for host in ("2130706433", "::1", "localhost"):
            with pytest.raises(Refused, match=ADVICE):
                await backend.connect_tcp(host, 80, timeout=1)
        with pytest.raises(httpcore.ConnectError, match=r"can't resolve nowhere\.example\.com"):
            await backend.connect_tcp("nowhere.example.com", 80, timeout=1)
        assert inner.connects == []
        with pytest.raises(Refused):
            await backend.connect_unix_socket("/run/docker.sock")

    asyncio.run(run())


def tls_server(folder: Path, name: str) -> tuple[ThreadingHTTPServer, ssl.SSLContext]:
    """An HTTPS server on 127.0.0.1 with a certificate for `name` from a made-up CA, and a
    client context trusting that CA only."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)

    def cert(subject: str, issuer: str, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False
            )
        return builder.sign(key, hashes.SHA256())

    ca, leaf = cert("Test CA", "Test CA", True), cert(name, "Test CA", False)
    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    (folder / "leaf.pem").write_bytes(leaf.public_bytes(pem))
    (folder / "key.pem").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "leaf.pem", folder / "key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, ssl.create_default_context(cafile=folder / "ca.pem")


def test_tls_is_checked_against_the_url_name_not_the_address(
    tmp_path: Path, loopback_only: list[str]
) -> None:
    server, trusted = tls_server(tmp_path, "crm.corp.example")
    port = server.server_address[1]
    both = ["127.0.0.1"]
    resolver = FakeResolver({"crm.corp.example": both, "other.corp.example": both})
    transport = GuardedTransport(Guard(["127.0.0.1"], resolver), ssl_context=trusted)

    async def run() -> None:
        async with httpx.AsyncClient(transport=transport) as client:
            r = await client.post(f"https://crm.corp.example:{port}/hook", content=b"{}")
            assert r.status_code == 204  # connected to 127.0.0.1, certificate of the name
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.post(f"https://other.corp.example:{port}/hook", content=b"{}")

    try:
        asyncio.run(run())
    finally:
        server.shutdown()
        server.server_close()
    assert loopback_only == ["127.0.0.1", "127.0.0.1"]


# ---- the app ----------------------------------------------------------------------------

Api = tuple[TestClient, dict[str, str], FakeResolver]


def hub_api(
    sqlite_url: str,
    tmp_path: Path,
    classifier: IntentClassifier,
    flows: FlowEngine,
    allow_hosts: list[str],
    table: dict[str, list[str]],
) -> Iterator[Api]:
    settings = fast_settings(sqlite_url, tmp_path, allow_hosts=allow_hosts)
    create_agent(settings, role="admin")
    resolver = FakeResolver(table)
    with client_for(settings, classifier, flows) as client:
        client.app.state.hub.webhooks.guard.resolver = resolver  # type: ignore[attr-defined]
        yield client, login(client), resolver


@pytest.fixture
def api(
    sqlite_url: str, tmp_path: Path, classifier: IntentClassifier, flows: FlowEngine
) -> Iterator[Api]:
    """Nothing allow-listed but the name crm.corp.example."""
    table = {
        "hooks.example.com": ["127.0.0.1"],  # a public-looking name rebound to loopback
        "meta.example.com": ["169.254.169.254"],
        "crm.corp.example": ["127.0.0.1"],
    }
    yield from hub_api(sqlite_url, tmp_path, classifier, flows, ["crm.corp.example"], table)


REFUSED_URLS = [
    *[f"http://{h}:8080/hook" for h in LOOPBACK],
    "http://localhost/hook",
    "http://LOCALHOST./hook",
    "http://api.localhost/hook",
    "http://printer.local/hook",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://[::1]:8080/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[fe80::1%eth0]/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://10.0.0.1/hook",
    "https://172.16.5.4/hook",
    "http://192.168.1.1/hook",
    "http://100.64.0.1/hook",
    "http://0.0.0.0:6379/",
    "http://[::]/hook",
    "http://224.0.0.1/hook",
    "http://user:pw@example.com/hook",
    "http://user@example.com/hook",
    "http://example.com\\@127.0.0.1/hook",
    "http://1.2.3.4.5/hook",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_INFO",
]


def test_refused_urls_answer_422_saying_why_and_connect_nowhere(
    api: Api, loopback_only: list[str]
) -> None:
    client, auth, resolver = api
    for url in REFUSED_URLS:
        r = client.post(f"{V1}/webhooks", json={"url": url, "events": ["*"]}, headers=auth)
        assert r.status_code == 422, (url, r.text)
    r = client.post(
        f"{V1}/webhooks", json={"url": "http://127.0.0.1:9/", "events": ["*"]}, headers=auth
    )
    assert r.json()["detail"] == (
        "url: 127.0.0.1 is a loopback address; outgoing webhooks may not target loopback, "
        "private, link-local or cloud metadata addresses unless webhooks.allow_hosts lists it"
    )
    r = client.post(
        f"{V1}/webhooks", json={"url": "http://2130706433/", "events": ["*"]}, headers=auth
    )
    assert r.json()["detail"].startswith("url: 2130706433 (127.0.0.1) is a loopback address")
    r = client.post(
        f"{V1}/webhooks", json={"url": "http://169.254.169.254/", "events": ["*"]}, headers=auth
    )
    assert "169.254.169.254 is a cloud metadata address" in r.json()["detail"]
    r = client.post(
        f"{V1}/webhooks", json={"url": "http://a:b@example.com/", "events": ["*"]}, headers=auth
    )
    assert "user name or password" in r.text
    assert client.get(f"{V1}/webhooks", headers=auth).json()["items"] == []

    hook = subscribe(client, auth, "https://hooks.example.com/kefu", ["conversation.created"])
    for url in ("http://127.1/", "http://[::1]/", "http://localhost/"):
        r = client.patch(f"{V1}/webhooks/{hook}", json={"url": url}, headers=auth)
        assert r.status_code == 422 and ADVICE in r.text, r.text
    [listed] = client.get(f"{V1}/webhooks", headers=auth).json()["items"]
    assert listed["url"] == "https://hooks.example.com/kefu"
    assert resolver.asked == [] and loopback_only == []  # no lookup, no connection


def test_a_name_resolving_to_loopback_at_send_time_is_refused_and_recorded(
    api: Api, loopback_only: list[str]
) -> None:
    """DNS rebinding: the name looked public when subscribed; sending, it answers 127.0.0.1."""
    client, auth, resolver = api
    hook = subscribe(client, auth, "http://hooks.example.com/kefu", ["conversation.created"])
    assert resolver.asked == []  # names are resolved when sending, not when subscribing

    r = client.post(f"{V1}/webhooks/{hook}/test", headers=auth)
    assert r.status_code == 200, r.text
    test = r.json()
    assert test["status"] == "failed" and test["attempts"] == 1  # final: not retried
    assert test["last_error"] == (
        "refused: hooks.example.com resolves to a loopback address; " + ADVICE
    )
    assert test["response_status"] is None

    customer_says(client, "rebind", "hello")  # conversation.created
    row = wait_for(
        lambda: (d := deliveries(client, auth, hook, status="failed")) and len(d) == 2 and d[0],
        "the event's delivery refused",
    )
    assert row["event"] == "conversation.created" and row["attempts"] == 1
    assert row["last_error"].startswith("refused: hooks.example.com resolves to a loopback")

    meta = subscribe(client, auth, "http://meta.example.com/", ["*"])
    test = client.post(f"{V1}/webhooks/{meta}/test", headers=auth).json()
    assert test["status"] == "failed"
    assert "meta.example.com resolves to a cloud metadata address" in test["last_error"]
    assert loopback_only == []  # refused before connecting


def test_an_allow_listed_name_is_sent_to_the_address_it_resolved_to(
    api: Api, receiver: Receiver, loopback_only: list[str]
) -> None:
    client, auth, resolver = api
    port = receiver.server.server_address[1]
    r = client.post(f"{V1}/webhooks", json={"url": receiver.url, "events": ["*"]}, headers=auth)
    assert r.status_code == 422  # 127.0.0.1 itself is not allow-listed here
    hook = subscribe(client, auth, f"http://crm.corp.example:{port}/hooks", ["*"])
    r = client.post(f"{V1}/webhooks/{hook}/test", headers=auth)
    assert r.status_code == 200 and r.json()["status"] == "sent", r.text
    [(headers, _)] = receiver.requests  # reached through the resolver's 127.0.0.1
    assert headers["Host"] == f"crm.corp.example:{port}"  # the name, not the address
    assert resolver.asked == ["crm.corp.example"] and loopback_only == ["127.0.0.1"]


def test_a_url_stored_before_the_rules_is_refused_when_sending(
    api: Api, receiver: Receiver, loopback_only: list[str]
) -> None:
    client, auth, _ = api
    hub = client.app.state.hub  # type: ignore[attr-defined]
    port = receiver.server.server_address[1]
    old = [f"http://127.0.0.1:{port}/hook", f"http://user:pw@crm.corp.example:{port}/hook"]
    ids = []
    for url in old:
        webhook = client.portal.call(hub.webhooks.store.create, url, ["*"], "x" * 20, True)  # type: ignore[union-attr]
        hub.webhooks.changed()
        ids.append(webhook.id)
    for hook in ids:
        r = client.post(f"{V1}/webhooks/{hook}/test", headers=auth)
        assert r.status_code == 422, r.text
    customer_says(client, "old-hooks", "hello")
    for hook in ids:
        row = wait_for(
            lambda h=hook: (d := deliveries(client, auth, h, status="failed")) and d[0],
            "refused deliveries",
        )
        assert row["attempts"] == 1 and row["last_error"].startswith("refused: ")
    assert receiver.requests == [] and loopback_only == []


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()
