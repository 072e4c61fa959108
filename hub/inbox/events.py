"""The agents' live feed: WebSocket /api/v1/events?token=<jwt>.

Every bus event is forwarded as `{"type", "conversation_id", "data"}`. A socket that can't keep
up is closed (code 1013) and the client reconnects and reloads from the API. An agent with
teams gets only the events of conversations they may see (hub.inbox.deps.can_see).

The token and the agent are checked again while the socket is open: at once when the hub
changes the agent (`bus.agent_changed`: deactivation, a password, role or teams, a logout),
before an event is sent (read again at most every `RECHECK_EVERY` seconds: changes made
elsewhere, e.g. by `kefu agent` without Redis) and every `IDLE_RECHECK` seconds. A token
that expired or was revoked (logout, a password change or reset, a revoked API token) or an
agent deactivated closes the socket with 1008 (the inbox logs out); an agent whose role or teams
changed what they may see gets the socket closed with 4000 (reconnect and reload the lists)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from hub.core.auth import AuthError
from hub.core.bus import AGENT_CHANGED, INTERNAL, SubscriberLagged
from hub.inbox.deps import agent_from_token, can_see, visibility
from hub.messages import Event
from hub.ops.tasks import cancel
from hub.ports import Unavailable

if TYPE_CHECKING:
    from hub.core.receiver import Core
    from hub.store import Agent

log = logging.getLogger(__name__)
router = APIRouter(tags=["inbox"])

RECHECK_EVERY = 1.0  # seconds: an event to send reads the agent again at most this often
IDLE_RECHECK = 30.0  # seconds: a socket without events checks its token this often
ACCESS_CHANGED = 4000  # close code: the agent's role or teams changed; reconnect and reload


class AccessChanged(Exception):
    """The agent's role or teams changed which conversations they see."""


class Watched:
    """The socket's agent, read again from the token when the last read is old enough."""

    def __init__(self, hub: Core, token: str, agent: Agent) -> None:
        self.hub, self.token, self.agent = hub, token, agent
        self._loop = asyncio.get_running_loop()
        self._read_at = self._loop.time()

    async def current(self, max_age: float) -> Agent:
        """The agent now; raises AuthError (token or agent no longer valid) or AccessChanged."""
        if self._loop.time() - self._read_at < max_age:
            return self.agent
        fresh = await agent_from_token(self.hub, self.token)
        self._read_at = self._loop.time()
        if _scope(fresh) != _scope(self.agent):
            raise AccessChanged()
        self.agent = fresh
        return fresh


def _scope(agent: Agent) -> tuple[int | None, frozenset[str]] | None:
    """What decides which conversations `agent` sees (None: all of them)."""
    seen = visibility(agent)
    return None if seen is None else (seen.agent_id, frozenset(seen.teams))


async def agent_changed(hub: Core, agent_id: int | None) -> None:
    """Tell every open events socket (on every hub process) that this agent's access changed,
    so theirs checks it at once instead of at its next periodic check."""
    await hub.bus.publish(Event(type=AGENT_CHANGED, conversation_id=0, data={"agent_id": agent_id}))


@router.websocket("/api/v1/events")
async def events(websocket: WebSocket) -> None:
    hub = websocket.app.state.hub
    token = websocket.query_params.get("token", "")
    try:
        agent = await agent_from_token(hub, token)
    except AuthError as e:
        await websocket.close(code=1008, reason=f"invalid token: {e}")
        return
    await websocket.accept()
    feed = hub.bus.subscribe()
    watched = Watched(hub, token, agent)

    async def visible(event: Event, agent: Agent) -> bool:
        if visibility(agent) is None:
            return True
        conversation = await hub.store.get_conversation(event.conversation_id)
        return conversation is not None and can_see(agent, conversation)

    async def forward() -> None:
        async for event in feed:
            changed = event.data.get("agent_id") in (None, watched.agent.id)
            if event.type == AGENT_CHANGED and changed:
                await watched.current(0)  # this agent's access changed: check it now
            if event.type in INTERNAL or event.type.startswith("bus."):
                continue
            agent = await watched.current(RECHECK_EVERY)
            if await visible(event, agent):
                await websocket.send_json(event.wire())

    async def recheck() -> None:
        while True:
            await asyncio.sleep(IDLE_RECHECK)
            await watched.current(0)

    async def until_closed() -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                await websocket.receive_text()  # clients may ping; nothing else is expected

    sender = asyncio.create_task(forward())
    checker = asyncio.create_task(recheck())
    listener = asyncio.create_task(until_closed())
    done, pending = await asyncio.wait(
        {sender, checker, listener}, return_when=asyncio.FIRST_COMPLETED
    )
    for task in pending:
        # a pending task may have ended with its own error before it could be cancelled (the
        # event and the periodic check both found the token revoked): the one in done decides
        with contextlib.suppress(Exception):
            await cancel(task)
    await feed.aclose()
    if listener in done:
        return  # the client left
    error = (sender if sender in done else checker).exception()
    if isinstance(error, AuthError):
        code, reason = 1008, f"invalid token: {error}"
    elif isinstance(error, AccessChanged):
        code, reason = ACCESS_CHANGED, "your role or teams changed: reconnect and reload"
    elif isinstance(error, SubscriberLagged):
        code, reason = 1013, "fell behind: reconnect and reload"
    elif isinstance(error, Unavailable):
        code, reason = 1013, "the database is unavailable: reconnect and reload"
    else:  # the feed ended (the hub stops), the database failed, or a bug
        if error is not None:
            log.warning("events socket closed: %s: %s", type(error).__name__, error)
        code, reason = 1011, "closed by the hub: reconnect and reload"
    with contextlib.suppress(Exception):
        await websocket.close(code=code, reason=reason[:120])  # a close reason: 123 bytes
