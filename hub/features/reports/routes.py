"""Reports: `GET /api/v1/reports/summary?since=&until=` (hub/features/reports/summary.py computes
it).

Admins only. The figures cover every team's conversations and list customers' own words (the
unrecognized messages), while an agent with teams may see only their teams' conversations
(hub.inbox.deps.visibility): a hub-wide report would show them the rest. Designers improve the
bot from its conversations but get the same answer for the same reason; a report scoped to what
the caller may see can come later."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from hub.core.receiver import TRY_IT
from hub.features.reports import summary as reports
from hub.features.reports.summary import WHEN, BusinessTime, Reports
from hub.inbox.deps import AdminAgent, HubDep, part
from hub.messages import utcnow

router = APIRouter(prefix="/api/v1", tags=["reports"])


def business_time(request: Request) -> BusinessTime:
    """Seconds of a team's business time between two instants: the hub's business hours
    (hub.features.hours.hours.Hours.business_seconds; the composition root names it `hours`)."""
    business: BusinessTime = request.app.state.hub.hours.business_seconds
    return business


@router.get("/reports/summary")
async def summary(
    hub: HubDep,
    figures: Annotated[Reports, Depends(part("reports"))],
    business: Annotated[BusinessTime, Depends(business_time)],
    admin: AdminAgent,
    since: Annotated[datetime | None, Query(description=WHEN + "; default: until - 7 days")] = None,
    until: Annotated[datetime | None, Query(description=WHEN + "; default: now")] = None,
) -> dict[str, Any]:
    """Conversations created in [since, until): counts, bot containment, escalations and their
    reasons, first response and resolution times (median, p90), per channel, intent and flow,
    and the messages the bot did not understand. At most 366 days."""
    try:
        start, end = reports.window(since, until, utcnow())
    except reports.BadWindow as e:
        raise HTTPException(422, str(e)) from e
    # the admin pages' test chat is not customers: left out, unless config.yaml names a
    # channel `try-it` of its own (then the built-in one does not exist)
    builtin_try_it = all(c.name != TRY_IT for c in hub.settings.channels)
    skip = (TRY_IT,) if builtin_try_it else ()
    return await figures.summary(start, end, skip_channels=skip, business=business)
