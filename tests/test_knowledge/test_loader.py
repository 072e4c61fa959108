"""Loading a bot's knowledge folder: FAQ files and articles, every error as path:line:column."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge import KnowledgeBase, KnowledgeError, check_knowledge

FAQ = """\
faq:
  - id: express-fee
    questions: ["How much is express shipping?", "顺丰加急要多少钱"]
    answer: {en: "Express shipping costs 15 yuan.", zh: "加急配送运费 15 元。"}
    tags: [shipping]
    url: https://shop.example/help/shipping
  - id: opening-hours
    questions:
      - 客服几点上班
    answer: 客服每天 9:00-21:00 在线。
"""

ARTICLE = """\
---
title: Returns and refunds
language: en
tags: [returns]
questions: ["How do I return an item?"]
---
# Returns

Items can be returned within
7 days of delivery, with their **tags**.

See [the form](https://shop.example/returns) to start.
"""


def write(folder: Path, name: str, text: str | bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def errors_of(folder: Path) -> list[str]:
    with pytest.raises(KnowledgeError) as caught:
        KnowledgeBase.load(folder, root=folder.parent)
    assert str(caught.value) == "\n".join(caught.value.errors)
    assert check_knowledge(folder, root=folder.parent) == caught.value.errors
    return caught.value.errors


def test_faq_entries_load_with_their_place(tmp_path: Path) -> None:
    write(tmp_path / "knowledge", "shipping.yml", FAQ)
    kb = KnowledgeBase.load(tmp_path / "knowledge")
    fee, hours = kb.entries
    assert fee.id == "express-fee"
    assert fee.kind == "faq"
    assert fee.title == "How much is express shipping?"
    assert fee.questions == ("How much is express shipping?", "顺丰加急要多少钱")
    assert fee.answer == {"en": "Express shipping costs 15 yuan.", "zh": "加急配送运费 15 元。"}
    assert fee.summary == fee.answer
    assert fee.tags == ("shipping",)
    assert fee.url == "https://shop.example/help/shipping"
    assert (fee.path, fee.line) == ("knowledge/shipping.yml", 2)
    # A plain-text answer without `language` is in the language it is written in.
    assert hours.answer == {"zh": "客服每天 9:00-21:00 在线。"}
    assert (hours.tags, hours.url, hours.line) == ((), None, 7)


def test_article_loads_with_a_summary_from_its_first_paragraph(tmp_path: Path) -> None:
    write(tmp_path / "knowledge", "returns.md", ARTICLE)
    (article,) = KnowledgeBase.load(tmp_path / "knowledge").entries
    assert (article.id, article.kind, article.title) == (
        "returns",
        "article",
        "Returns and refunds",
    )
    assert article.questions == ("How do I return an item?",)
    assert article.answer["en"].startswith("# Returns\n\nItems can be returned")
    # Heading skipped, lines joined, Markdown markup dropped: it is said in a chat.
    assert article.summary == {
        "en": "Items can be returned within 7 days of delivery, with their tags."
    }
    assert (article.path, article.line, article.url) == ("knowledge/returns.md", 1, None)


def test_article_front_matter_sets_id_summary_and_url(tmp_path: Path) -> None:
    write(
        tmp_path / "knowledge",
        "退货.md",
        "---\ntitle: 退货说明\nlanguage: zh-CN\nid: returns-zh\nsummary: 签收后 7 天内可退货。\n"
        "url: https://shop.example/zh/returns\n---\n签收后七天内\n可以申请退货。\n",
    )
    (article,) = KnowledgeBase.load(tmp_path / "knowledge").entries
    assert article.id == "returns-zh"
    assert article.answer == {"zh-CN": "签收后七天内\n可以申请退货。"}
    assert article.summary == {"zh-CN": "签收后 7 天内可退货。"}
    assert article.url == "https://shop.example/zh/returns"


def test_long_first_paragraph_is_cut_at_a_sentence_end(tmp_path: Path) -> None:
    body = " ".join(f"Sentence number {i} says something about refunds." for i in range(20))
    write(tmp_path / "knowledge", "long.md", f"---\ntitle: Long\nlanguage: en\n---\n{body}\n")
    (article,) = KnowledgeBase.load(tmp_path / "knowledge").entries
    summary = article.summary["en"]
    assert 150 < len(summary) <= 300
    assert summary.endswith("refunds.")


def test_missing_folder_is_an_empty_base(tmp_path: Path) -> None:
    kb = KnowledgeBase.load(tmp_path / "knowledge")
    assert kb.entries == ()
    assert check_knowledge(tmp_path / "knowledge") == []


def test_yaml_and_yml_files_and_articles_load_together(tmp_path: Path) -> None:
    folder = tmp_path / "knowledge"
    write(folder, "a.yml", FAQ)
    write(folder, "b.yaml", "faq:\n  - {id: b, questions: [hi], answer: hello, language: en}\n")
    write(folder, "returns.md", ARTICLE)
    write(folder, "notes.txt", "not knowledge")
    ids = [entry.id for entry in KnowledgeBase.load(folder).entries]
    assert ids == ["express-fee", "opening-hours", "b", "returns"]


def test_every_error_of_every_file_is_reported_with_its_place(tmp_path: Path) -> None:
    folder = tmp_path / "knowledge"
    write(
        folder,
        "a.yml",
        "faq:\n"
        "  - id: fee\n"
        "    qustions: [how much]\n"  # typo
        "    answer: {en: 15 yuan, chinese: 十五元}\n"
        "  - id: empty\n"
        "    questions: []\n"
        '    answer: ""\n'
        "  - id: typed\n"
        "    questions: how much\n"
        "    answer: [15]\n"
        "    tags: shipping\n"
        "  - id: fee\n"
        "    questions: [again]\n"
        "    answer: {en: again}\n"
        "  - just text\n",
    )
    write(
        folder, "b.yml", "faq:\n  - id: fee\n    questions: [x]\n    answer: {en: y}\n  - id: [\n"
    )
    write(folder, "c.md", "Just a body, no front matter.\n")
    write(folder, "d.md", "---\nlanguage: en\ntags: returns\n---\nBody.\n")
    write(folder, "e.md", "---\ntitle: Returns\nlanguage: english\n---\n\n")
    write(folder, "f.md", "---\ntitle: [unclosed\n---\nBody\n")
    write(folder, "g.yml", "faq:\n  - id: latin1\n    answer: caf\xe9\n".encode("latin-1"))
    write(folder, "h.yml", "questions: [no faq key]\n")
    assert errors_of(folder) == [
        "knowledge/a.yml:2:5: FAQ entry without `questions`",
        "knowledge/a.yml:3:5: unknown key 'qustions' in FAQ entry (did you mean `questions`?)",
        "knowledge/a.yml:4:27: 'chinese' is not a language code like `en`, `zh` or `zh-TW`",
        "knowledge/a.yml:6:16: `questions` is empty: give at least one",
        "knowledge/a.yml:7:13: `answer` must be text or a map like {en: ..., zh: ...}",
        "knowledge/a.yml:9:16: `questions` must be a list like [..., ...]",
        "knowledge/a.yml:10:13: `answer` must be text or a map like {en: ..., zh: ...}",
        "knowledge/a.yml:11:11: `tags` must be a list like [..., ...]",
        "knowledge/a.yml:15:5: a FAQ entry is a mapping with `id`, `questions` and `answer`",
        "knowledge/b.yml:6:1: invalid YAML: expected the node content, but found '<stream end>'",
        "knowledge/c.md:1:1: an article starts with front matter between `---` lines "
        "(title, language)",
        "knowledge/d.md:1:1: article without `title` in its front matter",
        "knowledge/d.md:3:7: `tags` must be a list like [..., ...]",
        "knowledge/e.md:3:11: 'english' is not a language code like `en`, `zh` or `zh-TW`",
        "knowledge/e.md:5:1: the article has no text after its front matter",
        "knowledge/f.md:3:1: invalid YAML: expected ',' or ']', but got '<stream end>'",
        "knowledge/g.yml:3:16: not UTF-8 text (byte 0xe9); save as UTF-8",
        "knowledge/h.yml:1:1: a FAQ file is a mapping with a `faq:` list",
    ]


def test_duplicate_ids_across_files_name_both_places(tmp_path: Path) -> None:
    folder = tmp_path / "knowledge"
    write(folder, "a.yml", "faq:\n  - id: returns\n    questions: [x]\n    answer: {en: y}\n")
    write(folder, "returns.md", "---\ntitle: Returns\nlanguage: en\n---\nBody.\n")
    assert errors_of(folder) == [
        "knowledge/returns.md:1:1: duplicate id 'returns' (first at knowledge/a.yml:2:5)"
    ]


def test_language_only_goes_with_a_plain_text_answer(tmp_path: Path) -> None:
    folder = tmp_path / "knowledge"
    write(
        folder,
        "a.yml",
        "faq:\n  - id: a\n    questions: [x]\n    answer: {en: y}\n    language: en\n"
        "  - id: b\n    questions: ['12']\n    answer: '15'\n",
    )
    assert errors_of(folder) == [
        "knowledge/a.yml:5:5: `language` is for a plain-text answer only",
        "knowledge/a.yml:8:5: cannot tell the answer's language: add `language`",
    ]


def test_error_paths_are_as_given_without_root(tmp_path: Path) -> None:
    folder = tmp_path / "knowledge"
    write(folder, "a.yml", "faq: {}\n")
    assert check_knowledge(folder) == [f"{folder / 'a.yml'}:1:6: `faq` must be a list of entries"]


def test_chinese_summary_joins_lines_without_a_space(tmp_path: Path) -> None:
    write(
        tmp_path / "knowledge",
        "退货.md",
        "---\ntitle: 退货\nlanguage: zh\n---\n## 退货说明\n\n签收后七天内\n可以申请 **退货**。\n\n其他。\n",
    )
    (article,) = KnowledgeBase.load(tmp_path / "knowledge").entries
    assert article.summary == {"zh": "签收后七天内可以申请 退货。"}
