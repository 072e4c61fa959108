"""Ports: the small interfaces the core talks through. Implementations live outside the core
(channels/, nlu/, flows/, knowledge/) and are wired in by hub/app.py only."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from hub.messages import Event, Handoff, Inbound, Outbound, Reply, Understanding


class ParseResult(Protocol):
    """What a classifier returns (the shape of nlu.Parse)."""

    @property
    def intent(self) -> str | None: ...
    @property
    def confidence(self) -> float: ...
    @property
    def entities(self) -> Sequence[Mapping[str, Any]]: ...
    @property
    def ranking(self) -> Sequence[tuple[str, float]]: ...
    @property
    def language(self) -> str:
        """ "zh", "en", ... or "und" when the text doesn't tell (digits, emoji)."""
        ...

    @property
    def ambiguous(self) -> bool:
        """The two best intents are too close to choose between."""
        ...


class Classifier(Protocol):
    """Intent classification and entity extraction for one message."""

    def parse(self, text: str) -> ParseResult: ...


@dataclass(frozen=True)
class TurnContext:
    """What a flow may read during one bot turn."""

    understanding: Understanding
    language: str  # the reply language
    conversation_id: int
    contact: dict[str, Any] = field(default_factory=dict)
    # The conversation so far, read only when asked (an action's Rasa tracker): its messages
    # before this one, oldest first, as Rasa tracker events: {"event": "user", "text",
    # "timestamp", "parse_data": {"intent": {"name", "confidence"}, "entities"}} for the
    # customer's, {"event": "bot", "text", "timestamp", "data": {"buttons"}} for the bot's and
    # agents'. None: no history available (a flow run outside a hub).
    history: Callable[[], Awaitable[list[dict[str, Any]]]] | None = None


@dataclass(frozen=True)
class HubWords:
    """What a flow runner borrows from the core to speak and listen like the rest of the hub,
    without importing its internals: the composition root passes the core's own."""

    # text(key, language, default_language): one of the hub's own sentences ("cancelled",
    # "resume", "invalid_answer", "knowledge_not_found"), in the language, else the default
    text: Callable[[str, str | None, str], str]
    # entry_text(entry, language, default_language): what the bot says for a knowledge entry
    # (a KnowledgeHit's entry): its summary in the language, and its link
    entry_text: Callable[[Any, str | None, str], str]


@dataclass(frozen=True)
class FlowResult:
    """A flow engine's answer to one customer message."""

    handled: bool  # False: no flow fits; the fallback chain answers
    replies: tuple[Reply, ...] = ()
    handoff: Handoff | None = None
    state: dict[str, Any] = field(default_factory=dict)  # saved with the conversation
    # what happened worth counting (a knowledge answer that helped...): (action, data), kept in
    # the conversation's audit log for the reports
    events: tuple[tuple[str, dict[str, Any]], ...] = ()


class KnowledgeHit(Protocol):
    """One search result (the shape of knowledge.Hit)."""

    @property
    def score(self) -> float: ...
    @property
    def confident(self) -> bool:
        """Good enough for the bot to answer with it on its own."""
        ...

    @property
    def entry(self) -> Any:
        """The article or FAQ: id, title, summary ({language: text}), url, tags."""
        ...


class KnowledgeSearch(Protocol):
    """The bot's articles and FAQs (knowledge.KnowledgeBase)."""

    def search(self, query: str, k: int = 5, language: str | None = None) -> Sequence[Any]: ...


@dataclass(frozen=True)
class WaitingAsk:
    """The question a flow waits on, as the turn's arbiter (hub/core/arbiter.py) weighs a
    message against it."""

    flow: str
    slot: str
    answered: bool  # the message is a valid answer to it
    free_text: bool  # the ask takes any text (no validate, choices or type)
    text_type: bool  # `type: text`: whatever the customer writes is the answer
    interruptible: bool  # the flow lets another flow or the knowledge base interrupt it
    triggers: frozenset[str] = frozenset()  # the waiting flow's own trigger intents
    # a change of mind: the earlier question of the flow the message answers anew (its slot)
    corrects: str | None = None


@dataclass(frozen=True)
class FlowMatch:
    """The flow a message would start, and by what: "intent", "keyword" or "regex"."""

    flow: str
    by: str


@dataclass(frozen=True)
class FlowView:
    """What the flows make of a message before anything runs."""

    waiting: WaitingAsk | None = None
    match: FlowMatch | None = None


class FlowRunner(Protocol):
    """Runs the bot designer's flows for one customer message. The arbiter looks first
    (`view`), decides, then calls the one method its decision needs."""

    def view(self, state: dict[str, Any], context: TurnContext) -> FlowView: ...

    async def run(self, state: dict[str, Any], context: TurnContext) -> FlowResult:
        """Answer the waiting question (re-asking when the answer doesn't fit), or start the
        flow the message matches; handled=False when neither."""
        ...

    async def start(self, state: dict[str, Any], context: TurnContext, flow: str) -> FlowResult:
        """Start `flow` on top of whatever waits (which resumes when it ends)."""
        ...

    def resume(self, state: dict[str, Any], context: TurnContext) -> FlowResult:
        """Say "back to where we were" and ask the waiting question again (after a
        digression answered outside the flows); nothing when nothing waits."""
        ...

    def cancel(self, state: dict[str, Any], context: TurnContext) -> FlowResult:
        """Leave every flow, saying so."""
        ...


class Subscription(Protocol):
    def __aiter__(self) -> AsyncIterator[Event]: ...

    async def aclose(self) -> None: ...


class Bus(Protocol):
    """Events to whoever listens (agents' sockets, automations)."""

    async def publish(self, event: Event) -> None: ...

    def subscribe(self, local_only: bool = False) -> Subscription:
        """Events published from this call on (registered before it returns); with
        `local_only`, only those this process published (several processes share the bus)."""
        ...


class Receiver(Protocol):
    """What a channel calls: the hub's side of every channel."""

    async def receive(
        self, inbound: Inbound, on_stored: Callable[[int], Awaitable[None]] | None = None
    ) -> list[Outbound]:
        """Store and answer one customer message; returns the bot's replies to it."""
        ...

    async def history(self, channel: str, sender_id: str, after_id: int) -> list[Outbound]:
        """Every message of the contact's current conversation after `after_id` (no notes)."""
        ...

    async def current_conversation(self, channel: str, sender_id: str) -> int | None: ...

    async def publish(self, event: Event) -> None: ...

    async def relay(self, channel: str, data: dict[str, Any]) -> None:
        """Hand `data` to this channel's instance in every hub process (its `on_relay`): for
        what only the process holding a connection can do. One process: a direct call."""
        ...

    async def edit(self, channel: str, channel_message_id: str, text: str) -> bool:
        """The customer edited a message: its stored text becomes `text` (the original is kept
        in its payload) and agents are told. False when no such message is stored."""
        ...

    async def delete(self, channel: str, channel_message_id: str) -> bool:
        """The customer deleted a message: it is marked deleted (kept for the record)."""
        ...

    async def save_media(
        self, data: bytes, *, name: str | None = None, mime_type: str | None = None
    ) -> str:
        """Store a file the customer sent; returns the hub URL the inbox shows it at. Raises
        MediaTooLarge over the configured limit."""
        ...

    async def conversation_of(self, channel: str, channel_message_id: str) -> int | None:
        """The conversation holding the customer message with this channel message id."""
        ...

    async def load_state(self, channel: str, key: str) -> dict[str, Any] | None:
        """What the channel saved under `key` (None: nothing): state that must outlive the
        process and be shared by every hub process (an IMAP folder's last UID)."""
        ...

    async def save_state(self, channel: str, key: str, value: dict[str, Any]) -> None: ...

    async def delivery_failed(self, message_id: int, error: str) -> bool:
        """A message the channel had sent turned out undelivered (a bounce): it is marked
        failed with `error`, which the agent sees. False when no such message is stored."""
        ...

    def sender_token(self, channel: str, sender_id: str) -> str:
        """A token that proves `sender_id` on `channel`: an HMAC of both under a key derived
        from the hub's secret, for a channel whose sender ids are not secrets (the widget's
        visitor ids) to hand to the sender once and ask back before showing it anything."""
        ...

    async def limited(self, rule: str, key: str) -> float | None:
        """Count one use of the config.yaml `limits:` rate `rule` by `key` (a customer, a
        client address). Over the limit: the seconds to wait (the use is refused, not
        counted); else, or with the rule off, None."""
        ...

    def cap(self, rule: str) -> int | None:
        """A `limits:` number that is not a rate (open sockets per visitor); None: no cap."""
        ...


class MediaTooLarge(ValueError):
    """A file over the hub's size limit (`media_max_bytes`)."""


@dataclass(frozen=True)
class Capabilities:
    """What a channel can show; the core renders replies within these."""

    buttons: bool = False
    images: bool = False
    markdown: bool = False
    max_text_length: int | None = None
    # Bot replies go back in the HTTP response to the customer's message (REST), not the outbox.
    inline_replies: bool = False
    # The least seconds between two sends in one rate bucket (a chat; a Slack channel, whose
    # threads share it): the platform's rate limit, kept by the outbox (about 1 per second).
    send_interval: float = 0.0


class Unavailable(Exception):
    """The hub can't take this now (its database is unreachable): nothing was stored, and the
    same request may succeed later. Webhooks answer 503 with Retry-After, so platforms retry."""


class ChannelConfigError(Exception):
    """A channel's settings in config.yaml are wrong; the message names the channel. Raised
    when a channel is built or started: the hub runs its other channels (/readyz names it)."""


class DeliveryError(Exception):
    """A channel could not deliver a message. `retryable` False: trying again won't help;
    `retry_after`: the platform said when to try again (seconds; a 429's retry_after)."""

    def __init__(
        self, message: str, retryable: bool = True, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class Channel(Protocol):
    """One configured channel instance, as the core sees it."""

    @property
    def name(self) -> str: ...
    @property
    def capabilities(self) -> Capabilities: ...

    async def send(self, message: Outbound) -> None:
        """Deliver a stored message to the customer; raise DeliveryError when it can't."""
        ...

    def problem(self) -> str | None:
        """What keeps the channel from working right now; None when all is well."""
        ...

    def rate_bucket(self, recipient_id: str) -> str:
        """Which of the platform's rate limits a send to this recipient counts against
        (`send_interval` apart): the recipient itself, or what it is part of (a Slack
        thread's channel)."""
        ...
