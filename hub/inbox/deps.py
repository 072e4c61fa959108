"""Dependencies of the inbox routes, as named `Annotated` aliases; who may see what."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from hub.core.auth import AuthError, read_token
from hub.store import Agent, Conversation, Visibility
from hub.store.tokens import PREFIX as API_TOKEN_PREFIX

if TYPE_CHECKING:
    from hub.core.receiver import Core

_bearer = HTTPBearer(auto_error=False)


def get_hub(request: Request) -> Core:
    """The running core (app.state.hub: hub.app.Hub, the core with its features)."""
    hub: Core = request.app.state.hub
    return hub


HubDep = Annotated["Core", Depends(get_hub)]


def part(name: str) -> Callable[[Request], Any]:
    """A dependency: the hub's part `name`, a feature the composition root built (an
    attribute of hub.app.Hub); the route's annotation gives its type:
    `Annotated[WebhookSender, Depends(part("webhooks"))]`."""

    def get(request: Request) -> Any:
        return getattr(request.app.state.hub, name)

    get.__name__ = f"hub_{name}"
    return get


async def agent_from_token(hub: Core, token: str) -> Agent:
    """The active agent a bearer token belongs to; raises AuthError otherwise: a login token
    expired, logged out, or issued before the agent's password changed or they were deactivated
    (hub.store.sessions: one query, with the agent's row), or an API token revoked.

    An API token (`kefu_...`) acts as an unsaved Agent: id None, its role, no teams (it sees
    every conversation its role may), email `token:<id>` (what `actor` records)."""
    if token.startswith(API_TOKEN_PREFIX):
        api_token = await hub.store.api_tokens.active(token)
        if api_token is None:
            raise AuthError("unknown or revoked API token")
        return Agent(
            id=None,
            email=f"token:{api_token.id}",
            name=api_token.name,
            password_hash="",
            role=api_token.role,
            teams=[],
        )
    claims = read_token(token, hub.settings.jwt_secret())
    agent, revoked = await hub.store.login_tokens.agent(int(claims["sub"]), claims["jti"])
    if agent is None or not agent.active:
        raise AuthError("no such agent")
    if revoked:
        raise AuthError("token revoked: logged out")
    if claims["ver"] != agent.token_version:
        raise AuthError("token revoked: the password was changed or the agent deactivated")
    return agent


def actor(agent: Agent) -> str:
    """Who acts, as the audit log names them: `agent:<id>`, or `token:<id>` (an API token)."""
    return f"agent:{agent.id}" if agent.id is not None else agent.email


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
# the bearer credentials themselves (the route also takes CurrentAgent, which checked them)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


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
# Changing a conversation (reply, assign, status, labels) is an agent's work: designers read.
InboxAgent = Annotated[Agent, Depends(require_role("admin", "agent"))]


# ---- who sees which conversations -------------------------------------------------------


def visibility(agent: Agent) -> Visibility | None:
    """The conversations `agent` may see (hub.store.Visibility); None: all of them, as an
    admin or an agent without teams."""
    if agent.role == "admin" or not agent.teams:
        return None
    return Visibility(agent.id, tuple(agent.teams))


def can_see(agent: Agent, conversation: Conversation) -> bool:
    scope = visibility(agent)
    return scope is None or scope.allows(conversation)


async def visible_conversation(hub: Core, agent: Agent, conversation_id: int) -> Conversation:
    """The conversation, or 404 when there is none or `agent` may not see it (not 403: ids
    of other teams' conversations don't leak)."""
    conversation = await hub.store.get_conversation(conversation_id)
    if conversation is None or not can_see(agent, conversation):
        raise HTTPException(404, f"conversation {conversation_id} not found")
    return conversation
