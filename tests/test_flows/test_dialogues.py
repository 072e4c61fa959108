"""The P12 dialogues: conversations as a customer judges them (out of scope, one arbiter per
turn, cancel, language, the bot after an agent), run against a whole hub.

Two bots: the demo's `examples/shop/tests/dialogues_*.yml`, and every test of
`tests/fixtures/bots/telecom/`, a small bot the demo's tuning never saw. Each bot's dialogues
run once, in one hub with one classifier (trained as `kefu test` trains it, with config.yaml's
`bot:` settings), on first use; each dialogue is then its own pytest case, named after it, whose
failure is the `kefu test` report of its first failing step. `kefu bench dialogues` prints the
same results per file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from flows.convtest import ConversationTest, load_tests
from hub.bot import train_classifier
from hub.ops.settings import Settings
from hub.testing.convtest import TestResult, run_tests

ROOT = Path(__file__).resolve().parents[2]
BOTS = {
    "shop": (ROOT / "examples" / "shop", "dialogues_"),  # only the dialogue files
    "telecom": (ROOT / "tests" / "fixtures" / "bots" / "telecom", ""),  # every test file
}


def dialogues(bot: str) -> list[ConversationTest]:
    folder, prefix = BOTS[bot]
    tests = load_tests(folder / "tests")
    return [t for t in tests if Path(t.source.split(":")[0]).name.startswith(prefix)]


def bot_settings(folder: Path, data_dir: Path) -> Settings:
    """config.yaml's `bot:` (and `csat:`) settings, as `kefu test --bot` uses them."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    bot = {**config.get("bot", {}), "path": folder, "reload": False}
    return Settings(
        data_dir=data_dir,
        secret_key="dialogues-secret-key-that-is-long-enough",
        bot=bot,
        csat=config.get("csat", {}),
    )


CASES = [
    pytest.param(bot, test.name, id=f"{bot}: {test.name}")
    for bot in BOTS
    for test in dialogues(bot)
]


@pytest.fixture(scope="module")
def results(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[str], dict[str, TestResult]]:
    """The results of a bot's dialogues by name, run on first use."""
    done: dict[str, dict[str, TestResult]] = {}

    def of(bot: str) -> dict[str, TestResult]:
        if bot not in done:
            settings = bot_settings(BOTS[bot][0], tmp_path_factory.mktemp(bot))
            classifier = train_classifier(settings)
            ran = asyncio.run(run_tests(settings, dialogues(bot), classifier))
            done[bot] = {r.test.name: r for r in ran}
        return done[bot]

    return of


def test_there_are_enough_dialogues() -> None:
    shop, telecom = dialogues("shop"), dialogues("telecom")
    assert len(shop) >= 40 and len(telecom) >= 10
    chinese = [t for t in shop if any("\u4e00" <= c <= "\u9fff" for c in t.name)]
    assert 0.35 <= len(chinese) / len(shop) <= 0.65  # about half in each language


@pytest.mark.parametrize(("bot", "name"), CASES)
def test_dialogue(bot: str, name: str, results: Callable[[str], dict[str, TestResult]]) -> None:
    result = results(bot)[name]
    if not result.passed:
        pytest.fail(result.report(), pytrace=False)
