"""Dependencies of the inbox routes, as named `Annotated` aliases."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hub.auth import AuthError, read_token
from hub.store import Agent

if TYPE_CHECKING:
    from hub.app import Hub

_bearer = HTTPBearer(auto_error=False)


def get_hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


HubDep = Annotated["Hub", Depends(get_hub)]


async def agent_from_token(hub: Hub, token: str) -> Agent:
    """The active agent a bearer token belongs to; raises AuthError otherwise."""
    claims = read_token(token, hub.settings.jwt_secret())
    agent = await hub.store.get_agent(int(claims["sub"]))
    if agent is None or not agent.active:
        raise AuthError("no such agent")
    return agent


async def current_agent(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Agent:
    if credentials is None:
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    try:
        return await agent_from_token(get_hub(request), credentials.credentials)
    except AuthError as e:
        raise HTTPException(
            401, f"invalid token: {e}", headers={"WWW-Authenticate": "Bearer"}
        ) from e


CurrentAgent = Annotated[Agent, Depends(current_agent)]


def require_role(*roles: str) -> Callable[[Agent], Awaitable[Agent]]:
    """A dependency: the current agent when their role is one of `roles`, else 403."""
    needed = " or ".join(roles)

    async def check(agent: CurrentAgent) -> Agent:
        if agent.role not in roles:
            raise HTTPException(403, f"needs role {needed} (you are {agent.role})")
        return agent

    return check


AdminAgent = Annotated[Agent, Depends(require_role("admin"))]
DesignerAgent = Annotated[Agent, Depends(require_role("admin", "designer"))]
