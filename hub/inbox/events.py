"""The agents' live feed: WebSocket /api/v1/events?token=<jwt>.

Every bus event is forwarded as `{"type", "conversation_id", "data"}`. A socket that can't keep
up is closed (code 1013) and the client reconnects and reloads from the API. An agent with
teams gets only the events of conversations they may see (hub.inbox.deps.can_see)."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from hub.auth import AuthError
from hub.bus import INTERNAL, SubscriberLagged
from hub.inbox.deps import agent_from_token, can_see, visibility
from hub.messages import Event

router = APIRouter(tags=["inbox"])


@router.websocket("/api/v1/events")
async def events(websocket: WebSocket) -> None:
    hub = websocket.app.state.hub
    try:
        agent = await agent_from_token(hub, websocket.query_params.get("token", ""))
    except AuthError as e:
        await websocket.close(code=1008, reason=f"invalid token: {e}")
        return
    await websocket.accept()
    feed = hub.bus.subscribe()
    scoped = visibility(agent) is not None

    async def visible(event: Event) -> bool:
        conversation = await hub.store.get_conversation(event.conversation_id)
        return conversation is not None and can_see(agent, conversation)

    async def forward() -> None:
        async for event in feed:
            if event.type in INTERNAL or (scoped and not await visible(event)):
                continue
            await websocket.send_json(event.wire())

    async def until_closed() -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await websocket.receive_text()  # clients may ping; nothing else is expected

    sender = asyncio.create_task(forward())
    listener = asyncio.create_task(until_closed())
    done, pending = await asyncio.wait({sender, listener}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await feed.aclose()
    if sender in done:
        error = sender.exception()
        code = 1013 if isinstance(error, SubscriberLagged) else 1011
        with contextlib.suppress(Exception):
            await websocket.close(code=code, reason="fell behind: reconnect and reload")
