"""Text to search tokens: the NLU's tokenizer (jieba words for Chinese, lowercase words for
other scripts), with the bot's synonyms folded to their canonical value first.

Synonyms are replaced in the text, before tokenizing, so that a multi-word variant ("sf
express") and a Chinese one that jieba might cut differently in context ("顺丰速运") are still
found; the canonical value then becomes one token, the same whether the customer wrote it or a
variant of it. Optional extras, each kept only if it measured better (see `IndexSettings`):
character bigrams of Chinese runs, a light English plural stemmer and English stop words.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

from nlu.tokenize import HAN, tokenize

__all__ = ["Analyzer", "fold"]

_HAN_RUN = re.compile(f"[{HAN}]{{2,}}")
_LATIN_TOKEN = re.compile(rf"[^\W{HAN}]+")
BIGRAM = "\x02"  # prefix keeping bigram tokens apart from jieba words of the same characters
# Function words that carry no topic; the IDF already weighs them down, this drops them.
ENGLISH_STOP_WORDS = frozenset(
    "a an the and or of to in on at for with by from is are was were be been am do does did "
    "i me my we our you your it its this that these those there here can could would should "
    "will shall may might must have has had s t".split()
)
# Words that never make a match on their own: the stop words, question words and their Chinese
# counterparts (jieba words). A small base gives them a high IDF, so "who is your boss" would
# otherwise match "who pays for return shipping" on "who is" alone.
FUNCTION_WORDS = ENGLISH_STOP_WORDS | frozenset(
    "who whom whose what when where why how which please pls "
    "的 了 是 吗 呢 吧 啊 呀 我 你 您 他 她 它 我们 你们 他们 这 那 这个 那个 谁 什么 怎么 怎样 "
    "为什么 哪 哪里 哪个 在 有 和 就 都 也 要 会 能 可以 请 请问 一下".split()
)


def fold(text: str) -> str:
    """NFKC, case-folded, whitespace collapsed: the form synonyms are matched in."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def stem(word: str) -> str:
    """Harman's S-stemmer: English plurals to singular ("returns" -> "return"), nothing more."""
    if len(word) <= 3 or not word.isascii():
        return word
    if word.endswith("ies") and not word.endswith(("eies", "aies")):
        return word[:-3] + "y"
    if word.endswith("es") and not word.endswith(("aes", "ees", "oes")):
        return word[:-1]
    if word.endswith("s") and not word.endswith(("us", "ss")):
        return word[:-1]
    return word


class Analyzer:
    """Turns entries and queries into the same tokens."""

    def __init__(
        self,
        synonyms: Mapping[str, str] | None = None,
        han_bigrams: bool = False,
        stem_english: bool = False,
        stop_words: bool = False,
    ) -> None:
        self.han_bigrams = han_bigrams
        self.stem_english = stem_english
        self.stop_words = stop_words
        self.canonical: dict[str, str] = {}
        for variant, value in (synonyms or {}).items():
            if fold(variant) and fold(value):
                self.canonical[fold(variant)] = fold(value)
        self.canonical = {variant: _resolve(variant, self.canonical) for variant in self.canonical}
        for value in set(self.canonical.values()):
            self.canonical.setdefault(value, value)  # the canonical word itself, too
        self.pattern = _alternation(self.canonical)

    def tokens(self, text: str) -> list[str]:
        """The search tokens of `text`, in order."""
        folded = fold(text)
        if self.pattern is None:
            return self._plain(folded)
        tokens: list[str] = []
        start = 0
        for match in self.pattern.finditer(folded):
            tokens += self._plain(folded[start : match.start()])
            tokens.append(self.canonical[match.group()])
            start = match.end()
        tokens += self._plain(folded[start:])
        return tokens

    def _plain(self, text: str) -> list[str]:
        words = tokenize(text)
        if self.stop_words:
            words = [w for w in words if w not in ENGLISH_STOP_WORDS]
        if self.stem_english:
            words = [stem(w) for w in words]
        if self.han_bigrams:
            for run in _HAN_RUN.findall(text):
                words += [BIGRAM + run[i : i + 2] for i in range(len(run) - 1)]
        return words


def _resolve(variant: str, canonical: Mapping[str, str]) -> str:
    """Follow a chain of synonyms ("sf" -> "顺丰" -> "express") to its end, cycles cut."""
    seen = {variant}
    value = canonical[variant]
    while value in canonical and value not in seen:
        seen.add(value)
        value = canonical[value]
    return value


def _alternation(canonical: Mapping[str, str]) -> re.Pattern[str] | None:
    """One regex for every variant, longest first so "sf express" wins over "sf".

    Latin variants match whole words only ("sf" not inside "sfx"); an edge of Chinese text needs
    no boundary, Chinese having no spaces, and a Latin word next to a Chinese one counts as
    separate ("sf快递").
    """
    if not canonical:
        return None
    parts = []
    for variant in sorted(canonical, key=len, reverse=True):
        before = r"(?<![^\W_" + HAN + "])" if _LATIN_TOKEN.match(variant[0]) else ""
        after = r"(?![^\W_" + HAN + "])" if _LATIN_TOKEN.match(variant[-1]) else ""
        parts.append(before + re.escape(variant) + after)
    return re.compile("|".join(parts))
