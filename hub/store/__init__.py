"""Persistence: SQLModel tables, the async store, Alembic migrations."""

from hub.store.cursors import CursorError
from hub.store.database import Database
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
from hub.store.store import (
    ConversationFilter,
    ConversationRow,
    Draft,
    LastAdminError,
    StatusChanged,
    Store,
    Visibility,
)
from hub.store.tokens import ApiTokens

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
    "LastAdminError",
    "Message",
    "NluExample",
    "StatusChanged",
    "Store",
    "Team",
    "Visibility",
    "migrate",
]
