"""The inbox API: agents log in, list and read conversations, reply, assign, change status.

An agent with teams sees only some conversations (hub.inbox.deps.visibility): the others are
404 and missing from lists and counts. Designers read conversations but don't change them."""

from __future__ import annotations

import logging
import re
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response

from hub.auth import (
    DUMMY_HASH,
    expires_at,
    hash_password,
    issue_token,
    needs_rehash,
    read_token,
    verify_password,
)
from hub.conversations import message_view
from hub.inbox.contacts import person_view
from hub.inbox.deps import (
    Credentials,
    CurrentAgent,
    HubDep,
    InboxAgent,
    actor,
    visibility,
    visible_conversation,
)
from hub.inbox.events import agent_changed
from hub.inbox.schemas import (
    MAX_ID,
    AssignBody,
    LabelsBody,
    LoginBody,
    ReplyBody,
    RowId,
    StatusBody,
    Token,
    agent_view,
    conversation_view,
)
from hub.messages import Reply, Sender, Status, utcnow
from hub.store import ApiTokens, ConversationFilter, ConversationRow
from hub.store.sessions import LoginTokens
from hub.store.tokens import PREFIX as API_TOKEN_PREFIX

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["inbox"])
# a line break in a login's email would forge a line of the log it is written to
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@router.post("/auth/login")
async def login(body: LoginBody, hub: HubDep, request: Request) -> Token:
    """A JWT for the agent. Too many failures for an email (or attempts from an IP): 429 with
    Retry-After, whatever the password (hub.lockout). The IP is the connecting address, or
    what a proxy of `trusted_proxies` forwarded (hub.proxies)."""
    if _CONTROL.search(body.email):
        raise HTTPException(422, "email: control characters (such as line breaks) are not allowed")
    email = body.email.strip().lower()
    ip = request.client.host if request.client else "unknown"
    wait = await hub.logins.attempt(email, ip)
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
        if await hub.logins.failed(email):
            log.warning("login for %s locked after repeated failures (last from %s)", email, ip)
            await hub.store.audit(f"ip:{ip}"[:64], "login.locked", email=email, ip=ip)
        raise HTTPException(401, "wrong email or password")
    await hub.logins.succeeded(email)
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
        await ApiTokens(hub.db).revoke(token_id)
        await hub.store.audit(actor(agent), "token.revoked", token_id=token_id, by="logout")
    else:
        claims = read_token(token, hub.settings.jwt_secret())
        await LoginTokens(hub.db).revoke(claims["jti"], expires_at(claims))
        await hub.store.audit(actor(agent), "auth.logout", agent_id=agent.id)
        await agent_changed(hub, agent.id)  # a socket opened with this token closes now
    return Response(status_code=204)


@router.get("/me")
async def me(agent: CurrentAgent) -> dict[str, Any] | None:
    return agent_view(agent)


async def _views(hub: HubDep, rows: list[ConversationRow]) -> list[dict[str, Any]]:
    ids = [r.conversation.assignee_id for r in rows if r.conversation.assignee_id]
    agents = await hub.store.agents_by_ids(ids)
    return [conversation_view(r, agents) for r in rows]


@router.get("/conversations")
async def list_conversations(
    hub: HubDep,
    agent: CurrentAgent,
    status: Annotated[
        str | None, Query(description="one status or several, comma-separated")
    ] = None,
    assignee: Annotated[str | None, Query(description="an agent id, `me` or `none`")] = None,
    team: str | None = None,
    channel: str | None = None,
    label: Annotated[
        str | None, Query(max_length=64, description="conversations with this label")
    ] = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
) -> dict[str, Any]:
    statuses = [s for s in (status or "").split(",") if s]
    for s in statuses:
        if s not in Status.__members__.values():
            raise HTTPException(422, f"unknown status {s!r}; one of: {', '.join(Status)}")
    where = ConversationFilter(
        status=statuses,
        team=team,
        channel=channel,
        q=q,
        label=label,
        visible_to=visibility(agent),
    )
    if assignee == "me":
        if agent.id is None:
            raise HTTPException(422, "an API token has no conversations of its own")
        where = ConversationFilter(**{**where.__dict__, "assignee_id": agent.id})
    elif assignee == "none":
        where = ConversationFilter(**{**where.__dict__, "unassigned": True})
    elif assignee:
        if not assignee.isdigit() or int(assignee) > MAX_ID:
            raise HTTPException(422, "assignee is an agent id, `me` or `none`")
        where = ConversationFilter(**{**where.__dict__, "assignee_id": int(assignee)})
    rows, next_cursor = await hub.store.list_conversations(where, cursor, limit)
    return {"items": await _views(hub, rows), "next_cursor": next_cursor}


@router.get("/conversations/counts")
async def conversation_counts(
    hub: HubDep,
    agent: CurrentAgent,
    team: str | None = None,
    channel: str | None = None,
    label: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, int]:
    """How many conversations have each status; `mine`: open or snoozed ones the caller has."""
    where = ConversationFilter(
        team=team, channel=channel, label=label, visible_to=visibility(agent)
    )
    counts, mine = await hub.store.status_counts(where, agent.id)
    return {
        "pending": counts.get(Status.PENDING, 0),
        "mine": mine if agent.id is not None else 0,
        "open": counts.get(Status.OPEN, 0),
        "bot": counts.get(Status.BOT, 0),
        "snoozed": counts.get(Status.SNOOZED, 0),
        "resolved": counts.get(Status.RESOLVED, 0),
    }


@router.get("/labels")
async def labels(hub: HubDep, agent: CurrentAgent) -> dict[str, list[str]]:
    """Every label some conversation the agent may see has, sorted."""
    return {"items": await hub.store.labels_in_use(visibility(agent))}


async def _view(hub: HubDep, conversation_id: int) -> dict[str, Any]:
    row = await hub.store.conversation_row(conversation_id)
    if row is None:
        raise HTTPException(404, f"conversation {conversation_id} not found")
    return (await _views(hub, [row]))[0]


@router.get("/conversations/{conversation_id}")
async def get_conversation(
    conversation_id: RowId, hub: HubDep, agent: CurrentAgent
) -> dict[str, Any]:
    conversation = await visible_conversation(hub, agent, conversation_id)
    view = await _view(hub, conversation_id)
    # the customer's contacts on other channels (GET .../history reads them all)
    person = await person_view(hub, conversation.contact_id)
    due = await hub.sla.due_at(conversation)  # the first response's SLA deadline (hub/sla.py)
    view["sla_due_at"] = due.isoformat() if due else None
    return {**view, "person": person, "csat": await hub.csat.of(conversation_id)}


@router.get("/conversations/{conversation_id}/messages")
async def list_messages(
    conversation_id: RowId,
    hub: HubDep,
    agent: CurrentAgent,
    after: Annotated[int, Query(ge=0, le=MAX_ID, description="only messages with a larger id")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    await visible_conversation(hub, agent, conversation_id)
    messages = await hub.store.messages(conversation_id, after, limit + 1)
    more = len(messages) > limit
    messages = messages[:limit]
    return {
        "items": [message_view(m) for m in messages],
        "next_cursor": str(messages[-1].id) if more and messages else None,
    }


@router.post("/conversations/{conversation_id}/messages", status_code=201)
async def reply(
    conversation_id: RowId, body: ReplyBody, hub: HubDep, agent: InboxAgent
) -> dict[str, Any]:
    """Send a reply to the customer through the conversation's channel, or keep a private note.
    A public reply means a human has the conversation: it becomes `open` (the bot goes quiet)."""
    conversation = await visible_conversation(hub, agent, conversation_id)
    who = actor(agent)
    if not body.private and conversation.status != Status.OPEN:
        assignee = conversation.assignee_id or agent.id
        conversation = await hub.conversations.transition(
            conversation, Status.OPEN, who, reason="agent replied", assignee_id=assignee
        )
    message, _ = await hub.conversations.post(
        conversation,
        Reply(text=body.text, sender=Sender.AGENT),
        agent_id=agent.id,
        private=body.private,
    )
    action = "note" if body.private else "reply"
    await hub.store.audit(who, action, conversation_id, message_id=message.id)
    return message_view(message)


@router.post("/conversations/{conversation_id}/assign")
async def assign(
    conversation_id: RowId, body: AssignBody, hub: HubDep, agent: InboxAgent
) -> dict[str, Any]:
    conversation = await visible_conversation(hub, agent, conversation_id)
    if body.agent_id is None and body.team is None:
        raise HTTPException(422, "give agent_id, team, or both")
    if body.agent_id is not None:
        target = await hub.store.get_agent(body.agent_id)
        if target is None or not target.active:
            raise HTTPException(422, f"no active agent with id {body.agent_id}")
    await hub.conversations.assign(
        conversation, actor(agent), agent_id=body.agent_id, team=body.team
    )
    return await _view(hub, conversation_id)


@router.post("/conversations/{conversation_id}/status")
async def set_status(
    conversation_id: RowId, body: StatusBody, hub: HubDep, agent: InboxAgent
) -> dict[str, Any]:
    conversation = await visible_conversation(hub, agent, conversation_id)
    fields: dict[str, Any] = {}
    if body.status == Status.SNOOZED:
        if body.snooze_until is not None:
            if body.snooze_until.tzinfo is None:
                raise HTTPException(422, "snooze_until needs a timezone, e.g. 2026-01-01T09:00Z")
            if body.snooze_until <= utcnow():
                raise HTTPException(422, "snooze_until is in the past")
        fields["snooze_until"] = body.snooze_until
    elif body.snooze_until is not None:
        raise HTTPException(422, "snooze_until goes only with status snoozed")
    if body.status == Status.OPEN and conversation.assignee_id is None:
        fields["assignee_id"] = agent.id  # whoever opens it has it
    await hub.conversations.transition(
        conversation, body.status, actor(agent), reason="agent", **fields
    )
    return await _view(hub, conversation_id)


@router.put("/conversations/{conversation_id}/labels")
async def set_labels(
    conversation_id: RowId, body: LabelsBody, hub: HubDep, agent: InboxAgent
) -> dict[str, Any]:
    """Replace the conversation's labels (stripped, duplicates dropped, at most 20)."""
    conversation = await visible_conversation(hub, agent, conversation_id)
    before = list(conversation.labels)
    updated = await hub.store.update_conversation(conversation_id, labels=body.labels)
    who = actor(agent)
    await hub.store.audit(who, "labels", conversation_id, source=before, target=body.labels)
    view = await _view(hub, conversation_id)
    await hub.conversations.publish("conversation.updated", updated, view)
    return view
