"""The async store: every read and write the hub makes, in SQL you can find in one place.

`Store` is the aggregates' stores over one database, each in its own module: what arrives
from customers (inbound), messages, conversations, contacts, agents and teams, canned
responses, the audit log, channels' state, and what assignment reads."""

from __future__ import annotations

from hub.store.agents import AgentStore
from hub.store.assignment import AssignmentStore
from hub.store.audit import AuditStore
from hub.store.canned import CannedStore
from hub.store.contacts import ContactStore
from hub.store.conversations import ConversationStore
from hub.store.inbound import InboundStore
from hub.store.messages import MessageStore
from hub.store.state import ChannelStateStore


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
