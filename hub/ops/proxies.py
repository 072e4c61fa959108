"""Client addresses behind reverse proxies: `trusted_proxies` (env `KEFU_TRUSTED_PROXIES`,
comma-separated), IP addresses or CIDR networks, empty by default.

Only a request that arrives from one of them has its `X-Forwarded-For` (and
`X-Forwarded-Proto`) believed; the client is then the right-most address in X-Forwarded-For
that is not a trusted proxy (uvicorn's ProxyHeadersMiddleware, run inside the app so that every
way of serving it behaves the same; `kefu run` turns uvicorn's own handling off). Anyone else's
X-Forwarded-For is ignored: a client can't pick the address the login limits count."""

from __future__ import annotations

import ipaddress
from typing import Any

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

__all__ = ["ProxyHeadersMiddleware", "check_proxies", "split_proxies"]


def split_proxies(value: Any) -> Any:
    """`10.0.0.5, 172.28.0.0/24` (the environment's form) as a list; a list as it is."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def check_proxies(entries: list[str]) -> list[str]:
    """Each entry an IP address or a CIDR network; `*` (everyone) is refused."""
    for entry in entries:
        if entry == "*":
            raise ValueError(
                "'*' would believe every client's X-Forwarded-For: name the proxies' "
                "addresses or networks"
            )
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(
                f"{entry!r} is not an IP address or CIDR network (e.g. 10.0.0.5, 172.28.0.0/24)"
            ) from None
    return entries
