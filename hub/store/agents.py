"""Agents (their accounts, roles, teams and capacity) and the teams conversations go to."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from hub.store.models import Agent, Team
from hub.store.rows import Aggregate, delete_row, get_row, set_fields, unique, update_row


class LastAdminError(ValueError):
    """A change that would leave no active admin."""


class AgentStore(Aggregate):
    async def create_agent(
        self,
        email: str,
        name: str,
        password_hash: str,
        role: str = "agent",
        teams: Sequence[str] = (),
        capacity: int = 10,
    ) -> Agent:
        """Raises hub.store.Duplicate when an agent has that email."""
        async with unique(self.db) as s:
            agent = Agent(
                email=email.lower(),
                name=name,
                password_hash=password_hash,
                role=role,
                teams=list(teams),
                capacity=capacity,
            )
            s.add(agent)
            await s.flush()
            return agent

    async def agent_by_email(self, email: str) -> Agent | None:
        async with self.db.read() as s:
            return (await s.exec(select(Agent).where(Agent.email == email.lower()))).first()

    async def get_agent(self, agent_id: int) -> Agent | None:
        return await get_row(self.db, Agent, agent_id)

    async def agents_by_ids(self, ids: Sequence[int]) -> dict[int, Agent]:
        if not ids:
            return {}
        async with self.db.read() as s:
            rows = (await s.exec(select(Agent).where(col(Agent.id).in_(list(ids))))).all()
            return {a.id: a for a in rows if a.id is not None}

    async def set_password_hash(self, agent_id: int, password_hash: str) -> None:
        await update_row(self.db, Agent, agent_id, password_hash=password_hash)

    async def count_agents(self) -> int:
        async with self.db.read() as s:
            return int((await s.exec(select(func.count(col(Agent.id))))).one())

    async def list_agents(self) -> list[Agent]:
        async with self.db.read() as s:
            return list((await s.exec(select(Agent).order_by(col(Agent.id)))).all())

    async def update_agent(self, agent_id: int, **fields: Any) -> Agent | None:
        """Change an agent (None: no such agent). Raises LastAdminError, changing nothing,
        when a change of role or `active` would leave no active admin. A new password hash or
        deactivation bumps `token_version`: the agent's earlier login tokens stop working."""
        async with self.db.transaction() as s:
            agent = await set_fields(s, Agent, agent_id, fields)
            if agent is None:
                return None
            if "password_hash" in fields or fields.get("active") is False:
                agent.token_version += 1
            await s.flush()
            if "role" in fields or "active" in fields:
                admins = select(func.count(col(Agent.id))).where(
                    Agent.role == "admin", col(Agent.active).is_(True)
                )
                if int((await s.exec(admins)).one()) == 0:
                    raise LastAdminError("this would leave no active admin")
            return agent

    # ---- teams --------------------------------------------------------------------------

    async def list_teams(self) -> list[Team]:
        async with self.db.read() as s:
            return list((await s.exec(select(Team).order_by(col(Team.name)))).all())

    async def create_team(self, name: str) -> Team:
        """Raises hub.store.Duplicate when the team exists."""
        async with unique(self.db) as s:
            team = Team(name=name)
            s.add(team)
            await s.flush()
            return team

    async def delete_team(self, name: str) -> bool:
        return await delete_row(self.db, Team, name)
