"""The names Slack users show, for the inbox: users.info, remembered.

A name is a nicety: a lookup that fails in any way (Slack down or rate limiting, an answer
that isn't JSON, a user without a profile, a timeout) is logged and gives no name, and the
customer's message goes on without it. It must never cost the message.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("channels.slack")


class UserNames:
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
