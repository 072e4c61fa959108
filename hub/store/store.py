"""The async store: every read and write the hub makes, in SQL you can find in one place.

`Store` is the aggregates' stores over one database, each in its own module: what arrives
from customers (inbound), messages, conversations, contacts, agents and teams, canned
responses, the audit log, channels' state, and what assignment reads; and, as attributes, the
aggregates whose method names would overlap: `people` (one customer across channels),
`api_tokens` and `login_tokens`. Routes and features reach the database only through a store:
this one, or a feature's own, built once by the composition root."""

from __future__ import annotations

from hub.store.agents import AgentStore
from hub.store.assignment import AssignmentStore
from hub.store.audit import AuditStore
from hub.store.canned import CannedStore
from hub.store.contacts import ContactStore
from hub.store.conversations import ConversationStore
from hub.store.database import Database
from hub.store.inbound import InboundStore
from hub.store.messages import MessageStore
from hub.store.persons import People
from hub.store.sessions import LoginTokens
from hub.store.state import ChannelStateStore
from hub.store.tokens import ApiTokens


class Store(
    InboundStore,
    MessageStore,
    ConversationStore,
    ContactStore,
    AgentStore,
    CannedStore,
    AuditStore,
    ChannelStateStore,
    AssignmentStore,
):
    """Contacts, conversations, messages, agents. Returns detached rows (no lazy loading).

    `Store(db)`; every aggregate's methods are its methods (their names don't overlap)."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.people = People(db)
        self.api_tokens = ApiTokens(db)
        self.login_tokens = LoginTokens(db)
