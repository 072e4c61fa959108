"""Rasa 3.6 as a peer on the CLINC150 intent benchmark (run by `make bench-rasa`).

Runs with .venv-rasa's Python 3.10, never the project's venv: Rasa is not a Kefu Hub dependency.
Trains Rasa's documented LogisticRegressionClassifier pipeline (bench/rasa/config.yml) on CLINC150
``train`` + ``oos_train`` (as intent ``out_of_scope``), written as Rasa 3 NLU YAML into a
temporary folder, then parses val/test through ``Agent.parse_message`` and computes the figures
with the shared ``bench/nlu_metrics.py``, as the other NLU benchmarks do: threshold chosen on
val + oos_val for 5% false rejects of in-scope messages, figures on test + oos_test.

Usage: python bench/rasa/rasa_clinc.py [DATA_ROOT] [--out FILE]   (DATA_ROOT defaults to
../shared/data relative to the repository root). Writes bench/results/rasa_clinc150.json.
No network at run time: telemetry is off and the pipeline loads no pretrained model.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import platform
import random
import shutil
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "bench"))

from nlu_data import OUT, clinc150  # noqa: E402
from nlu_metrics import (  # noqa: E402
    closed_accuracy,
    oos_auroc,
    open_figures,
    percentile_ms,
    threshold_for_false_reject,
)

FALSE_REJECT_TARGET = 0.05
WARM_UP = 50
LATENCY_SAMPLE = 1000


def nlu_yaml(texts: list[str], labels: list[str]) -> str:
    """Rasa 3 NLU training data: one ``- intent:`` block of literal examples per label."""
    by_intent: dict[str, list[str]] = {}
    for text, label in zip(texts, labels, strict=True):
        if "\n" in text or not text.strip():
            raise ValueError(f"cannot write {text!r} as a one-line Rasa example")
        by_intent.setdefault(label, []).append(text.strip())
    lines = ['version: "3.1"', "nlu:"]
    for intent in sorted(by_intent):
        lines += [f"  - intent: {intent}", "    examples: |"]
        lines += [f"      - {text}" for text in by_intent[intent]]
    return "\n".join(lines) + "\n"


def check_written(path: Path, texts: list[str], labels: list[str]) -> None:
    """Read the YAML back with Rasa's own loader: same (text, intent) pairs, nothing parsed away."""
    from rasa.shared.nlu.training_data.loading import load_data

    data = load_data(str(path))
    got = Counter((m.get("text"), m.get("intent")) for m in data.intent_examples)
    want = Counter((t.strip(), y) for t, y in zip(texts, labels, strict=True))
    if set(got) != set(want) or data.entity_examples:
        missing = list(set(want) - set(got))[:3]
        raise SystemExit(f"Rasa read the training YAML differently, e.g. missing {missing}")


async def parse_rankings(agent, texts: list[str]) -> tuple[list[list[tuple[str, float]]], float]:
    """Every message's full intent ranking, parsed one at a time, and the wall-clock seconds."""
    rankings = []
    start = time.perf_counter()
    for text in texts:
        parsed = await agent.parse_message(text)
        rankings.append([(r["name"], float(r["confidence"])) for r in parsed["intent_ranking"]])
    return rankings, time.perf_counter() - start


async def parse_latencies(agent, texts: list[str]) -> list[float]:
    """Seconds per ``Agent.parse_message`` call, one message at a time."""
    seconds = []
    for text in texts:
        start = time.perf_counter()
        await agent.parse_message(text)
        seconds.append(time.perf_counter() - start)
    return seconds


async def evaluate(agent, splits) -> dict:
    val_texts = splits["val"][0] + splits["oos_val"][0]
    val_labels = splits["val"][1] + splits["oos_val"][1]
    test_texts = splits["test"][0] + splits["oos_test"][0]
    test_labels = splits["test"][1] + splits["oos_test"][1]

    for text in val_texts[:WARM_UP]:  # warm-up, not measured
        await agent.parse_message(text)
    val_rankings, _ = await parse_rankings(agent, val_texts)
    test_rankings, test_seconds = await parse_rankings(agent, test_texts)
    sample = random.Random(0).sample(test_texts, LATENCY_SAMPLE)
    for text in sample[:WARM_UP]:
        await agent.parse_message(text)
    latencies = await parse_latencies(agent, sample)
    return {
        "val": (val_rankings, val_labels),
        "test": (test_rankings, test_labels),
        "test_seconds": test_seconds,
        "latencies": latencies,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "rasa_clinc150.json"))
    args = parser.parse_args()
    data_root = Path(args.data)
    if not data_root.is_absolute():
        data_root = Path.cwd() / data_root
    data_root = data_root.resolve()
    if not (data_root / "clinc150" / "data_full.json").is_file():
        raise SystemExit(f"no CLINC150 data at {data_root}/clinc150/data_full.json (pass DATA=...)")
    splits = clinc150(data_root)
    out = Path(args.out).resolve()  # before the chdir below

    work = Path(tempfile.mkdtemp(prefix="kefu-bench-rasa-"))
    try:
        # Before importing Rasa: no telemetry, its training cache and TF logs kept out of the way.
        os.environ["RASA_TELEMETRY_ENABLED"] = "false"
        os.environ["RASA_CACHE_DIRECTORY"] = str(work / "cache")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        os.chdir(work)  # anything Rasa writes relative to the cwd lands in the temp folder
        run(splits, work, data_root, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(splits, work: Path, data_root: Path, out: Path) -> None:
    import rasa
    import yaml
    from rasa.core.agent import Agent
    from rasa.model_training import train_nlu
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)
    logging.getLogger().setLevel(logging.WARNING)

    train_texts = splits["train"][0] + splits["oos_train"][0]
    train_labels = splits["train"][1] + splits["oos_train"][1]
    nlu_path = work / "nlu.yml"
    nlu_path.write_text(nlu_yaml(train_texts, train_labels), encoding="utf-8")
    check_written(nlu_path, train_texts, train_labels)
    config_path = work / "config.yml"
    shutil.copyfile(HERE / "config.yml", config_path)
    pipeline = [c["name"] for c in yaml.safe_load(config_path.read_text())["pipeline"]]
    n_intents = len(set(train_labels))
    print(
        f"Rasa {rasa.__version__}: training {pipeline} on {len(train_texts)} messages, "
        f"{n_intents} intents ...",
        flush=True,
    )

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        start = time.perf_counter()
        model_path = train_nlu(
            config=str(config_path),
            nlu_data=str(nlu_path),
            output=str(work / "models"),
            fixed_model_name="clinc150",
        )
        train_seconds = time.perf_counter() - start
    train_warnings = sorted(
        {f"{w.category.__name__}: {str(w.message).splitlines()[0]}" for w in caught}
    )
    for line in train_warnings:
        print(f"  training warning: {line}")
    if not model_path:
        raise SystemExit("rasa train nlu produced no model")
    model_bytes = Path(model_path).stat().st_size
    print(f"trained in {train_seconds:.1f} s; model {model_bytes:,} bytes; parsing ...", flush=True)

    agent = Agent.load(model_path)
    if not agent.is_ready():
        raise SystemExit(f"Rasa could not load {model_path}")
    result = asyncio.run(evaluate(agent, splits))
    val_rankings, val_labels = result["val"]
    test_rankings, test_labels = result["test"]
    short = [len(r) for r in val_rankings + test_rankings if len(r) != n_intents]
    if short:
        raise SystemExit(f"{len(short)} rankings do not hold all {n_intents} intents")

    threshold = threshold_for_false_reject(val_rankings, val_labels, FALSE_REJECT_TARGET)
    figures = open_figures(test_rankings, test_labels, threshold)
    test_seconds = result["test_seconds"]
    report = {
        "system": f"Rasa {rasa.__version__} LogisticRegressionClassifier",
        "pipeline": pipeline,
        "train_seconds": round(train_seconds, 2),
        "closed_accuracy": closed_accuracy(test_rankings, test_labels),
        "threshold": threshold,
        "in_scope_accuracy": figures["in_scope_accuracy"],
        "oos_recall": figures["oos_recall"],
        "oos_precision": figures["oos_precision"],
        "false_reject_rate": figures["false_reject_rate"],
        "auroc": oos_auroc(test_rankings, test_labels),
        "parse_p50_ms": percentile_ms(result["latencies"], 50),
        "parse_p99_ms": percentile_ms(result["latencies"], 99),
        "batch_messages_per_second": len(test_labels) / test_seconds,
        "model_bytes": model_bytes,
        "python": platform.python_version(),
        "rasa_version": rasa.__version__,
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),  # noqa: UP017 (3.10)
        "notes": (
            "Rasa 3.6 has no batch parse API (Agent.parse_message takes one message), so "
            "batch_messages_per_second is the one-at-a-time throughput of Agent.parse_message "
            f"over all {len(test_labels)} test + oos_test messages. Latency: {LATENCY_SAMPLE} "
            f"test + oos_test messages (seeded sample) after {WARM_UP} warm-up parses. "
            f"Threshold: {FALSE_REJECT_TARGET:.0%} false rejects on val + oos_val "
            f"({len(val_labels)} messages). Train: train + oos_train ({len(train_labels)})."
        ),
        "train_warnings": train_warnings,
        "data": str(data_root),
        "machine": f"{os.cpu_count()} CPUs, {platform.platform()}",
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

    print(
        f"\n{report['system']} on CLINC150 (test {len(test_labels)} messages, "
        f"{sum(y == OUT for y in test_labels)} out of scope)"
    )
    print(f"  train {train_seconds:.1f} s, model {model_bytes / 1e6:.1f} MB")
    print(f"  closed accuracy   {report['closed_accuracy']:.4f}")
    print(f"  threshold         {threshold:.4f} (5% false rejects on val)")
    print(
        f"  in-scope accuracy {report['in_scope_accuracy']:.4f}, false rejects "
        f"{report['false_reject_rate']:.4f}"
    )
    print(
        f"  OOS recall        {report['oos_recall']:.4f}, precision {report['oos_precision']:.4f}"
    )
    print(f"  OOS AUROC         {report['auroc']:.4f}")
    print(
        f"  parse p50 {report['parse_p50_ms']:.2f} ms, p99 {report['parse_p99_ms']:.2f} ms; "
        f"{report['batch_messages_per_second']:.0f} msg/s one at a time (no batch API)"
    )
    print(f"  wrote {out}")


if __name__ == "__main__":
    main()
