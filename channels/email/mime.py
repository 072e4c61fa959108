"""The low layer every part of a mail is read through: bytes to text whatever the charset
label says, RFC 2047 header words, raw header values, addresses, Message-IDs and MIME parts.
content.py (the mail) and reports.py (delivery reports) both build on it; it imports neither.

    decode_text(data, charset)       bytes to text, surviving wrong and missing charset labels
    header_text(value)               a header value with encoded words and raw 8-bit decoded
    part_text(part)                  one MIME text part decoded (transfer encoding and charset)

Charsets (decode_text, also for RFC 2047 words and raw 8-bit headers): a gb2312/gbk label is
read as gb18030, its superset, which real "gb2312" mail needs; a label that fails strictly is
tried as UTF-8, then gb18030, then charset-normalizer's guess, then itself with U+FFFD. Valid
UTF-8 under another label is a mislabel when the label is single-byte or the UTF-8 reading
holds CJK characters, and UTF-8 wins; gb18030 is only guessed for bytes with runs of high
bytes, so a Latin-1 "Lütkebohle" doesn't become Chinese.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email.utils
import re
from email.message import Message
from typing import Any

from charset_normalizer import from_bytes

MAX_HEADER = 16_384  # characters of one header field we read
MAX_PARTS = 500  # MIME parts we look at in one mail


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def printable(text: str) -> str:
    """Without control characters: a NUL from a binary part would make PostgreSQL refuse
    the whole message, and none of them is text a person wrote."""
    return _CONTROL.sub("", text)


# ---- charsets ---------------------------------------------------------------------------

# Labels Python doesn't know, as mailers write them.
_LABELS = {"x-gbk": "gbk", "gb_2312-80": "gb2312", "x-gb2312": "gb2312", "cn-gb": "gb2312"}
# Supersets: mail labelled with the narrow charset routinely uses the wide one's characters.
_WIDER = {"gb2312": "gb18030", "gbk": "gb18030", "big5": "big5hkscs", "euc_kr": "cp949"}
# Text codecs that are no charset (they would interpret backslashes or host names).
_REFUSED = {"unicode-escape", "raw-unicode-escape", "punycode", "idna", "undefined"}
# Charsets in which ASCII bytes are not ASCII text.
_NOT_ASCII_SAFE = ("utf-16", "utf-32", "utf-7", "hz", "iso2022")
_DOUBLE_HIGH = re.compile(rb"[\x80-\xff]{2}")
_BEYOND_2_BYTES = re.compile("[^\x00-\u07ff]")


def decode_text(data: bytes, declared: str | None) -> str:
    """Bytes as text. The declared charset strictly (gb2312/gbk read as gb18030; UTF-8 wins
    when the label is a mislabel, see below), then UTF-8, then gb18030, then
    charset-normalizer's guess, then the declared one with U+FFFD."""
    codec = _codec(declared)
    if data.isascii() and not (codec or "").startswith(_NOT_ASCII_SAFE):
        return data.decode("ascii")
    if codec is not None:
        text = _strict(data, codec)
        if text is not None:
            # Valid UTF-8 under another label is a mislabel (mail_test_12) when the label is
            # single-byte (one character per byte: Latin text almost never forms UTF-8), or
            # when it reads as characters from U+0800 (CJK): GBK text does that for 0.1% of
            # two-character strings and practically never for longer ones.
            utf8 = _strict(data, "utf-8-sig")
            if utf8 is not None and (len(text) == len(data) or _BEYOND_2_BYTES.search(utf8)):
                return utf8
            return text
    text = _strict(data, "utf-8-sig")
    # gb18030 decodes nearly anything; only text with runs of high bytes may be Chinese
    # (Latin-1 words have lone ones: "L\xfctkebohle" is not "L黷kebohle").
    if text is None and _DOUBLE_HIGH.search(data):
        text = _strict(data, "gb18030")
    if text is None:
        text = _guess(data)
    if text is None:
        text = data.decode(codec or "utf-8", errors="replace")
    return text


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    name = label.strip().strip("\"'").lower()
    try:
        info = codecs.lookup(_LABELS.get(name, name))
    except (LookupError, ValueError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _REFUSED:
        return None
    return _WIDER.get(info.name, info.name)


def _strict(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec)
    except (UnicodeError, LookupError):
        return None


def _guess(data: bytes) -> str | None:
    try:
        best = from_bytes(data).best()
    except Exception:  # a guesser's bug must not lose the mail
        return None
    return str(best) if best is not None else None


_ENCODED_WORD = re.compile(rb"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")


def header_text(value: str) -> str:
    """A header value as text: RFC 2047 encoded words and raw 8-bit bytes (which compat32
    keeps as surrogates) both go through decode_text. Adjacent words of one charset are
    decoded together, since mailers split a multibyte character across two words."""
    data = value[:MAX_HEADER].encode("utf-8", "surrogateescape")
    data = re.sub(rb"\r?\n(?=[ \t])", b"", data).replace(b"\r", b" ").replace(b"\n", b" ")
    pieces: list[tuple[bytes, str | None]] = []
    pos = word_end = 0
    for m in _ENCODED_WORD.finditer(data):
        gap = data[pos : m.start()]
        if not (word_end and pos == word_end and not gap.strip()):  # RFC 2047 6.2
            _add_piece(pieces, gap, None)
        charset = m.group(1).split(b"*")[0].decode("ascii", "replace").lower()
        _add_piece(pieces, _decode_word(m.group(2), m.group(3)), charset)
        pos = word_end = m.end()
    _add_piece(pieces, data[pos:], None)
    return "".join(decode_text(chunk, charset) for chunk, charset in pieces)


def _add_piece(pieces: list[tuple[bytes, str | None]], data: bytes, charset: str | None) -> None:
    if not data:
        return
    if pieces and pieces[-1][1] == charset:
        pieces[-1] = (pieces[-1][0] + data, charset)
    else:
        pieces.append((data, charset))


def _decode_word(encoding: bytes, text: bytes) -> bytes:
    if encoding in (b"q", b"Q"):
        return binascii.a2b_qp(text, header=True)
    text = re.sub(rb"[^A-Za-z0-9+/]", b"", text)  # padding and junk; padded again below
    text = text[: len(text) - (len(text) % 4 == 1)]
    try:
        return base64.b64decode(text + b"=" * (-len(text) % 4))
    except binascii.Error:
        return b""


# ---- headers ----------------------------------------------------------------------------


def raw_headers(message: Message, name: str) -> list[str]:
    """A header's values as they came: compat32's get() would wrap 8-bit ones in Header."""
    name = name.lower()
    return [str(v)[:MAX_HEADER] for k, v in message.raw_items() if k.lower() == name]


def raw_header(message: Message, name: str) -> str | None:
    """A header's first value as it came (raw_headers), or None."""
    values = raw_headers(message, name)
    return values[0] if values else None


def addresses(message: Message, name: str) -> list[tuple[str, str]]:
    """(display name, lowercased address) pairs. Parsed before decoding, so a decoded name
    with a comma or quote can't split an address."""
    pairs = []
    for raw_name, raw_address in email.utils.getaddresses(raw_headers(message, name)):
        address = "".join(printable(header_text(raw_address)).split()).lower()
        if "@" in address:
            pairs.append((" ".join(printable(header_text(raw_name)).split()), address))
    return pairs


def first_address(message: Message, name: str) -> tuple[str | None, str | None]:
    """The first (display name or None, address) of a header, (None, None) if none."""
    pairs = addresses(message, name)
    if not pairs:
        return None, None
    return pairs[0][0] or None, pairs[0][1]


_ANGLED = re.compile(r"<([^<>]*)>")


def message_ids(value: str) -> list[str]:
    """Message-IDs in a header, in order, as "<id>" without whitespace; bare ids with an @
    (some mailers drop the brackets) are bracketed."""
    ids = ["<" + "".join(m.group(1).split()) + ">" for m in _ANGLED.finditer(value)]
    if not ids:
        ids = [f"<{token}>" for token in value.split() if "@" in token and "<" not in token]
    return list(dict.fromkeys(i for i in ids if len(i) > 2))


# ---- MIME parts -------------------------------------------------------------------------


def part_text(part: Message) -> str:
    """One MIME part as text: transfer encoding undone, charset decoded (decode_text), and
    line ends as "\\n". An HTML part without a charset parameter uses its <meta> charset."""
    data = payload_bytes(part)
    charset = param_text(part.get_param("charset"))
    if charset is None and part.get_content_type() == "text/html":
        meta = re.search(rb"<meta[^>]{0,200}charset\s*=\s*[\"']?\s*([\w.:-]+)", data[:4096], re.I)
        charset = meta.group(1).decode("ascii") if meta else None
    return decode_text(data, charset).replace("\r\n", "\n").replace("\r", "\n")


def subparts(part: Message) -> list[Message]:
    """A multipart's (or message/rfc822's) parts, [] for a leaf. Only a multipart is asked:
    a leaf's get_payload() decodes it with its charset label, which may raise."""
    if not part.is_multipart():
        return []
    payload = part.get_payload()
    return [p for p in payload if isinstance(p, Message)][:MAX_PARTS]


def payload_bytes(part: Message) -> bytes:
    """A part's content as bytes, transfer encoding undone; b"" when there is none."""
    if part.is_multipart():  # message/rfc822: the enclosed mail, as bytes again
        try:
            return b"".join(p.as_bytes() for p in subparts(part))
        except Exception:  # the generator can fail on what the parser accepted
            return b""
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def param_text(value: Any) -> str | None:
    """A MIME parameter as text: the stdlib gives RFC 2231 values as (charset, language,
    latin-1 text of the bytes), others as the raw string."""
    if value is None:
        return None
    if isinstance(value, tuple):
        charset, _, text = value
        try:
            data = str(text).encode("latin-1", "surrogateescape")
        except UnicodeEncodeError:
            return str(text)
        return decode_text(data, charset or None)
    return header_text(email.utils.unquote(str(value)))
