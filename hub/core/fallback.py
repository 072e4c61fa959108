"""The fallback chain: what the bot does when no flow fits the message (config.yaml
`bot.fallback`). The turn's arbiter (hub/core/arbiter.py) decides which step a message gets
and the pipeline calls it: `best_hit` and `knowledge_answer`, `feedback`, `clarify`,
`unanswered`.

1. Knowledge (`knowledge: true`): a confident hit in the bot's articles and FAQs is answered
   with its summary and link, and "Did this help?" buttons: yes counts the conversation as
   self-served, no hands it to a human with the question.
2. Clarify (`clarify: true`): the intents the NLU thought of, as "did you mean" buttons.
3. Otherwise say so, with a way to reach a human. After `handoff_after` fallbacks in a row the
   conversation goes to a human, with the unanswered questions in the handoff note.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from hub.core.texts import text
from hub.messages import Button, Handoff, Reply, Understanding
from hub.ports import FlowResult, KnowledgeSearch, TurnContext

HELPED, NOT_HELPED = "kb_helpful", "kb_unhelpful"  # the "Did this help?" buttons' intents
CLARIFY_MIN = 0.1  # an intent the NLU gives less than this is not worth offering
CLARIFY_MAX = 3


class Fallback:
    def __init__(
        self,
        handoff_after: int,
        default_language: str,
        knowledge: KnowledgeSearch | None = None,
        clarify_options: Mapping[str, Mapping[str, str]] | None = None,
        use_knowledge: bool = True,
        use_clarify: bool = True,
    ) -> None:
        self.handoff_after = handoff_after
        self.default_language = default_language
        self.base = knowledge  # the bot's knowledge, for agents' suggestions too
        self.knowledge = knowledge if use_knowledge else None
        # intent -> {language: how to offer it}; only these are offered when clarifying
        self.clarify_options = dict(clarify_options or {}) if use_clarify else {}

    def unanswered(self, state: dict[str, Any], context: TurnContext) -> FlowResult:
        """Nothing answers the message: "did you mean", or say so; after `handoff_after` of
        these in a row, a human."""
        understanding = context.understanding
        unanswered = [*state.get("unanswered", []), understanding.text][-5:]
        if len(unanswered) >= self.handoff_after:
            return FlowResult(
                handled=True,
                handoff=Handoff(
                    reason="fallback",
                    intent=understanding.intent,
                    note="The bot could not answer: " + " / ".join(unanswered),
                ),
                state={},
            )
        state = {**state, "unanswered": unanswered}
        return FlowResult(handled=True, replies=(self.clarify(context),), state=state)

    # ---- 1. knowledge ---------------------------------------------------------------------

    def best_hit(self, context: TurnContext) -> Any | None:
        """The knowledge base's confident best answer to the message, or None."""
        question = context.understanding.text.strip()
        if self.knowledge is None or not question or question.startswith("/"):
            return None
        hits = self.knowledge.search(question, k=3, language=context.language)
        return hits[0] if hits and hits[0].confident else None

    def knowledge_answer(self, state: dict[str, Any], context: TurnContext, hit: Any) -> FlowResult:
        """Answer with a knowledge entry (`best_hit`): its summary and link, and "Did this
        help?" buttons."""
        question = context.understanding.text.strip()
        entry = hit.entry
        lang = context.language
        body = entry_text(entry, lang, self.default_language)
        reply = Reply(
            text=f"{body}\n\n{text('did_this_help', lang, self.default_language)}",
            buttons=(
                Button(
                    title=text("yes_thanks", lang, self.default_language), payload=helped(entry.id)
                ),
                Button(
                    title=text("no_human", lang, self.default_language),
                    payload=not_helped(entry.id),
                ),
            ),
            meta={"knowledge": entry.id, "score": round(float(hit.score), 3)},
        )
        asked = {"entry": entry.id, "question": question}
        return FlowResult(
            handled=True,
            replies=(reply,),
            state={**state, "unanswered": [], "knowledge": asked},
            events=(("knowledge.answered", asked | {"score": float(hit.score)}),),
        )

    def feedback(self, state: dict[str, Any], context: TurnContext) -> FlowResult:
        """A press on "Did this help?"."""
        entry = entity(context.understanding, "entry") or state.get("knowledge", {}).get("entry")
        question = state.get("knowledge", {}).get("question", "")
        lang = context.language
        data = {"entry": entry, "question": question}
        rest = {k: v for k, v in state.items() if k != "knowledge"}
        if context.understanding.intent == HELPED:
            reply = Reply(text=text("glad_to_help", lang, self.default_language))
            return FlowResult(
                handled=True, replies=(reply,), state=rest, events=(("knowledge.helpful", data),)
            )
        note = f"The help article '{entry}' did not answer: {question}" if question else None
        return FlowResult(
            handled=True,
            handoff=Handoff(reason="knowledge_unhelpful", note=note),
            state={},
            events=(("knowledge.unhelpful", data),),
        )

    # ---- 2. clarify, 3. say so ------------------------------------------------------------

    def clarify(self, context: TurnContext) -> Reply:
        lang = context.language
        human = Button(title=text("talk_to_human", lang, self.default_language), payload="/human")
        offered = [
            Button(
                title=pick(self.clarify_options[intent], lang, self.default_language),
                payload=f"/{intent}",
            )
            for intent, confidence in context.understanding.ranking
            if confidence >= CLARIFY_MIN and intent in self.clarify_options
        ][:CLARIFY_MAX]
        if offered:
            return Reply(
                text=text("did_you_mean", lang, self.default_language), buttons=(*offered, human)
            )
        return Reply(text=text("fallback", lang, self.default_language), buttons=(human,))


def pick(variants: Mapping[str, str], language: str | None, default_language: str) -> str:
    """The text in `language`, else the default language, else any."""
    for lang in (language, default_language, "en"):
        if lang and lang in variants:
            return variants[lang]
    return next(iter(variants.values()), "")


def entry_text(entry: Any, language: str | None, default_language: str) -> str:
    """What the bot says for a knowledge entry: its summary in the language, and its link."""
    body = pick(entry.summary, language, default_language)
    return f"{body}\n{entry.url}" if entry.url else body


def helped(entry_id: str) -> str:
    return f"/{HELPED}" + json.dumps({"entry": entry_id})


def not_helped(entry_id: str) -> str:
    return f"/{NOT_HELPED}" + json.dumps({"entry": entry_id})


def entity(understanding: Understanding, name: str) -> str | None:
    for found in understanding.entities:
        if found.get("entity") == name:
            return str(found.get("value"))
    return None
