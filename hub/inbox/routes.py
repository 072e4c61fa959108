"""The inbox API: agents log in, list and read conversations, reply, assign, change status.

An agent with teams sees only some conversations (hub.inbox.deps.visibility): the others are
404 and missing from lists and counts. Designers read conversations but don't change them."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from hub.core.views import agent_view, conversation_view, message_view
from hub.inbox.deps import (
    CurrentAgent,
    HubDep,
    InboxAgent,
    actor,
    visibility,
    visible_conversation,
)
from hub.inbox.schemas import (
    MAX_ID,
    AssignBody,
    LabelsBody,
    ReplyBody,
    RowId,
    StatusBody,
)
from hub.messages import Reply, Sender, Status, utcnow
from hub.store import ConversationFilter, ConversationRow

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["inbox"])


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
    # what features add: the customer on other channels (`person`), the first response's
    # SLA deadline (`sla_due_at`), the satisfaction rating (`csat`)
    for feature in hub.features:
        view.update(await feature.details(conversation))
    return view


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
