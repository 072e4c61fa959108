"""Whether a mail's From address can be believed: a From header is easy to forge, so the
sender's address is taken as verified (and may merge contacts into one customer) only when
the receiving mail server says the mail passed DMARC, or DKIM signed by the From domain, in the
Authentication-Results header (RFC 8601) it adds on top.

Only the topmost Authentication-Results header is read (the one our server added; a sender can
add their own below it), or, with `authserv_id` set, only those naming that server. A server
that adds none: no address is verified, unless the channel says `sender_verified: always`.
"""

from __future__ import annotations

import re
from email.parser import BytesHeaderParser
from email.policy import compat32

_COMMENT = re.compile(r"\([^()]*\)")
_RESULT = re.compile(r"^\s*(dmarc|dkim)\s*=\s*(\w+)(.*)$", re.IGNORECASE | re.DOTALL)
_PROPERTY = re.compile(r"header\.(from|d|i)\s*=\s*\"?([^\s;\"]+)", re.IGNORECASE)


def _domain(value: str) -> str:
    return value.rsplit("@", 1)[-1].strip().lower().rstrip(".")


def authentication_results(raw: bytes, authserv_id: str | None = None) -> list[str]:
    """The Authentication-Results headers to believe, topmost first."""
    headers = (
        BytesHeaderParser(policy=compat32).parsebytes(raw).get_all("Authentication-Results", [])
    )
    found = [" ".join(str(h).split()) for h in headers]
    if authserv_id is None:
        return found[:1]
    wanted = authserv_id.strip().lower()
    return [h for h in found if h.split(";", 1)[0].strip().lower() == wanted]


def sender_authenticated(raw: bytes, address: str, authserv_id: str | None = None) -> bool:
    """Whether the mail from `address` passed DMARC, or DKIM for the address's domain."""
    domain = _domain(address)
    for header in authentication_results(raw, authserv_id):
        for result in _COMMENT.sub("", header).split(";"):  # Office 365 names no server
            match = _RESULT.match(result)
            if match is None or match.group(2).lower() != "pass":
                continue
            props = {k.lower(): _domain(v) for k, v in _PROPERTY.findall(match.group(3))}
            if match.group(1).lower() == "dmarc" and props.get("from", domain) == domain:
                return True
            if match.group(1).lower() == "dkim" and domain in (props.get("d"), props.get("i")):
                return True
    return False
