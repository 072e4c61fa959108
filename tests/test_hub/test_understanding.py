"""From an inbound message to what the bot understood: classifier results and explicit payloads."""

from __future__ import annotations

from hub.core.understanding import understand
from hub.messages import Inbound
from nlu import IntentClassifier, Parse


class Unsure:
    """A classifier torn between two intents."""

    def parse(self, text: str) -> Parse:
        ranking = [("returns", 0.46), ("shipping", 0.41)]
        return Parse(text, "returns", 0.46, [], ranking, "en", ambiguous=True)


def test_ambiguity_reaches_the_bot() -> None:
    understood = understand(
        Inbound(channel="web", sender_id="u", text="returns or shipping"), Unsure()
    )
    assert understood.intent == "returns" and understood.ambiguous
    assert understood.ranking[:2] == (("returns", 0.46), ("shipping", 0.41))


def test_a_clear_message_is_not_ambiguous(classifier: IntentClassifier) -> None:
    inbound = Inbound(channel="web", sender_id="u", text="我的订单20231105到哪了")
    understood = understand(inbound, classifier)
    assert understood.intent == "check_order" and not understood.ambiguous
    assert understood.entity("order_id") == "20231105" and understood.language == "zh"


def test_a_payload_is_taken_as_said(classifier: IntentClassifier) -> None:
    inbound = Inbound(
        channel="web", sender_id="u", text="hi", postback='/check_order{"order_id": "1"}'
    )
    understood = understand(inbound, classifier)
    assert understood.explicit and understood.intent == "check_order"
    assert understood.entity("order_id") == "1" and not understood.ambiguous
