"""Tokens for the classifier: jieba words for Chinese runs, lowercase words for other scripts.

Treating Chinese text as one token (Rasa #6752) leaves a classifier nothing to learn from, so
every run of Han characters is cut by jieba; other text is split on non-word characters.
"""

from __future__ import annotations

import logging
import re
import threading
import unicodedata
from collections.abc import Iterable

import jieba

__all__ = ["HAN", "add_words", "tokenize", "warm_up"]

# CJK unified ideographs, extension A, compatibility ideographs and extensions B-F.
HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef"
_HAN_RUN = re.compile(f"([{HAN}]+)")
_WORD = re.compile(r"[^\W_]+")

jieba.setLogLevel(logging.WARNING)
# A private instance: words added for one bot stay out of jieba's process-wide dictionary.
_jieba = jieba.Tokenizer()
_lock = threading.Lock()
_added: set[str] = set()


def warm_up() -> None:
    """Load jieba's dictionary now (about a second) rather than on the first message."""
    _jieba.initialize()


def add_words(words: Iterable[str]) -> None:
    """Keep these words (lookup and entity values) whole when jieba cuts Chinese text.

    Only words made entirely of Han characters matter: other scripts never reach jieba.
    """
    new = {word.strip() for word in words} - _added
    new = {word for word in new if word and _HAN_RUN.fullmatch(word)}
    if not new:
        return
    with _lock:
        for word in sorted(new):
            _jieba.add_word(word)
        _added.update(new)


def tokenize(text: str) -> list[str]:
    """Split ``text`` into tokens: jieba words for Han runs, lowercase words for the rest.

    Text is NFKC-normalized first, so full-width letters and digits match their ASCII forms;
    punctuation and whitespace are dropped.
    """
    tokens: list[str] = []
    normalized = unicodedata.normalize("NFKC", text)
    for index, run in enumerate(_HAN_RUN.split(normalized)):
        if not run:
            continue
        if index % 2:  # re.split puts the captured Han runs at odd indexes
            tokens.extend(word for word in _jieba.lcut(run) if word.strip())
        else:
            tokens.extend(word.casefold() for word in _WORD.findall(run))
    return tokens
