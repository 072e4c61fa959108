"""Agents, teams and the caller's own settings: what the admin pages manage.

Any agent may list agents and teams and change their own name, language, presence and
password (`PATCH /me`); creating and changing agents and teams needs the admin role."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Response
from pydantic import Field, field_validator
from starlette.concurrency import run_in_threadpool

from hub.core.auth import hash_password, issue_token, verify_password
from hub.core.views import agent_view
from hub.features.routing import Routing
from hub.inbox.deps import AdminAgent, CurrentAgent, HubDep, actor, part
from hub.inbox.events import agent_changed
from hub.inbox.schemas import Body, RowId, patch_fields
from hub.messages import Status
from hub.store import Agent, Duplicate, LastAdminError

router = APIRouter(prefix="/api/v1", tags=["agents and teams"])

Role = Literal["admin", "agent", "designer"]
TEAM_NAME = re.compile(r"^[\w-]{1,64}$")  # \w: letters and digits of any script, and _
TEAM_RULE = "1 to 64 letters (any script, e.g. 售后), digits, _ or -, without spaces"
MAX_TEAMS = 50


def check_team_name(name: str) -> str:
    if not TEAM_NAME.fullmatch(name):
        raise ValueError(f"team name {name!r}: {TEAM_RULE}")
    return name


def check_teams(teams: list[str] | None) -> list[str] | None:
    """Valid team names, duplicates dropped."""
    if teams is None:
        return None
    return list(dict.fromkeys(check_team_name(t.strip()) for t in teams))


class AgentCreateBody(Body):
    email: str = Field(min_length=3, max_length=255, pattern=r"^[^@\s]+@[^@\s]+$")
    name: str = Field(min_length=1, max_length=255)
    password: str = Field(min_length=8, max_length=1024)
    role: Role = "agent"
    teams: list[str] = Field(default_factory=list, max_length=MAX_TEAMS)
    capacity: int = Field(default=10, ge=1, le=100)

    _teams = field_validator("teams")(check_teams)


class AgentPatchBody(Body):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    role: Role | None = None
    teams: list[str] | None = Field(default=None, max_length=MAX_TEAMS)
    capacity: int | None = Field(default=None, ge=1, le=100)
    active: bool | None = None
    password: str | None = Field(default=None, min_length=8, max_length=1024)

    _teams = field_validator("teams")(check_teams)


class MeBody(Body):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    language: Literal["zh", "en"] | None = None  # null: follow the browser
    presence: Literal["online", "away", "offline"] | None = None
    password: str | None = Field(default=None, min_length=8, max_length=1024)
    current_password: str | None = Field(default=None, max_length=1024)


class TeamBody(Body):
    name: str = Field(min_length=1, max_length=64)

    _name = field_validator("name")(check_team_name)


# ---- agents -----------------------------------------------------------------------------


def full_view(agent: Agent, open_count: int | None = None) -> dict[str, Any]:
    view = agent_view(agent)
    assert view is not None
    if open_count is not None:
        view["open_count"] = open_count
    return view


@router.get("/agents")
async def list_agents(hub: HubDep, agent: CurrentAgent) -> dict[str, Any]:
    """Every agent (deactivated ones too), with `open_count`: open conversations they have."""
    agents = await hub.store.list_agents()
    counts = await hub.store.open_counts()
    return {"items": [full_view(a, counts.get(a.id or 0, 0)) for a in agents]}


@router.post("/agents", status_code=201)
async def create_agent(body: AgentCreateBody, hub: HubDep, admin: AdminAgent) -> dict[str, Any]:
    if await hub.store.agent_by_email(body.email) is not None:
        raise HTTPException(409, f"an agent with email {body.email.lower()} exists")
    password_hash = await run_in_threadpool(hash_password, body.password)
    try:
        agent = await hub.store.create_agent(
            body.email, body.name, password_hash, body.role, body.teams, body.capacity
        )
    except Duplicate as e:  # created meanwhile
        raise HTTPException(409, f"an agent with email {body.email.lower()} exists") from e
    await hub.store.audit(actor(admin), "agent.created", agent_id=agent.id, role=agent.role)
    return full_view(agent)


@router.patch("/agents/{agent_id}")
async def update_agent(
    agent_id: RowId, body: AgentPatchBody, hub: HubDep, admin: AdminAgent
) -> dict[str, Any]:
    """Change any of name, role, teams, capacity, active, password. 409 when no active admin
    would be left. A new password or deactivation revokes the agent's login tokens."""
    fields = patch_fields(body, nullable={"password"})
    password = fields.pop("password", None)
    if password is not None:
        fields["password_hash"] = await run_in_threadpool(hash_password, password)
    try:
        agent = await hub.store.update_agent(agent_id, **fields)
    except LastAdminError as e:
        raise HTTPException(409, f"{e}: make another agent admin first") from e
    if agent is None:
        raise HTTPException(404, f"agent {agent_id} not found")
    await agent_changed(hub, agent_id)  # open sockets check the agent's access now
    changed = sorted(k for k in body.model_fields_set if k != "password")
    await hub.store.audit(
        actor(admin),
        "agent.updated",
        agent_id=agent_id,
        changed=[*changed, *(["password"] if password is not None else [])],
        **{k: fields[k] for k in ("role", "active") if k in fields},
    )
    return full_view(agent)


@router.patch("/me")
async def update_me(
    body: MeBody,
    hub: HubDep,
    routing: Annotated[Routing, Depends(part("routing"))],
    agent: CurrentAgent,
) -> dict[str, Any]:
    """The caller's own name, inbox language (zh, en or null), presence and password (with
    `current_password`). A new password revokes every earlier token of the agent, the one of
    this request too: the answer then has a new `access_token`."""
    if agent.id is None:
        raise HTTPException(403, "an API token has no settings of its own")
    fields = patch_fields(body, nullable={"language", "password", "current_password"})
    current = fields.pop("current_password", None)
    password = fields.pop("password", None)
    if password is not None:
        if current is None:
            raise HTTPException(422, "give current_password to change the password")
        if not await run_in_threadpool(verify_password, agent.password_hash, current):
            raise HTTPException(403, "current_password is wrong")
        fields["password_hash"] = await run_in_threadpool(hash_password, password)
    elif current is not None:
        raise HTTPException(422, "current_password goes only with password")
    updated = await hub.store.update_agent(agent.id, **fields) if fields else agent
    if updated is None:
        raise HTTPException(404, "your agent is gone")
    changed = sorted(body.model_fields_set - {"current_password"})
    await hub.store.audit(actor(agent), "me.updated", agent_id=agent.id, changed=changed)
    if updated.presence != agent.presence:  # auto-assignment: room, or conversations to hand on
        await routing.presence_changed(hub.conversations, agent.id, updated.presence)
    view = full_view(updated)
    if password is not None:  # every earlier token of theirs, this one too, is revoked
        await agent_changed(hub, agent.id)
        secret = hub.settings.jwt_secret()
        view["access_token"] = issue_token(
            agent.id, updated.role, secret, version=updated.token_version
        )
    return view


# ---- teams ------------------------------------------------------------------------------


@router.get("/teams")
async def list_teams(hub: HubDep, agent: CurrentAgent) -> dict[str, Any]:
    """Teams (created ones and those agents or conversations name), sorted, with how many
    agents are in each and how many of its conversations are pending and open."""
    agents = await hub.store.list_agents()
    counts = await hub.store.team_counts()
    names = {t.name for t in await hub.store.list_teams()}
    names.update(team for a in agents for team in a.teams)
    names.update(counts)
    return {
        "items": [
            {
                "name": name,
                "agents": sum(1 for a in agents if name in a.teams),
                "pending": counts.get(name, {}).get(Status.PENDING, 0),
                "open": counts.get(name, {}).get(Status.OPEN, 0),
            }
            for name in sorted(names)
        ]
    }


@router.post("/teams", status_code=201)
async def create_team(body: TeamBody, hub: HubDep, admin: AdminAgent) -> dict[str, Any]:
    try:
        team = await hub.store.create_team(body.name)
    except Duplicate as e:
        raise HTTPException(409, f"team {body.name!r} exists") from e
    await hub.store.audit(actor(admin), "team.created", team=team.name)
    return {"name": team.name, "created_at": team.created_at.isoformat()}


@router.delete("/teams/{name}", status_code=204)
async def delete_team(name: str, hub: HubDep, admin: AdminAgent) -> Response:
    members = [a.email for a in await hub.store.list_agents() if name in a.teams]
    if members:
        raise HTTPException(
            409, f"team {name!r} still has agents: {', '.join(members)}; move them first"
        )
    if not await hub.store.delete_team(name):
        raise HTTPException(404, f"team {name!r} not found")
    await hub.store.audit(actor(admin), "team.deleted", team=name)
    return Response(status_code=204)
