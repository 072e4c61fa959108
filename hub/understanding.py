"""From a customer message to an `Understanding`: an explicit `/intent{json}` payload (buttons,
Rasa clients) is taken as said; anything else goes to the NLU classifier."""

from __future__ import annotations

import json
import re

from hub.messages import Inbound, Understanding
from hub.ports import Classifier

_PAYLOAD = re.compile(r"^/(?P<intent>[^\s{}/]+)(?P<entities>\{.*\})?$", re.DOTALL)


def parse_payload(text: str) -> Understanding | None:
    """`/check_order{"order_id": "123"}` -> intent check_order with entity order_id=123."""
    m = _PAYLOAD.match(text.strip())
    if not m:
        return None
    entities: list[dict[str, object]] = []
    if m.group("entities"):
        try:
            values = json.loads(m.group("entities"))
        except json.JSONDecodeError:
            return None
        if not isinstance(values, dict):
            return None
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
    """What the customer meant by this message."""
    explicit = parse_payload(inbound.postback or inbound.text)
    if explicit is not None:
        return explicit
    if not inbound.text.strip():
        return Understanding(text=inbound.text)
    parse = classifier.parse(inbound.text)
    return Understanding(
        text=inbound.text,
        intent=parse.intent,
        confidence=float(parse.confidence),
        entities=tuple(dict(e) for e in parse.entities),
        ranking=tuple((name, float(score)) for name, score in parse.ranking[:5]),
        language=None if parse.language == "und" else parse.language,
    )
