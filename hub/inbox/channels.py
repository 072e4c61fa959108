"""The hub's channels as the admin pages show them: configured, working or why not."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from hub.inbox.deps import CurrentAgent, HubDep

router = APIRouter(prefix="/api/v1", tags=["admin"])


@router.get("/channels")
async def list_channels(hub: HubDep, agent: CurrentAgent) -> dict[str, Any]:
    """Every channel of config.yaml (disabled ones too): `ok`, `error` (why it can't work now)
    or `disabled`, and the newest message it failed to deliver."""
    items = []
    for config in hub.settings.channels:
        channel = hub.channels.get(config.name)
        error: str | None = None
        if config.enabled:
            if channel is None:
                error = "not started"
            else:
                error = hub.channel_errors.get(config.name) or channel.problem()
        failed = await hub.store.last_failed_delivery(config.name)
        items.append(
            {
                "name": config.name,
                "type": config.type,
                "enabled": config.enabled,
                "status": "disabled" if not config.enabled else "error" if error else "ok",
                "error": error,
                "last_error": None
                if failed is None
                else {
                    "at": failed.created_at.isoformat(),  # when the message was written
                    "error": failed.delivery_error,
                    "message_id": failed.id,
                    "conversation_id": failed.conversation_id,
                },
            }
        )
    return {"items": items}
