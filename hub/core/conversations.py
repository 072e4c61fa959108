"""What happens to a conversation: messages posted, status changes, handoffs, assignment.

The pipeline (customer side) and the inbox API (agent side) both act through this one place,
so every change is stored, audited and published the same way. Features (business hours,
CSAT, the queue, ...) take part through `Feature`, the one protocol of their hooks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hub.core.outbox import Outbox
from hub.core.status import InvalidTransition, check_transition
from hub.core.texts import text
from hub.core.views import message_view
from hub.messages import (
    Delivery,
    Event,
    Handoff,
    Inbound,
    Outbound,
    Reply,
    Sender,
    Status,
    utcnow,
)
from hub.ports import Bus, Channel
from hub.store import Conversation, Draft, Message, StatusChanged, Store

if TYPE_CHECKING:
    from hub.ops.settings import Settings


class Feature:
    """How a feature takes part in the core: hooks on the one path (a customer's message, a
    handoff, a resolution), the inbox's view of a conversation, and a life cycle. The
    composition root (hub/app.py) gives the core its features as a list; the core calls each
    hook of each feature in that order. A hook a feature doesn't override does nothing.

    Features are built before the core, so a hook is given the `Conversations` to act
    through (post, publish, assign) rather than holding one."""

    async def start(self, conversations: Conversations) -> None:
        """The hub starts: begin background work (a loop, a client), acting through
        `conversations`."""

    async def stop(self) -> None:
        """The hub stops: end background work (the database and Redis are still open)."""

    def use_bot(self, settings: Settings) -> None:
        """A reloaded bot is served from now on: its `bot:` settings (hub.bot.BotReloader)."""

    async def before_turn(
        self,
        conversations: Conversations,
        conversation: Conversation,
        message: Message,
        inbound: Inbound,
    ) -> list[Outbound] | None:
        """A stored customer message, before anyone answers it: replies that take it (the
        conversation keeps its status and the bot stays silent), or None to let it go on.

        Take only what is exactly yours (a rating answering the open question): whatever a
        hook lets go reopens a resolved conversation to the bot, which answers it, so a
        customer who writes after a resolution is never left unanswered. The one other taker
        to come is a blocked contact (not built yet): a feature listed first whose hook
        returns [] for them, so their message is kept, silently, and reopens nothing."""
        return None

    async def handoff_fields(self, conversation: Conversation, handoff: Handoff) -> dict[str, Any]:
        """Conversation fields to store with a handoff (a label)."""
        return {}

    async def handoff_notice(
        self, conversations: Conversations, conversation: Conversation, notice: str
    ) -> str:
        """What the customer is told once handed over (now `pending`): `notice` as it is so
        far, changed or kept."""
        return notice

    async def after_resolve(
        self,
        conversations: Conversations,
        conversation: Conversation,
        source: Status,
        actor: str,
    ) -> None:
        """The conversation was just resolved (from `source`, by `actor`). A customer's
        message may be stored, and its turn reopen the conversation, at any moment of this
        hook: whatever it sends must still hold then (CSAT asks only in the same transaction
        that checks the customer has not written since)."""

    async def details(self, conversation: Conversation) -> dict[str, Any]:
        """What the inbox shows of the conversation beside the core's view (its keys)."""
        return {}


class Conversations:
    def __init__(
        self,
        store: Store,
        bus: Bus,
        outbox: Outbox,
        channels: Mapping[str, Channel],
        default_language: str = "en",
        features: Sequence[Feature] = (),
    ) -> None:
        self.store, self.bus, self.outbox, self.channels = store, bus, outbox, channels
        self.default_language = default_language
        self.features = tuple(features)  # their hooks: handoff, resolution (class Feature)

    # ---- messages -----------------------------------------------------------------------

    async def post(
        self,
        conversation: Conversation,
        reply: Reply,
        *,
        reply_to: Message | None = None,
        agent_id: int | None = None,
        private: bool = False,
        inline: bool = False,
        recipient_id: str | None = None,
    ) -> tuple[Message, Outbound | None]:
        """Store a message and send it: through the outbox, or `inline` in the HTTP response
        to the customer's message (the caller delivers it). A private note is never sent.
        Returns the stored message and, unless private, what goes to the channel."""
        _, [posted] = await self.post_all(
            conversation,
            [reply],
            reply_to=reply_to,
            agent_id=agent_id,
            private=private,
            inline=inline,
            recipient_id=recipient_id,
        )
        return posted

    async def post_all(
        self,
        conversation: Conversation,
        replies: Sequence[Reply],
        *,
        fields: Mapping[str, Any] | None = None,
        reply_to: Message | None = None,
        agent_id: int | None = None,
        private: bool = False,
        inline: bool = False,
        recipient_id: str | None = None,
        finish: Message | None = None,
    ) -> tuple[Conversation, list[tuple[Message, Outbound | None]]]:
        """`post` for several replies, stored with the conversation's changed `fields` in one
        transaction (a bot turn; with `finish`, that customer message's turn ends in it too).
        Returns the conversation as it is now, and each posted message with what goes to the
        channel."""
        fields = dict(fields or {})
        language = fields.get("language", conversation.language)
        drafts = [
            self.draft(conversation.channel, reply, language, reply_to, agent_id, private, inline)
            for reply in replies
        ]
        conversation, messages = await self.store.add_messages(
            conversation, drafts, finish, **fields
        )
        return conversation, await self.deliver(conversation, messages, inline, recipient_id)

    async def deliver(
        self,
        conversation: Conversation,
        messages: Sequence[Message],
        inline: bool = False,
        recipient_id: str | None = None,
    ) -> list[tuple[Message, Outbound | None]]:
        """Messages just stored: published, and (unless private) queued in the outbox or,
        `inline`, given back for the caller to deliver; each with what goes to the channel."""
        posted: list[tuple[Message, Outbound | None]] = []
        for message in messages:
            await self.publish("message.created", conversation, message_view(message))
            if message.private:
                posted.append((message, None))
                continue
            outbound = await self.outbound(message, recipient_id)
            if not inline:
                self.outbox.enqueue(outbound)
            posted.append((message, outbound))
        return posted

    def draft(
        self,
        channel_name: str,
        reply: Reply,
        language: str | None,
        reply_to: Message | None,
        agent_id: int | None,
        private: bool,
        inline: bool,
    ) -> Draft:
        payload: dict[str, Any] = {}
        body = reply.text
        if reply.buttons:
            payload["buttons"] = [b.model_dump() for b in reply.buttons]
            channel = self.channels.get(channel_name)
            if channel is not None and not channel.capabilities.buttons:
                body = self.numbered(reply, language)
        if reply.attachments:
            payload["attachments"] = [a.model_dump(mode="json") for a in reply.attachments]
        if reply.meta:
            payload["bot"] = reply.meta
        return Draft(
            reply.sender,
            body,
            payload,
            agent_id=agent_id,
            reply_to_id=reply_to.id if reply_to else None,
            private=private,
            delivery=Delivery.SENT if inline else Delivery.QUEUED,
        )

    def numbered(self, reply: Reply, language: str | None) -> str:
        """Buttons as numbered options, for a channel that can only show text; the pipeline
        takes a reply of one of the numbers as that button pressed."""
        options = [f"{i}. {b.title}" for i, b in enumerate(reply.buttons, 1)]
        hint = text("choose_number", language, self.default_language)
        return "\n".join([reply.text, *options, hint] if reply.text else [*options, hint])

    async def outbound(self, message: Message, recipient_id: str | None = None) -> Outbound:
        if recipient_id is None:
            conversation = await self.store.get_conversation(message.conversation_id)
            assert conversation is not None
            contact = await self.store.get_contact(conversation.contact_id)
            assert contact is not None
            recipient_id = contact.external_id
        assert message.id is not None
        return Outbound(
            message_id=message.id,
            conversation_id=message.conversation_id,
            channel=message.channel,
            recipient_id=recipient_id,
            sender=Sender(message.sender_type),
            text=message.text,
            buttons=tuple(message.payload.get("buttons", ())),
            attachments=tuple(message.payload.get("attachments", ())),
            created_at=message.created_at,
        )

    async def resend_queued(self) -> int:
        """Queue again what a stopped process left undelivered; returns how many."""
        pending = await self.store.undelivered()
        for message in pending:
            self.outbox.enqueue(await self.outbound(message))
        return len(pending)

    # ---- status -------------------------------------------------------------------------

    async def transition(
        self,
        conversation: Conversation,
        target: Status,
        actor: str,
        reason: str | None = None,
        **fields: Any,
    ) -> Conversation:
        """Move to `target` if the status machine allows it (else InvalidTransition)."""
        assert conversation.id is not None
        source = Status(conversation.status)
        check_transition(source, target)
        changes: dict[str, Any] = {"status": target, **fields}
        if target != Status.SNOOZED:
            changes.setdefault("snooze_until", None)
        if target == Status.BOT:
            # The bot starts afresh: no half-finished flow, no stale handoff note or agent.
            changes.update(flow_state={}, handoff=None, assignee_id=None, resolved_at=None)
        elif target == Status.PENDING:
            changes.setdefault("assignee_id", None)
        elif target == Status.RESOLVED:
            changes.update(resolved_at=utcnow(), flow_state={})
        try:
            updated = await self.store.update_conversation(
                conversation.id, expect_status=source, **changes
            )
        except StatusChanged as e:  # another agent, process or timer changed it first
            raise InvalidTransition(f"the conversation is now {e}") from e
        await self.store.audit(
            actor,
            "status",
            conversation.id,
            source=source.value,
            target=target.value,
            reason=reason,
        )
        await self.publish(
            "conversation.status_changed",
            updated,
            {
                "from": source.value,
                "to": target.value,
                "reason": reason,
                "actor": actor,
                "assignee_id": updated.assignee_id,
            },
        )
        if target == Status.RESOLVED:
            for feature in self.features:  # the satisfaction question (hub/features/csat/survey.py)
                await feature.after_resolve(self, updated, source, actor)
        return updated

    async def handoff(
        self,
        conversation: Conversation,
        handoff: Handoff,
        reply_to: Message | None,
        inline: bool,
        recipient_id: str | None = None,
    ) -> tuple[Conversation, Outbound | None]:
        """To a human: pending, with the note; the customer is told someone is coming."""
        summary = handoff.summary or await self.summary(conversation)
        note = handoff.model_copy(update={"summary": summary}).model_dump()
        fields: dict[str, Any] = {"handoff": note}
        if handoff.team:
            fields["team"] = handoff.team
        if handoff.priority:
            fields["priority"] = handoff.priority
        for (
            feature
        ) in self.features:  # outside business hours: labeled (hub/features/hours/hours.py)
            fields.update(await feature.handoff_fields(conversation, handoff))
        conversation = await self.transition(
            conversation, Status.PENDING, "bot", reason=handoff.reason, **fields
        )
        said = text("handoff", conversation.language, self.default_language)
        for feature in self.features:  # the place in the queue, or when humans are back
            said = await feature.handoff_notice(self, conversation, said)
        _, outbound = await self.post(
            conversation,
            Reply(text=said, sender=Sender.SYSTEM),
            reply_to=reply_to,
            inline=inline,
            recipient_id=recipient_id,
        )
        return conversation, outbound

    async def summary(self, conversation: Conversation, limit: int = 5) -> str:
        """The customer's last few messages, for the agent's first read."""
        assert conversation.id is not None
        texts = await self.store.recent_customer_texts(conversation.id, limit)
        joined = " / ".join(t for t in texts if t)
        return joined if len(joined) <= 300 else joined[:299] + "…"

    async def assign(
        self,
        conversation: Conversation,
        actor: str,
        agent_id: int | None = None,
        team: str | None = None,
    ) -> Conversation:
        """Give the conversation to an agent (who then has it: open) and/or a team."""
        conversation_id = conversation.id
        assert conversation_id is not None
        fields: dict[str, Any] = {}
        if team is not None:
            fields["team"] = team
        if agent_id is not None:
            fields["assignee_id"] = agent_id
        if agent_id is not None and conversation.status != Status.OPEN:
            conversation = await self.transition(
                conversation, Status.OPEN, actor, reason="assigned", **fields
            )
        elif fields:
            conversation = await self.store.update_conversation(conversation_id, **fields)
        await self.store.audit(actor, "assign", conversation_id, agent_id=agent_id, team=team)
        await self.publish(
            "conversation.assigned", conversation, {"agent_id": agent_id, "team": team}
        )
        return conversation

    async def publish(self, kind: str, conversation: Conversation, data: dict[str, Any]) -> None:
        assert conversation.id is not None
        await self.bus.publish(Event(type=kind, conversation_id=conversation.id, data=data))
