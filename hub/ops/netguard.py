"""Where the hub's outgoing HTTP (webhooks) may go: not into the hub's own network.

A webhook URL is chosen by an admin (or whoever holds an admin token); unchecked, it could point
at the hub itself, its database or Redis, any host on the private network, or a cloud's metadata
service (169.254.169.254, which hands out credentials). So, unless `webhooks.allow_hosts` lists
the host (a name, an IP address or a network an admin trusts, such as an internal CRM):

- `Guard.check_url(url)`, when a URL is set and again before each delivery: only http and https,
  no `user:password@`, and a host that is a DNS name or an IP address. IP addresses are read in
  every spelling a resolver accepts (2130706433, 0x7f.1, 127.1, 0177.0.0.1, [::ffff:127.0.0.1])
  and refused unless global: loopback, private (RFC 1918, fc00::/7), link-local (169.254/16,
  fe80::/10), cloud metadata, unspecified, multicast, shared (100.64/10) and reserved ranges.
  Local names (localhost, *.localhost, *.local, *.internal, ...) are refused by name.
- `GuardedTransport`, when connecting: the host name is resolved, every address it resolves to
  is checked the same way, and the connection is made to a checked address, never to what a
  second lookup might answer; the Host header and the TLS server name and certificate check stay
  the URL's name. So a DNS answer that changes between a check and the connection (DNS
  rebinding) can't slip through.

A refusal is `Refused` (a ValueError): permanent, retrying would not change it.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from urllib.parse import urlsplit

import httpcore
import httpx

Address = IPv4Address | IPv6Address
# (host name, port) -> the addresses it resolves to, e.g. ["93.184.215.14", "2606:2800::1"]
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

ADVICE = (
    "outgoing webhooks may not target loopback, private, link-local or cloud metadata "
    "addresses unless webhooks.allow_hosts lists it"
)
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")
METADATA = frozenset(
    ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, Oracle, DigitalOcean, ...
        "169.254.170.2",  # AWS ECS task credentials
        "fd00:ec2::254",  # AWS over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure's wire server (a public address)
        "192.0.0.192",  # Oracle Cloud (classic)
    )
)
SHARED = ip_network("100.64.0.0/10")  # carrier-grade NAT (RFC 6598)
NAT64 = ip_network("64:ff9b::/96")  # IPv4 addresses in IPv6 through a NAT64 gateway
COMPATIBLE = ip_network("::/96")  # the deprecated IPv4-compatible IPv6 addresses
NAME = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)(\.(?!-)[a-z0-9_-]{1,63}(?<!-))*")
NUMBER = re.compile(r"0x[0-9a-f]*|[0-9]+", re.IGNORECASE)  # ASCII digits only (not \d)


class Refused(ValueError):
    """A destination outgoing HTTP may not go to; permanent: retrying won't change it."""


# ---- reading hosts ----------------------------------------------------------------------


def _number(part: str) -> int | None:
    """One part of an IPv4 address as inet_aton() reads it: 0x hex, 0 octal or decimal."""
    if re.fullmatch(r"0x[0-9a-f]*", part, re.IGNORECASE):
        return int(part[2:] or "0", 16)
    if re.fullmatch(r"0[0-7]+", part):
        return int(part, 8)
    if re.fullmatch(r"0|[1-9][0-9]*", part):
        return int(part)
    return None


def parse_ipv4(host: str) -> IPv4Address | None:
    """`host` read the way inet_aton() (so getaddrinfo) and browsers read an IPv4 address: one
    to four dot-separated numbers, each decimal, octal (a leading 0) or hex (0x), the last one
    filling the bytes left (2130706433, 0x7f.1 and 127.1 are all 127.0.0.1). None when `host`
    is a name (its last label is not a number); Refused when it ends in a number but is no
    valid address (a DNS name can't end in one)."""
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()  # a trailing dot
    if not NUMBER.fullmatch(parts[-1]):
        return None
    numbers = [_number(part) for part in parts]
    valid = [n for n in numbers if n is not None]
    if (
        len(valid) != len(numbers)
        or len(valid) > 4
        or any(n > 255 for n in valid[:-1])
        or valid[-1] >= 256 ** (5 - len(valid))
    ):
        raise Refused(f"{host} is neither a host name nor an IP address")
    value = valid[-1]
    for i, n in enumerate(valid[:-1]):
        value += n << (8 * (3 - i))
    return IPv4Address(value)


def parse_host(host: str) -> Address | str:
    """A URL's host as an IP address (in whatever spelling), or as a lower-case DNS name
    without a trailing dot; Refused when it is neither."""
    host = host.lower()
    if ":" in host:  # IPv6 (the URL had it in brackets), possibly with a zone: fe80::1%eth0
        try:
            return IPv6Address(host)
        except ValueError:
            raise Refused(f"{host} is not a valid IPv6 address") from None
    ip = parse_ipv4(host)
    if ip is not None:
        return ip
    name = host[:-1] if host.endswith(".") else host
    if len(name) > 253 or not NAME.fullmatch(name):
        raise Refused(f"{host!r} is not a valid host name")
    return name


def _embedded(ip: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, NAT64, IPv4-compatible)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in NAT64 or ip in COMPATIBLE:
        return IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def kind(ip: Address) -> str | None:
    """What a non-global address is ("loopback", "private", ...); None for a global one."""
    if isinstance(ip, IPv6Address):
        if ip.ipv4_mapped is not None:  # ::ffff:127.0.0.1 is 127.0.0.1
            return kind(ip.ipv4_mapped)
        if ip.scope_id:  # compare without the zone
            ip = IPv6Address(ip.compressed.split("%", 1)[0])
    if ip in METADATA:
        return "cloud metadata"
    if ip.is_loopback:
        return "loopback"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip in SHARED:
        return "shared (carrier-grade NAT)"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "reserved"
    if isinstance(ip, IPv6Address):
        inner = _embedded(ip)
        if inner is not None:
            return kind(inner)
    return None


def is_local_name(name: str) -> bool:
    return name in LOCAL_NAMES or name.endswith(LOCAL_SUFFIXES)


# ---- the policy -------------------------------------------------------------------------


class AllowList:
    """The hosts an admin trusts (`webhooks.allow_hosts`): DNS names (exact) and IP addresses
    or networks ("127.0.0.1", "10.0.5.0/24", "fd12::/16")."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        self.names: set[str] = set()
        self.networks: list[IPv4Network | IPv6Network] = []
        for entry in entries:
            text = entry.strip().lower()
            try:
                self.networks.append(ip_network(text, strict=False))
                continue
            except ValueError:
                pass
            try:
                host = parse_host(text)
            except Refused:
                host = ""
            if not isinstance(host, str) or not host:
                raise ValueError(f"{entry!r} is not a host name, an IP address or a network")
            self.names.add(host)

    def allows(self, host: Address | str) -> bool:
        if isinstance(host, str):
            return host in self.names
        if isinstance(host, IPv6Address) and host.ipv4_mapped is not None:
            if self.allows(host.ipv4_mapped):
                return True
        if isinstance(host, IPv6Address) and host.scope_id:
            host = IPv6Address(host.compressed.split("%", 1)[0])
        return any(host in network for network in self.networks)


async def resolve(host: str, port: int) -> list[str]:
    """The system resolver: the addresses `host` has, in the order to try them."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def parse_url(url: str) -> tuple[httpx.URL, Address | str]:
    """The URL as httpx will send it, and its host read as an address or a name; Refused
    unless it is an http(s) URL without user:password@ and with a valid host."""
    if any(c.isspace() or c == "\\" for c in url):
        raise Refused("must not contain spaces or backslashes")
    try:
        parsed = httpx.URL(url)
        netloc = urlsplit(url).netloc  # another reader's idea of the host: no @ in it either
    except (httpx.InvalidURL, ValueError) as e:
        raise Refused(f"not a valid URL: {e}") from None
    if parsed.scheme not in ("http", "https") or not parsed.raw_host:
        raise Refused("must be an http:// or https:// URL with a host")
    if parsed.userinfo or "@" in netloc:
        raise Refused(
            "must not hold a user name or password (user:password@host); the receiver "
            "authenticates deliveries by their X-Kefu-Signature"
        )
    return parsed, parse_host(parsed.raw_host.decode("ascii"))


class Guard:
    """The checks, with the admin's allow-list; `resolver` answers at connection time (the
    system's unless given: tests give their own)."""

    def __init__(self, allow_hosts: Iterable[str] = (), resolver: Resolver | None = None) -> None:
        self.allow = AllowList(allow_hosts)
        self.resolver: Resolver = resolver or resolve

    def check_url(self, url: str) -> httpx.URL:
        """The URL, parsed; Refused (with why) when outgoing webhooks may not go there."""
        parsed, host = parse_url(url)
        self.check(host, parsed.raw_host.decode("ascii"))
        return parsed

    def check(self, host: Address | str, written: str | None = None) -> None:
        """Refused unless `host` (an address, or a name before it is resolved) may be
        targeted; `written` is how the URL spelled it, for the message."""
        if self.allow.allows(host):
            return
        shown = str(host)
        if written and written.lower().rstrip(".") != shown:
            shown = f"{written} ({host})"
        if isinstance(host, str):
            if is_local_name(host):
                raise Refused(f"{shown} is a local host name; {ADVICE}")
            return
        what = kind(host)
        if what is not None:
            raise Refused(f"{shown} is {_a(what)} address; {ADVICE}")

    async def addresses(self, host: str, port: int, seconds: float | None = None) -> list[str]:
        """The addresses to connect to for `host`, each one checked: an IP address as it is,
        a name as the resolver answers within `seconds` (Refused when any answer may not be
        targeted)."""
        target = parse_host(host)
        self.check(target, host)
        if not isinstance(target, str):
            return [str(target)]
        try:
            answers = await asyncio.wait_for(self.resolver(target, port), seconds)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} took over {seconds:g} s") from None
        except OSError as e:
            raise httpcore.ConnectError(f"can't resolve {host}: {e}") from None
        if not answers:
            raise httpcore.ConnectError(f"{host} has no address")
        checked = []
        for answer in answers:
            ip = ip_address(answer)
            what = kind(ip)
            if what is not None and not self.allow.allows(target) and not self.allow.allows(ip):
                raise Refused(f"{host} resolves to {_a(what)} address; {ADVICE}")
            checked.append(str(ip))
        return checked


def _a(what: str) -> str:
    return ("an " if what[0] in "aeiou" else "a ") + what


# ---- connecting ---------------------------------------------------------------------------


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to addresses the guard checked. httpcore
    still starts TLS with the URL's name (SNI, certificate check) and httpx sends it as Host."""

    def __init__(self, guard: Guard, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.guard = guard
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        failed: httpcore.ConnectError | None = None
        for address in await self.guard.addresses(host, port, timeout):
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as e:  # the next address, if there is one
                failed = e
        assert failed is not None
        raise failed

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise Refused("outgoing webhooks don't use unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """An httpx transport whose connections go through `GuardedBackend`: no proxies from the
    environment (a proxy would resolve the name itself), certificates checked as usual (the
    certifi bundle, as httpx's, or SSL_CERT_FILE's)."""

    def __init__(
        self,
        guard: Guard,
        limits: httpx.Limits | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(trust_env=False)
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        # httpx has no parameter for the network backend: the pool is made again with it
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(),  # SSL_CERT_FILE honoured
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(guard),
        )
