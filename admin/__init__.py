"""The agents' and admins' web UI at /admin: inbox, agents and teams, channels, bot pages and
the try-it chat. Static files (no build step) that speak the inbox API in hub/inbox."""

from admin.web import router

__all__ = ["router"]
