"""Tokens: jieba words for Chinese (never one token per sentence, Rasa #6752), words otherwise."""

from __future__ import annotations

from nlu import tokenize
from nlu.tokenize import add_words


def test_chinese_sentence_is_cut_into_words() -> None:
    tokens = tokenize("我想查一下我的订单")
    assert len(tokens) >= 4
    assert "订单" in tokens
    assert "".join(tokens) == "我想查一下我的订单"


def test_english_is_lowercased_and_punctuation_dropped() -> None:
    assert tokenize("Where's my ORDER, please?") == ["where", "s", "my", "order", "please"]


def test_mixed_chinese_english_and_digits() -> None:
    tokens = tokenize("我的iPhone订单20231105到哪了？")
    assert tokens[:2] == ["我", "的"]
    assert "iphone" in tokens
    assert "订单" in tokens
    assert "20231105" in tokens
    assert "？" not in tokens


def test_full_width_text_is_normalized() -> None:
    assert tokenize("ＨＥＬＬＯ １２３") == ["hello", "123"]


def test_added_lookup_words_are_kept_whole() -> None:
    assert "极兔速递" not in tokenize("用极兔速递发货")
    add_words(["极兔速递", "SF Express"])  # words without Han characters are ignored
    assert tokenize("用极兔速递发货") == ["用", "极兔速递", "发货"]


def test_empty_and_blank_text() -> None:
    assert tokenize("") == []
    assert tokenize(" \n\t ") == []
