"""What the bot says for an article: the front matter's `summary`, or else the first paragraph
of its Markdown body as plain text (chat channels show Markdown as typed), cut to about one chat
bubble at a sentence end."""

from __future__ import annotations

import re

from nlu.tokenize import HAN

__all__ = ["SUMMARY_CHARS", "first_paragraph", "trim"]

SUMMARY_CHARS = 300  # about what fits in one chat bubble
_HAN_EDGE = re.compile(f"[{HAN}]")
_SENTENCE_END = re.compile(r"[。！？!?]|\.(?=\s|$)")

_MARKUP = [
    (re.compile(r"!?\[([^\]]*)\]\([^)]*\)"), r"\1"),  # links and images: their text
    (re.compile(r"(\*\*|__|`)"), ""),
    (re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+"), ""),  # list markers
]


def first_paragraph(body: str) -> str:
    """The first paragraph of a Markdown body that is not a heading, as plain text."""
    for paragraph in re.split(r"\n\s*\n", body):
        lines = [line.strip() for line in paragraph.splitlines()]
        lines = [line for line in lines if line and not line.startswith("#")]
        if lines:
            text = lines[0]
            for line in lines[1:]:
                # A line break inside Chinese text is no space; between words it is.
                glue = "" if _HAN_EDGE.match(text[-1]) and _HAN_EDGE.match(line[0]) else " "
                text += glue + line
            for pattern, replacement in _MARKUP:
                text = pattern.sub(replacement, text)
            return text.strip()
    return ""


def trim(text: str, limit: int = SUMMARY_CHARS) -> str:
    """`text` cut to about `limit` characters: at the last sentence end in the second half,
    else at a space, else anywhere, with an ellipsis when a sentence is cut."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    ends = [m.end() for m in _SENTENCE_END.finditer(head) if m.end() > limit // 2]
    if ends:
        return head[: ends[-1]].strip()
    space = head.rfind(" ")
    cut = head[:space] if space > limit // 2 else head[: limit - 1]
    return cut.rstrip(" ,，、;；:：") + "…"
