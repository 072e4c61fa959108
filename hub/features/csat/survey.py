"""Customer satisfaction (CSAT): when an agent resolves a conversation, the customer is asked
for a rating from 1 to 5 in their language (buttons, or numbered options where the channel
has none). An answer soon after is stored as a `CsatRating`, thanked, and leaves the
conversation resolved; anything else the customer writes is an ordinary message.

Where the question is open: the resolved conversation's `flow_state["csat"]` (resolving
empties the flow state; the question sets this key). Any status change away from `resolved`
drops it with the rest of the flow state (to the bot) or makes it moot (an agent reopens), so
the question closes by itself when the customer writes something else.

Reopen wins (README "Customer satisfaction (CSAT)"): the customer's message is always answered
by the bot unless it is exactly a rating answering the open question. The question is asked
only if the customer has not written since the resolution: it is stored in one transaction
with the check that the conversation is still resolved by that same resolution and that no
customer message's turn is under way or waiting (stored, `turn_pending`). Otherwise it is
dropped, never sent after the bot's answer: "how did we do?" after a new exchange has begun
would read as a question about that exchange, and its 1-5 could be taken for the bot's
options. The turn side needs no lock for this: the pipeline decides who speaks on the
conversation as it is at that moment (`Pipeline.wake`), and a turn is pending from the moment
its message is stored until it is over."""

from __future__ import annotations

import logging
import unicodedata
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from hub.core.conversations import Conversations, Feature
from hub.core.texts import text
from hub.core.understanding import PayloadTooDeep, parse_payload
from hub.messages import Button, Inbound, Outbound, Reply, Sender, Status, utcnow
from hub.store import Conversation, CsatRating, Draft, Message, Store

log = logging.getLogger(__name__)

INTENT = "csat"  # the buttons' payload: /csat{"score": 4}
KEY = "csat"  # in a resolved conversation's flow_state while the question is open
SCORES = range(1, 6)
# keycap emoji (4️⃣) are the digit, a variation selector and the combining keycap
_KEYCAP = str.maketrans("", "", "\ufe0f\u20e3")
# resolved from these, a human had the conversation: there is someone's help to rate
HUMAN_HELD = frozenset({Status.PENDING, Status.OPEN, Status.SNOOZED})


def score_of(inbound: Inbound) -> int | None:
    """The rating a message gives: a rating button's payload, or a digit 1-5 alone (also
    full-width or as a keycap emoji); None for anything else."""
    try:
        pressed = parse_payload(inbound.postback or inbound.text)
    except PayloadTooDeep:
        return None
    if pressed is not None:
        if pressed.intent != INTENT:
            return None
        values = {e["entity"]: e["value"] for e in pressed.entities}
        score = values.get("score")
        # a JSON number 1-5, not "4" or true (which Python counts as 1)
        return score if type(score) is int and score in SCORES else None
    typed = unicodedata.normalize("NFKC", inbound.text).translate(_KEYCAP).strip()
    return int(typed) if typed in {str(n) for n in SCORES} else None


def agent_of(actor: str) -> int | None:
    """The agent id in an audit actor (`agent:7`), if it names one."""
    kind, _, number = actor.partition(":")
    return int(number) if kind == "agent" and number.isdigit() else None


class Csat(Feature):
    """Asks for the rating after a resolution, and takes the customer's answer."""

    def __init__(
        self,
        store: Store,
        *,
        enabled: bool = True,
        answer_within: timedelta = timedelta(hours=24),
    ) -> None:
        self.store = store
        self.enabled = enabled
        self.answer_within = answer_within

    async def after_resolve(
        self, conversations: Conversations, conversation: Conversation, source: Status, actor: str
    ) -> None:
        """After a resolution: the question, if a human had the conversation and the customer
        has not written since (`ask`). Conversations the bot alone handled are not asked
        (nobody's help to rate, and closing stale bot conversations in bulk would send a
        question to each)."""
        if not self.enabled or source not in HUMAN_HELD:
            return
        default = conversations.default_language
        language = conversation.language or default
        question = Reply(
            text=text("csat_question", language, default),
            sender=Sender.SYSTEM,
            buttons=tuple(
                Button(title=text(f"csat_{n}", language, default), payload=payload(n))
                for n in SCORES
            ),
            meta={"csat": "question"},  # not the bot's flow: left out of the bot's reports
        )
        draft = conversations.draft(
            conversation.channel, question, language, None, None, private=False, inline=False
        )
        pending = {
            "asked_at": utcnow().isoformat(),
            "agent_id": conversation.assignee_id or agent_of(actor),
        }
        try:
            asked = await self.store.db.run(lambda s: ask(s, conversation, draft, pending))
            if asked is None:
                log.info(
                    "CSAT question dropped in conversation %s: the customer wrote", conversation.id
                )
                return
            await conversations.deliver(*asked)
        except Exception:  # a courtesy: the resolution stands without it
            log.exception("CSAT question not sent in conversation %s", conversation.id)

    async def before_turn(
        self,
        conversations: Conversations,
        conversation: Conversation,
        message: Message,
        inbound: Inbound,
    ) -> list[Outbound] | None:
        """The customer's answer to an open question: stored (a later answer replaces an
        earlier one), published as `csat.rated` and thanked; the conversation stays resolved.
        Returns the replies, or None for anything else (reopened to the bot: Pipeline.wake)."""
        assert conversation.id is not None
        score = score_of(inbound)
        if score is None:  # no rating: no need to read anything
            return None
        # as it is now, not as it was when the message was stored (resolved meanwhile?)
        conversation = await self.store.get_conversation(conversation.id) or conversation
        pending = self.answered(conversation, message, inbound)
        if pending is None:
            return None
        agent_id = pending.get("agent_id")
        await self.save(conversation, score, agent_id)
        await conversations.publish(
            "csat.rated", conversation, {"score": score, "agent_id": agent_id}
        )
        language = conversation.language or conversations.default_language
        thanks = Reply(
            text=text("csat_thanks", language, conversations.default_language),
            sender=Sender.SYSTEM,
            meta={"csat": score},
        )
        inline = conversations.channels[conversation.channel].capabilities.inline_replies
        _, posted = await conversations.post_all(
            conversation,
            [thanks],
            fields={"flow_state": {KEY: {**pending, "score": score}}},
            reply_to=message,
            inline=inline,
            recipient_id=inbound.sender_id,
        )
        return [outbound for _, outbound in posted if outbound is not None]

    def answered(
        self, conversation: Conversation, message: Message, inbound: Inbound
    ) -> dict[str, Any] | None:
        """The open question `message` may answer: the conversation is resolved with the
        question open, asked before this message was stored and within `answer_within`."""
        pending = conversation.flow_state.get(KEY)
        if conversation.status != Status.RESOLVED or not isinstance(pending, dict):
            return None
        if utcnow() - datetime.fromisoformat(pending["asked_at"]) > self.answer_within:
            return None
        if (message.id or 0) < pending.get("question_id", 0):
            return None  # written before the question (its turn delayed): not an answer
        return pending

    async def save(self, conversation: Conversation, score: int, agent_id: int | None) -> None:
        """One rating per conversation: the latest answer replaces an earlier one (one
        conversation's messages are handled one at a time, so no two race here)."""
        async with self.store.db.transaction() as s:
            query = select(CsatRating).where(col(CsatRating.conversation_id) == conversation.id)
            rating = (await s.exec(query)).first()
            if rating is None:
                assert conversation.id is not None
                rating = CsatRating(
                    conversation_id=conversation.id, score=score, channel=conversation.channel
                )
            rating.score, rating.agent_id, rating.created_at = score, agent_id, utcnow()
            s.add(rating)

    async def details(self, conversation: Conversation) -> dict[str, Any]:
        """The inbox's conversation view: `csat`, the rating or None."""
        assert conversation.id is not None
        return {"csat": await self.of(conversation.id)}

    async def of(self, conversation_id: int) -> dict[str, Any] | None:
        """A conversation's rating as the inbox shows it, or None."""
        async with self.store.db.read() as s:
            query = select(CsatRating).where(col(CsatRating.conversation_id) == conversation_id)
            rating = (await s.exec(query)).first()
        if rating is None:
            return None
        return {
            "score": rating.score,
            "agent_id": rating.agent_id,
            "created_at": rating.created_at.isoformat(),
        }


def payload(score: int) -> str:
    """A rating button's payload, in the `/intent{json}` form every channel carries."""
    return f'/{INTENT}{{"score": {score}}}'


def ask(
    s: Session, conversation: Conversation, question: Draft, pending: dict[str, Any]
) -> tuple[Conversation, list[Message]] | None:
    """Store the question and open it, in one transaction, if the conversation is still
    resolved by the same resolution and no customer message's turn is under way or waiting;
    else None (the question is dropped: the customer's message reopens it to the bot)."""
    conversation_id = conversation.id
    assert conversation_id is not None
    stored = s.get(Conversation, conversation_id, with_for_update=True)  # PostgreSQL: waits
    if (
        stored is None
        or stored.status != Status.RESOLVED
        or stored.resolved_at != conversation.resolved_at
    ):
        return None
    waiting = select(Message.id).where(
        Message.conversation_id == conversation_id,
        Message.sender_type == Sender.CONTACT,
        col(Message.turn_pending).is_(True),
    )
    if s.exec(waiting.limit(1)).first() is not None:
        return None
    message = question.message(conversation_id, stored.channel)
    s.add(message)
    s.flush()
    stored.flow_state = {KEY: {**pending, "question_id": message.id}}
    stored.last_message_at = message.created_at
    s.add(stored)
    s.flush()
    return stored, [message]
