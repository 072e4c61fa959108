"""Persistence: SQLModel tables, the async store, Alembic migrations."""

from hub.store.database import Database
from hub.store.migrate import migrate
from hub.store.models import (
    Agent,
    ApiToken,
    AuditLog,
    CannedResponse,
    Contact,
    Conversation,
    Message,
    Team,
)
from hub.store.store import (
    ConversationFilter,
    ConversationRow,
    CursorError,
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
    "CursorError",
    "Database",
    "Draft",
    "LastAdminError",
    "Message",
    "StatusChanged",
    "Store",
    "Team",
    "Visibility",
    "migrate",
]
