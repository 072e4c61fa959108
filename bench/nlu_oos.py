"""NLU benchmark, out of scope: "no intent" for unrelated messages, on small bots and big sets.

Does the classifier reject unrelated messages without rejecting what the bot is for?

`kefu bench nlu oos` (or `python bench/nlu_oos.py`). Systems, trained and measured in the same
run: the hub's classifier as a bot gets it (bundled negatives, threshold `auto` for 5% false
rejects), the same without the bundled negatives (`negatives=False`), and the plain TF-IDF +
LogisticRegression baseline of bench/nlu_bench.py (its best probability as the score).

Sets (the public ones in ../shared/data; BANKING77-OOS, not there, from `--banking77 DIR`, a
copy of Datasets/BANKING77-OOS of github.com/jianguoz/Few-Shot-Intent-Detection; a missing set
is skipped with a message):

- Small bots, none with out-of-scope examples, unrelated messages none of which is in the
  bundled negatives: the demo bot (examples/shop) without its out_of_scope.yml, tested on
  bench/data/demo_oos.yml (held-out paraphrases; unrelated messages) and on its own
  out_of_scope.yml examples; and bots of 10 intents x 10 examples sampled (3 seeds) from
  CLINC150 train (tested on the test messages of their intents; unrelated: oos_test and every
  other intent's test messages), HWU64 train (intents of 10 different scenarios; unrelated: the
  test messages of the other scenarios) and SMP2019 train (Chinese; intents of 10 different
  domains; unrelated: the dev + test messages of the other domains).
- Big sets: CLINC150 (train + oos_train; test + oos_test; the paper's protocol), BANKING77-OOS
  (train; test + its out-of-domain OOS test, and test + its in-domain OOS test), and "sets the
  classifier never saw", simulated by holding out a quarter of the intents (3 seeds): HWU64
  (train; test) and SMP2019 (train; dev + test, labels `domain.intent`).

Figures: AUROC of the score (best probability, 0 when the best label is out_of_scope); OOS
recall at 5% false rejects, the threshold chosen on the measured messages themselves (a
threshold-free comparison); and, at the threshold the hub's model picks itself at training,
false rejects, OOS recall and in-scope accuracy. Self-acceptance: the share of a small bot's
in-scope training examples that parse to their own intent.

    python bench/nlu_oos.py [--data ../shared/data] [--banking77 DIR] [--sets small,big]
                            [--seeds 3] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

import nlu_data  # noqa: E402
import nlu_metrics as metrics  # noqa: E402
import report as common  # noqa: E402
from nlu_bench import Baseline  # noqa: E402

from nlu import IntentClassifier, TrainingData  # noqa: E402
from nlu.data import Example  # noqa: E402
from nlu.negatives import bundled  # noqa: E402
from nlu.tokenize import warm_up  # noqa: E402

OUT = metrics.OUT
DEMO = ROOT / "examples" / "shop" / "nlu"
DEMO_HELD_OUT = BENCH / "data" / "demo_oos.yml"
FALSE_REJECTS = 0.05
Split = nlu_data.Split
Ranking = list[tuple[str, float]]


class Kefu:
    """The hub's classifier, as `kefu train` trains it (threshold auto, 5% target)."""

    def __init__(self, negatives: bool = True) -> None:
        self.negatives = negatives
        self.name = "kefu" if negatives else "kefu without bundled negatives"
        self.model: IntentClassifier | None = None

    def train(self, texts: Sequence[str], labels: Sequence[str]) -> None:
        data = TrainingData(
            training_examples=[Example(t, y) for t, y in zip(texts, labels, strict=True)]
        )
        self.model = IntentClassifier.train(data, negatives=self.negatives)

    def train_data(self, data: TrainingData) -> None:
        self.model = IntentClassifier.train(data, negatives=self.negatives)

    def rankings(self, texts: Sequence[str]) -> list[Ranking]:
        assert self.model is not None
        return [
            [(p.ranking[0][0], p.confidence), *p.ranking[1:]] if p.ranking else [(OUT, 0.0)]
            for p in self.model.parse_many(list(texts))
        ]

    @property
    def threshold(self) -> float | None:
        assert self.model is not None
        return self.model.threshold


class LogReg(Baseline):
    name = "baseline: TF-IDF + LogisticRegression"
    threshold = None

    def train(self, texts: Sequence[str], labels: Sequence[str], slots: Any = None) -> None:
        super().train(texts, labels)


SYSTEMS: list[tuple[str, Callable[[], Any]]] = [
    ("kefu", Kefu),
    ("kefu_no_negatives", lambda: Kefu(negatives=False)),
    ("baseline", LogReg),
]


def unseen(test: Split) -> Split:
    """``test`` without its out-of-scope messages that are a bundled negative word for word (a
    few short common questions, "what time is it", are in both)."""
    known = {_key(text) for text in bundled()}
    kept = [(t, y) for t, y in zip(*test, strict=True) if y != OUT or _key(t) not in known]
    return [t for t, _ in kept], [y for _, y in kept]


def _key(text: str) -> str:
    return text.casefold().strip().rstrip("?？!！.。 ")


def measure(system: Any, train: Split, test: Split, own: bool = False) -> dict[str, Any]:
    """Train ``system`` on ``train``; its figures on ``test``."""
    test = unseen(test)
    started = time.perf_counter()
    system.train(*train)
    seconds = time.perf_counter() - started
    return figures(system, test, seconds, train if own else None)


def figures(system: Any, test: Split, seconds: float, train: Split | None) -> dict[str, Any]:
    texts, labels = unseen(test)
    rankings = system.rankings(texts)
    result: dict[str, Any] = {
        "train_seconds": seconds,
        "in_scope": sum(y != OUT for y in labels),
        "oos": sum(y == OUT for y in labels),
        "auroc": metrics.oos_auroc(rankings, labels),
        "at_5": metrics.at_false_reject(rankings, labels, FALSE_REJECTS),
        "closed_accuracy": metrics.closed_accuracy(rankings, labels),
    }
    if system.threshold is not None:
        result["own"] = metrics.open_figures(rankings, labels, system.threshold)
        if train is not None:
            own = [(t, y) for t, y in zip(*train, strict=True) if y != OUT]
            parsed = system.rankings([t for t, _ in own])
            result["self_acceptance"] = float(
                np.mean(
                    [
                        r[0][0] == y and r[0][1] >= system.threshold
                        for r, (_, y) in zip(parsed, own, strict=True)
                    ]
                )
            )
    return result


def mean(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The mean of several runs' figures, key by key (nested dicts too)."""
    out: dict[str, Any] = {}
    for key, value in runs[0].items():
        if isinstance(value, dict):
            out[key] = mean([run[key] for run in runs])
        else:
            out[key] = float(np.mean([run[key] for run in runs]))
    return out


# ---- sets --------------------------------------------------------------------------------------


def demo_sets() -> tuple[TrainingData, Split]:
    files = [p for p in sorted(DEMO.glob("*.yml")) if p.name != "out_of_scope.yml"]
    data = TrainingData.load(files)
    held = yaml.safe_load(DEMO_HELD_OUT.read_text(encoding="utf-8"))
    own_oos = TrainingData.load(DEMO / "out_of_scope.yml")
    texts = [t for items in held["in_scope"].values() for t in items]
    labels = [intent for intent, items in held["in_scope"].items() for _ in items]
    unrelated = list(held["unrelated"]) + [t for t, _ in own_oos.examples]
    return data, (texts + unrelated, labels + [OUT] * len(unrelated))


def cv_false_rejects(data: TrainingData, negatives: bool) -> float:
    """Share of in-scope examples rejected by a model trained on the other two thirds
    (3-fold, stratified), at that model's own threshold."""
    from sklearn.model_selection import StratifiedKFold

    examples = list(data.training_examples)
    labels = [e.intent for e in examples]
    rejected = total = 0
    for train, held in StratifiedKFold(3, shuffle=True, random_state=0).split(examples, labels):
        part = TrainingData(
            training_examples=[examples[i] for i in train],
            regexes=data.regexes,
            lookups=data.lookups,
            synonyms=data.synonyms,
        )
        model = IntentClassifier.train(part, negatives=negatives)
        texts = [examples[i].text for i in held if labels[i] != OUT]
        rejected += sum(p.intent is None for p in model.parse_many(texts))
        total += len(texts)
    return rejected / total


def small(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    data, test = demo_sets()
    demo: dict[str, Any] = {}
    for key, make in SYSTEMS:
        system = make()
        train = ([t for t, _ in data.examples], [y for _, y in data.examples])
        started = time.perf_counter()
        if isinstance(system, Kefu):
            system.train_data(data)  # with its entities and lookups, as the hub trains it
        else:
            system.train(*train)
        demo[key] = figures(system, test, time.perf_counter() - started, train)
        if isinstance(system, Kefu):
            demo[key]["cv_false_rejects"] = cv_false_rejects(data, system.negatives)
    results["demo bot without out_of_scope.yml (en + zh)"] = demo
    makers: list[tuple[str, str, Callable[[str], str]]] = [
        ("clinc150", "CLINC150 small bots (10 x 10, en)", lambda y: y),
        ("hwu64", "HWU64 small bots (10 scenarios x 10, en)", lambda y: y.split("_")[0]),
        ("smp2019", "SMP2019 small bots (10 domains x 10, zh)", lambda y: y.split(".")[0]),
    ]
    for name, title, group in makers:
        splits = load(name, args)
        if splits is None:
            continue
        train, test = splits
        runs: dict[str, list[dict[str, Any]]] = {key: [] for key, _ in SYSTEMS}
        for seed in range(args.seeds):
            bot_train, bot_test = nlu_data.small_bot(
                train, test, intents=10, examples=10, seed=seed, group=group
            )
            for key, make in SYSTEMS:
                runs[key].append(measure(make(), bot_train, bot_test, own=True))
        results[title] = {key: mean(r) for key, r in runs.items()}
        print(f"{title}: {json.dumps(results[title], default=str)}", file=sys.stderr)
    return results


def load(name: str, args: argparse.Namespace) -> tuple[Split, Split] | None:
    """(train, test) of a public set, test with its OOS messages; None (said why) if missing."""
    try:
        if name == "clinc150":
            s = nlu_data.clinc150(args.data)
            return s["train"], join(s["test"], s["oos_test"])
        if name == "hwu64":
            s = nlu_data.hwu64(args.data)
            return s["train"], s["test"]
        if name == "smp2019":
            s = nlu_data.smp2019(args.data)
            return s["train"], join(s["dev"], s["test"])
    except FileNotFoundError as e:
        print(f"skipping {name}: {e}", file=sys.stderr)
    return None


def join(*splits: Split) -> Split:
    return [t for s in splits for t in s[0]], [y for s in splits for y in s[1]]


def big(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    try:
        s = nlu_data.clinc150(args.data)
        results["CLINC150 (train + oos_train; test + oos_test)"] = {
            key: measure(make(), join(s["train"], s["oos_train"]), join(s["test"], s["oos_test"]))
            for key, make in SYSTEMS
        }
    except FileNotFoundError as e:
        print(f"skipping clinc150: {e}", file=sys.stderr)
    if (args.banking77 / "train" / "seq.in").exists():
        b = nlu_data.banking77_oos(args.banking77)
        for title, oos in (("out-of-domain", "ood_test"), ("in-domain", "id_test")):
            runs = {}
            for key, make in SYSTEMS:
                runs[key] = measure(make(), b["train"], join(b["test"], b[oos]))
            results[f"BANKING77-OOS, {title} OOS (unseen set)"] = runs
    else:
        print(
            f"skipping BANKING77-OOS: not at {args.banking77} (github.com/jianguoz/"
            "Few-Shot-Intent-Detection, Datasets/BANKING77-OOS; --banking77 DIR)",
            file=sys.stderr,
        )
    for name, title in (
        ("hwu64", "HWU64, 25% of intents held out as OOS (en)"),
        ("smp2019", "SMP2019, 25% of intents held out as OOS (zh)"),
    ):
        splits = load(name, args)
        if splits is None:
            continue
        runs_by: dict[str, list[dict[str, Any]]] = {key: [] for key, _ in SYSTEMS}
        for seed in range(args.seeds):
            train, test, _ = nlu_data.held_out_intents(*splits, keep=0.75, seed=seed)
            for key, make in SYSTEMS:
                runs_by[key].append(measure(make(), train, test))
        results[title] = {key: mean(r) for key, r in runs_by.items()}
        print(f"{title}: {json.dumps(results[title], default=str)}", file=sys.stderr)
    return results


# ---- the report --------------------------------------------------------------------------------


def pct(x: float) -> str:
    return "—" if x != x else f"{100 * x:.1f}%"


def table(results: dict[str, Any], names: dict[str, str], self_column: bool) -> list[str]:
    header = (
        "| set (in scope / OOS messages) | system | AUROC | OOS recall at 5% false rejects | "
        "own threshold | false rejects | OOS recall | in-scope accuracy |"
        + (" self-acceptance |" if self_column else "")
        + " train s |"
    )
    lines = [header, "|---|---|--:|--:|--:|--:|--:|--:|" + ("--:|" if self_column else "") + "--:|"]
    for title, systems in results.items():
        for key, r in systems.items():
            own = r.get("own")
            cells = (
                [
                    f"{own['threshold']:.3f}",
                    pct(own["false_reject_rate"]),
                    pct(own["oos_recall"]),
                    pct(own["in_scope_accuracy"]),
                ]
                if own
                else ["—", "—", "—", "—"]
            )
            if self_column:
                cells.append(pct(r["self_acceptance"]) if "self_acceptance" in r else "—")
            lines.append(
                f"| {title} ({r['in_scope']:.0f} / {r['oos']:.0f}) | {names.get(key, key)} | "
                f"{r['auroc']:.3f} | {pct(r['at_5']['oos_recall'])} | {' | '.join(cells)} | "
                f"{r['train_seconds']:.2f} |"
            )
    return [*lines, ""]


def command() -> str:
    """How this run was started (through `kefu bench nlu oos`, bench/nlu_bench.py or itself)."""
    through_nlu_bench = sys.argv[1:2] == ["oos"]
    script = "bench/nlu_bench.py" if through_nlu_bench else "bench/nlu_oos.py"
    return common.command_line("nlu", script)


def report(results: dict[str, Any], args: argparse.Namespace) -> str:
    names = {key: make().name for key, make in SYSTEMS}
    lines = [
        "### NLU: out of scope on small and big sets",
        "",
        f"- Date: {common.now()}; command: `{command()}`",
        f"- Machine: {common.machine(args.loadavg)}",
        f"- Data: `{args.data}` (CLINC150, HWU64, SMP2019-ECDT as in the section above) and "
        f"`{args.banking77}` (BANKING77-OOS: github.com/jianguoz/Few-Shot-Intent-Detection "
        "@fa95533, Datasets/BANKING77-OOS; Zhang et al. 2021). Out-of-scope test messages that "
        "are a bundled negative word for word are left out (a few short common questions).",
        "- What each set is, and the protocol: `bench/nlu_oos.py`'s docstring. Seeds: "
        f"{args.seeds} (figures of the seeded sets are means over them).",
        "- `kefu without bundled negatives` is `IntentClassifier.train(..., negatives=False)`: "
        "the classifier as it was before the bundled negatives (the same code path). The "
        "baseline has no threshold of its own. OOS recall at 5% false rejects: the threshold "
        "giving 5% false rejects on the measured messages themselves (when the `out_of_scope` "
        "class alone rejects more, the threshold is 0 and more are rejected).",
        "",
    ]
    if results.get("small"):
        lines += ["Small bots (no out-of-scope examples of their own):", ""]
        lines += table(results["small"], names, self_column=True)
        demo = next(iter(results["small"].values()))
        cv = [
            f"{names[key]} {pct(r['cv_false_rejects'])}"
            for key, r in demo.items()
            if "cv_false_rejects" in r
        ]
        lines += [
            "- The demo bot's cross-validated false rejects (3-fold: in-scope examples rejected by "
            "a model trained on the other two thirds, at that model's own threshold): "
            + ", ".join(cv)
            + ". Self-acceptance: the bot's in-scope training examples that parse to their intent "
            "(a customer typing exactly what the designer wrote).",
            "",
        ]
    if results.get("big"):
        lines += ["Big sets:", ""]
        lines += table(results["big"], names, self_column=False)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="nlu_oos", description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument(
        "--banking77",
        type=Path,
        help="BANKING77-OOS folder (default: DATA/banking77-oos)",
    )
    p.add_argument("--sets", default="small,big")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--no-write", dest="write", action="store_false")
    p.add_argument("--json", type=Path, default=BENCH / "results" / "nlu_oos.json")
    args = p.parse_args(argv)
    args.banking77 = args.banking77 or args.data / "banking77-oos"
    args.loadavg = os.getloadavg()
    warm_up()
    results: dict[str, Any] = {}
    sets = args.sets.split(",")
    if "small" in sets:
        results["small"] = small(args)
    if "big" in sets:
        results["big"] = big(args)
    section = report(results, args)
    print(section)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, default=str))
    if args.write:
        common.write_section("nlu-oos", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
