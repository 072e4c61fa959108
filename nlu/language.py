"""Per-message language detection between Chinese and English (the demo bot's two languages).

What carries no language is left out before counting: URLs and bare domains, email addresses,
@mentions and #hashtags (names chosen for a platform, not sentences), ids and codes (any run of
letters and digits joined by ``-_./:+`` that holds a digit: SF1234567890, JD0001234,
order-2024-0517, AB12CD34, v1.2, 5kg, 3pm), unit abbreviations after a number (``5 kg``,
``20 USD``, ``3 pm``), numbers, punctuation and emoji. A message made only of those is
"und", so the conversation keeps its language (hub.core.pipeline ``reply_language``).
"""

from __future__ import annotations

import re
import unicodedata

from nlu.tokenize import HAN

__all__ = ["UNDETERMINED", "detect_language"]

UNDETERMINED = "und"  # BCP 47 for "undetermined": no word in any script
_HAN_CHAR = re.compile(f"[{HAN}]")
_ALNUM = f"[^\\W_{HAN}]"  # a letter or digit of a script other than Chinese
_TLDS = (
    "com|cn|net|org|io|co|me|info|biz|edu|gov|app|shop|store|top|xyz|site|online|dev|ai|"
    "hk|tw|mo|jp|kr|sg|uk|us|de|fr|eu|ca|au|ru|in"
)
# Removed first, in this order; what they cover carries no language.
_NO_SIGNAL = re.compile(
    "|".join(
        [
            r"(?:https?|ftp)://\S+",  # a URL
            r"www\.\S+",
            r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+",  # an email address
            rf"(?<![\w@])[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.(?:{_TLDS})\b(?:/\S*)?",  # a domain
            r"(?<!\w)@[\w.-]+",  # an @mention
            r"(?<!\w)#[^\s#]+#?",  # a #hashtag (Weibo's #话题# too)
        ]
    ),
    re.IGNORECASE,
)
# A token of letters and digits, possibly joined by -_./:+ (an id, a code, a word, a number).
_TOKEN = re.compile(rf"{_ALNUM}+(?:[-_./:+]{_ALNUM}+)*")
_DIGIT = re.compile(r"\d")
# Abbreviations that, after a number, are a unit or a currency, not an English word.
UNITS = frozenset(
    "kg g mg lb lbs oz t cm mm m km in ft ml l pcs pc x am pm h hr hrs min s "
    "usd rmb cny hkd eur gbp jpy yuan kb mb gb tb k w v mah".split()
)


def detect_language(text: str, default: str = UNDETERMINED) -> str:
    """Return "zh" when Han characters dominate ``text``, "en" otherwise, ``default`` if neither.

    Words in Latin letters are English, Han characters Chinese. Mixed text goes to the script
    that dominates, counting one Han character against one word of another script (a Han
    character carries about a word's meaning): "我的iPhone订单到哪了" is "zh", "where is my
    订单" is "en"; a tie goes to "zh", whose writers mix in English words far more often than
    the reverse. Text with no word (an order or tracking number, an id, a URL, an email
    address, an emoji; see the module's docstring) gets ``default`` so the caller can keep the
    conversation's language.
    """
    normalized = unicodedata.normalize("NFKC", text)
    kept = _NO_SIGNAL.sub(" ", normalized)
    han = len(_HAN_CHAR.findall(kept))
    words = 0
    number_end = -1  # where the last number (or id) ended
    for match in _TOKEN.finditer(kept):
        token = match.group()
        if _DIGIT.search(token):
            number_end = match.end()  # an id, a code or a number: no language
            continue
        unit = token.casefold() in UNITS and number_end >= 0
        if not (unit and not kept[number_end : match.start()].strip()):
            words += 1
        number_end = -1
    if not han and not words:
        return default
    return "zh" if han >= words else "en"
