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
