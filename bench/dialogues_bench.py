"""Dialogues benchmark: how many of the P12 dialogues (conversations as a customer judges them:
out of scope, one arbiter per turn, cancel, language, the bot after an agent) pass today.

By default it runs the dialogues of the demo (`examples/shop`) and of
`tests/fixtures/bots/telecom` (a small bot the demo's tuning never saw); `--bot DIR` (again for
more) runs those bots instead. A bot's dialogues are its `tests/dialogues_*.yml`, or every test
when it has none. Each bot gets one hub and one classifier, trained as `kefu test` trains it,
with the config file's `bot:` settings (`--config`, default ./config.yaml), in a temporary
folder.

It prints, per file, per bot and overall, how many dialogues pass, then each failing dialogue
with its first failing step (`--full`: the whole `kefu test` report of each), and rewrites its
section of BENCHMARKS.md (`--no-write` only prints it). Exit 0 whatever passed (it measures;
`kefu test` is the check), 2 when a file is invalid.

    python bench/dialogues_bench.py [--bot DIR ...] [--config FILE] [--full] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

import report as common  # noqa: E402

from flows.convtest import ConversationTest, ConversationTestError, load_tests  # noqa: E402
from hub.ops.settings import Settings, SettingsError, load_settings  # noqa: E402
from hub.testing.convtest import TestResult  # noqa: E402

DEFAULT_BOTS = (ROOT / "examples" / "shop", ROOT / "tests" / "fixtures" / "bots" / "telecom")
PREFIX = "dialogues_"
SECTION = "dialogues-bench"


@dataclass
class BotRun:
    folder: Path
    results: list[TestResult]
    train_seconds: float
    run_seconds: float


def shown(path: Path | str) -> str:
    """A path as the report shows it: relative to the current folder when inside it."""
    relative = os.path.relpath(path)
    return str(path) if relative.startswith("..") else relative


def file_of(test: ConversationTest) -> str:
    return test.source.rsplit(":", 2)[0]


def dialogues(folder: Path) -> list[ConversationTest]:
    """The bot's dialogues: its tests/dialogues_*.yml, or every test when it has none. Raises
    ConversationTestError for an invalid test file (of any name: they are one folder)."""
    tests = load_tests(folder / "tests")
    chosen = [t for t in tests if Path(file_of(t)).name.startswith(PREFIX)]
    return chosen or tests


def run_bot(settings: Settings, folder: Path, tests: list[ConversationTest]) -> BotRun:
    from hub.bot import train_classifier
    from hub.testing.convtest import run_tests

    with tempfile.TemporaryDirectory(prefix="kefu-dialogues-") as tmp:
        bot = settings.bot.model_copy(update={"path": folder, "reload": False})
        here = settings.model_copy(update={"bot": bot, "data_dir": Path(tmp)})
        start = time.perf_counter()
        classifier = train_classifier(here)
        trained = time.perf_counter()
        results = asyncio.run(run_tests(here, tests, classifier))
        return BotRun(folder, results, trained - start, time.perf_counter() - trained)


def ratio(results: Sequence[TestResult]) -> str:
    passed = sum(r.passed for r in results)
    share = f" ({100 * passed / len(results):.0f}%)" if results else ""
    return f"{passed}/{len(results)}{share}"


def first_step(result: TestResult) -> list[str]:
    """The failing step of a failed dialogue: where, what, expected, the first line got."""
    failure = result.failure
    assert failure is not None
    lines = [f"  {shown(failure.step.source)}: {failure.message}"]
    if failure.expected is not None:
        lines.append(f"    expected: {failure.expected}")
    if failure.got:
        more = f"  (+{len(failure.got) - 1} lines)" if len(failure.got) > 1 else ""
        lines.append(f"    got:      {failure.got[0][:160]}{more}")
    return lines


def section(runs: Sequence[BotRun], full: bool) -> str:
    everything = [r for run in runs for r in run.results]
    out = ["### Dialogues: the P12 conversation tests, passing today", ""]
    out += [f"- Date: {common.now()}; command: `{command()}`"]
    out += [f"- Machine: {common.machine()}", ""]
    out += ["| bot | file | passed |", "|---|---|---|"]
    for run in runs:
        files: dict[str, list[TestResult]] = {}
        for r in run.results:
            files.setdefault(file_of(r.test), []).append(r)
        for path, results in files.items():
            out.append(f"| {shown(run.folder)} | {Path(path).name} | {ratio(results)} |")
        timing = f"trained {run.train_seconds:.1f} s, ran {run.run_seconds:.1f} s"
        out.append(f"| {shown(run.folder)} | **all** ({timing}) | **{ratio(run.results)}** |")
    out += [f"| **overall** | | **{ratio(everything)}** |", ""]
    failed = [r for r in everything if not r.passed]
    if failed:
        out += ["Failing dialogues, each with its first failing step:", "", "```"]
        for r in failed:
            if full:
                out += [r.report(), ""]
            else:
                out += [f"FAIL {r.test.name} ({shown(r.test.source)})", *first_step(r)]
        out += ["```", ""]
    return "\n".join(out) + "\n"


def command() -> str:
    return common.command_line("dialogues", "bench/dialogues_bench.py")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="dialogues_bench", description=__doc__.splitlines()[0])
    p.add_argument(
        "--bot",
        type=Path,
        action="append",
        metavar="DIR",
        help="a bot folder (again for more); default: the demo and tests/fixtures/bots/telecom",
    )
    p.add_argument("--config", type=Path, help="config file (default: ./config.yaml)")
    p.add_argument("--full", action="store_true", help="the whole report of each failure")
    p.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md")
    args = p.parse_args(argv)
    try:
        settings = load_settings(args.config)
    except SettingsError as e:
        print(f"configuration error:\n{e}", file=sys.stderr)
        return 2
    folders = args.bot or list(DEFAULT_BOTS)
    chosen: list[tuple[Path, list[ConversationTest]]] = []
    errors: list[str] = []
    for folder in folders:
        try:
            chosen.append((folder, dialogues(folder)))
        except ConversationTestError as e:
            errors += e.errors
    if errors:
        print("\n".join(errors))
        return 2
    runs = [run_bot(settings, folder, tests) for folder, tests in chosen]
    text = section(runs, args.full)
    print(text)
    if not args.no_write:
        common.write_section(SECTION, text)
        print(f"written to {shown(common.RESULTS_FILE)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
