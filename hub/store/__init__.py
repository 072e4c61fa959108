"""Persistence: SQLModel tables, the async store, Alembic migrations."""

from hub.store.agents import LastAdminError
from hub.store.conversations import StatusChanged
from hub.store.cursors import CursorError
from hub.store.database import Database
from hub.store.messages import Draft
from hub.store.migrate import migrate
from hub.store.models import (
    Agent,
    ApiToken,
    AuditLog,
    CannedResponse,
    Contact,
    Conversation,
    CsatRating,
    Message,
    NluExample,
    Team,
)
from hub.store.rows import Duplicate
from hub.store.store import Store
from hub.store.tokens import ApiTokens
from hub.store.visibility import ConversationFilter, ConversationRow, Visibility

__all__ = [
    "Agent",
    "ApiToken",
    "ApiTokens",
    "AuditLog",
    "CannedResponse",
    "Contact",
    "Conversation",
    "ConversationFilter",
    "ConversationRow",
    "CsatRating",
    "CursorError",
    "Database",
    "Draft",
    "Duplicate",
    "LastAdminError",
    "Message",
    "NluExample",
    "StatusChanged",
    "Store",
    "Team",
    "Visibility",
    "migrate",
]
