"""How the inbox API, the events socket and the webhooks show what is stored: one view of a
message, a conversation, an agent, a contact, an audit row, used by the core and features."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hub.store import Agent, AuditLog, Contact, ConversationRow, Message

SHOWN = frozenset({"buttons", "attachments", "nlu", "bot", "turn"})  # message_view's own keys


def message_view(message: Message) -> dict[str, Any]:
    """A stored message as the inbox API and the events socket show it."""
    return {
        "id": message.id,
        "conversation_id": message.conversation_id,
        "direction": message.direction,
        "sender": str(message.sender_type),
        "agent_id": message.agent_id,
        "kind": str(message.kind),
        "text": message.text,
        "buttons": message.payload.get("buttons", []),
        "attachments": message.payload.get("attachments", []),
        "nlu": message.payload.get("nlu"),
        "bot": message.payload.get("bot"),  # the flow and step a bot message came from
        # what the bot decided to do with a customer message, and why (hub/core/arbiter.py)
        "turn": message.payload.get("turn"),
        # what the channel added (an email's subject and headers, a location, a deep link)
        "details": {k: v for k, v in message.payload.items() if k not in SHOWN},
        "private": message.private,
        "delivery": message.delivery,
        "delivery_error": message.delivery_error,
        "created_at": message.created_at.isoformat(),
    }


def agent_view(agent: Agent | None) -> dict[str, Any] | None:
    if agent is None:
        return None
    return {
        "id": agent.id,
        "email": agent.email,
        "name": agent.name,
        "role": agent.role,
        "teams": agent.teams,
        "presence": agent.presence,
        "capacity": agent.capacity,
        "active": agent.active,
        "language": agent.language,
    }


def conversation_view(row: ConversationRow, agents: dict[int, Agent]) -> dict[str, Any]:
    c, contact = row.conversation, row.contact

    def when(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": c.id,
        "status": str(c.status),
        "channel": c.channel,
        "contact": {
            "id": contact.id,
            "external_id": contact.external_id,
            "name": contact.name,
            "language": contact.language,
        },
        "assignee": agent_view(agents.get(c.assignee_id)) if c.assignee_id else None,
        "team": c.team,
        "labels": c.labels,
        "priority": c.priority,
        "language": c.language,
        "handoff": c.handoff,
        "last_message": message_view(row.last_message) if row.last_message else None,
        "last_message_at": when(c.last_message_at),
        "created_at": when(c.created_at),
        "first_response_at": when(c.first_response_at),
        "resolved_at": when(c.resolved_at),
        "snooze_until": when(c.snooze_until),
    }


def contact_view(contact: Contact) -> dict[str, Any]:
    return {
        "id": contact.id,
        "channel": contact.channel,
        "external_id": contact.external_id,
        "name": contact.name,
        "language": contact.language,
        "attributes": contact.attributes,
        "email": contact.email,  # verified: contacts sharing one are one customer
        "phone": contact.phone,
        "person_id": contact.person_id,
        "created_at": contact.created_at.isoformat(),
    }


def audit_view(row: AuditLog) -> dict[str, Any]:
    return {
        "id": row.id,
        "conversation_id": row.conversation_id,
        "actor": row.actor,
        "action": row.action,
        "data": row.data,
        "created_at": row.created_at.isoformat(),
    }
