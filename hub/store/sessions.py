"""Agents' login tokens (JWTs, hub.core.auth): who a token belongs to, and the ones revoked.

A token names its agent and the agent's `token_version` when it was issued: bumping the
version (a password change or reset, deactivation: `Store.update_agent`) revokes all of the
agent's earlier tokens. Logout revokes one token: its `jti` is kept in `revoked_token` until
the token would have expired anyway. Both are checked by one query on every request."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exists, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete, select

from hub.messages import utcnow
from hub.store.database import Database
from hub.store.models import Agent, RevokedToken


class LoginTokens:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def agent(self, agent_id: int, jti: str) -> tuple[Agent | None, bool]:
        """The agent (None: no such agent) and whether the token `jti` was revoked, in one
        query."""
        revoked = exists().where(col(RevokedToken.jti) == jti)
        query = select(Agent, revoked.label("revoked")).where(Agent.id == agent_id)
        async with self.db.read() as s:
            row = (await s.exec(query)).first()
        if row is None:
            return None, False
        agent, is_revoked = row
        return agent, bool(is_revoked)

    async def revoke(self, jti: str, expires_at: datetime) -> None:
        """Revoke the token `jti` (until `expires_at`, when it expires anyway); rows of tokens
        that expired meanwhile are deleted."""
        try:
            async with self.db.transaction() as s:
                await s.exec(delete(RevokedToken).where(col(RevokedToken.expires_at) < utcnow()))
                if await s.get(RevokedToken, jti) is None:
                    s.add(RevokedToken(jti=jti, expires_at=expires_at))
        except IntegrityError:  # revoked meanwhile by another request: it is revoked
            pass

    async def count(self) -> int:
        """Revoked tokens not yet expired (rows kept)."""
        async with self.db.read() as s:
            return int((await s.exec(select(func.count(col(RevokedToken.jti))))).one())
