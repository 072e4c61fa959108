"""Slack's Web API as the channel uses it beyond chat.postMessage: its errors as the outbox
understands them, the names users show (users.info), and the files customers share.

A name is a nicety: a lookup that fails in any way (Slack down or rate limiting, an answer
that isn't JSON, a user without a profile, a timeout) is logged and gives no name, and the
customer's message goes on without it. A file that can't be fetched or kept likewise: the
message is stored without it, saying why. Neither must ever cost the message.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
from slack_sdk.errors import SlackApiError

from channels.base import DeliveryError
from channels.common import kind_of
from channels.slack.options import SlackOptions
from hub.messages import Attachment
from hub.ports import Receiver, Unavailable

log = logging.getLogger(__name__)

Body = Mapping[str, Any]

# Slack's own trouble: trying again later may work. Any other error name won't get better.
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


def api_failure(method: str, e: SlackApiError) -> DeliveryError:
    """A Web API error as the outbox understands it: Slack's error name in the message (the
    agent sees it), retryable only when Slack's side is at fault, Retry-After kept."""
    response = e.response
    status = getattr(response, "status_code", None) or getattr(response, "status", None) or 0
    data = getattr(response, "data", None)
    error = data.get("error") if isinstance(data, dict) else None
    if status == 429 or error == "ratelimited":
        headers = getattr(response, "headers", None) or {}
        retry_after = _seconds(headers.get("Retry-After") or headers.get("retry-after"))
        return DeliveryError(
            f"{method}: ratelimited (retry after {retry_after or '?'}s)",
            retryable=True,
            retry_after=retry_after,
        )
    if status >= 500 or error in TRANSIENT_ERRORS:
        return DeliveryError(f"{method}: {error or f'HTTP {status}'}", retryable=True)
    return DeliveryError(f"{method}: {error or f'HTTP {status}'}", retryable=False)


def _seconds(value: Any) -> float | None:
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None


class UserNames:
    """users.info, remembered (at most `limit` users)."""

    def __init__(self, client: Any, channel: str, limit: int = 10_000) -> None:
        self.client, self.channel, self.limit = client, channel, limit
        self._known: dict[str, str | None] = {}

    async def get(self, user_id: Any, fallback: Any = None) -> str | None:
        """The user's display name, else real name, else handle; `fallback` (when it is
        text) if there is none or the lookup fails."""
        fallback = fallback if isinstance(fallback, str) and fallback else None
        if not isinstance(user_id, str) or not user_id:
            return fallback
        if user_id not in self._known:
            try:
                name = shown_name((await self.client.users_info(user=user_id))["user"])
            except Exception as e:  # SlackApiError, aiohttp's, TimeoutError, KeyError, ...
                log.warning(
                    "slack %s: users.info %s failed, no name: %s: %s",
                    self.channel,
                    user_id,
                    type(e).__name__,
                    e,
                )
                return fallback
            if len(self._known) >= self.limit:
                self._known.clear()
            self._known[user_id] = name
        return self._known[user_id] or fallback


def shown_name(user: Any) -> str | None:
    """What Slack shows for a users.info `user` object."""
    profile = user.get("profile") or {}
    for name in (profile.get("display_name"), user.get("real_name"), user.get("name")):
        if isinstance(name, str) and name.strip():
            return name
    return None


class FileRefused(Exception):
    """A shared file that can't be fetched (untrusted host, login page, too large)."""


class SharedFiles:
    """The files shared with a message, fetched with the bot token and kept by the hub."""

    def __init__(self, options: SlackOptions, receiver: Receiver, channel: str) -> None:
        self.options, self.receiver, self.channel = options, receiver, channel

    async def keep(self, files: list[Body]) -> tuple[list[Attachment], list[str]]:
        """The files shared with a message, fetched with the bot token and kept by the hub;
        also what could not be kept, and why (it goes in the message's payload)."""
        attachments: list[Attachment] = []
        problems: list[str] = []
        listed = files[:10] if isinstance(files, list) else []
        for file in (f if isinstance(f, dict) else {} for f in listed):
            name = str(file.get("name") or file.get("title") or file.get("id") or "file")
            mime_type = file.get("mimetype")
            try:
                data = await self.download(file)
                url = await self.receiver.save_media(data, name=name, mime_type=mime_type)
                attachment = Attachment(
                    kind=kind_of(mime_type), url=url, name=name, mime_type=mime_type
                )
            except Unavailable:
                raise
            except Exception as e:  # FileRefused, MediaTooLarge, httpx's, the unforeseen
                log.warning("slack %s: file %s not saved: %s", self.channel, name, e)
                problems.append(f"{name}: {e}")
                continue
            attachments.append(attachment)
        return attachments, problems

    async def download(self, file: Body) -> bytes:
        url = file.get("url_private_download") or file.get("url_private")
        if not url:
            raise FileRefused(f"no download URL (mode {file.get('mode')!r})")
        if not self.is_slack_url(url):
            raise FileRefused(f"not a Slack URL, the bot token stays home: {url}")
        limit = self.options.max_file_bytes
        if (file.get("size") or 0) > limit:
            raise FileRefused(f"{file['size']:,} bytes, over max_file_bytes ({limit:,})")
        headers = {"Authorization": f"Bearer {self.options.bot_token}"}
        # httpx drops the Authorization header when a redirect leaves the host
        async with (
            httpx.AsyncClient(timeout=self.options.timeout, follow_redirects=True) as http,
            http.stream("GET", url, headers=headers) as response,
        ):
            response.raise_for_status()
            kind = response.headers.get("content-type", "")
            if kind.startswith("text/html") and "html" not in (file.get("mimetype") or ""):
                raise FileRefused("Slack answered a login page: does the app have files:read?")
            data = bytearray()
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > limit:
                    raise FileRefused(f"over max_file_bytes ({limit:,})")
        return bytes(data)

    def is_slack_url(self, url: str) -> bool:
        host = urlsplit(url).hostname or ""
        api_host = urlsplit(self.options.api_base).hostname
        return host == api_host or host == "slack.com" or host.endswith(".slack.com")
