"""Mail sent by machines, and what delivery reports say. The hub stores such mail but never
answers it (RFC 3834: that is how mail loops are avoided), and a bounce or receipt tells which
of our replies failed, was delayed or was read.

    automated_reason(message)        RFC 3834 and practice: auto-replies, lists, bounces, receipts
    delivery_report(message, ...)    the Bounce a mail is: a DSN, MDN or ARF multipart/report,
                                     or a plain-text bounce from a mailer daemon

parse_mail (content.py) calls both; everything here reads the mail through mime.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser

from channels.email.mime import (
    MAX_PARTS,
    addresses,
    first_address,
    header_text,
    message_ids,
    param_text,
    part_text,
    raw_header,
    raw_headers,
    subparts,
)


@dataclass(frozen=True)
class Bounce:
    """What a delivery report says about mail we sent."""

    # "bounce" (permanent failure), "delay" (transient), "delivered" (a success DSN),
    # "complaint" (ARF feedback report) or "receipt" (MDN)
    kind: str
    status: str | None  # DSN status, e.g. "5.1.1"
    recipients: tuple[str, ...]  # lowercased
    original_message_ids: tuple[str, ...]  # "<id@host>" of the mail the report is about
    diagnostic: str | None


# ---- machine-sent mail ------------------------------------------------------------------

_MACHINE_LOCAL_PART = re.compile(
    r"^(?:mailer-?daemon|postmaster|no[-_.]?reply|do[-_.]?not[-_.]?reply)(?:[-+_.].*)?$", re.I
)
_DAEMON_LOCAL_PART = re.compile(r"^(?:mailer-?daemon|postmaster)(?:[-+_.].*)?$", re.I)
_REPORT_PARTS = {
    "message/delivery-status": "delivery-status",
    "message/global-delivery-status": "delivery-status",
    "message/disposition-notification": "disposition-notification",
    "message/global-disposition-notification": "disposition-notification",
    "message/feedback-report": "feedback-report",
}


def automated_reason(message: Message) -> str | None:
    """Why a mail was sent by a machine (RFC 3834 and what mailers do), as a short reason
    such as "auto-submitted: auto-replied", "report: delivery-status", "precedence: bulk",
    "list-id", "null return-path", "sender: mailer-daemon"; None for a person's mail.
    The hub stores such mail but never answers it: that is how mail loops are avoided."""
    try:
        return _automated_reason(message)
    except Exception:  # a header we can't read is no reason to call the mail automated
        return None


def _automated_reason(message: Message) -> str | None:
    def header(name: str) -> str | None:
        value = raw_header(message, name)
        return None if value is None else " ".join(header_text(value).split()).lower()

    if message.get_content_type() == "multipart/report":
        return f"report: {_report_type(message) or 'unknown'}"
    auto = header("auto-submitted")
    if auto and re.split(r"[\s;(]", auto)[0] != "no":
        return f"auto-submitted: {re.split(r'[;(]', auto)[0].strip()}"
    for name in ("x-autoreply", "x-autorespond", "x-ms-exchange-generated-message-source"):
        if header(name) is not None:
            return name
    suppress = header("x-auto-response-suppress") or ""
    if {"all", "oof"} & set(re.split(r"[\s,]+", suppress)):
        return f"x-auto-response-suppress: {suppress}"
    return_path = header("return-path")
    if return_path is not None and not return_path.strip("<> "):
        return "null return-path"
    senders = addresses(message, "from") + addresses(message, "sender")
    senders += [("", return_path.strip("<> "))] if return_path else []
    for _, address in senders:
        local = address.rsplit("@", 1)[0]
        if _MACHINE_LOCAL_PART.match(local):
            return f"sender: {local}"
    precedence = header("precedence")
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"precedence: {precedence}"
    for name in ("list-id", "list-unsubscribe"):
        if header(name) is not None:
            return name
    return None


def _report_type(report: Message) -> str | None:
    declared = param_text(report.get_param("report-type"))
    if declared:
        return declared.strip().lower()
    for part in subparts(report):
        if part.get_content_type() in _REPORT_PARTS:
            return _REPORT_PARTS[part.get_content_type()]
    return None


# ---- delivery reports -------------------------------------------------------------------

_STATUS = re.compile(r"\b([245])\.\d{1,3}\.\d{1,3}\b")
_FAILURE_SUBJECT = re.compile(
    r"undeliver|undelivered|returned mail|delivery status notification|delivery failure"
    r"|failure notice|mail delivery failed|could not be delivered|退信|投递失败|未送达|无法送达",
    re.I,
)
_DELAY_TEXT = re.compile(r"\bdelayed\b|will (?:retry|keep trying)|temporar|延迟|将继续尝试", re.I)
_QUOTED_ID_HEADER = re.compile(
    r"(?im)^[ \t]*(message-id|in-reply-to|references)[ \t]*:(.*(?:\n[ \t]+.*)*)"
)


def delivery_report(message: Message, text: str, subject: str) -> Bounce | None:
    """The delivery report this mail is, if any: a multipart/report (DSN, MDN, ARF), or a
    bounce in plain text from a mailer daemon (Gmail's, qmail's: no report part). `text` and
    `subject` are the mail's as parse_mail decoded them; None when it is no report."""
    try:
        report = _find_report(message)
        if report is not None:
            return _from_report(message, report)
        return _plain_bounce(message, text, subject)
    except Exception:  # a report we can't read leaves the mail as mail
        return None


def _find_report(message: Message) -> Message | None:
    """The first multipart/report, the mail itself or nested in multiparts (not inside an
    attached message/rfc822: a customer forwarding a bounce is writing to us)."""
    level = [message]
    for _ in range(4):
        for part in level:
            if part.get_content_type() == "multipart/report":
                return part
        level = [
            sub
            for part in level
            if part.get_content_type().startswith("multipart/")
            for sub in subparts(part)
        ][:MAX_PARTS]
    return None


def _from_report(message: Message, report: Message) -> Bounce:
    fields: dict[str, list[Message]] = {}
    ids: list[str] = []
    for part in subparts(report)[1:]:
        ctype = part.get_content_type()
        if ctype in _REPORT_PARTS:
            fields.setdefault(_REPORT_PARTS[ctype], []).extend(_field_blocks(part))
        elif ctype in ("message/rfc822", "message/global"):
            for original in subparts(part):
                ids += message_ids(raw_header(original, "message-id") or "")
        elif ctype in ("text/rfc822-headers", "message/rfc822-headers", "message/global-headers"):
            headers = HeaderParser().parsestr(part_text(part))
            ids += message_ids(raw_header(headers, "message-id") or "")
    report_type = _report_type(report) or ""
    if "disposition-notification" in fields or report_type == "disposition-notification":
        return _receipt(fields.get("disposition-notification", []), ids)
    if "feedback-report" in fields or report_type == "feedback-report":
        return _complaint(fields.get("feedback-report", []), ids)
    blocks = fields.get("delivery-status", [])
    recipients = _report_recipients(blocks) + _failed_recipients(message)
    return _dsn(blocks, tuple(dict.fromkeys(recipients)), tuple(dict.fromkeys(ids)))


def _field_blocks(part: Message) -> list[Message]:
    """A report part's field groups. The stdlib parses message/delivery-status into one
    Message per group, other report types into one Message whose body holds the rest."""
    if not part.is_multipart():
        return _parse_blocks(part_text(part))
    blocks = []
    for block in subparts(part):
        blocks.append(block)
        if not block.is_multipart():
            rest = part_text(block)
            blocks += _parse_blocks(rest) if rest.strip() else []
    return blocks


def _parse_blocks(text: str) -> list[Message]:
    chunks = re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n"))
    return [HeaderParser().parsestr(c.strip("\n")) for c in chunks if c.strip()][:MAX_PARTS]


def _field(block: Message, name: str) -> str | None:
    value = raw_header(block, name)
    return " ".join(header_text(value).split()) if value is not None else None


def _report_address(value: str | None) -> str | None:
    """ "rfc822; Foo@Example.com" -> "foo@example.com"."""
    if not value:
        return None
    address = value.split(";", 1)[-1].strip().strip("<>").strip().lower()
    return address or None


def _report_recipients(blocks: list[Message]) -> list[str]:
    found = []
    for block in blocks:
        for name in ("final-recipient", "original-recipient", "original-rcpt-to"):
            address = _report_address(_field(block, name))
            if address:
                found.append(address)
    return found


def _failed_recipients(message: Message) -> list[str]:
    value = " ".join(raw_headers(message, "x-failed-recipients"))
    return [a.strip().strip("<>").lower() for a in re.split(r"[,\s]+", value) if "@" in a]


def _dsn(blocks: list[Message], recipients: tuple[str, ...], ids: tuple[str, ...]) -> Bounce:
    """A delivery status notification: the worst recipient's outcome decides the kind
    (a permanent failure, else a delay, else delivered). Status class first, Action second."""
    outcomes: list[tuple[str, str | None, str | None]] = []
    for block in blocks:
        status_field = _field(block, "status") or ""
        action = (_field(block, "action") or "").lower()
        found = _STATUS.search(status_field)
        if found:
            kind = {"5": "bounce", "4": "delay", "2": "delivered"}[found.group(1)]
        elif action in ("failed", "delayed", "delivered", "relayed", "expanded"):
            kind = {"failed": "bounce", "delayed": "delay"}.get(action, "delivered")
        else:
            continue
        comment = re.search(r"\((.+)\)", status_field)
        diagnostic = _field(block, "diagnostic-code") or (comment.group(1) if comment else None)
        outcomes.append((kind, found.group(0) if found else None, diagnostic))
    rank = {"bounce": 0, "delay": 1, "delivered": 2}
    outcomes.sort(key=lambda o: rank[o[0]])
    kind, status, diagnostic = outcomes[0] if outcomes else ("bounce", None, None)
    if diagnostic and ";" in diagnostic[:20]:  # "smtp; 550 5.1.1 ...": the type is noise
        diagnostic = diagnostic.split(";", 1)[1].strip()
    return Bounce(kind, status, recipients, ids, diagnostic[:500] if diagnostic else None)


def _receipt(blocks: list[Message], ids: list[str]) -> Bounce:
    for block in blocks:
        ids += message_ids(_field(block, "original-message-id") or "")
    disposition = next((d for b in blocks if (d := _field(b, "disposition"))), None)
    recipients = tuple(dict.fromkeys(_report_recipients(blocks)))
    return Bounce("receipt", None, recipients, tuple(dict.fromkeys(ids)), disposition)


def _complaint(blocks: list[Message], ids: list[str]) -> Bounce:
    feedback = next((f for b in blocks if (f := _field(b, "feedback-type"))), None)
    recipients = tuple(dict.fromkeys(_report_recipients(blocks)))
    return Bounce("complaint", None, recipients, tuple(dict.fromkeys(ids)), feedback)


def _plain_bounce(message: Message, text: str, subject: str) -> Bounce | None:
    """A bounce without a report part, as Gmail and qmail send them: from a mailer daemon,
    with a null return path, an X-Failed-Recipients header or a failure subject. The
    original's ids are read from its headers quoted in the text (or from an attached copy)."""
    _, sender = first_address(message, "from")
    if not sender or not _DAEMON_LOCAL_PART.match(sender.rsplit("@", 1)[0]):
        return None
    return_path = raw_header(message, "return-path")
    failed = _failed_recipients(message)
    null_path = return_path is not None and not return_path.strip().strip("<>").strip()
    if not (null_path or failed or _FAILURE_SUBJECT.search(subject)):
        return None
    statuses = [m.group(0) for m in _STATUS.finditer(text[:100_000])]
    status = next((s for s in statuses if s[0] == "5"), statuses[0] if statuses else None)
    delayed = (status or "").startswith("4") or (not status and _DELAY_TEXT.search(text))
    lines = text[:100_000].splitlines()
    # The server's reply: the line with the status ("550 5.1.0 Recipient rejected: ..."), or
    # one that starts with an SMTP code.
    diagnostic = next((line.strip() for line in lines if status and status in line), None)
    diagnostic = diagnostic or next(
        (line.strip() for line in lines if re.match(r"\s*[45]\d\d[ -]", line)), subject or None
    )
    ids = []
    for m in _QUOTED_ID_HEADER.finditer(text[:1_000_000]):
        ids += message_ids(m.group(2))
    for part in _attached_messages(message):
        ids += message_ids(raw_header(part, "message-id") or "")
    kind = "delay" if delayed else "bounce"
    return Bounce(kind, status, tuple(dict.fromkeys(failed)), tuple(dict.fromkeys(ids)), diagnostic)


def _attached_messages(message: Message) -> list[Message]:
    found: list[Message] = []
    for part in subparts(message):
        if part.get_content_type() in ("message/rfc822", "message/global"):
            found += subparts(part)
        elif part.get_content_type() == "text/rfc822-headers":
            found.append(HeaderParser().parsestr(part_text(part)))
    return found
