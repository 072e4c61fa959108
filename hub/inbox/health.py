"""What operators and orchestrators ask the hub: is it alive (`/healthz`), ready to serve
(`/readyz`: database, Redis, the model, each channel, the bot's reload state), and its
Prometheus metrics (`/metrics`, the README's Operations section lists them)."""

from __future__ import annotations

from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response

from hub.inbox.deps import HubDep, part
from hub.ops.metrics import CONTENT_TYPE

router = APIRouter(tags=["ops"])


class BotState(Protocol):
    """The served bot's state (hub.bot.BotReloader, the composition root's `reloader`)."""

    def status(self) -> dict[str, Any]: ...


@router.get("/metrics")
async def metrics(hub: HubDep) -> Response:
    """Prometheus metrics (the README's Operations section lists them)."""
    await hub.metrics.refresh(hub.store, hub.channels)
    return Response(hub.metrics.render(), media_type=CONTENT_TYPE)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(hub: HubDep, bot: Annotated[BotState, Depends(part("reloader"))]) -> JSONResponse:
    checks = await hub.ready()
    ok = all(v == "ok" for v in checks.values())
    # The bot's state is detail, not readiness: with invalid files the last good bot serves.
    channels = {
        name: hub.channel_errors.get(name) or channel.problem() or "ok"
        for name, channel in hub.channels.items()
    }
    body = {"ready": ok, **checks, "bot": bot.status(), "channels": channels}
    return JSONResponse(body, status_code=200 if ok else 503)
