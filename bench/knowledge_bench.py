"""Knowledge benchmark: the hub's knowledge search vs. a plain TF-IDF baseline, speed and quality.

Quality: customer questions written against the demo bot's knowledge (examples/shop/knowledge)
in bench/data/knowledge_questions.yml, each with the entry that answers it, its language and its
split (`dev` to choose settings, `test` to report). Both systems run in the same run:

- kefu: `knowledge.KnowledgeBase` with the demo NLU data's synonyms, searched with the
  question's language, as the hub's fallback does.
- baseline: scikit-learn's TfidfVectorizer over the same tokens (nlu.tokenize) of each entry's
  title, questions and answer as one text, cosine similarity; no synonyms, no fields.

Figures: hit@1, hit@3 and MRR; for kefu also how many questions get a confident hit, how many
of those are right, and how many unrelated questions get one anyway (CLINC150 out-of-scope and
SMP2019-ECDT sentences from ../shared/data: `oos_val` + `dev` with dev, `oos_test` + `test`
with test).

Speed: a 2,000-entry base synthesized from the demo knowledge and real sentences of CLINC150
(English, grouped by intent into FAQ entries) and SMP2019-ECDT (Chinese, by domain.intent),
then 2,000+ single queries from their test splits: build seconds, memory, p50/p99 per query.

`--tune` prints the dev-split measurements that chose the index settings (IndexSettings) and
the confidence threshold.

    python bench/knowledge_bench.py [--data ../shared/data] [--questions FILE]
                                    [--knowledge DIR] [--tune]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from sklearn.feature_extraction.text import TfidfVectorizer

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

import nlu_data  # noqa: E402
import report as common  # noqa: E402

from knowledge import CONFIDENT_MARGIN, MIN_CONFIDENCE, Entry, IndexSettings, KnowledgeBase  # noqa: E402
from knowledge.loader import load_entries  # noqa: E402
from nlu import TrainingData  # noqa: E402
from nlu.language import detect_language  # noqa: E402
from nlu.tokenize import tokenize, warm_up  # noqa: E402

QUESTIONS = BENCH / "data" / "knowledge_questions.yml"
SHOP = ROOT / "examples" / "shop"
SPEED_ENTRIES = 2000
SPEED_QUERIES = 2400
Ranked = list[tuple[str, float, bool]]  # (entry id, score, confident), best first


@dataclass(frozen=True)
class Question:
    text: str
    expected: str | None  # None: nothing in the base answers it
    language: str
    split: str


def load_questions(path: Path) -> list[Question]:
    rows = yaml.safe_load(path.read_text(encoding="utf-8"))["questions"]
    return [Question(r["text"], r.get("expected"), r["language"], r["split"]) for r in rows]


# ---- the two systems -------------------------------------------------------------------------


class Kefu:
    name = "kefu (this repo)"

    def __init__(
        self,
        entries: Sequence[Entry],
        synonyms: dict[str, str] | None,
        settings: IndexSettings | None = None,
        min_confidence: float = MIN_CONFIDENCE,
    ) -> None:
        self.base = KnowledgeBase(entries, synonyms, min_confidence, settings)

    def rank(self, text: str, language: str | None, k: int = 5) -> Ranked:
        hits = self.base.search(text, k=k, language=language)
        return [(h.entry.id, h.score, h.confident) for h in hits]


class Baseline:
    name = "baseline (TF-IDF, cosine)"

    def __init__(self, entries: Sequence[Entry]) -> None:
        self.ids = [entry.id for entry in entries]
        self.vectorizer = TfidfVectorizer(analyzer=tokenize)
        self.matrix = self.vectorizer.fit_transform([document(e) for e in entries])

    def rank(self, text: str, language: str | None, k: int = 5) -> Ranked:
        scores = (self.matrix @ self.vectorizer.transform([text]).T).toarray().ravel()
        best = np.argsort(-scores, kind="stable")[:k]
        return [(self.ids[i], float(scores[i]), False) for i in best if scores[i] > 0]


def document(entry: Entry) -> str:
    return "\n".join([entry.title, *entry.questions, *entry.answer.values()])


# ---- quality ---------------------------------------------------------------------------------


def quality(rank: Callable[[str, str | None], Ranked], questions: Sequence[Question]) -> dict:
    """hit@1, hit@3, MRR (over the top 5) on answerable questions, plus confident figures."""
    answerable = [q for q in questions if q.expected]
    ranks, confident, right = [], 0, 0
    for q in answerable:
        ranked = rank(q.text, q.language)
        ids = [entry_id for entry_id, _, _ in ranked]
        ranks.append(ids.index(q.expected) + 1 if q.expected in ids else None)
        if ranked and ranked[0][2]:
            confident += 1
            right += ranked[0][0] == q.expected
    n = len(answerable) or 1
    return {
        "n": len(answerable),
        "hit1": sum(r == 1 for r in ranks) / n,
        "hit3": sum(r is not None and r <= 3 for r in ranks) / n,
        "mrr": sum(1 / r for r in ranks if r) / n,
        "confident_rate": confident / n,
        "confident_precision": right / confident if confident else float("nan"),
    }


def unrelated_confident(rank: Callable[[str, str | None], Ranked], texts: Sequence[str]) -> float:
    """The share of unrelated questions that get a confident hit (the bot answers wrongly)."""
    found = 0
    for text, language in texts_with_language(texts):
        ranked = rank(text, language)
        found += bool(ranked and ranked[0][2])
    return found / (len(texts) or 1)


def texts_with_language(texts: Sequence[str]) -> list[tuple[str, str]]:
    """Each text with its language as the hub detects it (it searches with that language)."""
    return [(text, detect_language(text, "en")) for text in texts]


def unrelated(data: Path | None, split: str) -> dict[str, list[str]]:
    """Questions no shop answers, by source: CLINC150's out-of-scope queries (English; many
    are about banks and cards, close to a shop's payments) and SMP2019-ECDT (Chinese: music,
    travel, weather...). None when the data is absent."""
    if data is None or not (data / "clinc150").exists():
        return {}
    oos = f"oos_{'val' if split == 'dev' else 'test'}"
    return {
        f"CLINC150 {oos}": nlu_data.clinc150(data)[oos][0],
        f"SMP2019 {split}": nlu_data.smp2019(data)[split][0],
    }


# ---- tuning on dev ---------------------------------------------------------------------------

VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("defaults", {}),
    ("k1 = 0.9", {"k1": 0.9}),
    ("k1 = 1.5", {"k1": 1.5}),
    ("k1 = 2.0", {"k1": 2.0}),
    ("b = 0.5", {"b": 0.5}),
    ("b = 0.9", {"b": 0.9}),
    ("questions as one field (not each apart)", {"questions_apart": False}),
    ("title weight 0", {"title_weight": 0.0}),
    ("title weight 2", {"title_weight": 2.0}),
    ("question weight 1", {"question_weight": 1.0}),
    ("question weight 2", {"question_weight": 2.0}),
    ("question weight 4", {"question_weight": 4.0}),
    ("body weight 0", {"body_weight": 0.0}),
    ("body weight 0.5", {"body_weight": 0.5}),
    ("body weight 2", {"body_weight": 2.0}),
    ("all fields weight 1", {"title_weight": 1.0, "question_weight": 1.0, "body_weight": 1.0}),
    ("no Chinese bigrams", {"han_bigrams": False}),
    ("+ English plural stemming", {"stem_english": True}),
    ("+ English stop words", {"stop_words": True}),
]


def tune(
    entries: Sequence[Entry], synonyms: dict[str, str], dev: list[Question], data: Path | None
) -> str:
    """The dev-split measurements behind IndexSettings' defaults and MIN_CONFIDENCE."""
    lines = [
        "Dev split, one change at a time from the defaults:",
        "",
        "| variant | hit@1 | hit@3 | MRR |",
        "|---|---|---|---|",
    ]
    for label, change in [*VARIANTS, ("no synonyms", {})]:
        settings = dataclasses.replace(IndexSettings(), **change)
        system = Kefu(entries, None if label == "no synonyms" else synonyms, settings)
        q = quality(system.rank, dev)
        lines.append(f"| {label} | {pct(q['hit1'])} | {pct(q['hit3'])} | {q['mrr']:.3f} |")
    lines += [
        "",
        "Confidence rule on the dev split: the top hit's score (relative to the query's self",
        "score) reaches min_confidence, and the runner-up is at least `margin` lower:",
        "",
        "| min_confidence | margin | confident | precision of confident | unrelated confident |",
        "|---|---|---|---|---|",
    ]
    system = Kefu(entries, synonyms)
    answered = [(q.expected, system.rank(q.text, q.language)) for q in dev if q.expected]
    texts = [text for source in unrelated(data, "dev").values() for text in source]
    others = [system.rank(t, lang) for t, lang in texts_with_language(texts)]
    for margin in (0.0, CONFIDENT_MARGIN):
        for threshold in np.arange(0.25, 0.651, 0.05):

            def sure(ranked: Ranked, t: float = threshold, m: float = margin) -> bool:
                second = ranked[1][1] if len(ranked) > 1 else 0.0
                return (
                    bool(ranked) and ranked[0][1] >= t and ranked[0][1] - second >= m * ranked[0][1]
                )

            chosen = [(expected, r) for expected, r in answered if sure(r)]
            right = sum(r[0][0] == expected for expected, r in chosen)
            wrong = sum(1 for r in others if sure(r))
            lines.append(
                f"| {threshold:.2f} | {margin:.1f} | {pct(len(chosen) / len(answered))} | "
                f"{pct(right / len(chosen)) if chosen else '-'} | "
                f"{pct(wrong / len(others)) if others else '-'} |"
            )
    return "\n".join(lines) + "\n"


# ---- speed -----------------------------------------------------------------------------------


def synthetic_entries(demo: Sequence[Entry], data: Path, size: int) -> list[Entry]:
    """`size` FAQ entries: the demo's, then real sentences grouped by intent: Chinese from
    SMP2019-ECDT train + dev (2 questions, a 1-sentence answer; about 750 entries), English
    from CLINC150 train for the rest (6 questions, a 4-sentence answer)."""
    entries = list(demo)
    smp = nlu_data.smp2019(data)
    chinese = _grouped(smp["train"][0] + smp["dev"][0], smp["train"][1] + smp["dev"][1])
    english = _grouped(*nlu_data.clinc150(data)["train"])
    for language, groups, questions, answers in (("zh", chinese, 2, 1), ("en", english, 6, 4)):
        chunks = [
            texts[i : i + questions + answers]
            for texts in groups.values()
            for i in range(0, len(texts) - questions - answers + 1, questions + answers)
        ]
        for n, chunk in enumerate(chunks[: size - len(entries)]):
            answer = {language: " ".join(chunk[questions:])}
            entries.append(
                Entry(
                    f"{language}-{n}",
                    "faq",
                    chunk[0],
                    tuple(chunk[:questions]),
                    answer,
                    answer,
                    (),
                    None,
                    "knowledge/synthetic.yml",
                    n + 1,
                )
            )
    return entries


def _grouped(texts: Sequence[str], labels: Sequence[str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for text, label in zip(texts, labels, strict=True):
        groups.setdefault(label, []).append(text)
    return groups


def speed(demo: Sequence[Entry], synonyms: dict[str, str], data: Path) -> dict[str, Any]:
    entries = synthetic_entries(demo, data, SPEED_ENTRIES)
    started = time.perf_counter()
    base = KnowledgeBase(entries, synonyms)
    build = time.perf_counter() - started
    tracemalloc.start()
    kept = KnowledgeBase(entries, synonyms)  # what a second base holds, entries aside
    memory = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    clinc, smp = nlu_data.clinc150(data), nlu_data.smp2019(data)
    queries = clinc["test"][0][: SPEED_QUERIES - len(smp["test"][0])] + smp["test"][0]
    queries = [queries[i] for i in np.random.default_rng(0).permutation(len(queries))]
    for text in queries[:50]:
        base.search(text)
    seconds = []
    for text in queries:
        t0 = time.perf_counter()
        base.search(text, k=5)
        seconds.append(time.perf_counter() - t0)
    ms = np.asarray(seconds) * 1000
    return {
        "entries": len(entries),
        "queries": len(queries),
        "build_seconds": build,
        "memory_mb": memory / 2**20,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
    }


# ---- the report ------------------------------------------------------------------------------


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def pct(x: float) -> str:
    return "-" if x != x else f"{100 * x:.1f}%"  # x != x: NaN


def quality_table(rows: list[tuple[str, dict, float | None]], split: str) -> list[str]:
    n = rows[0][1]["n"]
    lines = [
        f"Quality on the {split} split ({n} questions):",
        "",
        "| system | hit@1 | hit@3 | MRR | confident | precision of confident "
        "| unrelated confident |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, q, wrong in rows:
        sure = name.startswith("kefu")
        lines.append(
            f"| {name} | {pct(q['hit1'])} | {pct(q['hit3'])} | {q['mrr']:.3f} | "
            f"{pct(q['confident_rate']) if sure else '-'} | "
            f"{pct(q['confident_precision']) if sure else '-'} | "
            f"{pct(wrong) if sure and wrong is not None else '-'} |"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="knowledge_bench", description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--questions", type=Path, default=QUESTIONS)
    p.add_argument("--knowledge", type=Path, default=SHOP / "knowledge")
    p.add_argument("--nlu", type=Path, default=SHOP / "nlu", help="where the synonyms come from")
    p.add_argument("--split", default="test", choices=["dev", "test"])
    p.add_argument("--tune", action="store_true", help="print the dev-split measurements")
    args = p.parse_args(argv)
    loadavg = os.getloadavg()
    warm_up()
    data = args.data if (args.data / "clinc150").exists() else None
    entries = load_entries(args.knowledge)
    synonyms = TrainingData.load(args.nlu).synonyms if args.nlu.exists() else {}
    out = ["## Knowledge search", "", f"{common.now()}; {common.machine(loadavg)}", ""]
    out += [f"Command: `{common.command_line('knowledge', 'bench/knowledge_bench.py')}`", ""]
    if data is not None:
        s = speed(entries, synonyms, data)
        out += [
            f"Speed: {s['entries']} entries (demo + CLINC150/SMP2019 sentences), "
            f"{s['queries']} single queries (CLINC150 + SMP2019 test sentences):",
            "",
            "| build | memory | p50 | p99 | max |",
            "|---|---|---|---|---|",
            f"| {s['build_seconds']:.2f} s | {s['memory_mb']:.1f} MB | {s['p50_ms']:.3f} ms | "
            f"{s['p99_ms']:.3f} ms | {s['max_ms']:.2f} ms |",
            "",
        ]
    else:
        out += [f"(no data at {args.data}: speed and unrelated questions skipped)", ""]
    if args.questions.exists():
        questions = load_questions(args.questions)
        chosen = [q for q in questions if q.split == args.split]
        kefu, baseline = Kefu(entries, synonyms), Baseline(entries)
        sources = unrelated(data, args.split)
        everything = [text for texts in sources.values() for text in texts]
        wrong = unrelated_confident(kefu.rank, everything) if everything else None
        rows = [(kefu.name, quality(kefu.rank, chosen), wrong)]
        rows.append((baseline.name, quality(baseline.rank, chosen), None))
        for language in sorted({q.language for q in chosen}):
            subset = [q for q in chosen if q.language == language]
            rows.append((f"kefu, {language} only", quality(kefu.rank, subset), None))
            rows.append((f"baseline, {language} only", quality(baseline.rank, subset), None))
        out += quality_table(rows, args.split)
        out += [
            "",
            f"{len(entries)} entries in {shown(args.knowledge)}; "
            f"confident: min_confidence {MIN_CONFIDENCE}, margin {CONFIDENT_MARGIN}. "
            "Unrelated questions answered confidently: "
            + (
                ", ".join(
                    f"{name} {pct(unrelated_confident(kefu.rank, texts))} of {len(texts)}"
                    for name, texts in sources.items()
                )
                or "not measured (no data)"
            )
            + ".",
            "",
        ]
        if args.tune:
            out.append(tune(entries, synonyms, [q for q in questions if q.split == "dev"], data))
    else:
        out += [f"(no questions at {args.questions}: quality skipped)", ""]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
