"""What happens to a conversation: messages posted, status changes, handoffs, assignment.

The pipeline (customer side) and the inbox API (agent side) both act through this one place,
so every change is stored, audited and published the same way."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from hub.hours import Closed, Hours, with_label
from hub.messages import Delivery, Event, Handoff, Outbound, Reply, Sender, Status, utcnow
from hub.outbox import Outbox
from hub.ports import Bus, Channel
from hub.status import InvalidTransition, check_transition
from hub.store import Conversation, Draft, Message, StatusChanged, Store
from hub.texts import text

SHOWN = frozenset({"buttons", "attachments", "nlu", "bot"})  # message_view's own keys


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
        # what the channel added (an email's subject and headers, a location, a deep link)
        "details": {k: v for k, v in message.payload.items() if k not in SHOWN},
        "private": message.private,
        "delivery": message.delivery,
        "delivery_error": message.delivery_error,
        "created_at": message.created_at.isoformat(),
    }


class Conversations:
    def __init__(
        self,
        store: Store,
        bus: Bus,
        outbox: Outbox,
        channels: Mapping[str, Channel],
        default_language: str = "en",
    ) -> None:
        self.store, self.bus, self.outbox, self.channels = store, bus, outbox, channels
        self.default_language = default_language
        self.hours = Hours()  # business hours: the hub sets the configured ones (hub/hours.py)
        # told of each resolution (source status, actor): the satisfaction question, hub/csat.py
        self.after_resolve: Callable[[Conversation, Status, str], Awaitable[None]] | None = None
        # at a handoff: a line for the customer on their place in the queue (hub/routing.py)
        self.queue_notice: Callable[[Conversation], Awaitable[str | None]] | None = None

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
    ) -> tuple[Conversation, list[tuple[Message, Outbound | None]]]:
        """`post` for several replies, stored with the conversation's changed `fields` in one
        transaction (a bot turn). Returns the conversation as it is now, and each posted
        message with what goes to the channel."""
        fields = dict(fields or {})
        language = fields.get("language", conversation.language)
        drafts = [
            self.draft(conversation.channel, reply, language, reply_to, agent_id, private, inline)
            for reply in replies
        ]
        conversation, messages = await self.store.add_messages(conversation, drafts, **fields)
        posted: list[tuple[Message, Outbound | None]] = []
        for message in messages:
            await self.publish("message.created", conversation, message_view(message))
            if private:
                posted.append((message, None))
                continue
            outbound = await self.outbound(message, recipient_id)
            if not inline:
                self.outbox.enqueue(outbound)
            posted.append((message, outbound))
        return conversation, posted

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
        if target == Status.RESOLVED and self.after_resolve is not None:
            await self.after_resolve(updated, source, actor)
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
        closed = self.hours.closed(handoff.team or conversation.team)
        if closed is not None:  # outside business hours: waits for the morning, labeled
            fields["labels"] = with_label(conversation.labels)
        conversation = await self.transition(
            conversation, Status.PENDING, "bot", reason=handoff.reason, **fields
        )
        notice = Reply(
            text=text("handoff", conversation.language, self.default_language),
            sender=Sender.SYSTEM,
        )
        if self.queue_notice is not None and (place := await self.queue_notice(conversation)):
            notice = notice.model_copy(update={"text": f"{notice.text}\n{place}"})
        if closed is not None:  # when humans are back, instead of "someone is coming"
            said = await self.closed_notice(conversation, closed)
            notice = Reply(text=said, sender=Sender.SYSTEM)
        _, outbound = await self.post(
            conversation, notice, reply_to=reply_to, inline=inline, recipient_id=recipient_id
        )
        return conversation, outbound

    async def closed_notice(self, conversation: Conversation, closed: Closed) -> str:
        """When humans are back, in the customer's language; asks for an email address for a
        reply by email unless the contact has one."""
        contact = await self.store.get_contact(conversation.contact_id)
        email, external_id = (contact.email, contact.external_id) if contact else (None, "")
        return closed.notice(conversation.language, self.default_language, email, external_id)

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
