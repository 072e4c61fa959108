"""A base for test doubles of the flows (hub.ports.FlowRunner) that only define `run`."""

from __future__ import annotations

from typing import Any

from hub.ports import FlowResult, FlowView, TurnContext, WaitingAsk


class RunOnly:
    """Every message goes to the double's `run`: its view says a question waits that any
    text answers, so the turn's arbiter decides "answer" (unless the customer cancels or
    asks for a person)."""

    def view(self, state: dict[str, Any], context: TurnContext) -> FlowView:
        return FlowView(
            waiting=WaitingAsk(
                flow="double",
                slot="anything",
                answered=True,
                free_text=False,
                text_type=True,
                interruptible=False,
            )
        )

    async def run(self, state: dict[str, Any], context: TurnContext) -> FlowResult:
        raise NotImplementedError

    async def start(self, state: dict[str, Any], context: TurnContext, flow: str) -> FlowResult:
        return await self.run(state, context)

    def resume(self, state: dict[str, Any], context: TurnContext) -> FlowResult:
        return FlowResult(handled=False, state=state)

    def cancel(self, state: dict[str, Any], context: TurnContext) -> FlowResult:
        return FlowResult(handled=True, state={})
