"""Per-message language detection."""

from __future__ import annotations

import pytest

from nlu import detect_language


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("where is my order", "en"),
        ("我的订单到哪了", "zh"),
        ("您好", "zh"),
        ("hi", "en"),
        ("我的iPhone订单到哪了", "zh"),  # Chinese with an English brand name
        ("where is my 订单", "en"),
        ("转人工 please", "zh"),  # two Han characters weigh more than one English word
        ("ＯＫ", "en"),
    ],
)
def test_detects_dominant_script(text: str, language: str) -> None:
    assert detect_language(text) == language


@pytest.mark.parametrize("text", ["", "12345678", "👍", "?!"])
def test_text_without_letters_is_undetermined(text: str) -> None:
    assert detect_language(text) == "und"
    assert detect_language(text, default="zh") == "zh"


@pytest.mark.parametrize(
    "text",
    [
        "SF1234567890",  # a tracking number: its letters are a carrier's code, not English
        "JD0001234",
        "order-2024-0517",  # an id, even with a word in it
        "AB12CD34",
        "ＳＦ１２３４５６７８９０",  # full-width, as Chinese keyboards type it
        "20240517008",
        "2024-05-17",
        "v1.2.3",
        "li.wei@example.com",
        "https://shop.example.com/orders/20240517008",
        "www.example.com/track?id=SF1234567890",
        "taobao.com",
        "@kefu_bot",
        "#refund",
        "#双十一#",  # a Weibo hashtag names a topic; the words around it tell
        "👍🙏",
        "...?!",
        "5 kg",
        "20 USD",
        "3pm",
        "¥99.00",
        "SF1234567890 👍 https://t.cn/abc",
    ],
)
def test_ids_addresses_numbers_and_emoji_carry_no_language(text: str) -> None:
    assert detect_language(text) == "und"
    assert detect_language(text, default="zh") == "zh"


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("SF1234567890到了吗", "zh"),  # the words around an id decide
        ("my parcel SF1234567890", "en"),
        ("订单 order-2024-0517 到哪了", "zh"),
        ("is order-2024-0517 shipped", "en"),
        ("请发到 li.wei@example.com", "zh"),
        ("send it to li.wei@example.com please", "en"),
        ("看这个 https://shop.example.com/item/1", "zh"),
        ("@kefu_bot where is my order", "en"),
        ("#refund 我要退款", "zh"),
        ("I ordered 5 kg of rice", "en"),
        ("99元包邮吗", "zh"),
        ("ok 👍", "en"),  # a Latin word is English, however short
        ("好的 👍", "zh"),
    ],
)
def test_real_words_decide_around_what_carries_none(text: str, language: str) -> None:
    assert detect_language(text) == language
