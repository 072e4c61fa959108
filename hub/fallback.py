"""The fallback chain: what the bot does when no flow fits the message.

Now: say so (with a way to reach a human), and after `handoff_after` fallbacks in a row hand
the conversation to a human with the unanswered questions in the note. The knowledge search and
"did you mean" clarification come before these (bot.fallback.knowledge / clarify)."""

from __future__ import annotations

from typing import Any

from hub.messages import Button, Handoff, Reply
from hub.ports import FlowResult, TurnContext
from hub.texts import text


class Fallback:
    def __init__(self, handoff_after: int, default_language: str) -> None:
        self.handoff_after = handoff_after
        self.default_language = default_language

    def answer(self, state: dict[str, Any], context: TurnContext) -> FlowResult:
        unanswered = [*state.get("unanswered", []), context.understanding.text][-5:]
        if len(unanswered) >= self.handoff_after:
            return FlowResult(
                handled=True,
                handoff=Handoff(
                    reason="fallback",
                    intent=context.understanding.intent,
                    note="The bot could not answer: " + " / ".join(unanswered),
                ),
                state={},
            )
        lang = context.language
        reply = Reply(
            text=text("fallback", lang, self.default_language),
            buttons=(
                Button(title=text("talk_to_human", lang, self.default_language), payload="/human"),
            ),
        )
        return FlowResult(handled=True, replies=(reply,), state={**state, "unanswered": unanswered})
