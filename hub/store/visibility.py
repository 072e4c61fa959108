"""Types the store's aggregates share with their callers: which conversations an agent may
see (`Visibility`), a conversation list's filter and its rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import false, or_
from sqlmodel import col

from hub.store.models import Contact, Conversation, Message


@dataclass(frozen=True)
class Visibility:
    """The conversations an agent with teams may see: their teams', those without a team and
    those assigned to them. The one rule, as SQL (`clause`) and for one conversation (`allows`);
    an agent without teams, or an admin, sees everything and has no Visibility."""

    agent_id: int | None
    teams: tuple[str, ...]

    def allows(self, conversation: Conversation) -> bool:
        return (
            conversation.team is None
            or conversation.team in self.teams
            or (self.agent_id is not None and conversation.assignee_id == self.agent_id)
        )

    def clause(self) -> Any:
        assigned = col(Conversation.assignee_id) == self.agent_id
        return or_(
            col(Conversation.team).is_(None),
            col(Conversation.team).in_(list(self.teams)),
            assigned if self.agent_id is not None else false(),
        )


@dataclass(frozen=True)
class ConversationFilter:
    status: Sequence[str] = ()
    assignee_id: int | None = None
    unassigned: bool = False
    team: str | None = None
    channel: str | None = None
    q: str | None = None
    label: str | None = None
    visible_to: Visibility | None = None  # None: every conversation


@dataclass(frozen=True)
class ConversationRow:
    """A conversation with what a list shows beside it."""

    conversation: Conversation
    contact: Contact
    last_message: Message | None
