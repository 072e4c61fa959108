"""API tokens for integrations: `kefu_` and 43 random characters, stored as their SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlmodel import col, select

from hub.messages import utcnow
from hub.store.database import Database
from hub.store.models import ApiToken

PREFIX = "kefu_"
# last_used_at is written at most this often: not a database write on every request
TOUCH_EVERY = timedelta(minutes=1)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiTokens:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, name: str, role: str, created_by: str) -> tuple[ApiToken, str]:
        """A new token and its secret (shown once: only its hash is kept)."""
        secret = PREFIX + secrets.token_urlsafe(32)
        async with self.db.transaction() as s:
            token = ApiToken(
                name=name, token_hash=token_hash(secret), role=role, created_by=created_by
            )
            s.add(token)
            await s.flush()
            return token, secret

    async def active(self, secret: str) -> ApiToken | None:
        """The unrevoked token `secret` is, its use noted; None for an unknown or revoked one."""
        async with self.db.read() as s:
            query = select(ApiToken).where(ApiToken.token_hash == token_hash(secret))
            token = (await s.exec(query)).first()
        if token is None or token.revoked_at is not None:
            return None
        now = utcnow()
        if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
            async with self.db.transaction() as s:
                fresh = await s.get(ApiToken, token.id)
                if fresh is not None:
                    fresh.last_used_at = now
                    s.add(fresh)
        return token

    async def every(self) -> list[ApiToken]:
        """Every token, revoked ones too, oldest first."""
        async with self.db.read() as s:
            return list((await s.exec(select(ApiToken).order_by(col(ApiToken.id)))).all())

    async def revoke(self, token_id: int) -> ApiToken | None:
        """Revoke the token (kept, with revoked_at, for the record); None: no such token."""
        async with self.db.transaction() as s:
            token = await s.get(ApiToken, token_id)
            if token is None:
                return None
            if token.revoked_at is None:
                token.revoked_at = utcnow()
                s.add(token)
            return token
