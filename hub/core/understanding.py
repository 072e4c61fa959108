"""From a customer message to an `Understanding`: an explicit `/intent{json}` payload (buttons,
Rasa clients) is taken as said; anything else goes to the NLU classifier."""

from __future__ import annotations

import json
import re
from typing import Any

from hub.messages import Inbound, Understanding
from hub.ports import Classifier

_PAYLOAD = re.compile(r"^/(?P<intent>[^\s{}/]+)(?P<entities>\{.*\})?$", re.DOTALL)
MAX_PAYLOAD_DEPTH = 32  # nesting of `/intent{json}` values; no button needs more


class PayloadTooDeep(ValueError):
    """An `/intent{json}` payload whose values nest deeper than MAX_PAYLOAD_DEPTH."""

    def __init__(self) -> None:
        super().__init__(f"the payload's entity values nest deeper than {MAX_PAYLOAD_DEPTH} levels")


def parse_payload(text: str) -> Understanding | None:
    """`/check_order{"order_id": "123"}` -> intent check_order with entity order_id=123.

    Raises `PayloadTooDeep` for values nested deeper than MAX_PAYLOAD_DEPTH."""
    m = _PAYLOAD.match(text.strip())
    if not m:
        return None
    entities: list[dict[str, object]] = []
    if m.group("entities"):
        try:
            values = json.loads(m.group("entities"))
        except RecursionError:  # json.loads gives up about a thousand levels down
            raise PayloadTooDeep() from None
        except json.JSONDecodeError:
            return None
        if not isinstance(values, dict):
            return None
        if _too_deep(values, MAX_PAYLOAD_DEPTH + 1):
            raise PayloadTooDeep()
        entities = [{"entity": k, "value": v} for k, v in values.items()]
    intent = m.group("intent")
    return Understanding(
        text=text,
        intent=intent,
        confidence=1.0,
        entities=tuple(entities),
        ranking=((intent, 1.0),),
        explicit=True,
    )


def understand(inbound: Inbound, classifier: Classifier) -> Understanding:
    """What the customer meant by this message; a payload nested too deep is taken as text."""
    try:
        explicit = parse_payload(inbound.postback or inbound.text)
    except PayloadTooDeep:
        explicit = None
    if explicit is not None:
        return explicit.model_copy(update={"postback": inbound.postback})
    if not inbound.text.strip():
        return Understanding(text=inbound.text, postback=inbound.postback)
    parse = classifier.parse(inbound.text)
    return Understanding(
        text=inbound.text,
        postback=inbound.postback,
        intent=parse.intent,
        confidence=float(parse.confidence),
        entities=tuple(dict(e) for e in parse.entities),
        ranking=tuple((name, float(score)) for name, score in parse.ranking[:5]),
        language=None if parse.language == "und" else parse.language,
        ambiguous=parse.ambiguous,
    )


def _too_deep(value: Any, levels: int) -> bool:
    """Whether a JSON value nests lists and objects more than `levels` deep."""
    if not isinstance(value, list | dict):
        return False
    if levels == 0:
        return True
    children = value.values() if isinstance(value, dict) else value
    return any(_too_deep(child, levels - 1) for child in children)
