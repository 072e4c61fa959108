"""The turn's arbiter (hub/core/arbiter.py): one decision per customer message, from the NLU,
the knowledge base and the question a flow waits on."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pytest

from hub.core.arbiter import Arbiter, cancel_words_alone
from hub.core.views import message_view
from hub.messages import Understanding
from hub.ports import FlowMatch, FlowView, WaitingAsk
from hub.testing import TestBot

ARBITER = Arbiter(
    handoff_intents=frozenset({"human"}),
    strong=0.5,
    clarifiable=frozenset({"returns", "check_order", "shipping"}),
)


@dataclass(frozen=True)
class Entry:
    id: str


@dataclass(frozen=True)
class Hit:
    entry: Entry
    score: float = 0.9
    confident: bool = True


HIT = Hit(Entry("invoice-request"))


def said(
    text: str,
    intent: str | None = None,
    confidence: float = 0.0,
    ranking: tuple[tuple[str, float], ...] = (),
    ambiguous: bool = False,
    explicit: bool = False,
) -> Understanding:
    return Understanding(
        text=text,
        intent=intent,
        confidence=confidence,
        ranking=ranking or (((intent, confidence),) if intent else ()),
        ambiguous=ambiguous,
        explicit=explicit,
    )


def waiting(
    answered: bool = False,
    free_text: bool = False,
    text_type: bool = False,
    interruptible: bool = True,
) -> WaitingAsk:
    return WaitingAsk(
        flow="returns",
        slot="order_id",
        answered=answered,
        free_text=free_text,
        text_type=text_type,
        interruptible=interruptible,
        triggers=frozenset({"returns"}),
    )


def decide(u: Understanding, view: FlowView, hit: Any = None) -> tuple[str, str | None]:
    searched: list[bool] = []

    def knowledge() -> Any:
        searched.append(True)
        return hit

    decision = ARBITER.decide(u, view, knowledge)
    assert decision.reason
    if decision.act == "knowledge":
        assert searched and decision.hit is hit
    return decision.act, decision.flow


ORDERS = FlowMatch("order_status", "intent")


# ---- a question waits --------------------------------------------------------------------


def test_a_valid_answer_is_taken() -> None:
    u = said("20240517008", "inform", 0.97)
    assert decide(u, FlowView(waiting(answered=True)), HIT) == ("answer", None)


def test_a_confident_knowledge_hit_is_answered_and_the_question_comes_back() -> None:
    u = said("怎么开发票", "faq", 0.99)
    assert decide(u, FlowView(waiting()), HIT) == ("knowledge", None)


def test_a_sure_other_flow_digresses_a_weak_one_is_asked_again() -> None:
    sure = said("where is my order", "check_order", 0.9)
    assert decide(sure, FlowView(waiting(), ORDERS)) == ("digress", "order_status")
    weak = said("where is my order", "check_order", 0.3)
    assert decide(weak, FlowView(waiting(), ORDERS)) == ("answer", None)


def test_the_waiting_flows_own_intent_never_restarts_it() -> None:
    u = said("I want to return something", "returns", 0.99)
    own = FlowMatch("returns", "intent")
    assert decide(u, FlowView(waiting(), own), HIT) == ("answer", None)
    # a question about its topic, less sure of the intent, gets the knowledge answer
    asked = said("when will the money be back on my card?", "returns", 0.4)
    assert decide(asked, FlowView(waiting(), own), HIT) == ("knowledge", None)
    assert decide(asked, FlowView(waiting(), own)) == ("answer", None)


def test_a_flow_that_may_not_be_interrupted_takes_everything_as_an_answer() -> None:
    u = said("where is my order", "check_order", 0.9)
    fixed = FlowView(waiting(interruptible=False), ORDERS)
    assert decide(u, fixed, HIT) == ("answer", None)


def test_a_message_between_two_other_intents_while_waiting_is_clarified() -> None:
    close = said(
        "refund my delivery fee",
        "shipping",
        0.42,
        ranking=(("shipping", 0.42), ("check_order", 0.38)),
        ambiguous=True,
    )
    assert decide(close, FlowView(waiting())) == ("clarify", None)
    assert decide(close, FlowView(waiting(interruptible=False))) == ("answer", None)


def test_a_change_of_mind_beats_a_knowledge_hit_and_another_flow() -> None:
    u = said("不对，是发错货了", "complaint", 0.9)
    changed = FlowView(
        dataclasses.replace(waiting(), corrects="reason"), FlowMatch("complaint", "intent")
    )
    decision = ARBITER.decide(u, changed, lambda: HIT)
    assert (decision.act, decision.flow) == ("answer", None)
    assert "returns.reason" in decision.reason


def test_unrelated_words_while_waiting_are_asked_again_not_a_flow() -> None:
    assert decide(said("你们老板是谁"), FlowView(waiting())) == ("answer", None)


def test_a_free_text_answer_that_is_a_question_gets_the_knowledge() -> None:
    u = said("how do I get an invoice?", "faq", 0.95)
    free = FlowView(waiting(answered=True, free_text=True))
    assert decide(u, free, HIT) == ("knowledge", None)
    assert decide(said("Bob Smith"), free) == ("answer", None)


# ---- cancel only when meant --------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["cancel", "Cancel!", "算了", "  取消 。", "never mind", "ＳＴＯＰ"]
)
def test_the_cancel_words_alone_cancel(text: str) -> None:
    assert cancel_words_alone(text)
    assert decide(said(text, "deny", 0.9), FlowView(waiting(text_type=True))) == ("cancel", None)


@pytest.mark.parametrize("text", ["it broke", "stop sending me emails", "cancel my order 123"])
def test_other_words_are_no_cancel_words(text: str) -> None:
    assert not cancel_words_alone(text)


def test_the_cancel_intent_must_be_sure_and_never_for_a_text_answer() -> None:
    weak = said("it broke", "cancel", 0.3)
    assert decide(weak, FlowView(waiting()))[0] == "answer"
    sure = said("forget about it, I don't want to do this", "cancel", 0.9)
    assert decide(sure, FlowView(waiting())) == ("cancel", None)
    assert decide(sure, FlowView(waiting(text_type=True))) == ("answer", None)


def test_the_cancel_intent_with_nothing_running_cancels_nothing() -> None:
    u = said("I want to cancel my subscription", "cancel", 0.9)
    assert decide(u, FlowView(), HIT)[0] == "knowledge"
    assert decide(u, FlowView()) == ("fallback", None)


# ---- handoff -----------------------------------------------------------------------------


def test_a_person_is_asked_for() -> None:
    assert decide(said("转人工", "human", 0.95), FlowView()) == ("handoff", None)
    assert decide(said("human please", "human", 0.9), FlowView(waiting())) == ("handoff", None)
    assert decide(said("hmm a person?", "human", 0.35), FlowView(waiting())) == ("answer", None)


# ---- nothing waits -----------------------------------------------------------------------


def test_a_sure_intent_starts_its_flow_even_with_a_knowledge_hit() -> None:
    u = said("where is my order", "check_order", 0.9)
    assert decide(u, FlowView(match=ORDERS), HIT) == ("start", "order_status")


def test_a_confident_knowledge_hit_beats_a_weak_intent_or_a_keyword() -> None:
    fair = said("will the courier bring my parcel on a saturday", "check_order", 0.6)
    assert decide(fair, FlowView(match=ORDERS), HIT) == ("knowledge", None)
    weak = said("will the courier bring my parcel on a saturday", "check_order", 0.41)
    assert decide(weak, FlowView(match=ORDERS), HIT) == ("knowledge", None)
    assert decide(weak, FlowView(match=ORDERS)) == ("start", "order_status")
    keyword = said("parcel prices", "faq", 0.9)
    assert decide(keyword, FlowView(match=FlowMatch("shipping", "keyword")), HIT)[0] == "knowledge"


def test_two_close_intents_are_clarified_unless_the_knowledge_knows() -> None:
    close = said(
        "my parcel", "check_order", 0.45, ranking=(("check_order", 0.45), ("shipping", 0.4))
    )
    close = close.model_copy(update={"ambiguous": True})
    assert decide(close, FlowView(match=ORDERS)) == ("clarify", None)
    assert decide(close, FlowView(match=ORDERS), HIT)[0] == "knowledge"


def test_nothing_fits_falls_back() -> None:
    assert decide(said("what is the capital of France"), FlowView()) == ("fallback", None)


# ---- buttons -----------------------------------------------------------------------------


def test_presses_are_taken_as_said() -> None:
    press = said("/check_order", "check_order", 1.0, explicit=True)
    assert decide(press, FlowView(match=ORDERS)) == ("start", "order_status")
    assert decide(press, FlowView(waiting(), ORDERS)) == ("digress", "order_status")
    helped = said('/kb_helpful{"entry": "x"}', "kb_helpful", 1.0, explicit=True)
    assert decide(helped, FlowView(waiting()))[0] == "feedback"
    choice = said("broken", None, 0.0, explicit=False)
    assert decide(choice, FlowView(waiting(answered=True)))[0] == "answer"


# ---- in the hub: the decision is carried out and stored with the message ------------------


async def test_a_question_mid_flow_is_answered_then_the_flow_asks_again(testbot: TestBot) -> None:
    first = await testbot.say("我要退款")
    assert "订单号" in first[-1].text
    replies = [r.text for r in await testbot.say("怎么开发票")]
    assert "发票" in replies[0] and "订单号" not in replies[0]
    assert replies[-2:] == ["我们继续刚才的话题。", first[-1].text]
    store = testbot.hub.store
    messages = await store.messages(await testbot.conversation_id())
    asked = [m for m in messages if m.sender_type == "contact"][-1]
    assert asked.payload["turn"]["decision"] == "knowledge"
    assert "returns.order_id" in asked.payload["turn"]["reason"]
    assert message_view(asked)["turn"] == asked.payload["turn"]  # what the inbox shows
    assert (await testbot.say("20240517008"))[-1].text == "请问退货的原因是什么？"


async def test_the_cancel_words_stop_a_flow_and_a_text_answer_is_never_a_cancel(
    testbot: TestBot,
) -> None:
    await testbot.say("my blender arrived broken, I want to return it")
    await testbot.say("20240517008")
    await testbot.press("broken")
    described = await testbot.say("no idea, it just stopped working, cancel that thought")
    assert described[-1].text.startswith("Please confirm: return order 20240517008")
    assert [r.text for r in await testbot.say("Cancel.")] == ["OK, I've stopped that."]
    conversation = await testbot.hub.store.get_conversation(await testbot.conversation_id())
    assert conversation.flow_state.get("frames") in (None, [])
