"""Answer validation for `ask` steps: regex, choices and the number/email/phone/date/text types,
in English and Chinese, inside sentences and in full-width forms."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest

from flows.validators import TYPES, Choice, Verdict, validate

WEDNESDAY = date(2026, 3, 18)  # the fixed "today" of the date tables
MONDAY = date(2026, 3, 16)
ORDER = r"^\d{6,12}$"

YES_NO = (
    Choice("yes", ("y", "yeah", "是", "是的", "好的", "对")),
    Choice("no", ("n", "nope", "不", "不是", "不要", "不用")),
)
SHIPPING = (
    Choice("express", ("fast", "加急", "顺丰")),
    Choice("standard", ("normal", "普通", "标准")),
)


def accepted(value: Any) -> Verdict:
    return Verdict(ok=True, value=value)


REJECTED = Verdict(ok=False)


# ---- normalization, empty and free text -------------------------------------------------------


@pytest.mark.parametrize("answer", ["", "   ", "\u3000", "\t\n"])
@pytest.mark.parametrize(
    "rules",
    [{}, {"type": "text"}, {"regex": ".*"}, {"choices": YES_NO}] + [{"type": t} for t in TYPES],
)
def test_empty_answer_is_never_ok(answer: str, rules: dict[str, Any]) -> None:
    assert validate(answer, **rules) == REJECTED


@pytest.mark.parametrize(
    ("answer", "value"),
    [
        ("hello", "hello"),
        ("  I want a refund \n", "I want a refund"),
        ("我要退货", "我要退货"),
        ("\u3000你好\u3000", "你好"),  # ideographic space stripped
        ("ＡＢＣ１２３", "ＡＢＣ１２３"),  # as written
        ("你好，世界！", "你好，世界！"),  # free text keeps its full-width punctuation
    ],
)
@pytest.mark.parametrize("type_", [None, "text"])
def test_free_text_is_the_answer_as_written_stripped(
    answer: str, value: str, type_: str | None
) -> None:
    assert validate(answer, type=type_) == accepted(value)


# ---- regex -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "value"),
    [
        ("12345678", "12345678"),
        ("  123456789012 ", "123456789012"),
        ("my order is 12345678", "12345678"),
        ("My order number is 12345678.", "12345678"),
        ("order (12345678) please", "12345678"),
        ("order#12345678", "12345678"),
        ("No.12345678", "12345678"),
        ("订单号12345678", "12345678"),
        ("我的订单号是12345678，谢谢", "12345678"),
        ("订单号：１２３４５６７８。", "12345678"),  # full-width digits and colon
        ("１２３４５６７８", "12345678"),
        ("12345678 or 87654321", "12345678"),  # the first matching token
        ("123 then 1234567", "1234567"),
    ],
)
def test_regex_accepts(answer: str, value: str) -> None:
    assert validate(answer, regex=ORDER) == accepted(value)


@pytest.mark.parametrize(
    "answer",
    ["12345", "1234567890123", "no idea", "订单号12345", "我不知道", "12345-678", "abc12345678"],
)
def test_regex_rejects(answer: str) -> None:
    assert validate(answer, regex=ORDER) == REJECTED


@pytest.mark.parametrize(
    ("regex", "answer", "value"),
    [
        (r"\d{6,12}", "order 12345678", "12345678"),  # without anchors
        (r"^[A-Z]{2}\d{4}$", "ticket AB1234 please", "AB1234"),
        (r"^[A-Z]{2}\d{4}$", "工单ＡＢ１２３４", "AB1234"),
        (r"(?i)^[a-z]{2}\d{4}$", "ticket ab1234", "ab1234"),
        (r"^[A-Z]{2}-\d{4}$", "ref AB-1234.", "AB-1234"),  # punctuation inside a token is kept
        (r"^.+$", "anything at all", "anything at all"),  # the whole answer first
        (r"^[\u4e00-\u9fff]{2,4}$", "name: 张三", "张三"),
        (r"^[\u4e00-\u9fff]{2,4}$", "name李四", "李四"),
    ],
)
def test_regex_forms(regex: str, answer: str, value: str) -> None:
    assert validate(answer, regex=regex) == accepted(value)


def test_regex_is_case_sensitive() -> None:
    assert validate("ticket ab1234", regex=r"^[A-Z]{2}\d{4}$") == REJECTED


@pytest.mark.parametrize("regex", ["(", "[a-", "a{2,1}"])
def test_bad_regex_raises(regex: str) -> None:
    with pytest.raises(re.error):
        validate("anything", regex=regex)


def test_unknown_type_raises() -> None:
    with pytest.raises(ValueError, match="colour"):
        validate("red", type="colour")


# ---- choices ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "value"),
    [
        ("yes", "yes"),
        ("YES", "yes"),
        ("Yeah", "yes"),
        ("ｙｅｓ", "yes"),
        ("是", "yes"),
        ("好的", "yes"),
        ("no", "no"),
        ("Nope", "no"),
        ("不要", "no"),
        ("yes please", "yes"),  # a whole word inside the answer
        ("Yes!", "yes"),
        ("no thanks", "no"),
        ("好的，谢谢", "yes"),  # Han: a substring
        ("对的对的", "yes"),
        ("不用了谢谢", "no"),
        ("不是的", "no"),  # 是 lies inside the longer 不是: only "no" counts
        ("我不要", "no"),
    ],
)
def test_choices_yes_no(answer: str, value: str) -> None:
    assert validate(answer, choices=YES_NO) == accepted(value)


@pytest.mark.parametrize(
    "answer",
    [
        "maybe",
        "I don't know",  # "no" is not a whole word in "know"
        "nobody",
        "yesterday",
        "yes no",  # both appear: ambiguous
        "yes, no, maybe",
        "是不要",  # 是 and 不要 both appear
        "嗯",
        "随便",
    ],
)
def test_choices_yes_no_rejects(answer: str) -> None:
    assert validate(answer, choices=YES_NO) == REJECTED


@pytest.mark.parametrize(
    ("answer", "value"),
    [
        ("Express", "express"),
        ("fast please", "express"),
        ("I'd like standard shipping", "standard"),
        ("加急", "express"),
        ("我要顺丰", "express"),
        ("普通快递就行", "standard"),
        ("我要express", "express"),  # a Han neighbour is a word edge
        ("选标准的", "standard"),
    ],
)
def test_choices_shipping(answer: str, value: str) -> None:
    assert validate(answer, choices=SHIPPING) == accepted(value)


@pytest.mark.parametrize(
    "answer",
    [
        "express or standard?",
        "not fast, normal",
        "加急还是普通",
        "顺丰标准件",
        "expressway",  # not a whole word
        "slow",
    ],
)
def test_choices_ambiguous_or_unknown(answer: str) -> None:
    assert validate(answer, choices=SHIPPING) == REJECTED


def test_choice_value_is_returned_as_written() -> None:
    choices = (Choice("Express Delivery", ("快递",)), Choice("Pickup", ("自提",)))
    assert validate("express delivery", choices=choices) == accepted("Express Delivery")
    assert validate("我来自提", choices=choices) == accepted("Pickup")


def test_same_synonym_in_two_choices_is_ambiguous() -> None:
    choices = (Choice("a", ("same",)), Choice("b", ("same",)))
    assert validate("same", choices=choices) == REJECTED


def test_full_width_synonyms_are_normalized() -> None:
    choices = (Choice("plan_a", ("ＰＬＡＮ Ａ",)), Choice("plan_b", ("plan b",)))
    assert validate("plan a", choices=choices) == accepted("plan_a")


# ---- number ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "value"),
    [
        ("3", 3),
        ("about 3", 3),
        ("3 please", 3),
        ("3.5", 3.5),
        ("3.0", 3),
        (".5", 0.5),
        ("-2", -2),
        ("minus? -2.5 degrees", -2.5),
        ("1,200", 1200),
        ("1,234,567", 1234567),
        ("I want 2, no 3", 2),  # the first number
        ("１２", 12),  # full-width
        ("３．５", 3.5),
        ("3个", 3),
        ("要3件", 3),
        ("一共3个", 3),  # Arabic digits win
        ("1.5万", 15000),
        ("三", 3),
        ("两", 2),
        ("零", 0),
        ("十", 10),
        ("十二", 12),
        ("二十", 20),
        ("二十五", 25),
        ("一百零八", 108),
        ("一百一十", 110),
        ("两百", 200),
        ("一百二", 120),
        ("三千五", 3500),
        ("一千零五", 1005),
        ("一千零五十", 1050),
        ("一万", 10000),
        ("一万二", 12000),
        ("两万五千", 25000),
        ("二十万", 200000),
        ("二〇二六", 2026),
        ("三点五", 3.5),
        ("负三", -3),
        ("我要三个", 3),
        ("一共两件", 2),  # 一共 is a word, not the number one
        ("大概十个吧", 10),
    ],
)
def test_number_accepts(answer: str, value: int | float) -> None:
    verdict = validate(answer, type="number")
    assert verdict == accepted(value)
    assert type(verdict.value) is type(value)  # int when integral


@pytest.mark.parametrize(
    "answer", ["many", "three", "很多", "不知道", "三四个", "百", "万", "-", "a few"]
)
def test_number_rejects(answer: str) -> None:
    assert validate(answer, type="number") == REJECTED


# ---- email -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "value"),
    [
        ("alice@example.com", "alice@example.com"),
        ("Alice.Smith@Example.COM", "Alice.Smith@example.com"),  # the domain is lowercased
        ("user+tag@mail.example.co.uk", "user+tag@mail.example.co.uk"),
        ("my email is bob@qq.com.", "bob@qq.com"),
        ("我的邮箱是abc123@163.com谢谢", "abc123@163.com"),
        ("邮箱：ａｂｃ＠ＱＱ．ｃｏｍ", "abc@qq.com"),  # full-width
        ("<carol_x@sub-domain.example.org>", "carol_x@sub-domain.example.org"),
    ],
)
def test_email_accepts(answer: str, value: str) -> None:
    assert validate(answer, type="email") == accepted(value)


@pytest.mark.parametrize(
    "answer",
    [
        "alice",
        "alice@",
        "@example.com",
        "alice@example",
        "alice@example.c",
        "alice@@example.com",
        "a..b@example.com",
        ".alice@example.com",
        "alice@-example.com",
        "alice at example dot com",
        "我没有邮箱",
    ],
)
def test_email_rejects(answer: str) -> None:
    assert validate(answer, type="email") == REJECTED


# ---- phone -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "value"),
    [
        ("13812345678", "+8613812345678"),
        ("138 1234 5678", "+8613812345678"),
        ("138-1234-5678", "+8613812345678"),
        ("+86 138 1234 5678", "+8613812345678"),
        ("+8613812345678", "+8613812345678"),
        ("8613812345678", "+8613812345678"),
        ("0086 138-1234-5678", "+8613812345678"),
        ("(+86) 19912345678", "+8619912345678"),
        ("我的手机号是13812345678", "+8613812345678"),
        ("手机：１３８１２３４５６７８", "+8613812345678"),  # full-width
        ("call me on 150 0000 1111 please", "+8615000001111"),
        ("订单12345678，电话13812345678", "+8613812345678"),
        ("12345678 13812345678", "+8613812345678"),
        ("13812345678 2", "+8613812345678"),  # the longest run of groups that is a number
        ("+1 (415) 555-2671", "+14155552671"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+44 (0)20 7946 0958", "+442079460958"),
        ("+852 9123.4567", "+85291234567"),
        ("+49 30 1234567", "+49301234567"),
        ("+86 10 1234 5678", "+861012345678"),  # a Beijing landline written with +86
    ],
)
def test_phone_accepts(answer: str, value: str) -> None:
    assert validate(answer, type="phone") == accepted(value)


@pytest.mark.parametrize(
    "answer",
    [
        "12345678901",  # 12x is not a mobile prefix
        "1381234567",  # 10 digits
        "138123456789",  # 12 digits
        "010-12345678",  # landline without +86
        "(415) 555-2671",  # no + and not Chinese
        "001 415 555 2671",  # 00 prefix other than 0086
        "+123456",  # 6 digits
        "+1234567890123456",  # 16 digits
        "+86 12345678901",  # +86 but not a mobile or landline
        "+86 1381234567",
        "no phone",
        "我没有手机",
    ],
)
def test_phone_rejects(answer: str) -> None:
    assert validate(answer, type="phone") == REJECTED


# ---- date ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "value"),
    [
        # absolute dates (year given)
        ("2026-12-01", "2026-12-01"),
        ("2026/12/1", "2026-12-01"),
        ("2026.12.1", "2026-12-01"),
        ("２０２６－１２－０１", "2026-12-01"),  # full-width
        ("2025-01-05", "2025-01-05"),  # a past date with a year stays as written
        ("2026年12月1日", "2026-12-01"),
        ("2026年12月1号", "2026-12-01"),
        ("2026 年 12 月 1 日", "2026-12-01"),
        ("２０２６年１２月１日", "2026-12-01"),
        ("二〇二六年十二月一日", "2026-12-01"),
        ("26年12月1日", "2026-12-01"),
        ("1 December 2026", "2026-12-01"),
        ("1st December 2026", "2026-12-01"),
        ("the 1st of December 2026", "2026-12-01"),
        ("December 1, 2026", "2026-12-01"),
        ("december 1st 2026", "2026-12-01"),
        ("Dec. 1, 2026", "2026-12-01"),
        ("deliver on 2026-12-01 please", "2026-12-01"),
        ("我想2026年12月1日到货", "2026-12-01"),
        # no year: this year, or next year when already past (today is 2026-03-18)
        ("12月1日", "2026-12-01"),
        ("12月1号", "2026-12-01"),
        ("十二月一日", "2026-12-01"),
        ("3月18日", "2026-03-18"),  # today is not past
        ("3月19日", "2026-03-19"),
        ("3月17日", "2027-03-17"),
        ("3月1号", "2027-03-01"),
        ("1月1日", "2027-01-01"),
        ("Dec 1", "2026-12-01"),
        ("1 Dec", "2026-12-01"),
        ("March 18", "2026-03-18"),
        ("Mar 1", "2027-03-01"),
        ("Jan 2nd", "2027-01-02"),
        ("sometime around Sept 9", "2026-09-09"),
        # relative words
        ("today", "2026-03-18"),
        ("Tomorrow", "2026-03-19"),
        ("yesterday", "2026-03-17"),
        ("the day after tomorrow", "2026-03-20"),
        ("day before yesterday", "2026-03-16"),
        ("tomorrow morning please", "2026-03-19"),
        ("今天", "2026-03-18"),
        ("明天", "2026-03-19"),
        ("后天", "2026-03-20"),
        ("大后天", "2026-03-21"),
        ("昨天", "2026-03-17"),
        ("前天", "2026-03-16"),
        ("明天下午3点", "2026-03-19"),
        ("能不能后天送到", "2026-03-20"),
        # weekdays: the next such day strictly after today (a Wednesday)
        ("next monday", "2026-03-23"),
        ("Next Friday", "2026-03-20"),
        ("next wednesday", "2026-03-25"),
        ("friday", "2026-03-20"),
        ("on Sunday please", "2026-03-22"),
        ("周三", "2026-03-25"),
        ("星期三", "2026-03-25"),
        ("礼拜五", "2026-03-20"),
        ("周日", "2026-03-22"),
        ("星期天", "2026-03-22"),
        ("周一", "2026-03-23"),
        # 下周X: that day of next calendar week
        ("下周一", "2026-03-23"),
        ("下周三", "2026-03-25"),
        ("下周日", "2026-03-29"),
        ("下个星期五", "2026-03-27"),
        ("这周五", "2026-03-20"),
        # the earliest date in the answer wins
        ("today or tomorrow", "2026-03-18"),
    ],
)
def test_date_accepts(answer: str, value: str) -> None:
    assert validate(answer, type="date", today=WEDNESDAY) == accepted(value)


@pytest.mark.parametrize(
    ("answer", "value"),
    [
        ("周三", "2026-03-18"),  # the coming Wednesday
        ("next wednesday", "2026-03-18"),
        ("下周三", "2026-03-25"),  # Wednesday of next week, not the day after tomorrow
        ("下下周三", "2026-04-01"),
        ("上周三", "2026-03-11"),
        ("周一", "2026-03-23"),  # strictly after today
        ("monday", "2026-03-23"),
        ("下周一", "2026-03-23"),
        ("本周日", "2026-03-22"),
    ],
)
def test_weekdays_from_a_monday(answer: str, value: str) -> None:
    assert validate(answer, type="date", today=MONDAY) == accepted(value)


@pytest.mark.parametrize(
    ("answer", "today", "value"),
    [
        ("2024-02-29", WEDNESDAY, "2024-02-29"),  # leap year
        ("2000-02-29", WEDNESDAY, "2000-02-29"),  # divisible by 400
        ("February 29, 2028", WEDNESDAY, "2028-02-29"),
        ("2028年2月29日", WEDNESDAY, "2028-02-29"),
        ("2月29日", date(2027, 3, 1), "2028-02-29"),  # next year is a leap year
        ("2月29日", date(2028, 1, 10), "2028-02-29"),  # this year is
        ("Feb 29", date(2028, 2, 29), "2028-02-29"),
        ("明天", date(2028, 2, 28), "2028-02-29"),
        ("明天", date(2026, 2, 28), "2026-03-01"),
        ("明天", date(2026, 12, 31), "2027-01-01"),
        ("1月1日", date(2026, 12, 31), "2027-01-01"),
        ("12月31日", date(2026, 12, 31), "2026-12-31"),
    ],
)
def test_leap_years_and_year_ends(answer: str, today: date, value: str) -> None:
    assert validate(answer, type="date", today=today) == accepted(value)


@pytest.mark.parametrize(
    "answer",
    [
        "2026-02-30",
        "2026-02-29",  # not a leap year
        "1900-02-29",  # divisible by 100, not 400
        "2026-13-01",
        "2026/00/10",
        "2026年2月30日",
        "2026年13月1日",
        "3月32日",
        "2月29日",  # neither 2026 nor 2027 has one
        "February 30",
        "31 April 2026",
        # ambiguous numeric forms: day/month order is unknown
        "12/01/2026",
        "01/12/2026",
        "1-12-2026",
        "01.12.26",
        "12/01",
        # not dates
        "soon",
        "whenever",
        "过几天",
        "下个月",
        "2026",
        "December",
        "12345678",
        "226年12月1日",  # a year that is neither 2 nor 4 digits is not ignored
    ],
)
def test_date_rejects(answer: str) -> None:
    assert validate(answer, type="date", today=WEDNESDAY) == REJECTED


def test_date_defaults_to_the_real_today() -> None:
    assert validate("today", type="date") == accepted(date.today().isoformat())


# ---- several rules ---------------------------------------------------------------------------


def test_all_rules_must_pass() -> None:
    numbered = (Choice("1", ("one", "一")), Choice("2", ("two", "二")), Choice("30"))
    assert validate("2", choices=numbered, type="number") == accepted("2")  # choices win
    assert validate("two", choices=numbered, type="number") == REJECTED  # not a number
    assert validate("30", choices=numbered, type="number", regex=r"\d") == REJECTED
    assert validate("30", choices=numbered, type="number", regex=r"\d+") == accepted("30")


def test_type_is_more_specific_than_regex() -> None:
    assert validate("order 00123456", regex=ORDER, type="number") == accepted(123456)
    assert validate("order 00123", regex=ORDER, type="number") == REJECTED
    assert validate("订单号12345678", regex=ORDER, type="text") == accepted("12345678")
    assert validate("2026-12-01", regex=r"^2026-.*", type="date") == accepted("2026-12-01")
    assert validate("2025-12-01", regex=r"^2026-.*", type="date") == REJECTED


def test_long_answers_stay_fast() -> None:
    noise = "1 " * 5000 + "2-" * 5000
    for type_ in TYPES:
        validate(noise, type=type_, today=WEDNESDAY)  # returns quickly (no quadratic search)
    assert validate(noise, type="phone") == REJECTED
    assert validate(noise + " 13812345678", type="phone") == accepted("+8613812345678")
    assert validate(noise + ", 13812345678", type="phone") == accepted("+8613812345678")
