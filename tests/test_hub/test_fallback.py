"""The fallback chain (hub/core/fallback.py): knowledge answer with "Did this help?", then "did you
mean" buttons, then a handoff with the unanswered questions. A knowledge base stands in for
knowledge.KnowledgeBase (the real one is tested in tests/test_knowledge/)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hub.core.fallback import HELPED, NOT_HELPED, Fallback, helped, not_helped
from hub.messages import Understanding
from hub.ports import TurnContext


@dataclass(frozen=True)
class Entry:
    id: str
    summary: dict[str, str]
    url: str | None = None
    title: str = ""
    kind: str = "faq"
    tags: tuple[str, ...] = ()
    answer: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Hit:
    entry: Entry
    score: float
    confident: bool


class Base:
    def __init__(self, *hits: Hit) -> None:
        self.hits = list(hits)
        self.queries: list[tuple[str, str | None]] = []

    def search(self, query: str, k: int = 5, language: str | None = None) -> list[Hit]:
        self.queries.append((query, language))
        return self.hits[:k]


FEE = Entry(
    "express-fee",
    {"en": "Express costs 15 yuan.", "zh": "加急运费 15 元。"},
    url="https://shop.example/help/express",
)
OPTIONS = {"check_order": {"en": "where is my order", "zh": "我的订单到哪了"}}


def context(
    text: str,
    language: str = "en",
    intent: str | None = None,
    ranking: tuple[tuple[str, float], ...] = (),
    entities: tuple[dict[str, Any], ...] = (),
) -> TurnContext:
    return TurnContext(
        understanding=Understanding(text=text, intent=intent, ranking=ranking, entities=entities),
        language=language,
        conversation_id=1,
    )


def test_a_confident_hit_is_answered_with_did_this_help() -> None:
    base = Base(Hit(FEE, 9.0, True))
    fallback = Fallback(2, "zh", knowledge=base, clarify_options=OPTIONS)

    asked = context("how much for sf express")
    turn = fallback.knowledge_answer({"unanswered": ["???"]}, asked, fallback.best_hit(asked))

    [reply] = turn.replies
    assert reply.text.startswith("Express costs 15 yuan.\nhttps://shop.example/help/express")
    assert "Did this answer your question?" in reply.text
    assert [b.payload for b in reply.buttons] == [helped("express-fee"), not_helped("express-fee")]
    assert turn.state["unanswered"] == [] and turn.state["knowledge"]["entry"] == "express-fee"
    assert turn.events[0][0] == "knowledge.answered"
    assert base.queries == [("how much for sf express", "en")]


def test_the_answer_follows_the_conversation_language() -> None:
    fallback = Fallback(2, "en", knowledge=Base(Hit(FEE, 9.0, True)))
    asked = context("顺丰多少钱", language="zh")
    [reply] = fallback.knowledge_answer({}, asked, fallback.best_hit(asked)).replies
    assert reply.text.startswith("加急运费 15 元。") and "这解答了您的问题吗" in reply.text


def test_yes_counts_as_self_served_and_no_hands_over_with_the_question() -> None:
    fallback = Fallback(2, "en", knowledge=Base(Hit(FEE, 9.0, True)))
    question = context("how much for sf express")
    asked = fallback.knowledge_answer({}, question, fallback.best_hit(question)).state
    press = ({"entity": "entry", "value": "express-fee"},)

    yes = fallback.feedback(asked, context("/kb_helpful", intent=HELPED, entities=press))
    no = fallback.feedback(asked, context("/kb_unhelpful", intent=NOT_HELPED, entities=press))

    assert yes.handoff is None and yes.replies[0].text.startswith("Glad I could help")
    assert yes.events == (
        ("knowledge.helpful", {"entry": "express-fee", "question": "how much for sf express"}),
    )
    assert no.handoff is not None and no.handoff.reason == "knowledge_unhelpful"
    assert "how much for sf express" in (no.handoff.note or "")
    assert no.events[0][0] == "knowledge.unhelpful"


def test_an_unsure_hit_is_not_said_the_intents_are_offered_instead() -> None:
    fallback = Fallback(3, "en", knowledge=Base(Hit(FEE, 1.0, False)), clarify_options=OPTIONS)
    ranking = (("check_order", 0.4), ("greet", 0.3), ("returns", 0.05))

    unsure = context("my parcel??", ranking=ranking)
    assert fallback.best_hit(unsure) is None
    [reply] = fallback.unanswered({}, unsure).replies

    assert reply.text.startswith("Sorry, I'm not sure I understood")
    assert [(b.title, b.payload) for b in reply.buttons] == [
        ("where is my order", "/check_order"),  # greet: not offered; returns: too unlikely
        ("Talk to a human", "/human"),
    ]


def test_nothing_to_offer_says_so_and_the_second_miss_hands_over() -> None:
    fallback = Fallback(2, "en", knowledge=Base(), clarify_options=OPTIONS)

    assert fallback.best_hit(context("blorp")) is None
    first = fallback.unanswered({}, context("blorp"))
    second = fallback.unanswered(first.state, context("zzz"))

    assert first.replies[0].text.startswith("Sorry, I didn't understand")
    assert second.handoff is not None and second.handoff.reason == "fallback"
    assert second.handoff.note == "The bot could not answer: blorp / zzz"


def test_knowledge_and_clarify_can_be_turned_off() -> None:
    base = Base(Hit(FEE, 9.0, True))
    fallback = Fallback(
        3, "en", knowledge=base, clarify_options=OPTIONS, use_knowledge=False, use_clarify=False
    )
    asked = context("sf express?", ranking=(("check_order", 0.9),))
    assert fallback.best_hit(asked) is None
    [reply] = fallback.unanswered({}, asked).replies
    assert reply.text.startswith("Sorry, I didn't understand") and base.queries == []
    assert fallback.base is base  # agents still get suggestions from it
