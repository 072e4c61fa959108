"""What goes over the wire with Slack: where a conversation lives (`Place`), Slack's markup
read as plain text and Markdown written as mrkdwn, a stored message as chat.postMessage
arguments, and the checks on what Slack sends (its signature, bots' messages)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from channels.common import split_text
from hub.messages import Kind, Outbound

log = logging.getLogger(__name__)

BUTTON = "kefu_button_"  # action_id prefix of the buttons this channel sends

SECTION_LIMIT = 3000  # characters of one section block's text
MESSAGE_LIMIT = 40_000  # characters of a message's text (Slack truncates beyond)
BLOCK_LIMIT = 50  # blocks in one message
BUTTONS_PER_ACTIONS = 25  # elements in one actions block
# Message subtypes that are a person writing; the others are joins, topics, bots and so on.
CUSTOMER_SUBTYPES = frozenset({None, "file_share", "thread_broadcast", "me_message"})


@dataclass(frozen=True)
class Place:
    """Where a conversation lives on Slack: a DM channel, or one thread of a channel."""

    team: str
    channel: str
    thread_ts: str | None = None

    @property
    def sender_id(self) -> str:
        parts = [self.team, self.channel] + ([self.thread_ts] if self.thread_ts else [])
        return ":".join(parts)

    @classmethod
    def parse(cls, sender_id: str) -> Place:
        team, _, rest = sender_id.partition(":")
        channel, _, thread_ts = rest.partition(":")
        if not team or not channel:
            raise ValueError(f"not a Slack conversation id: {sender_id!r}")
        return cls(team, channel, thread_ts or None)


def event_id(body: bytes) -> str:
    """The Events API body's event_id ("" for interactivity's form bodies and the unreadable)."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return ""
    return str(parsed.get("event_id") or "") if isinstance(parsed, dict) else ""


# ---- text both ways ----------------------------------------------------------------------

_LINK = re.compile(r"<((?:https?|mailto|tel):[^|>]+)(?:\|([^>]*))?>")
_CHANNEL_REF = re.compile(r"<#[A-Z0-9]+\|([^>]*)>")
_SPECIAL = re.compile(r"<!(here|channel|everyone)(?:\|[^>]*)?>")
_MD_BOLD = re.compile(r"\*\*(.+?)\*\*")
_MD_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")
_MD_HEADING = re.compile(r"^#{1,6}\s+(.+)$", re.MULTILINE)


def plain_text(text: str, bot_user_id: str | None) -> str:
    """What the customer wrote, from Slack's markup: the mention that addressed the bot is
    dropped (the NLU should read "where is my order", not "<@U123> where is my order"), links
    show as typed, and Slack's three escapes are undone. Other people's mentions stay."""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>\s*", "", text)

    def link(match: re.Match[str]) -> str:
        url, label = match.group(1), match.group(2)
        if not label:
            return url
        return label if label in url else f"{label} ({url})"

    text = _LINK.sub(link, text)
    text = _CHANNEL_REF.sub(r"#\1", text)
    text = _SPECIAL.sub(r"@\1", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()


def mentions(text: str, user_id: str | None) -> bool:
    return bool(user_id) and f"<@{user_id}" in text


def to_mrkdwn(text: str) -> str:
    """Markdown as Slack's mrkdwn: &, < and > escaped (Slack reads them as markup), **bold**
    as *bold*, [label](url) as <url|label>, headings as bold lines."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_LINK.sub(r"<\2|\1>", text)
    text = _MD_BOLD.sub(r"*\1*", text)
    return _MD_HEADING.sub(r"*\1*", text)


def is_absolute(url: str) -> bool:
    return urlsplit(url).scheme in ("http", "https")


def render(message: Outbound) -> dict[str, Any]:
    """chat.postMessage arguments for a stored message. Plain text needs no blocks; buttons
    become an actions block under the text's section(s), image attachments image blocks."""
    text = to_mrkdwn(message.text)
    images = [a for a in message.attachments if a.kind == Kind.IMAGE and is_absolute(a.url)]
    files = [a for a in message.attachments if a not in images]
    lines = [f"<{a.url}|{a.name or a.url}>" if is_absolute(a.url) else a.url for a in files]
    text = "\n".join([text, *lines] if text else lines)
    if len(text) > MESSAGE_LIMIT:
        log.warning("slack: message %s cut to %d characters", message.message_id, MESSAGE_LIMIT)
        text = text[: MESSAGE_LIMIT - 1] + "…"
    if not message.buttons and not images:
        return {"text": text}
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": piece}}
        for piece in split_text(text, SECTION_LIMIT)
    ]
    blocks += [
        {"type": "image", "image_url": a.url, "alt_text": (a.name or "image")[:2000]}
        for a in images
    ]
    buttons = [
        {
            "type": "button",
            "text": {"type": "plain_text", "text": b.title[:75] or "?", "emoji": True},
            "value": b.payload[:2000],
            "action_id": f"{BUTTON}{i}",
        }
        for i, b in enumerate(message.buttons)
    ]
    for start in range(0, len(buttons), BUTTONS_PER_ACTIONS):
        blocks.append({"type": "actions", "elements": buttons[start : start + BUTTONS_PER_ACTIONS]})
    # `text` is what notifications show when there are blocks
    fallback = text or " / ".join(b.title for b in message.buttons) or "image"
    return {"text": fallback, "blocks": blocks[:BLOCK_LIMIT]}


def is_signed(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """Slack's signature check (what bolt does), on bytes that need not be UTF-8."""
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
        return False
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def is_from_a_bot(event: Mapping[str, Any]) -> bool:
    """Any bot's message, ours or another app's (bolt drops only ours): answering another
    bot could start two bots talking to each other forever."""
    return bool(event.get("bot_id") or event.get("subtype") == "bot_message")
