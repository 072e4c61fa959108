"""Checks of flows against the rest of the bot: the intents the NLU data defines and the
actions `actions.py` (or the action server) offers. `kefu check` and the hot reload run them
after `load_flows`, which checks the flows on their own."""

from __future__ import annotations

from collections.abc import Iterable

from flows.loader import LoadedFlow, uses
from flows.schema import AskStep, SayStep, iter_steps


def check_references(
    flows: dict[str, LoadedFlow],
    intents: Iterable[str] | None,
    actions: Iterable[str] | None,
) -> list[str]:
    """`path:line:column: what` for every trigger intent and `/intent` button payload the NLU
    data doesn't define, and every action that isn't there. None: not known, not checked."""
    known_intents = None if intents is None else set(intents)
    known_actions = None if actions is None else set(actions)
    errors: list[str] = []
    for name, item in flows.items():
        if known_intents is not None:
            for i, intent in enumerate(item.flow.trigger.intents):
                if intent not in known_intents:
                    errors.append(
                        f"{item.where(('trigger', 'intents', i))}: flows.{name}: "
                        f"intent {intent!r} is not in the NLU data"
                    )
            for loc, step in iter_steps(item.flow.steps):
                if not isinstance(step, SayStep | AskStep):
                    continue
                for j, button in enumerate(step.buttons):
                    named = _payload_intent(button.payload)
                    if named is not None and named not in known_intents:
                        errors.append(
                            f"{item.where((*loc, 'buttons', j, 'payload'))}: flows.{name}: "
                            f"button payload {button.payload!r}: intent {named!r} is not "
                            "in the NLU data"
                        )
        if known_actions is not None:
            for use in uses(item.flow):
                if use.kind == "action" and use.value not in known_actions:
                    offered = ", ".join(sorted(known_actions)) or "none"
                    errors.append(
                        f"{item.where(use.loc)}: flows.{name}: unknown action {use.value!r} "
                        f"(actions.py defines: {offered})"
                    )
    return errors


def _payload_intent(payload: str) -> str | None:
    """`/check_order{"order_id": "1"}` -> check_order; a plain value -> None."""
    if not payload.startswith("/"):
        return None
    return payload[1:].split("{", 1)[0].strip() or None
