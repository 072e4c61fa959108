"""The one path: a customer's message in, the bot's answer or a human out.

    understand -> store (dedupe) -> who speaks? -> bot turn (flows, fallback) -> replies | handoff

Read `Pipeline.receive` top to bottom; everything it calls is one step of that line.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hub.core.arbiter import Arbiter, Decision, flow_turn
from hub.core.conversations import Conversations, Feature
from hub.core.fallback import CLARIFY_MIN, Fallback
from hub.core.history import history
from hub.core.locks import KeyedLocks
from hub.core.status import BOT_SPEAKS, InvalidTransition
from hub.core.understanding import understand
from hub.core.views import message_view
from hub.messages import Handoff, Inbound, Outbound, Status, Understanding
from hub.ops import logs
from hub.ops.metrics import Metrics
from hub.ports import Channel, Classifier, FlowResult, FlowRunner, TurnContext
from hub.store import Contact, Conversation, Message, Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Bot:
    """What answers customers, as one object: a reload swaps it whole (Core.use_bot), and a
    bot's turn reads it once, so a reload meanwhile never mixes two bots in one answer."""

    classifier: Classifier
    flows: FlowRunner
    fallback: Fallback
    handoff_intents: frozenset[str] = frozenset()  # these intents ask for a human
    language: str = "en"  # the bot's default language
    interrupt_confidence: float = 0.5  # how sure an intent must be to interrupt or beat knowledge

    @functools.cached_property
    def arbiter(self) -> Arbiter:
        return Arbiter(
            self.handoff_intents,
            self.interrupt_confidence,
            clarifiable=frozenset(self.fallback.clarify_options),
            clarify_min=CLARIFY_MIN,
        )


class Pipeline:
    def __init__(
        self,
        *,
        store: Store,
        conversations: Conversations,
        channels: Mapping[str, Channel],
        bot: Bot,
        metrics: Metrics | None = None,
        features: Sequence[Feature] = (),
        locks: KeyedLocks | None = None,
    ) -> None:
        self.store, self.conversations, self.channels = store, conversations, channels
        self.bot = bot
        self.metrics = metrics or Metrics()
        self.features = tuple(features)  # their hook before the bot's turn (class Feature)
        # one conversation's messages one at a time (across processes: hub.ops.cluster.RedisLocks)
        self.locks = locks or KeyedLocks()

    async def receive(
        self, inbound: Inbound, on_stored: Callable[[int], Awaitable[None]] | None = None
    ) -> list[Outbound]:
        """Store one customer message and answer it. Returns the bot's replies to it (empty
        while a human has the conversation); `on_stored` is told the message id once stored."""
        # One conversation's messages are handled one at a time, in order.
        async with self.locks.hold((inbound.channel, inbound.sender_id)):
            # 1-2. Understand it, and store it with what was understood.
            understanding = understand(inbound, self.bot.classifier)
            payload = {**inbound.payload, "nlu": understanding.model_dump(mode="json")}
            if inbound.postback:
                payload["postback"] = inbound.postback
            if inbound.attachments:
                payload["attachments"] = [a.model_dump(mode="json") for a in inbound.attachments]
            turn_pending = not inbound.automated
            recorded = await self.store.record_inbound(inbound, payload, turn_pending)
            if recorded is None:
                # A redelivery (its channel message id is stored) stores nothing new and gets
                # the first answer again. Found by the insert, not by a query before it.
                seen = await self.find_duplicate(inbound)
                assert seen is not None
                return await self.answered_before(seen, inbound, on_stored)
            conversation, message, created = recorded
            self.metrics.message_in(inbound.channel)
            logs.conversation_id.set(conversation.id)  # on the log lines of this turn
            assert message.id is not None
            if on_stored:
                await on_stored(message.id)
            if created:
                await self.conversations.publish("conversation.created", conversation, {})
            await self.conversations.publish("message.created", conversation, message_view(message))

            # 3-5. The turn: stored as pending until it is over, so that a process that dies
            #      in the middle leaves it to be taken again (`recover`), never lost.
            replies = await self.turn(conversation, message, inbound, understanding)
            if message.turn_pending:  # not ended with the replies (conclude): no bot turn
                await self.store.finish_turn(message.id, message.payload)
            return replies

    async def turn(
        self,
        conversation: Conversation,
        message: Message,
        inbound: Inbound,
        understanding: Understanding,
    ) -> list[Outbound]:
        """The answer to a stored customer message: the bot's replies (empty when a human
        has the conversation)."""
        # 3. Who speaks is the server's decision, not the bot's. Mail from a machine (an
        #    auto-reply, a list) is kept for the inbox, and neither reopens nor is answered.
        if inbound.automated:
            return []
        for feature in self.features:
            taken = await feature.before_turn(self.conversations, conversation, message, inbound)
            if taken is not None:
                return taken  # a rating answer (later: a blocked contact); the status stays
        conversation = await self.wake(conversation)
        if conversation.status not in BOT_SPEAKS:
            return []  # a human has it: message.created has reached the inbox

        # 4. The bot's turn: one arbiter decides what to do with the message (hub/core/
        #    arbiter.py): answer the flow's question, start or digress to a flow, answer from
        #    the knowledge base, cancel, hand over, clarify, or fall back.
        bot = self.bot  # the one this turn began with, whatever a reload swaps in meanwhile
        understanding = self.chosen_option(conversation, inbound, bot) or understanding
        language = self.reply_language(conversation, understanding, bot)
        context = TurnContext(
            understanding=understanding,
            language=language,
            conversation_id=message.conversation_id,
            contact={
                "id": inbound.sender_id,
                "name": inbound.sender_name,
                "channel": inbound.channel,
            },
            history=history(self.store, message.conversation_id, message.id or 0),
        )
        state = conversation.flow_state
        view = bot.flows.view(state, context)
        decision = bot.arbiter.decide(understanding, view, lambda: bot.fallback.best_hit(context))
        message.payload = {**message.payload, "turn": decision.record()}  # kept at finish_turn
        turn = await self.act(decision, state, context, bot)

        # 5. Say what the bot says; hand over if it hands over; remember where it is.
        return await self.conclude(conversation, message, turn, language, inbound.sender_id)

    async def act(
        self, decision: Decision, state: dict[str, Any], context: TurnContext, bot: Bot
    ) -> FlowResult:
        """Carry out the arbiter's decision."""
        flows, fallback = bot.flows, bot.fallback
        match decision.act:
            case "handoff":
                handoff = Handoff(
                    reason="customer_request",
                    intent=context.understanding.intent,
                    slots=state.get("slots", {}),
                )
                return FlowResult(handled=True, handoff=handoff)
            case "knowledge":
                answered = fallback.knowledge_answer(state, context, decision.hit)
                return then_resume(answered, flows.resume(answered.state, context))
            case "feedback":
                pressed = fallback.feedback(state, context)
                if pressed.handoff is not None:
                    return pressed
                return then_resume(pressed, flows.resume(pressed.state, context))
            case "clarify":
                return FlowResult(handled=True, replies=(fallback.clarify(context),), state=state)
            case "fallback":
                return fallback.unanswered(state, context)
        # cancel, answer, start, digress: the flows' part
        turn = await self.run_flows(context, flow_turn(decision, flows, state, context))
        return turn if turn.handled else fallback.unanswered(state, context)

    async def run_flows(self, context: TurnContext, running: Awaitable[FlowResult]) -> FlowResult:
        """The designer's flows; a flow that fails hands the customer to a human rather than
        leaving them without an answer."""
        try:
            return await running
        except Exception as e:
            log.exception("flow failed in conversation %s", context.conversation_id)
            return FlowResult(
                handled=True,
                handoff=Handoff(
                    reason="flow_failure",
                    intent=context.understanding.intent,
                    note=f"The bot failed: {type(e).__name__}: {e}"[:500],
                ),
            )

    async def find_duplicate(self, inbound: Inbound) -> Message | None:
        if not inbound.channel_message_id:
            return None
        return await self.store.find_inbound(inbound.channel, inbound.channel_message_id)

    async def answered_before(
        self,
        seen: Message,
        inbound: Inbound,
        on_stored: Callable[[int], Awaitable[None]] | None,
    ) -> list[Outbound]:
        """A message stored before: acknowledged again, answered with the same replies (its
        turn taken now if the process that stored it died first: the platform's retry)."""
        assert seen.id is not None
        if on_stored:
            await on_stored(seen.id)
        if seen.turn_pending:
            return await self.take_turn_again(seen, inbound)
        replies = await self.store.replies_to(seen.id)
        return [await self.conversations.outbound(m, inbound.sender_id) for m in replies]

    async def recover(self, message: Message, contact: Contact) -> None:
        """Take the turn of a customer message left pending by a process that died."""
        inbound = Inbound(
            channel=message.channel,
            sender_id=contact.external_id,
            sender_name=contact.name,
            channel_message_id=message.channel_message_id,
            text=message.text,
            postback=message.payload.get("postback"),
            kind=message.kind,
        )
        async with self.locks.hold((inbound.channel, inbound.sender_id)):
            assert message.id is not None
            fresh = await self.store.get_message(message.id)
            if fresh is None or not fresh.turn_pending:
                return  # taken meanwhile (a redelivery, another process)
            log.info("taking again the turn of message %s, cut off by a stop", message.id)
            try:
                await self.take_turn_again(fresh, inbound)
            except Exception:  # never retried forever: the agent sees the message in the inbox
                log.exception("the turn of message %s failed again; giving up", message.id)
                await self.store.finish_turn(message.id)

    async def take_turn_again(self, message: Message, inbound: Inbound) -> list[Outbound]:
        """The turn of a stored message, once: if it had begun answering, what it said stands
        (and the outbox sends what is queued); otherwise it runs now."""
        assert message.id is not None
        said = await self.store.replies_to(message.id)
        if said:
            replies = [await self.conversations.outbound(m, inbound.sender_id) for m in said]
        else:
            conversation = await self.store.get_conversation(message.conversation_id)
            assert conversation is not None
            understanding = Understanding.model_validate(message.payload.get("nlu") or {"text": ""})
            replies = await self.turn(conversation, message, inbound, understanding)
        await self.store.finish_turn(message.id, message.payload)
        return replies

    async def wake(self, conversation: Conversation) -> Conversation:
        """A customer writing again reopens a resolved conversation to the bot, and wakes a
        snoozed one for its agent. Decided on the conversation as it is now, not as it was
        when the message was stored: one an agent resolved meanwhile is reopened to the bot,
        which answers (README "Customer satisfaction (CSAT)")."""
        assert conversation.id is not None
        for _ in range(3):  # each retry needs another status change in between
            conversation = await self.store.get_conversation(conversation.id) or conversation
            target = {Status.RESOLVED: Status.BOT, Status.SNOOZED: Status.OPEN}.get(
                Status(conversation.status)
            )
            if target is None:
                return conversation
            try:
                return await self.conversations.transition(
                    conversation, target, "contact", reason="customer wrote again"
                )
            except InvalidTransition:  # an agent or the snooze timer changed it first
                continue  # decide again on what it is now (resolved meanwhile: the bot's)
        return conversation

    def chosen_option(
        self, conversation: Conversation, inbound: Inbound, bot: Bot
    ) -> Understanding | None:
        """On a channel without buttons the bot's buttons went out as numbered options: a
        reply that is just one of those numbers is that button pressed."""
        options = conversation.flow_state.get("options") or []
        answer = inbound.text.strip()
        if inbound.postback or not answer.isdigit() or not 1 <= int(answer) <= len(options):
            return None
        title, payload = options[int(answer) - 1]
        pressed = inbound.model_copy(update={"text": title, "postback": payload})
        return understand(pressed, bot.classifier)

    def reply_language(
        self, conversation: Conversation, understanding: Understanding, bot: Bot
    ) -> str:
        """The customer's language: this message's if it tells, else the conversation's."""
        return understanding.language or conversation.language or bot.language

    async def conclude(
        self,
        conversation: Conversation,
        message: Message,
        turn: FlowResult,
        language: str,
        recipient_id: str,
    ) -> list[Outbound]:
        assert conversation.id is not None
        capabilities = self.channels[conversation.channel].capabilities
        state = {k: v for k, v in turn.state.items() if k != "options"}
        offered = next((r.buttons for r in reversed(turn.replies) if r.buttons), ())
        if offered and not capabilities.buttons:  # numbered options: the last menu's numbers
            state["options"] = [[b.title, b.payload] for b in offered]
        inline = capabilities.inline_replies
        fields: dict[str, Any] = {"flow_state": state}
        if language != conversation.language:
            fields["language"] = language
        conversation, posted = await self.conversations.post_all(
            conversation,
            turn.replies,
            fields=fields,
            reply_to=message,
            inline=inline,
            recipient_id=recipient_id,
            # the turn ends with its replies, with the arbiter's decision (payload.turn)
            finish=message if message.turn_pending else None,
        )
        message.turn_pending = False
        for action, data in turn.events:
            await self.store.audit("bot", action, conversation.id, **data)
        replies = [sent for _, sent in posted if sent is not None]
        if turn.handoff is not None:
            try:
                if conversation.status not in BOT_SPEAKS:
                    raise InvalidTransition(f"it is {conversation.status} now")
                _, notice = await self.conversations.handoff(
                    conversation, turn.handoff, message, inline, recipient_id
                )
            except InvalidTransition as e:  # an agent took it during the turn: theirs already
                log.info("no handoff in conversation %s: %s", conversation.id, e)
            else:
                self.metrics.handoff(conversation.channel, turn.handoff.reason)
                if notice is not None:
                    replies.append(notice)
        if inline:  # delivered in the channel's answer; the outbox counts the others
            self.metrics.message_out(conversation.channel, len(replies))
        return replies


def then_resume(first: FlowResult, resumed: FlowResult) -> FlowResult:
    """An answer given outside the flows, then the waiting flow's question again (`resumed`:
    FlowRunner.resume; nothing when no flow waits)."""
    if not resumed.replies:
        return first
    return FlowResult(
        handled=True,
        replies=(*first.replies, *resumed.replies),
        state={**first.state, **resumed.state},
        events=first.events,
    )
