"""Agents' credentials: argon2 password hashes and short-lived JWT bearer tokens.

A token carries a random id (`jti`: logout revokes that one token, hub.store.sessions) and the
agent's `token_version` when it was issued (`ver`: a password change or reset, or deactivation,
bumps the version, which revokes every earlier token of the agent)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hub.messages import utcnow

_hasher = PasswordHasher()
ALGORITHM = "HS256"
TOKEN_TTL = timedelta(hours=12)
ROLES = ("admin", "agent", "designer")


class AuthError(Exception):
    """Missing, expired or forged credentials."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


# Verifying against this when the email is unknown keeps login time the same for both cases.
DUMMY_HASH = _hasher.hash("no such agent")


def issue_token(
    agent_id: int, role: str, secret: str, *, version: int, ttl: timedelta = TOKEN_TTL
) -> str:
    """A JWT for the agent; `version`: their `token_version` now."""
    now = utcnow()
    claims = {
        "sub": str(agent_id),
        "role": role,
        "ver": version,
        "jti": secrets.token_urlsafe(16),
        "iat": now,
        "exp": now + ttl,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read_token(token: str, secret: str) -> dict[str, Any]:
    """The token's claims; raises AuthError if it is not one of ours or has expired. (A token
    without `jti` and `ver` was issued before tokens could be revoked: refused, log in again.)"""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"require": ["sub", "exp", "jti", "ver"]},
        )
    except jwt.PyJWTError as e:
        raise AuthError(str(e)) from e
    if not str(claims.get("sub", "")).isdigit():
        raise AuthError("token subject is not an agent id")
    if not isinstance(claims["ver"], int) or not isinstance(claims["jti"], str):
        raise AuthError("malformed token")
    return claims


def expires_at(claims: dict[str, Any]) -> datetime:
    """When the token of these claims expires."""
    return datetime.fromtimestamp(int(claims["exp"]), UTC)
