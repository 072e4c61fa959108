"""Load a bot's knowledge folder: FAQ files (`knowledge/*.yml`) and articles (`knowledge/*.md`).

A bot designer edits these by hand, so every problem in every file is reported at once as
`path:line:column: what is wrong` (README.md "Knowledge base"), with ruamel.yaml's positions:
invalid YAML, missing front matter or title, unknown keys (with the likely intended one), wrong
types, empty questions or answers, language codes of the wrong form, duplicate ids, non-UTF-8 files.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from knowledge.summary import first_paragraph, trim
from nlu.language import UNDETERMINED, detect_language

__all__ = ["Entry", "KnowledgeError", "check_knowledge", "load_entries"]

FAQ_KEYS = ("id", "questions", "answer", "tags", "language", "url")
ARTICLE_KEYS = ("id", "title", "language", "tags", "questions", "summary", "url")
# BCP 47 as bots use it: a 2-3 letter language, optional subtags ("zh", "en", "zh-TW", "zh-Hans").
LANGUAGE_CODE = re.compile(r"[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*")
_FRONT_MATTER = "---"
_PLACE = re.compile(r".*?:(\d+):(\d+): ")


class KnowledgeError(Exception):
    """Invalid knowledge files; `errors` lists every problem as `path:line:column: message`."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class Entry:
    """One FAQ entry or article, as the bot answers with it."""

    id: str  # FAQ `id`, or the article file's stem
    kind: str  # "faq" | "article"
    title: str  # article title; for a FAQ its first question
    questions: tuple[str, ...]  # FAQ phrasings / article front matter `questions`
    answer: dict[str, str]  # language -> full answer (an article: its body)
    summary: dict[str, str]  # language -> what the bot says
    tags: tuple[str, ...]
    url: str | None  # link to the full article
    path: str  # file, relative to the bot folder
    line: int


def load_entries(folder: Path, root: Path | None = None) -> list[Entry]:
    """Every FAQ entry and article of `folder` (none if it doesn't exist), in file order.

    Error messages name files relative to `root` when given. Raises KnowledgeError listing
    every problem of every file.
    """
    errors: list[str] = []
    entries: list[Entry] = []
    first_place: dict[str, str] = {}
    for path in knowledge_files(folder):
        reader = _FileReader(_shown(path, root), str(path.relative_to(folder.parent)))
        for entry, place in reader.read(path):
            if entry.id in first_place:
                reader.errors.append(
                    f"{place}: duplicate id {entry.id!r} (first at {first_place[entry.id]})"
                )
                continue
            first_place[entry.id] = place
            entries.append(entry)
        errors += sorted(reader.errors, key=_line_and_column)
    if errors:
        raise KnowledgeError(errors)
    return entries


def check_knowledge(folder: Path, root: Path | None = None) -> list[str]:
    """The problems of a knowledge folder (for `kefu check`); [] when it loads."""
    try:
        load_entries(folder, root)
    except KnowledgeError as e:
        return e.errors
    return []


def _shown(path: Path, root: Path | None) -> str:
    """The path as error messages name it: relative to `root` when it is inside it."""
    if root is not None and path.resolve().is_relative_to(root.resolve()):
        return str(path.resolve().relative_to(root.resolve()))
    return str(path)


def knowledge_files(folder: Path) -> list[Path]:
    """The folder's articles and FAQ files, sorted (none when the folder doesn't exist)."""
    patterns = ("*.md", "*.yml", "*.yaml")
    return sorted(p for pattern in patterns for p in folder.glob(pattern) if p.is_file())


# ---- one file --------------------------------------------------------------------------------


class _FileReader:
    """Reads one file into entries, collecting its errors with their places."""

    def __init__(self, shown: str, relative: str) -> None:
        self.shown = shown  # the path error messages name
        self.relative = relative
        self.errors: list[str] = []
        self.line_offset = 0  # lines before the YAML text (an article's opening `---`)

    def place(self, line: int, column: int) -> str:
        """`path:line:column` of a 0-based position in the YAML text."""
        return f"{self.shown}:{line + self.line_offset + 1}:{column + 1}"

    def error(self, position: tuple[int, int], message: str) -> None:
        self.errors.append(f"{self.place(*position)}: {message}")

    def read(self, path: Path) -> list[tuple[Entry, str]]:
        try:
            data = path.read_bytes()
        except OSError as e:
            self.error((0, 0), f"cannot read the file: {e.strerror}")
            return []
        text = self._decode(data)
        if text is None:
            return []
        if path.suffix == ".md":
            return self._article(text, path.stem)
        return self._faq_file(text)

    def _decode(self, data: bytes) -> str | None:
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            line = data.count(b"\n", 0, e.start)
            column = e.start - (data.rfind(b"\n", 0, e.start) + 1)
            self.error(
                (line, column), f"not UTF-8 text (byte 0x{data[e.start]:02x}); save as UTF-8"
            )
            return None

    def _yaml(self, text: str) -> Any:
        try:
            return YAML(typ="rt").load(text)
        except MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            where = (mark.line, mark.column) if mark else (0, 0)
            self.error(where, f"invalid YAML: {e.problem or e.context}")
            return None

    # ---- FAQ files ---------------------------------------------------------------------------

    def _faq_file(self, text: str) -> list[tuple[Entry, str]]:
        tree = self._yaml(text)
        if tree is None:
            return []
        if not isinstance(tree, CommentedMap) or "faq" not in tree:
            self.error(_node(tree), "a FAQ file is a mapping with a `faq:` list")
            return []
        for key in tree:
            if key != "faq":
                self.error(tree.lc.key(key), f"unknown top-level key {key!r} (expected `faq`)")
        items = tree["faq"]
        if not isinstance(items, CommentedSeq):
            where = tree.lc.key("faq") if items is None else tree.lc.value("faq")
            self.error(where, "`faq` must be a list of entries")
            return []
        found = []
        for index, item in enumerate(items):
            where = items.lc.item(index)
            if not isinstance(item, CommentedMap):
                self.error(where, "a FAQ entry is a mapping with `id`, `questions` and `answer`")
                continue
            entry = self._faq_entry(item, where)
            if entry is not None:
                found.append((entry, self.place(*where)))
        return found

    def _faq_entry(self, item: CommentedMap, where: tuple[int, int]) -> Entry | None:
        errors_before = len(self.errors)
        self._unknown_keys(item, FAQ_KEYS, "FAQ entry")
        for key in ("id", "questions", "answer"):
            if key not in item:
                self.error(where, f"FAQ entry without `{key}`")
        entry_id = self._text(item, "id")
        questions = self._texts(item, "questions", required=True)
        tags = self._texts(item, "tags")
        url = self._text(item, "url")
        answer = self._answer(item, questions)
        if len(self.errors) > errors_before or entry_id is None or answer is None:
            return None
        return Entry(
            id=entry_id,
            kind="faq",
            title=questions[0],
            questions=questions,
            answer=answer,
            summary=dict(answer),
            tags=tags,
            url=url,
            path=self.relative,
            line=where[0] + self.line_offset + 1,
        )

    def _answer(self, item: CommentedMap, questions: tuple[str, ...]) -> dict[str, str] | None:
        """The answer by language: a `{language: text}` map, or a string and its `language`
        (told, or detected from the answer and questions)."""
        if "answer" not in item:
            return None
        value = item["answer"]
        if isinstance(value, CommentedMap):
            if "language" in item:
                self.error(item.lc.key("language"), "`language` is for a plain-text answer only")
            if not value:
                self.error(item.lc.value("answer"), "empty answer")
            answer = {}
            for language, text in value.items():
                if self._language_code(language, value.lc.key(language)) is None:
                    continue
                if not isinstance(text, str) or not text.strip():
                    self.error(value.lc.value(language), f"the {language} answer must be text")
                    continue
                answer[language] = text.strip()
            return answer
        if not isinstance(value, str) or not value.strip():
            self.error(
                item.lc.value("answer"), "`answer` must be text or a map like {en: ..., zh: ...}"
            )
            return None
        language = self._text(item, "language")
        if language is not None:
            if self._language_code(language, item.lc.value("language")) is None:
                return None
        else:
            language = detect_language(" ".join([value, *questions]))
            if language == UNDETERMINED:
                self.error(
                    item.lc.key("answer"), "cannot tell the answer's language: add `language`"
                )
                return None
        return {language: value.strip()}

    # ---- articles ----------------------------------------------------------------------------

    def _article(self, text: str, stem: str) -> list[tuple[Entry, str]]:
        lines = text.splitlines(keepends=True)
        if not lines or lines[0].strip() != _FRONT_MATTER:
            self.error(
                (0, 0), "an article starts with front matter between `---` lines (title, language)"
            )
            return []
        end = next((i for i in range(1, len(lines)) if lines[i].strip() == _FRONT_MATTER), None)
        if end is None:
            self.error((0, 0), "the front matter is not closed by a `---` line")
            return []
        self.line_offset = 1
        errors_before = len(self.errors)
        front = self._yaml("".join(lines[1:end]))
        if len(self.errors) > errors_before:
            return []
        if front is None:
            front = CommentedMap()
        if not isinstance(front, CommentedMap):
            self.error(_node(front), "the front matter must be a mapping (title, language, ...)")
            return []
        return self._article_entry(front, "".join(lines[end + 1 :]).strip(), stem, end + 1)

    def _article_entry(
        self, front: CommentedMap, body: str, stem: str, body_line: int
    ) -> list[tuple[Entry, str]]:
        errors_before = len(self.errors)
        self._unknown_keys(front, ARTICLE_KEYS, "front matter")
        for key in ("title", "language"):
            if key not in front:
                self.errors.append(f"{self.shown}:1:1: article without `{key}` in its front matter")
        title = self._text(front, "title")
        language = self._text(front, "language")
        if language is not None:
            language = self._language_code(language, front.lc.value("language"))
        entry_id = self._text(front, "id") or stem
        questions = self._texts(front, "questions")
        tags = self._texts(front, "tags")
        summary = self._text(front, "summary")
        url = self._text(front, "url")
        if not body:
            self.error((body_line - 1, 0), "the article has no text after its front matter")
        if len(self.errors) > errors_before or title is None or language is None:
            return []
        entry = Entry(
            id=entry_id,
            kind="article",
            title=title,
            questions=questions,
            answer={language: body},
            summary={language: summary or trim(first_paragraph(body))},
            tags=tags,
            url=url,
            path=self.relative,
            line=1,
        )
        return [(entry, f"{self.shown}:1:1")]

    # ---- values ------------------------------------------------------------------------------

    def _unknown_keys(self, mapping: CommentedMap, known: Iterable[str], what: str) -> None:
        known = list(known)
        for key in mapping:
            if key in known:
                continue
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean `{close[0]}`?)" if close else f" (known: {', '.join(known)})"
            self.error(mapping.lc.key(key), f"unknown key {key!r} in {what}{hint}")

    def _text(self, mapping: CommentedMap, key: str) -> str | None:
        """A text value (numbers accepted as text, e.g. `id: 404`); None if absent or wrong."""
        if key not in mapping:
            return None
        value = mapping[key]
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.error(mapping.lc.value(key), f"`{key}` must be text")
            return None
        if not str(value).strip():
            self.error(mapping.lc.value(key), f"`{key}` is empty")
            return None
        return str(value).strip()

    def _texts(self, mapping: CommentedMap, key: str, required: bool = False) -> tuple[str, ...]:
        """A list of texts; an error for a non-list, a non-text item, or (`required`) none."""
        if key not in mapping:
            return ()
        value = mapping[key]
        if not isinstance(value, CommentedSeq):
            self.error(mapping.lc.value(key), f"`{key}` must be a list like [..., ...]")
            return ()
        texts = []
        for index, item in enumerate(value):
            if isinstance(item, str) and item.strip():
                texts.append(item.strip())
            else:
                self.error(value.lc.item(index), f"each of `{key}` must be non-empty text")
        if required and not value:
            self.error(mapping.lc.value(key), f"`{key}` is empty: give at least one")
        return tuple(texts)

    def _language_code(self, code: Any, where: tuple[int, int]) -> str | None:
        if isinstance(code, str) and LANGUAGE_CODE.fullmatch(code):
            return code
        self.error(where, f"{code!r} is not a language code like `en`, `zh` or `zh-TW`")
        return None


def _line_and_column(error: str) -> tuple[int, int]:
    """Where a `path:line:column: message` error points, to list a file's errors in order."""
    match = _PLACE.match(error)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def _node(node: Any) -> tuple[int, int]:
    return (node.lc.line, node.lc.col) if hasattr(node, "lc") else (0, 0)
