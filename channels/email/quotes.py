"""The new part of a reply, for the agent and the bot: quoted mail and signatures removed,
so that a conversation shows what the customer wrote this time, not the whole thread again.
Pure functions on text.

    reply_text(text)                 the new part of a reply: quotes and signature stripped
    strip_quotes(text)               quotes only (what talon's extract_from_plain does)

Quotes and signatures are found line by line, after talon's idea (mailgun/talon, Apache-2.0):
a splitter ("On … wrote:", "在…写道：", "-----Original Message-----", "原始邮件", an Outlook
From/Sent/To/Subject block in English or Chinese, as QQ Mail, Foxmail, 163 and Outlook zh-CN
write them) ends the new text, unless ">" lines follow it and then more text: a reply written
below or between the quotes, which is kept. talon 1.4.4 installs here and passes its own 12
replies, but strips 1 of the 11 Chinese layouts in our tests, no signature, and pulls in numpy,
scipy, scikit-learn and cchardet; email_reply_parser 0.5.12 gets 9 of 12 and 5 of 11.
"""

from __future__ import annotations

import re

_QUOTE = re.compile(r"^\s*>")
_SEPARATOR = re.compile(r"^\s*[-_=*—–]{5,}\s*$")
_ORIGINAL = re.compile(
    r"^\s*[-_=]{2,}\s*(?:original message|original|原始邮件|原始郵件|原邮件)\s*[-_=]{2,}\s*$", re.I
)
# Keys of a quoted header block, by meaning: Outlook, QQ Mail, Foxmail, 163, Gmail, in
# English, Chinese (simplified and traditional), German, French and Spanish.
# fmt: off
_HEADER_KEYS = {
    "from": "from", "von": "from", "de": "from", "发件人": "from", "發件人": "from",
    "寄件者": "from", "寄件人": "from",
    "sent": "date", "date": "date", "gesendet": "date", "envoyé": "date", "enviado": "date",
    "发送时间": "date", "發送時間": "date", "时间": "date", "時間": "date", "日期": "date",
    "寄件日期": "date", "发送日期": "date",
    "to": "to", "an": "to", "à": "to", "para": "to", "收件人": "to", "收件者": "to",
    "cc": "cc", "抄送": "cc", "抄送人": "cc", "副本": "cc",
    "subject": "subject", "betreff": "subject", "objet": "subject", "asunto": "subject",
    "主题": "subject", "主題": "subject", "主旨": "subject",
}
# fmt: on
_HEADER_LINE = re.compile(
    r"^\s*\**\s*("
    + "|".join(sorted(map(re.escape, _HEADER_KEYS), key=len, reverse=True))
    + r")\s*\**\s*[:：]",
    re.I,
)
_WROTE_END = re.compile(
    r"(?:wrote|a écrit|schrieb|escribió|ha scritto|schreef|escreveu)\s*:\s*$", re.I
)
_WROTE_START = re.compile(r"^\s*(?:on|le|am|el|il|op|em)\s", re.I)
_ZH_WROTE_END = re.compile(r"(?:写道|寫道)\s*[:：]?\s*$")
_ZH_WROTE_START = re.compile(r"^\s*(?:在|于|於|\d{4}[年/.-])|[@<]")
_DATE_START = re.compile(r"^\s*\d{1,4}[./-]\d{1,2}[./-]\d{1,4}")
_YEAR_TIME_OR_ADDRESS = re.compile(r"\d{4}|\d:\d\d|@")
_MAX_SPLITTER_LINE = 400  # longer lines are text; also keeps regexes cheap on hostile input


def strip_quotes(text: str) -> str:
    """The text without quoted mail: ">" lines, and everything after a splitter line that
    starts a quoted original. After an attribution ("On … wrote:", "在…写道：") followed by
    ">" lines, text that comes after the quote is a reply written below it, and is kept."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    quoted = [bool(_QUOTE.match(line)) for line in lines]
    kept: list[str] = []
    i = 0
    while i < len(lines):
        found = _next_splitter(lines, quoted, i)
        end = found[0] if found else len(lines)
        kept += [line for line, q in zip(lines[i:end], quoted[i:end], strict=True) if not q]
        if found is None or not found[2]:
            break
        j = found[1]
        while j < len(lines) and not lines[j].strip():
            j += 1
        if j >= len(lines) or not quoted[j]:
            break
        i = j
    return "\n".join(kept).strip()


def _next_splitter(
    lines: list[str], quoted: list[bool], start: int
) -> tuple[int, int, bool] | None:
    """The first splitter at or after `start`: (first line, line after it, is an attribution)."""
    for i in range(start, len(lines)):
        line = lines[i]
        if quoted[i] or len(line) > _MAX_SPLITTER_LINE or not line.strip():
            continue
        if _ORIGINAL.match(line):
            return i, i + 1, False
        if _header_block(lines, quoted, i):
            above = i
            while above > start and not lines[above - 1].strip():
                above -= 1
            if above > start and _SEPARATOR.match(lines[above - 1]):  # Outlook's ____ line
                return above - 1, i + 1, False
            return i, i + 1, False
        first = _attribution(lines, quoted, start, i)
        if first is not None:
            return first, i + 1, True
    return None


def _header_block(lines: list[str], quoted: list[bool], i: int) -> bool:
    """Line i starts a quoted mail's header block (a long To: may wrap onto the next line):
    From with an address and a Sent/Date, To or Subject; or, as Outlook writes it for
    colleagues, From, Sent and Subject without addresses. "From: Beijing / To: Shanghai /
    Date: Monday", a customer's shipment, is none of these."""
    m = _HEADER_LINE.match(lines[i])
    if not m or _HEADER_KEYS[m.group(1).lower()] != "from":
        return False
    keys = {"from"}
    misses = 0
    for j in range(i + 1, min(i + 12, len(lines))):
        line = lines[j]
        m = _HEADER_LINE.match(line) if len(line) <= _MAX_SPLITTER_LINE else None
        if m:
            keys.add(_HEADER_KEYS[m.group(1).lower()])
            misses = 0
        elif not line.strip() or quoted[j] or (misses := misses + 1) > 1:
            break
    if "@" in lines[i]:
        return len(keys) >= 2
    return {"date", "subject"} <= keys


def _attribution(lines: list[str], quoted: list[bool], start: int, end: int) -> int | None:
    """The first line of an attribution that ends on line `end` (it may wrap over up to three
    lines), or None. It must name a year, a time or an address, so that "On second thought,
    here is what I wrote:" and "On 5 Nov I wrote:" stay text."""
    last = lines[end]
    english, chinese = _WROTE_END.search(last), _ZH_WROTE_END.search(last)
    if not (english or chinese or last.rstrip().endswith((":", "："))):
        return None
    for first in range(end, max(start, end - 2) - 1, -1):
        span = lines[first : end + 1]
        if any(quoted[first : end + 1]) or any(not s.strip() for s in span):
            return None
        joined = " ".join(s.strip() for s in span)
        if len(joined) > _MAX_SPLITTER_LINE or not _YEAR_TIME_OR_ADDRESS.search(joined):
            continue
        if english and _WROTE_START.match(span[0]):
            return first
        if chinese and _ZH_WROTE_START.search(span[0]):
            return first
        if _DATE_START.match(span[0]) and "@" in joined:  # "02.04.2012 14:20 Bob <b@x> написал:"
            return first
    return None


_SIGNATURE_DELIMITER = re.compile(r"^--\s?$")
_MOBILE_SIGNATURE = re.compile(
    r"^\s*(?:sent from my (?:[\w-]+\s*){1,4}|sent from (?:mail|outlook|yahoo mail)\b[\w ]{0,30}"
    r"|get outlook for (?:ios|android)|sent with sparrow\b.*"
    r"|(?:发自|来自)我的\s*\S{1,20}|发自\s*(?:网易邮箱大师|网易邮箱|手机QQ邮箱|QQ邮箱|Foxmail)\S{0,10}"
    r")[.!。]?\s*$",
    re.I,
)


def reply_text(text: str) -> str:
    """The new part of a reply: strip_quotes, then the signature: from a "-- " line on, and
    "Sent from my iPhone" / "发自我的华为手机"-style lines at the end."""
    lines = strip_quotes(text).split("\n")
    for i, line in enumerate(lines):
        if i > 0 and _SIGNATURE_DELIMITER.match(line):
            lines = lines[:i]
            break
    while lines and (not lines[-1].strip() or _MOBILE_SIGNATURE.match(lines[-1])):
        lines.pop()
    return "\n".join(lines).strip()
