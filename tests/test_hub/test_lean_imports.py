"""A hub imports what it uses (P13, memory): a platform's SDK only when a channel of its type is
configured (aiogram alone is ~130 MB), scikit-learn only to train (a saved model parses without
it). Each check runs in a fresh interpreter, whose modules are its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from nlu import IntentClassifier, TrainingData

ROOT = Path(__file__).parents[2]
SDKS = ("aiogram", "wechatpy", "slack_bolt", "slack_sdk", "aioimaplib", "aiosmtplib")


def imported_after(code: str) -> list[str]:
    """The top-level modules of SDKS and sklearn that `code` leaves imported."""
    watched = [*SDKS, "sklearn"]
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({watched!r}))))"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def test_the_app_and_the_built_in_channels_import_no_platform_sdk() -> None:
    code = (
        "import hub.app\n"
        "from channels.registry import channel_type\n"
        "assert channel_type('web') and channel_type('rest')\n"
    )
    assert imported_after(code) == []


def test_a_platform_channel_imports_its_sdk_when_it_is_configured() -> None:
    code = "from channels.registry import channel_type\nassert channel_type('telegram')\n"
    assert "aiogram" in imported_after(code)


def test_a_saved_model_parses_without_scikit_learn(tmp_path: Path) -> None:
    IntentClassifier.train(TrainingData.load(ROOT / "examples" / "shop" / "nlu")).save(tmp_path)
    code = (
        "from nlu import IntentClassifier\n"
        f"model = IntentClassifier.load({str(tmp_path)!r})\n"
        "assert model.parse('where is my order 12345678').intent == 'check_order'\n"
    )
    assert imported_after(code) == []
