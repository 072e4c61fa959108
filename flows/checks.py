"""Checks of flows against the rest of the bot: the intents the NLU data defines and the
actions `actions.py` (or the action server) offers. `kefu check` and the hot reload run them
after `load_flows`, which checks the flows on their own. `kefu check` also warns
(`check_entities`) about asks waiting for an entity nothing can produce."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

from flows.loader import LoadedFlow, uses
from flows.schema import AskStep, SayStep, iter_steps

if TYPE_CHECKING:
    from nlu.data import TrainingData


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


def check_entities(flows: dict[str, LoadedFlow], data: TrainingData | None) -> list[str]:
    """`path:line:column: warning: what` for every ask that waits for an entity no regex,
    lookup table (annotated values included: nlu/data.py), synonym of those, or `/intent{json}`
    button payload of the flows can ever produce: the ask's `entity:`, or its slot's name
    when the NLU data annotates an entity of that name (meant to be filled by it). An ask
    without `entity:` whose slot the NLU data never mentions is filled from the answer: fine.
    Warnings, not errors: the answer still fills the slot when the customer is asked."""
    if data is None:
        return []
    producible = {name for name, patterns in data.regexes.items() if patterns}
    producible |= {name for name, values in data.lookups.items() if values}
    producible |= _payload_entities(flows)
    annotated: dict[str, str] = {}  # entity -> the first example annotating it
    for example in data.training_examples:
        for span in example.entities:
            annotated.setdefault(span.entity, example.source)
    warnings: list[str] = []
    for name, item in flows.items():
        for loc, step in iter_steps(item.flow.steps):
            if not isinstance(step, AskStep):
                continue
            entity = step.entity or step.ask
            if entity in producible or (step.entity is None and entity not in annotated):
                continue
            if entity in annotated:
                why = (
                    f"it is annotated in the NLU data ({annotated[entity]}) but only with values "
                    "that are not looked up (numbers, single characters, or text the data "
                    "also has unannotated)"
                )
            else:
                why = "the NLU data has no regex, lookup table or annotated example of it"
            place = item.where((*loc, "entity") if step.entity is not None else loc)
            warnings.append(
                f"{place}: warning: flows.{name}: ask {step.ask!r}: entity {entity!r} can never "
                f"be extracted: {why}; add a `regex:` or `lookup:` for it to the NLU data"
            )
    return warnings


def as_warning(message: str) -> str:
    """`path:line:column: what` as `path:line:column: warning: what` (NLU data warnings)."""
    parts = message.split(": ", 1)
    return f"{parts[0]}: warning: {parts[1]}" if len(parts) == 2 else f"warning: {message}"


def _payload_entities(flows: dict[str, LoadedFlow]) -> set[str]:
    """The entities the flows' `/intent{"entity": value}` button payloads carry."""
    found: set[str] = set()
    for item in flows.values():
        for _loc, step in iter_steps(item.flow.steps):
            if not isinstance(step, SayStep | AskStep):
                continue
            for button in step.buttons:
                if not button.payload.startswith("/") or "{" not in button.payload:
                    continue
                try:
                    values = json.loads(button.payload[button.payload.index("{") :])
                except ValueError:
                    continue
                if isinstance(values, dict):
                    found.update(str(key) for key in values)
    return found
