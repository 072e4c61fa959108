"""Per-message language detection between Chinese and English (the demo bot's two languages)."""

from __future__ import annotations

import re

from nlu.tokenize import HAN

__all__ = ["UNDETERMINED", "detect_language"]

UNDETERMINED = "und"  # BCP 47 for "undetermined": digits, emoji or punctuation only
_HAN_CHAR = re.compile(f"[{HAN}]")
_LATIN_WORD = re.compile(rf"[^\W\d_{HAN}]+")


def detect_language(text: str, default: str = UNDETERMINED) -> str:
    """Return "zh" when Han characters dominate ``text``, "en" otherwise, ``default`` if neither.

    Mixed text goes to the script that dominates, counting one Han character against one word of
    another script (a Han character carries about a word's meaning): "我的iPhone订单到哪了"
    is "zh", "where is my 订单" is "en"; a tie goes to "zh", whose writers mix in English words
    far more often than the reverse. Text without letters (an order number, an emoji) gets
    ``default`` so the caller can keep the conversation's language.
    """
    han = len(_HAN_CHAR.findall(text))
    words = len(_LATIN_WORD.findall(text))
    if not han and not words:
        return default
    return "zh" if han >= words else "en"
