"""Searching the knowledge base as a customer would: Chinese and English questions, synonyms,
confidence, languages."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge import Entry, Hit, KnowledgeBase

SHIPPING = """\
faq:
  - id: express-fee
    questions: ["How much is express shipping?", "加急配送要多少钱"]
    answer: {en: "Express shipping costs 15 yuan.", zh: "加急配送运费 15 元。"}
  - id: shipping-time
    questions: ["How long does delivery take?", "发货后几天能到"]
    answer: {en: "Standard delivery takes 3-5 days.", zh: "普通快递 3-5 天送达。"}
  - id: invoice-fee
    questions: ["Do invoices cost anything?", "开发票要多少钱"]
    answer: {en: "Invoices are free.", zh: "开发票免费。"}
"""

ACCOUNT = """\
faq:
  - id: reset-password
    questions: ["I forgot my password", "怎么重置密码"]
    answer: {en: "Tap 'Forgot password' on the login page.", zh: "在登录页点击「忘记密码」。"}
  - id: change-phone
    questions: ["How do I change my phone number?"]
    answer: "Go to Me > Settings > Phone number."
"""

RETURNS_EN = """\
---
title: Returns and refunds
language: en
questions: ["How do I return an item?"]
---
Items can be returned within 7 days of delivery. Refunds go back to the original payment.
"""

RETURNS_ZH = """\
---
title: 退货退款
language: zh
questions: ["怎么退货"]
---
签收后 7 天内可以申请退货，退款原路返回。
"""

SYNONYMS = {"顺丰": "express", "sf express": "express", "加急": "express", "快递": "delivery"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    knowledge = tmp_path_factory.mktemp("bot") / "knowledge"
    knowledge.mkdir()
    for name, text in (
        ("shipping.yml", SHIPPING),
        ("account.yml", ACCOUNT),
        ("returns.md", RETURNS_EN),
        ("returns-zh.md", RETURNS_ZH),
    ):
        (knowledge / name).write_text(text, encoding="utf-8")
    return knowledge


@pytest.fixture(scope="module")
def kb(folder: Path) -> KnowledgeBase:
    return KnowledgeBase.load(folder, synonyms=SYNONYMS)


def first(hits: list[Hit]) -> str | None:
    return hits[0].entry.id if hits else None


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("how much does express shipping cost", "express-fee"),
        ("加急配送多少钱", "express-fee"),
        ("when will my parcel arrive, how long is delivery", "shipping-time"),
        ("发货以后要几天才能到", "shipping-time"),
        ("I forgot the password of my account", "reset-password"),
        ("密码忘了，怎么重置", "reset-password"),
        ("how can I change my phone number", "change-phone"),
        ("can I return an item I don't like?", "returns"),
        ("我想退货", "returns-zh"),
        ("我的iPhone怎么退货", "returns-zh"),  # mixed Chinese and English
    ],
)
def test_questions_in_chinese_and_english_find_their_entry(
    kb: KnowledgeBase, question: str, expected: str
) -> None:
    assert first(kb.search(question)) == expected


def test_synonyms_find_an_entry_written_with_another_word(folder: Path) -> None:
    # The entry says 加急 / express; the customer says 顺丰 / SF Express.
    kb = KnowledgeBase.load(folder, synonyms=SYNONYMS)
    assert first(kb.search("顺丰多少钱")) == "express-fee"
    assert first(kb.search("SF Express price?")) == "express-fee"
    without = KnowledgeBase.load(folder)
    assert first(without.search("顺丰多少钱")) != "express-fee"


def test_a_stored_question_is_confident(kb: KnowledgeBase) -> None:
    for question, expected in (
        ("How much is express shipping?", "express-fee"),
        ("怎么重置密码", "reset-password"),
    ):
        hit = kb.search(question)[0]
        assert (hit.entry.id, hit.confident) == (expected, True)
        assert hit.score >= 1.0


@pytest.mark.parametrize(
    "question",
    [
        "what will the weather be like in Paris tomorrow",
        "播放周杰伦的稻香",
        "帮我订一张去上海的机票",
    ],
)
def test_an_unrelated_or_vague_question_is_not_confident(kb: KnowledgeBase, question: str) -> None:
    assert not any(hit.confident for hit in kb.search(question))


def test_only_the_best_hit_can_be_confident(kb: KnowledgeBase) -> None:
    hits = kb.search("How much is express shipping?", k=3)
    assert len(hits) >= 2, hits  # other entries share its words ("how", "shipping")
    assert hits[0].entry.id == "express-fee"
    assert [hit.confident for hit in hits] == [True] + [False] * (len(hits) - 1)
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)


def test_min_confidence_is_a_setting(folder: Path) -> None:
    strict = KnowledgeBase.load(folder, synonyms=SYNONYMS, min_confidence=10.0)
    assert not strict.search("How much is express shipping?")[0].confident
    lenient = KnowledgeBase.load(folder, synonyms=SYNONYMS, min_confidence=0.0)
    assert lenient.search("password")[0].confident


def test_language_keeps_to_entries_in_that_language(kb: KnowledgeBase) -> None:
    hits = kb.search("return 退货", k=5, language="zh")
    assert first(hits) == "returns-zh"
    assert "returns" not in [hit.entry.id for hit in hits]  # English only
    assert first(kb.search("return 退货", language="en")) == "returns"
    assert first(kb.search("退货", language="zh-CN")) == "returns-zh"
    # A language no entry has: everything is searched rather than nothing.
    assert first(kb.search("how do I return an item", language="fr")) == "returns"


def test_k_limits_the_hits(kb: KnowledgeBase) -> None:
    assert len(kb.search("how much", k=1)) == 1
    assert len(kb.search("how much is express shipping or an invoice", k=2)) == 2
    assert kb.search("how much", k=0) == []


def test_a_question_sharing_no_word_finds_nothing(kb: KnowledgeBase) -> None:
    assert kb.search("zzz qqq") == []
    assert kb.search("") == []
    assert kb.search("？！") == []


def test_empty_base(tmp_path: Path) -> None:
    assert KnowledgeBase.empty().search("how much is express shipping") == []
    assert KnowledgeBase.load(tmp_path / "knowledge").search("退货") == []
    assert KnowledgeBase.empty().get("express-fee") is None


def test_get_returns_an_entry_by_id(kb: KnowledgeBase) -> None:
    entry = kb.get("express-fee")
    assert isinstance(entry, Entry)
    assert entry.summary["zh"] == "加急配送运费 15 元。"
    assert kb.get("returns-zh") is not None
    assert kb.get("nope") is None
