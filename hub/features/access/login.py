"""Agents log in (a JWT; repeated failures lock the email out: hub/features/access/lockout.py)
and out (the token revoked at once, on every hub process)."""

from __future__ import annotations

import logging
import re
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from hub.core.auth import (
    DUMMY_HASH,
    expires_at,
    hash_password,
    issue_token,
    needs_rehash,
    read_token,
    verify_password,
)
from hub.features.access.lockout import LoginGuard
from hub.inbox.deps import Credentials, CurrentAgent, HubDep, actor, part
from hub.inbox.events import agent_changed
from hub.inbox.schemas import LoginBody, Token
from hub.store.tokens import PREFIX as API_TOKEN_PREFIX

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["inbox"])
# a line break in a login's email would forge a line of the log it is written to
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
Logins = Annotated[LoginGuard, Depends(part("logins"))]


@router.post("/auth/login")
async def login(body: LoginBody, hub: HubDep, logins: Logins, request: Request) -> Token:
    """A JWT for the agent. Too many failures for an email (or attempts from an IP): 429 with
    Retry-After, whatever the password (hub.features.access.lockout). The IP is the connecting
    address, or
    what a proxy of `trusted_proxies` forwarded (hub.ops.proxies)."""
    if _CONTROL.search(body.email):
        raise HTTPException(422, "email: control characters (such as line breaks) are not allowed")
    email = body.email.strip().lower()
    ip = request.client.host if request.client else "unknown"
    wait = await logins.attempt(email, ip)
    if wait is not None:
        raise HTTPException(
            429, f"too many login attempts: try again in {wait} s", {"Retry-After": str(wait)}
        )
    agent = await hub.store.agent_by_email(email)
    if agent is None or not agent.active:
        verify_password(DUMMY_HASH, body.password)  # same time as a wrong password
        agent = None
    elif not verify_password(agent.password_hash, body.password):
        agent = None
    if agent is None:
        log.info("login failed for %s from %s", email, ip)
        if await logins.failed(email):
            log.warning("login for %s locked after repeated failures (last from %s)", email, ip)
            await hub.store.audit(f"ip:{ip}"[:64], "login.locked", email=email, ip=ip)
        raise HTTPException(401, "wrong email or password")
    await logins.succeeded(email)
    assert agent.id is not None
    if needs_rehash(agent.password_hash):
        await hub.store.set_password_hash(agent.id, hash_password(body.password))
    secret = hub.settings.jwt_secret()
    return Token(
        access_token=issue_token(agent.id, agent.role, secret, version=agent.token_version)
    )


@router.post("/auth/logout", status_code=204)
async def logout(hub: HubDep, agent: CurrentAgent, credentials: Credentials) -> Response:
    """Revoke the token this request brings, at once and on every hub process; the agent's
    other tokens (other tabs and devices) keep working. An API token is revoked as by
    `DELETE /api/v1/tokens/{id}`."""
    assert credentials is not None  # CurrentAgent checked them
    token = credentials.credentials
    if token.startswith(API_TOKEN_PREFIX):
        token_id = int(agent.email.removeprefix("token:"))
        await hub.store.api_tokens.revoke(token_id)
        await hub.store.audit(actor(agent), "token.revoked", token_id=token_id, by="logout")
    else:
        claims = read_token(token, hub.settings.jwt_secret())
        await hub.store.login_tokens.revoke(claims["jti"], expires_at(claims))
        await hub.store.audit(actor(agent), "auth.logout", agent_id=agent.id)
        await agent_changed(hub, agent.id)  # a socket opened with this token closes now
    return Response(status_code=204)
