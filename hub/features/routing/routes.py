"""The queue of conversations waiting for an agent: GET /api/v1/queue (assignment.py keeps
it)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from hub.features.routing.assignment import Routing
from hub.inbox.deps import CurrentAgent, HubDep, can_see, part
from hub.messages import utcnow

router = APIRouter(prefix="/api/v1", tags=["inbox"])
RoutingDep = Annotated[Routing, Depends(part("routing"))]


@router.get("/queue")
async def queue(hub: HubDep, routing: RoutingDep, agent: CurrentAgent) -> dict[str, Any]:
    """Pending conversations the caller may see, in the order they are assigned (urgent,
    high, then the longest waiting), each with its `position` in its team's queue, since when
    it waits and the `expected_wait_seconds` its customer was told (null: no recent figures).
    `enabled`: whether auto-assignment runs (when off, agents take them by hand)."""
    now = utcnow()
    items = [
        {
            "conversation_id": w.conversation.id,
            "position": w.position,
            "team": w.conversation.team,
            "priority": w.conversation.priority,
            "channel": w.conversation.channel,
            "waiting_since": w.since.isoformat(),
            "waited_seconds": round((now - w.since).total_seconds()),
            "expected_wait_seconds": None if w.expected_wait is None else round(w.expected_wait),
        }
        for w in await routing.queue()
        if can_see(agent, w.conversation)
    ]
    return {"enabled": hub.settings.assignment.enabled, "items": items}
