"""One arbiter per turn: given what the NLU understood, what the knowledge base would answer
and the question a flow waits on, decide once what the bot does with a customer's message.

    cancel     the cancel words alone, or the cancel intent at least `strong` sure (never for a
               `type: text` answer, unless it is the cancel words alone)
    handoff    an intent of `bot.handoff_intents` (while a question waits: at least `strong`)
    answer     the message answers the waiting question, or changes the answer to an earlier
               question of the flow (a change of mind), or is re-asked for it (it doesn't fit
               and nothing else is sure enough): the flow's own trigger never restarts it
    digress    another flow, sure enough, interrupts the waiting one, which resumes after it
    knowledge  a confident knowledge hit is answered (then, when a question waits, "back to
               where we were" and the question again): it beats an intent less than SURE
    start      the flow the message triggers: by an intent at least SURE (0.8); by a weaker
               intent, a keyword or a regex when no confident knowledge hit competes
    clarify    the two best intents are too close to choose: "did you mean A or B?" (while a
               question waits, for a message that doesn't answer it; it stays waiting)
    feedback   a press on a knowledge answer's "Did this help?"
    fallback   nothing fits: the fallback chain (clarify, say so, hand over after a few)

`strong` is config.yaml `bot.interrupt_confidence`. The decision and its reason are stored
with the customer's message (`payload.turn`), for agents and `kefu chat`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from hub.core.fallback import HELPED, NOT_HELPED
from hub.messages import Understanding
from hub.ports import FlowResult, FlowRunner, FlowView, TurnContext

# A message that is only one of these stops what the bot is doing.
CANCEL_WORDS = frozenset(
    {"cancel", "stop", "quit", "never mind", "nevermind", "取消", "算了", "不用了", "退出"}
)
CANCEL_INTENT = "cancel"
_NOT_WORD = re.compile(r"[\W_]+")
# An intent this sure starts its flow even when the knowledge base has a confident answer; a
# less sure one ("will the courier bring my parcel on a saturday": the order lookup at 0.57)
# gets the answer. Measured on the demo bot: its requests ("I want to return my jacket",
# "where is my order") parse at 0.9 or more; paraphrased FAQ questions that mention a flow's
# word at 0.5-0.8.
SURE = 0.8


@dataclass(frozen=True)
class Decision:
    # answer | start | digress | knowledge | cancel | handoff | clarify | feedback | fallback
    act: str
    reason: str
    flow: str | None = None  # the flow started or digressed to
    hit: Any = None  # the knowledge hit answered

    def record(self) -> dict[str, Any]:
        """As stored with the message."""
        data: dict[str, Any] = {"decision": self.act, "reason": self.reason}
        if self.flow:
            data["flow"] = self.flow
        if self.hit is not None:
            data["knowledge"] = self.hit.entry.id
        return data


def cancel_words_alone(text: str) -> bool:
    """Whether the message is only a cancel word (case, width, spaces and punctuation aside)."""
    words = _NOT_WORD.sub(" ", unicodedata.normalize("NFKC", text)).casefold().split()
    return " ".join(words) in CANCEL_WORDS


@dataclass(frozen=True)
class Arbiter:
    handoff_intents: frozenset[str] = frozenset()
    strong: float = 0.5  # bot.interrupt_confidence: to interrupt a question, cancel, hand over
    clarifiable: Collection[str] = ()  # intents "did you mean" may offer
    clarify_min: float = 0.1  # the second intent needs at least this to be offered

    def decide(
        self, u: Understanding, view: FlowView, knowledge: Callable[[], Any | None]
    ) -> Decision:
        """`knowledge()` searches the knowledge base (only when the decision needs it) and
        returns its confident best hit, or None."""
        waiting, match = view.waiting, view.match
        if u.explicit:
            return self.pressed(u, view)
        alone = cancel_words_alone(u.text)
        sure = f"{u.intent} {u.confidence:.2f}"
        if waiting is not None and (
            alone
            or (u.intent == CANCEL_INTENT and u.confidence >= self.strong and not waiting.text_type)
        ):
            why = "the cancel words alone" if alone else f"intent {sure}"
            return Decision("cancel", f"{why} stops {waiting.flow}")
        if waiting is None and alone and match is None:
            return Decision("cancel", "the cancel words alone (nothing was running)")
        if u.intent in self.handoff_intents and (waiting is None or u.confidence >= self.strong):
            return Decision("handoff", f"intent {sure} asks for a person")
        if waiting is not None:
            return self.while_waiting(u, view, knowledge)
        strong = match is not None and match.by == "intent" and u.confidence >= self.strong
        if u.ambiguous and not strong and self.close_pair(u):
            hit = knowledge()
            if hit is not None:
                return self.answer_from(hit, f"beats the close intents {self.pair(u)}")
            return Decision("clarify", f"the intents {self.pair(u)} are too close to choose")
        if match is not None:
            if match.by == "intent" and u.confidence >= max(self.strong, SURE):
                return Decision("start", f"intent {sure} starts flow {match.flow}", match.flow)
            hit = knowledge()
            if hit is not None:
                weak = f"intent {sure}" if match.by == "intent" else f"the {match.by} trigger"
                return self.answer_from(hit, f"beats {weak} of flow {match.flow}")
            why = f"intent {sure}" if match.by == "intent" else f"its {match.by}"
            return Decision("start", f"{why} starts flow {match.flow}", match.flow)
        hit = knowledge()
        if hit is not None:
            return self.answer_from(hit, f"no flow fits (intent {sure})")
        return Decision("fallback", f"no flow or knowledge fits (intent {sure})")

    def while_waiting(
        self, u: Understanding, view: FlowView, knowledge: Callable[[], Any | None]
    ) -> Decision:
        waiting, match = view.waiting, view.match
        assert waiting is not None
        at = f"{waiting.flow}.{waiting.slot}"
        sure = f"{u.intent} {u.confidence:.2f}"
        if waiting.text_type:
            return Decision("answer", f"any text answers {at}")
        other = None
        if match is not None and match.flow != waiting.flow and waiting.interruptible:
            other = match
        other_intent = other is not None and other.by == "intent" and u.confidence >= self.strong
        if waiting.answered:
            if waiting.free_text and waiting.interruptible:
                if other_intent and other is not None:
                    why = f"intent {sure} of flow {other.flow} interrupts {at}"
                    return Decision("digress", why, other.flow)
                hit = knowledge()
                if hit is not None:
                    return self.answer_from(hit, f"a question, not an answer to {at}")
            return Decision("answer", f"a valid answer to {at}")
        if waiting.corrects:
            why = f"changes the answer to {waiting.flow}.{waiting.corrects} while {at} waits"
            return Decision("answer", why)
        if other is not None and (other_intent or other.by != "intent"):
            by = f"intent {sure}" if other.by == "intent" else f"its {other.by}"
            return Decision("digress", f"{by} of flow {other.flow} interrupts {at}", other.flow)
        restated = u.intent in waiting.triggers and u.confidence >= self.strong
        if restated:  # "I want to return something" again: its flow goes on, not again
            why = f"{at} asked again: its own flow's intent does not restart it"
            return Decision("answer", why)
        if waiting.interruptible:
            hit = knowledge()
            if hit is not None:
                return self.answer_from(hit, f"answered while {at} waits")
        if waiting.interruptible and u.ambiguous and self.close_pair(u):
            return Decision("clarify", f"not an answer to {at}; {self.pair(u)} are too close")
        return Decision("answer", f"not an answer to {at} (intent {sure}): asked again")

    def pressed(self, u: Understanding, view: FlowView) -> Decision:
        """A button or an `/intent` payload: taken as said."""
        waiting, match = view.waiting, view.match
        if u.intent in (HELPED, NOT_HELPED):
            return Decision("feedback", f"pressed {u.intent}")
        if u.intent == CANCEL_INTENT and waiting is not None:
            return Decision("cancel", "pressed cancel")
        if u.intent in self.handoff_intents:
            return Decision("handoff", f"pressed {u.intent}")
        if waiting is not None:
            if waiting.answered or match is None or match.flow == waiting.flow:
                return Decision("answer", f"pressed, for {waiting.flow}.{waiting.slot}")
            return Decision("digress", f"pressed {u.intent}", match.flow)
        if match is not None:
            return Decision("start", f"pressed {u.intent}", match.flow)
        return Decision("fallback", f"pressed {u.intent}: no flow")

    def answer_from(self, hit: Any, why: str) -> Decision:
        return Decision("knowledge", f"knowledge {hit.entry.id} ({hit.score:.2f}) {why}", hit=hit)

    def close_pair(self, u: Understanding) -> bool:
        """The two best intents could both be offered ("did you mean A or B?")."""
        top = u.ranking[:2]
        return (
            len(top) == 2
            and all(name in self.clarifiable for name, _ in top)
            and top[1][1] >= self.clarify_min
        )

    @staticmethod
    def pair(u: Understanding) -> str:
        return " / ".join(f"{name} {score:.2f}" for name, score in u.ranking[:2])


async def flow_turn(
    decision: Decision, flows: FlowRunner, state: dict[str, Any], context: TurnContext
) -> FlowResult:
    """The flows' part of a decision: cancel, start or digress to its flow, else run (answer
    the waiting question, or start the flow the message matches)."""
    if decision.act == "cancel":
        return flows.cancel(state, context)
    if decision.act in ("start", "digress") and decision.flow:
        return await flows.start(state, context, decision.flow)
    return await flows.run(state, context)
