"""What the hub needs from one raw RFC 5322 mail. Pure functions: no I/O, no clock, no config.

    parse_mail(raw) -> ParsedMail    ids, addresses, subject, date, text, html, attachments,
                                     why it is machine-sent (`automated`), its delivery report
    html_to_text(html)               an HTML body as clean text
    normalize_subject(subject)       a subject without Re:/Fwd:/回复:… prefixes, for threading

The rest of reading a mail lives beside it, one job a module: mime.py decodes charsets,
headers and MIME parts (decode_text, part_text); quotes.py finds the new part of a reply
(reply_text, strip_quotes); reports.py tells machine-sent mail and delivery reports
(automated_reason, Bounce). Their public names are re-exported here, where callers found
them before the split.

Mail in the wild lies about itself, and a mailbox must never stall on one bad mail, so
parse_mail never raises: broken MIME, wrong or unknown charsets, missing headers and garbage
all give a best-effort ParsedMail (control characters removed: PostgreSQL refuses a NUL).

HTML is rendered by inscriptis (Apache-2.0, on lxml) with rules of ours: "- " bullets, links
as "text (url)", table rows as lines (mail layouts nest tables; columns would interleave them).
"""

from __future__ import annotations

import email
import email.utils
import html as html_lib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from typing import Any

from inscriptis import get_text as inscriptis_text
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.html_properties import Display
from inscriptis.model.config import ParserConfig
from inscriptis.model.html_element import HtmlElement
from inscriptis.model.tag import CustomHtmlTagHandlerMapping

from channels.email.mime import (
    MAX_PARTS,
    addresses,
    decode_text,
    first_address,
    header_text,
    message_ids,
    param_text,
    part_text,
    payload_bytes,
    printable,
    raw_header,
    raw_headers,
    subparts,
)
from channels.email.quotes import reply_text, strip_quotes
from channels.email.reports import Bounce, automated_reason, delivery_report

__all__ = [
    "Bounce",
    "MailAttachment",
    "ParsedMail",
    "automated_reason",
    "decode_text",
    "html_to_text",
    "normalize_subject",
    "parse_mail",
    "part_text",
    "reply_text",
    "strip_quotes",
]

MAX_DEPTH = 20  # MIME nesting we follow; deeper is an attack, not a mail


@dataclass(frozen=True)
class MailAttachment:
    name: str | None  # decoded (RFC 2231, RFC 2047, raw 8-bit), path parts dropped
    mime_type: str
    data: bytes
    inline: bool  # shown inside the HTML (has a Content-ID and isn't "attachment")
    content_id: str | None  # without angle brackets


@dataclass(frozen=True)
class ParsedMail:
    message_id: str | None  # "<id@host>"
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]  # oldest first
    subject: str
    from_name: str | None
    from_address: str | None  # lowercased
    reply_to: tuple[str, ...]
    to: tuple[str, ...]
    cc: tuple[str, ...]
    date: datetime | None  # aware, UTC
    text: str  # text/plain parts, else the HTML as text
    html: str | None
    attachments: tuple[MailAttachment, ...]
    automated: str | None  # why this mail is machine-sent; None for a person's mail
    bounce: Bounce | None


def parse_mail(raw: bytes) -> ParsedMail:
    """The parts of a raw mail the hub uses. Never raises: whatever can be read is returned."""
    try:
        return _parse(raw)
    except Exception:  # the last guard: one hostile mail must not stall the mailbox
        return _unreadable(raw)


def _parse(raw: bytes) -> ParsedMail:
    message = email.message_from_bytes(raw)  # compat32 records defects instead of raising
    parts = _Parts()
    _collect(message, parts, 0)
    plain = "\n\n".join(t.strip("\n") for t in parts.plain if t.strip())
    html = printable("\n".join(parts.html)) if parts.html else None
    text = printable(plain if plain else (html_to_text(html) if html else ""))
    from_name, from_address = first_address(message, "from")
    subject = " ".join(printable(header_text(raw_header(message, "subject") or "")).split())
    return ParsedMail(
        message_id=next(iter(message_ids(raw_header(message, "message-id") or "")), None),
        in_reply_to=tuple(message_ids(raw_header(message, "in-reply-to") or "")),
        references=tuple(message_ids(" ".join(raw_headers(message, "references")))),
        subject=subject,
        from_name=from_name,
        from_address=from_address,
        reply_to=tuple(a for _, a in addresses(message, "reply-to")),
        to=tuple(a for _, a in addresses(message, "to")),
        cc=tuple(a for _, a in addresses(message, "cc")),
        date=_date(raw_header(message, "date")),
        text=text,
        html=html,
        attachments=tuple(parts.attachments),
        automated=automated_reason(message),
        bounce=delivery_report(message, text, subject),
    )


def _unreadable(raw: bytes) -> ParsedMail:
    """What is left when even the stdlib parser fails: the bytes as text, for a person to read."""
    text = printable(decode_text(raw[:1_000_000], None))
    return ParsedMail(None, (), (), "", None, None, (), (), (), None, text, None, (), None, None)


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(header_text(value).strip())
    except (ValueError, TypeError, OverflowError, IndexError):
        return None
    if parsed.tzinfo is None:  # "-0000": UTC, origin unknown (RFC 5322 3.3)
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


# ---- body and attachments ---------------------------------------------------------------


@dataclass
class _Parts:
    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[MailAttachment] = field(default_factory=list)
    seen: list[int] = field(default_factory=lambda: [0])  # parts visited, shared by all


def _collect(part: Message, into: _Parts, depth: int) -> None:
    """Walks the MIME tree: text/plain and text/html without a file name are the body, the
    rest attachments. Of multipart/alternative, the first plain and the last HTML count; of
    multipart/report, the human-readable first part (the rest is the report: reports.py).
    A message/rfc822 part is one attachment: we don't read a forwarded mail as this one."""
    into.seen[0] += 1
    if depth > MAX_DEPTH or into.seen[0] > MAX_PARTS:
        return
    ctype = part.get_content_type()
    if ctype.startswith("multipart/") and part.is_multipart():
        children = subparts(part)
        if ctype == "multipart/report":
            children = children[:1]
        if ctype != "multipart/alternative":
            for sub in children:
                _collect(sub, into, depth + 1)
            return
        options = []
        for sub in children:
            option = _Parts(seen=into.seen)
            _collect(sub, option, depth + 1)
            options.append(option)
        into.plain += next((o.plain for o in options if any(t.strip() for t in o.plain)), [])
        into.html += next((o.html for o in reversed(options) if o.html), [])
        for option in options:
            into.attachments += option.attachments
    elif _is_body(part, ctype):
        (into.html if ctype == "text/html" else into.plain).append(part_text(part))
    else:
        into.attachments.append(_attachment(part, ctype))


def _is_body(part: Message, ctype: str) -> bool:
    if part.get_content_disposition() == "attachment" or _attachment_name(part):
        return False
    # A multipart without a usable boundary is left as one text blob by the parser.
    return ctype in ("text/plain", "text/html") or ctype.startswith("multipart/")


def _attachment(part: Message, ctype: str) -> MailAttachment:
    cid = "".join((raw_header(part, "content-id") or "").split()).strip("<>") or None
    return MailAttachment(
        name=_attachment_name(part),
        mime_type=ctype,
        data=payload_bytes(part),
        inline=cid is not None and part.get_content_disposition() != "attachment",
        content_id=cid,
    )


def _attachment_name(part: Message) -> str | None:
    """Content-Disposition filename (its RFC 2231 form `filename*=` first, continuations
    joined by the stdlib), else Content-Type name; RFC 2047 words and raw bytes decoded."""
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        values = [v for k, v in _params(part, header) if k.lower() == param]
        values.sort(key=lambda v: not isinstance(v, tuple))  # RFC 6266: the * form wins
        for value in values:
            name = _clean_name(param_text(value) or "")
            if name:
                return name
    return None


def _params(part: Message, header: str) -> list[tuple[str, Any]]:
    """A header's parameters, raw 8-bit bytes decoded first (compat32's get_params would
    read them through a Header object and return U+FFFD)."""
    value = raw_header(part, header)
    if value is None:
        return []
    holder = Message()
    holder[header] = decode_text(value.encode("utf-8", "surrogateescape"), None)
    return list(holder.get_params(header=header) or [])


def _clean_name(name: str) -> str | None:
    """A file name to show and store: no control characters, no directories."""
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).replace("\\", "/").rsplit("/", 1)[-1]
    return name.strip() or None


# ---- HTML -------------------------------------------------------------------------------

# Private-use marks around a link while inscriptis renders it; rewritten after.
_LINK_OPEN, _LINK_TEXT, _LINK_CLOSE = "\ue000", "\ue001", "\ue002"
_LINK = re.compile("\ue000([^\ue000-\ue002]*)\ue001([^\ue000-\ue002]*)\ue002")
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u034f\ue000-\ue002]")


def _a_start(state: Any, attrs: Any) -> None:
    href = "".join(str(attrs.get("href") or "").split())
    state.tags[-1].write(_LINK_OPEN + href + _LINK_TEXT)


def _a_end(state: Any) -> None:
    state.tags[-1].write(_LINK_CLOSE)


def _ul_start(state: Any, attrs: Any) -> None:
    state.li_counter.append("- ")


def _ignore_start(state: Any, attrs: Any) -> None:
    return None


def _ignore_end(state: Any) -> None:
    return None


def _html_config() -> ParserConfig:
    """Inscriptis with our rules: "- " bullets, links as `text (url)`, and tables as rows of
    cells (mail is laid out in nested tables; column rendering would interleave them)."""
    css = dict(CSS_PROFILES["strict"])
    css["tr"] = HtmlElement(display=Display.block)
    css["table"] = HtmlElement(display=Display.block)
    css["td"] = HtmlElement(display=Display.inline, suffix=" ")
    css["th"] = HtmlElement(display=Display.inline, suffix=" ")
    css["hr"] = HtmlElement(display=Display.block, margin_before=1, margin_after=1)
    starts = {"a": _a_start, "ul": _ul_start, "table": _ignore_start, "tr": _ignore_start}
    starts |= {"td": _ignore_start, "th": _ignore_start}
    ends = {"a": _a_end, "table": _ignore_end, "td": _ignore_end, "th": _ignore_end}
    return ParserConfig(
        css=css, custom_html_tag_handler_mapping=CustomHtmlTagHandlerMapping(starts, ends)
    )


_HTML_CONFIG = _html_config()


def html_to_text(html: str) -> str:
    """Readable text of an HTML body: no tags, scripts or styles; blocks and <br> as line
    breaks; "- " list items; a link's URL in parentheses when its text doesn't show it;
    entities decoded; spaces collapsed; at most one blank line in a row."""
    html = _INVISIBLE.sub("", html)
    try:
        text = inscriptis_text(html, _HTML_CONFIG)
    except Exception:  # lxml refuses some garbage; a tag strip still shows the words
        cut = re.sub(r"(?is)<(script|style)\b.*?</\1\s*>|<[^>]*>", " ", html[:200_000])
        text = html_lib.unescape(cut)
    text = _LINK.sub(_link_text, text)
    text = re.sub("\ue000[^\ue001]*\ue001|\ue002", "", text)
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _link_text(m: re.Match[str]) -> str:
    href, text = m.group(1), m.group(2)
    label = " ".join(text.split())
    target = href.split(":", 1)[1].split("?", 1)[0] if href.lower().startswith("mailto:") else href
    if not label or not href or href.startswith("#") or _same_url(label, target):
        return text
    if href.lower().startswith(("javascript:", "cid:", "data:")):
        return text
    return f"{text} ({target})"


def _same_url(a: str, b: str) -> bool:
    def bare(url: str) -> str:
        url = re.sub(r"^(?:https?://)?(?:www\.)?", "", url.strip().lower())
        return url.rstrip("/")

    return bare(a) == bare(b)


# ---- subjects ---------------------------------------------------------------------------

_SUBJECT_PREFIX = re.compile(
    r"^\s*(?:re|fwd?|aw|wg|回复|回覆|答复|答覆|转发|轉發|转寄|轉寄)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]",
    re.I,
)


def normalize_subject(subject: str) -> str:
    """The subject a thread keeps: reply/forward prefixes (Re:, RE:, Fwd:, FW:, AW:, 回复:,
    答复:, 转发:, 轉寄:, with ":" or "：", any number of them) removed, spaces collapsed,
    casefolded. Tags such as "[External]" are kept: they are part of what the sender wrote."""
    while m := _SUBJECT_PREFIX.match(subject):
        subject = subject[m.end() :]
    return " ".join(subject.split()).casefold()
