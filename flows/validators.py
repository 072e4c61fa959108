"""Validating the customer's answer to an `ask` step (docs/flows.md).

    validate(answer, regex=..., choices=[Choice(...)], type=..., today=...) -> Verdict(ok, value)

The answer is NFKC-normalized and stripped first, so full-width digits, letters and punctuation
(`１２３`, `ＡＢＣ`, `＠`, `，`) count as their ASCII forms, and the stored value is normalized;
a free-text answer (no rule, or `type: text` alone) is stored as written, only stripped.
An empty answer is never ok. Customers answer in sentences ("my order is 12345678", "订单号
12345678"), so every rule below looks for its value *inside* the answer, not only as the whole.

regex (`validate:` in a flow)
    `re.fullmatch` on the whole answer; if that fails, on each token of the answer in order, and
    the first token that matches is the value. Tokens are the maximal runs between whitespace
    and between Han and non-Han characters ("订单号12345678" -> "订单号", "12345678"); each
    token is tried as it is, then without punctuation/symbols at its ends ("12345678。",
    "(12345678)"). Only when no such token matches are the pieces between punctuation tried
    ("order#12345678", "No.12345678" -> "12345678"). Anchors (`^...$`) are harmless.
    The regex is case-sensitive (use `(?i)` for otherwise); an empty regex counts as none.
    A bad regex raises `re.error`.

choices
    The whole answer equal (case-insensitively) to a choice's value or one of its synonyms
    picks that choice. Otherwise a value/synonym that appears inside the answer picks it: as a
    whole word for Latin text ("no" is not found in "know"; a Han character next to it counts
    as a word boundary), as a substring when it contains Han characters ("好的" in "好的谢谢").
    This picks only when exactly ONE choice appears: "express or standard" is not ok.
    Matches are taken like words are segmented, left to right and longest first; a match
    overlapping one already taken does not count. So with yes=[是, 是的] and no=[不是],
    "不是的" picks no (不是 is taken, 是 and 是的 overlap it). Designers: give negated forms
    as synonyms ("不好", "不要", "不是") or "好"/"是" will collide with them. The value is
    the choice's value.

type: number
    The first number in the answer: "about 3" -> 3, "3.5" -> 3.5, ".5" -> 0.5, "-2" -> -2,
    "1,200" -> 1200 (a comma only as a thousands separator), "1.5万" -> 15000.
    Without Arabic digits, Chinese numerals (零〇一二两三四五六七八九十百千万, 负 for minus,
    点 for the decimal point): "三" -> 3, "十二" -> 12, "两百" -> 200, "一千零五" -> 1005,
    "一百二" -> 120, "二〇二六" -> 2026, "三点五" -> 3.5. Arabic digits win over Chinese
    numerals anywhere in the answer ("一共3个" -> 3), and common words that contain numerals
    are skipped (一共 一下 一起 一样 一些 一直 一定 一般 一旦 一切 万一 十分 唯一 统一).
    Two bare digits without a unit ("三四个", "three or four") are ambiguous: not ok.
    English number words are not understood. The value is an int when integral ("3.0" -> 3),
    else a float.

type: email
    The first plausible address in the answer (local@domain.tld, ASCII, no spaces, no empty
    or dot-edged parts, a TLD of 2+ letters). The domain is lowercased, the local part kept.

type: phone
    Mainland-China mobiles: 11 digits 1[3-9]xxxxxxxxx, with optional +86 / 86 / 0086, spaces,
    dashes, dots, parentheses -> "+8613812345678". International numbers written with a
    leading "+" and 7-15 digits (spaces, dashes, dots, parentheses, a "(0)" trunk digit
    allowed) -> "+<digits>". A "+86" number must be a valid mobile or landline
    ("+86 10 1234 5678"). Anything else is not ok: national numbers of other countries,
    Chinese landlines without +86, "00" prefixes other than 0086.

type: date
    An ISO "YYYY-MM-DD" string. Understood (inside sentences too; the earliest one wins):
      2026-12-01, 2026/12/1, 2026.12.1 (year first, one separator kind)
      2026年12月1日, 2026年12月1号, 二〇二六年十二月一日, 26年12月1日 (two digits: 20xx)
      12月1日, 12月1号, 十二月一日                 (no year: see below)
      1 December 2026, 1st of Dec 2026, December 1, 2026, Dec. 1st 2026, Dec 1, 1 Dec
      today tonight tomorrow yesterday, (the) day after tomorrow, (the) day before yesterday
      今天 今日 今晚 明天 明日 明早 明晚 后天 大后天 昨天 昨日 昨晚 前天 大前天
      monday / next monday ...        the next such day strictly after today (last monday:
                                      the last one strictly before today)
      周三 星期三 礼拜三 (周日/周天/星期天)  the next such day strictly after today
      下周三 下星期三 下个礼拜三            the Wednesday of next calendar week (weeks start
                                        on Monday), so on a Monday 下周三 is 9 days away
                                        while 周三 and "next wednesday" are 2 days away;
      下下周三, 上周三                     two weeks on, last week;
      这周三, 本周三                       this week's Wednesday (may be before today)
    Without a year the date is this year's, or next year's when it is already past relative
    to `today` (today itself is not past); "2月29日" finds the next Feb 29 of those two years.
    `today` defaults to date.today(). Impossible dates (2026-02-30, 2026年13月1日) are not ok.
    Ambiguous numeric forms (12/01/2026, 01-12-26, 12/01) are NOT accepted: day/month order
    differs between customers; an answer whose first date-like text is one is not ok.

type: text (or no regex, choices or type)
    Any non-empty answer is ok; the value is the (normalized, stripped) answer.

Several rules together (e.g. `choices` and `type: number`) must all pass; the value comes from
the most specific: choices, then type, then regex. `type: text` adds nothing to a regex or
choices (the value still comes from them). An unknown type raises ValueError.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

__all__ = ["TYPES", "Choice", "Verdict", "validate"]

TYPES = ("number", "email", "phone", "date", "text")


@dataclass(frozen=True)
class Choice:
    value: str  # what is stored in the slot
    synonyms: tuple[str, ...] = ()  # other words that pick it, any language ("yes", "是", "好的")


@dataclass(frozen=True)
class Verdict:
    ok: bool
    value: Any = None  # the normalized value to store


NOT_OK = Verdict(ok=False)


def validate(
    answer: str,
    *,
    regex: str | None = None,
    choices: Sequence[Choice] = (),
    type: str | None = None,
    today: date | None = None,
) -> Verdict:
    """Whether `answer` satisfies the ask step's rules, and the value to store (see module doc)."""
    if type is not None and type not in TYPES:
        raise ValueError(f"unknown answer type {type!r}; expected one of {', '.join(TYPES)}")
    pattern = re.compile(regex) if regex else None
    text = normalize(answer)
    if not text:
        return NOT_OK
    verdicts: list[Verdict] = []  # most specific first
    if choices:
        verdicts.append(_choice(text, choices))
    if type is not None and type != "text":
        verdicts.append(_TYPE_CHECKS[type](text, today or date.today()))
    if pattern is not None:
        verdicts.append(_regex(text, pattern))
    if not verdicts:  # free text: kept as written (only stripped), "，" stays "，"
        return Verdict(ok=True, value=answer.strip())
    if not all(v.ok for v in verdicts):
        return NOT_OK
    return verdicts[0]


def normalize(answer: str) -> str:
    """NFKC (full-width forms to ASCII), then stripped."""
    return unicodedata.normalize("NFKC", answer).strip()


# ---- characters ------------------------------------------------------------------------------

# CJK ideographs (with extension A, compatibility ideographs, the supplementary planes) and 〇
HAN = "\u3007\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_HAN_CHAR = re.compile(f"[{HAN}]")
_TOKENS = re.compile(rf"[{HAN}]+|[^\s{HAN}]+")


def _is_han(ch: str) -> bool:
    return _HAN_CHAR.match(ch) is not None


def _is_punct(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "PS"


def _strip_punct(token: str) -> str:
    start, end = 0, len(token)
    while start < end and _is_punct(token[start]):
        start += 1
    while end > start and _is_punct(token[end - 1]):
        end -= 1
    return token[start:end]


def _split_punct(token: str) -> list[str]:
    pieces: list[str] = []
    current: list[str] = []
    for ch in token:
        if _is_punct(ch):
            if current:
                pieces.append("".join(current))
            current = []
        else:
            current.append(ch)
    if current:
        pieces.append("".join(current))
    return pieces


# ---- regex -----------------------------------------------------------------------------------


def _regex(text: str, pattern: re.Pattern[str]) -> Verdict:
    tokens = _TOKENS.findall(text)
    candidates = [text]
    for token in tokens:
        candidates += [token, _strip_punct(token)]
    for token in tokens:
        candidates += _split_punct(token)
    for candidate in candidates:
        if candidate and pattern.fullmatch(candidate):
            return Verdict(ok=True, value=candidate)
    return NOT_OK


# ---- choices ---------------------------------------------------------------------------------


def _terms(choice: Choice) -> list[str]:
    terms = (normalize(t).casefold() for t in (choice.value, *choice.synonyms))
    return list(dict.fromkeys(t for t in terms if t))


def _occurrences(text: str, term: str) -> Iterator[tuple[int, int]]:
    """Spans of `term` in `text`: anywhere when it has Han characters, else as a whole word."""
    han = any(_is_han(ch) for ch in term)
    start = text.find(term)
    while start >= 0:
        end = start + len(term)
        if han or (_word_edge(text, start - 1, term[0]) and _word_edge(text, end, term[-1])):
            yield start, end
        start = text.find(term, start + 1)


def _word_edge(text: str, i: int, edge: str) -> bool:
    """Whether text[i], next to a term whose edge character is `edge`, ends a word there."""
    if not edge.isalnum() or i < 0 or i >= len(text):
        return True
    ch = text[i]
    return not ch.isalnum() or _is_han(ch)


def _choice(text: str, choices: Sequence[Choice]) -> Verdict:
    folded = text.casefold()
    terms = [_terms(c) for c in choices]
    exact = [c for c, ts in zip(choices, terms, strict=True) if folded in ts]
    if exact:
        return Verdict(ok=True, value=exact[0].value) if len(exact) == 1 else NOT_OK
    matches = sorted(  # (start, end, choice index): leftmost first, then longest
        ((start, end, i) for i, ts in enumerate(terms) for term in ts
         for start, end in _occurrences(folded, term)),
        key=lambda m: (m[0], m[0] - m[1]),
    )  # fmt: skip
    found: set[int] = set()
    taken = (-1, 0)  # the span of the last match taken
    for start, end, i in matches:  # leftmost-longest, like word segmentation
        if start >= taken[1] or (start, end) == taken:  # the same span twice: both count
            found.add(i)
            taken = (start, end)
    if len(found) != 1:
        return NOT_OK
    return Verdict(ok=True, value=choices[found.pop()].value)


# ---- number ----------------------------------------------------------------------------------

_ARABIC = re.compile(  # sign, whole part (1,200 or 1200 or none before .5), fraction, 万
    r"(?:(?<![0-9A-Za-z])([-−]))?"
    r"(\d{1,3}(?:,\d{3})+(?!\d)|\d+|(?<![0-9A-Za-z])(?=\.\d))(?:\.(\d+))?(?:\s*(万))?"
)
_CN_DIGITS = {
    "零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4,
    "五": 5, "六": 6, "七": 7, "八": 8, "九": 9,
}  # fmt: skip
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_NUMERAL = "".join(_CN_DIGITS) + "".join(_CN_UNITS) + "万"
_CN_NUMBER = re.compile(rf"(负)?([{_CN_NUMERAL}]+)(?:点([{''.join(_CN_DIGITS)}]+))?")
_NOT_NUMBERS = re.compile("一共|一下|一起|一样|一些|一直|一定|一般|一旦|一切|万一|十分|唯一|统一")


def _number_value(number: Decimal) -> int | float:
    return int(number) if number == number.to_integral_value() else float(number)


def _number(text: str, today: date) -> Verdict:
    m = _ARABIC.search(text)
    if m:
        sign, whole, fraction, wan = m.groups()
        number = Decimal((whole.replace(",", "") or "0") + ("." + fraction if fraction else ""))
        number *= -1 if sign else 1
        number *= 10000 if wan else 1
        return Verdict(ok=True, value=_number_value(number))
    m = _CN_NUMBER.search(_NOT_NUMBERS.sub(" ", text))
    if not m:
        return NOT_OK
    negative, integer, fraction = m.groups()
    whole = _cn_int(integer)
    if whole is None:
        return NOT_OK
    number = Decimal(whole)
    if fraction:
        number += Decimal("0." + "".join(str(_CN_DIGITS[c]) for c in fraction))
    return Verdict(ok=True, value=_number_value(-number if negative else number))


def _cn_int(numeral: str) -> int | None:
    """一千零五 -> 1005, 十二 -> 12, 两百 -> 200, 一万二 -> 12000, 二〇二六 -> 2026; None if
    malformed or ambiguous (三四: "three or four")."""
    if all(ch in _CN_DIGITS for ch in numeral):
        if len(numeral) == 1:
            return _CN_DIGITS[numeral]
        if len(numeral) == 2 and not any(_CN_DIGITS[ch] == 0 for ch in numeral):
            return None
        return int("".join(str(_CN_DIGITS[ch]) for ch in numeral))
    total = section = digit = 0
    last_unit, after_unit, zero = 1, False, False
    for ch in numeral:
        if ch in _CN_DIGITS:
            if digit and not after_unit:
                return None  # two digits in a row inside a numeral with units
            digit, zero = _CN_DIGITS[ch], zero or _CN_DIGITS[ch] == 0
            after_unit = False
        elif ch in _CN_UNITS:
            unit = _CN_UNITS[ch]
            if digit == 0:
                if unit != 10 or after_unit:
                    return None  # 百 or 千 without a digit
                digit = 1  # 十二 = 一十二
            section += digit * unit
            digit, last_unit, after_unit, zero = 0, unit, True, False
        else:  # 万
            section += digit
            if section == 0 or total:
                return None
            total, section, digit = section * 10000, 0, 0
            last_unit, after_unit, zero = 10000, True, False
    if digit and last_unit >= 100 and not zero:
        digit *= last_unit // 10  # 一百二 = 120, 三千五 = 3500, 一万二 = 12000
    return total + section + digit


# ---- email -----------------------------------------------------------------------------------

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+@-])([A-Za-z0-9._%+-]+)@"
    r"([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})(?![A-Za-z0-9@_-])"
)


def _email(text: str, today: date) -> Verdict:
    for m in _EMAIL.finditer(text):
        local, domain = m.groups()
        if local.startswith(".") or local.endswith(".") or ".." in local:
            continue
        labels = domain.split(".")
        if any(not 0 < len(x) <= 63 or x[0] == "-" or x[-1] == "-" for x in labels):
            continue
        if len(local) > 64 or len(m.group(0)) > 254:
            continue
        return Verdict(ok=True, value=f"{local}@{domain.lower()}")
    return NOT_OK


# ---- phone -----------------------------------------------------------------------------------

_PHONE = re.compile(r"(?<![0-9A-Za-z+])(?:\(?\+)?\d(?:[ \t().\-]{0,3}\d)*\)?")
_CN_MOBILE = re.compile(r"1[3-9]\d{9}")
_CN_LANDLINE = re.compile(r"(?:10|2\d)\d{8}|[3-9]\d{2}\d{7,8}")


def _phone(text: str, today: date) -> Verdict:
    for m in _PHONE.finditer(text):
        groups = m.group(0).split()
        for start in range(len(groups)):  # the longest run of groups that is a number
            end, digits = start, 0
            while end < len(groups) and digits <= 17:  # no number has more (0086 + 11)
                digits += sum(ch.isdigit() for ch in groups[end])
                end += 1
            for stop in range(end, start, -1):
                number = _phone_number(" ".join(groups[start:stop]))
                if number:
                    return Verdict(ok=True, value=number)
    return NOT_OK


def _phone_number(written: str) -> str | None:
    plus = written.lstrip("(").startswith("+")
    if plus:
        written = written.replace("(0)", "")
    digits = re.sub(r"\D", "", written)
    if not plus:
        m = re.fullmatch(r"(?:0086|86)?(1[3-9]\d{9})", digits)
        return "+86" + m.group(1) if m else None
    if digits.startswith("86"):
        national = digits[2:]
        if _CN_MOBILE.fullmatch(national) or _CN_LANDLINE.fullmatch(national):
            return "+" + digits
        return None
    if 7 <= len(digits) <= 15 and not digits.startswith("0"):
        return "+" + digits
    return None


# ---- date ------------------------------------------------------------------------------------

_MONTHS = {
    "january": 1, "february": 2, "march": 3, "april": 4, "may": 5, "june": 6, "july": 7,
    "august": 8, "september": 9, "october": 10, "november": 11, "december": 12,
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "jun": 6, "jul": 7, "aug": 8, "sep": 9,
    "sept": 9, "oct": 10, "nov": 11, "dec": 12,
}  # fmt: skip
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_WEEKDAYS = {
    name: i
    for i, name in enumerate(
        ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    )
}
_CN_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
_RELATIVE = {
    "the day after tomorrow": 2, "day after tomorrow": 2,
    "the day before yesterday": -2, "day before yesterday": -2,
    "today": 0, "tonight": 0, "tomorrow": 1, "yesterday": -1,
    "大后天": 3, "后天": 2, "明天": 1, "明日": 1, "明早": 1, "明晚": 1,
    "今天": 0, "今日": 0, "今晚": 0,
    "昨天": -1, "昨日": -1, "昨晚": -1, "前天": -2, "大前天": -3,
}  # fmt: skip


def _spaced(words: str) -> str:
    return r"\s+".join(map(re.escape, words.split()))


_CN_SMALL = "〇零一二两三四五六七八九十"
_L, _R = r"(?<![A-Za-z0-9])", r"(?![A-Za-z0-9])"  # word edges that let Han text touch
_ORD = r"(?:st|nd|rd|th)?"

_ISO = re.compile(r"(?<![\d.\-/])(\d{4})([-/.])(\d{1,2})\2(\d{1,2})(?![\d])")
_AMBIGUOUS = re.compile(  # 12/01/2026, 01-12-26, 1.12.2026, 12/01 (not 10.30 or 3-5: times, ranges)
    r"(?<![\d.\-/])\d{1,2}(?:([-/.])\d{1,2}\1\d{2,4}|/\d{1,2})(?![\d])"
)
_CN_YEAR = r"\d{4}|\d{2}|[〇零一二三四五六七八九]{4}|[〇零一二三四五六七八九]{2}"
_CN_DATE = re.compile(
    rf"(?<![\d{_CN_SMALL}年])(?:({_CN_YEAR})\s*年\s*)?"
    rf"(\d{{1,2}}|[{_CN_SMALL}]{{1,3}})\s*月\s*(\d{{1,2}}|[{_CN_SMALL}]{{1,3}})\s*[日号號]"
)
_DMY = re.compile(rf"{_L}(\d{{1,2}}){_ORD}\s*(?:of\s+)?({_MONTH})\.?(?:,?\s*(\d{{4}}))?{_R}", re.I)
_MDY = re.compile(rf"{_L}({_MONTH})\.?\s*(\d{{1,2}}){_ORD}(?:,?\s*(\d{{4}}))?{_R}", re.I)
_RELATIVE_WORD = re.compile(
    "|".join(
        rf"{_L}{_spaced(w)}{_R}" if w.isascii() else re.escape(w)
        for w in sorted(_RELATIVE, key=len, reverse=True)
    ),
    re.I,
)
_WEEKDAY = re.compile(rf"{_L}(?:(next|last)\s+)?({'|'.join(_WEEKDAYS)}){_R}", re.I)
_CN_WEEKDAY = re.compile(
    rf"(上上个?|上个?|下下个?|下个?|这个?|本)?(?:周|星期|礼拜)([{''.join(_CN_WEEKDAYS)}])"
)

DateFound = tuple[int, int, date | None]  # start, end, the date (None: not a valid date)


def _date(text: str, today: date) -> Verdict:
    found: list[DateFound] = []
    for finder in _DATE_FINDERS:
        found += finder(text, today)
    if not found:
        return NOT_OK
    _, _, day = min(found, key=lambda f: (f[0], f[0] - f[1]))  # earliest, then longest
    return Verdict(ok=True, value=day.isoformat()) if day else NOT_OK


def _make(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _without_year(month: int, day: int, today: date) -> date | None:
    """This year's date, or next year's if this year's is past or does not exist (Feb 29)."""
    this_year = _make(today.year, month, day)
    if this_year is not None and this_year >= today:
        return this_year
    return _make(today.year + 1, month, day)


def _small_number(written: str) -> int | None:
    return int(written) if written.isdigit() else _cn_int(written)


def _iso(text: str, today: date) -> Iterator[DateFound]:
    for m in _ISO.finditer(text):
        y, _, mo, d = m.groups()
        yield m.start(), m.end(), _make(int(y), int(mo), int(d))


def _ambiguous(text: str, today: date) -> Iterator[DateFound]:
    for m in _AMBIGUOUS.finditer(text):
        yield m.start(), m.end(), None


def _cn_date(text: str, today: date) -> Iterator[DateFound]:
    for m in _CN_DATE.finditer(text):
        y, mo, d = m.groups()
        month, day = _small_number(mo), _small_number(d)
        if month is None or day is None:
            yield m.start(), m.end(), None
        elif y is None:
            yield m.start(), m.end(), _without_year(month, day, today)
        else:
            year = int("".join(str(_CN_DIGITS.get(ch, ch)) for ch in y))  # 二〇二六 -> 2026
            year += 2000 if len(y) == 2 else 0  # 26年 -> 2026
            yield m.start(), m.end(), _make(year, month, day)


def _english_date(text: str, today: date) -> Iterator[DateFound]:
    for pattern, order in ((_DMY, (1, 2, 3)), (_MDY, (2, 1, 3))):
        for m in pattern.finditer(text):
            d, mo, y = (m.group(i) for i in order)
            month = _MONTHS[mo.lower()]
            day = _without_year(month, int(d), today) if y is None else _make(int(y), month, int(d))
            yield m.start(), m.end(), day


def _relative(text: str, today: date) -> Iterator[DateFound]:
    for m in _RELATIVE_WORD.finditer(text):
        key = re.sub(r"\s+", " ", m.group(0).lower())
        yield m.start(), m.end(), today + timedelta(days=_RELATIVE[key])


def _next_weekday(weekday: int, today: date) -> date:
    """The first such weekday strictly after today."""
    return today + timedelta(days=(weekday - today.weekday() - 1) % 7 + 1)


def _weekday(text: str, today: date) -> Iterator[DateFound]:
    for m in _WEEKDAY.finditer(text):
        day = _next_weekday(_WEEKDAYS[m.group(2).lower()], today)
        if (m.group(1) or "").lower() == "last":
            day -= timedelta(weeks=1)  # the last such day strictly before today
        yield m.start(), m.end(), day
    monday = today - timedelta(days=today.weekday())
    for m in _CN_WEEKDAY.finditer(text):
        prefix, name = m.groups()
        weekday = _CN_WEEKDAYS[name]
        if not prefix:
            day = _next_weekday(weekday, today)
        else:  # a calendar week: 下周 next, 下下周 the one after, 上周 last, 这周/本周 this
            weeks = prefix.count("下") - prefix.count("上")
            day = monday + timedelta(weeks=weeks, days=weekday)
        yield m.start(), m.end(), day


_DATE_FINDERS: tuple[Callable[[str, date], Iterator[DateFound]], ...] = (
    _iso, _ambiguous, _cn_date, _english_date, _relative, _weekday,
)  # fmt: skip


def _text(text: str, today: date) -> Verdict:
    return Verdict(ok=True, value=text)


_TYPE_CHECKS: dict[str, Callable[[str, date], Verdict]] = {
    "number": _number,
    "email": _email,
    "phone": _phone,
    "date": _date,
    "text": _text,
}
