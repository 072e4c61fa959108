"""Rasa 3.6's REST channel as the load benchmark's peer: a small bot equivalent to the demo's.

The bot: the demo bot's own NLU data (examples/shop/nlu, Rasa 3 format), one response per
intent (a rule: intent -> utter_<intent>), FallbackClassifier for low confidence; the NLU
pipeline of bench/rasa/config.yml (whitespace tokens, word + char n-gram counts,
LogisticRegressionClassifier). Trackers are kept in a SQL tracker store on SQLite, so that Rasa,
like the hub, writes every message to a database. It runs in Rasa's own Python 3.10 venv
(.venv-rasa, made by `make rasa-venv` or `make bench-rasa`), never in the hub's.

The trained model is cached in .venv-rasa/kefu-load-models/ by the hash of the bot's files.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rest_bench import Server

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-rasa"
RASA = VENV / "bin" / "rasa"
NLU = ROOT / "examples" / "shop" / "nlu"

# One answer per intent of the demo's NLU data, in English (what the hub's flows say first).
RESPONSES = {
    "greet": "Hello! How can I help you today?",
    "goodbye": "Goodbye, have a nice day!",
    "thanks": "You're welcome!",
    "affirm": "Great.",
    "deny": "All right.",
    "cancel": "OK, cancelled.",
    "faq": "Here is what I found in our help centre.",
    "check_order": "What's your order number?",
    "shipping": "Orders ship within 24 hours; delivery takes 2 to 5 days.",
    "returns": "Items can be returned within 7 days.",
    "payment": "We accept Alipay, WeChat Pay and cards.",
    "change_address": "What is the new address?",
    "out_of_scope": "Sorry, I can only help with orders, shipping and returns.",
    "human": "I'm handing you to a colleague.",
    "complaint": "I'm sorry to hear that; a colleague will look into it.",
    "opening_hours": "We are open 9:00 to 21:00 every day.",
    "inform": "Thanks, noted.",
    "nlu_fallback": "Sorry, I didn't understand that.",
}

CONFIG = """recipe: default.v1
assistant_id: kefu-load-bench
language: en
pipeline:
  - name: WhitespaceTokenizer
  - name: CountVectorsFeaturizer
  - name: CountVectorsFeaturizer
    analyzer: char_wb
    min_ngram: 1
    max_ngram: 4
  - name: LogisticRegressionClassifier
  - name: FallbackClassifier
    threshold: 0.3
policies:
  - name: RulePolicy
"""


class Unavailable(Exception):
    """Rasa can't run here; the message says why."""


def intents() -> list[str]:
    found: list[str] = []
    for path in sorted(NLU.glob("*.yml")):
        for block in yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu", []):
            if "intent" in block and block["intent"] not in found:
                found.append(block["intent"])
    return found


def write_bot(folder: Path) -> None:
    names = intents()
    missing = [n for n in names if n not in RESPONSES]
    if missing:
        raise Unavailable(f"no Rasa response for the demo intents {missing}")
    data = folder / "data"
    data.mkdir(parents=True)
    for path in sorted(NLU.glob("*.yml")):
        shutil.copyfile(path, data / f"nlu_{path.name}")
    answered = [*names, "nlu_fallback"]
    domain = {
        "version": "3.1",
        "intents": names,
        "responses": {f"utter_{n}": [{"text": RESPONSES[n]}] for n in answered},
        "session_config": {"session_expiration_time": 60, "carry_over_slots_to_new_session": True},
    }
    rules = {
        "version": "3.1",
        "rules": [
            {"rule": f"answer {n}", "steps": [{"intent": n}, {"action": f"utter_{n}"}]}
            for n in answered
        ],
    }
    (folder / "domain.yml").write_text(yaml.safe_dump(domain, allow_unicode=True))
    (data / "rules.yml").write_text(yaml.safe_dump(rules, allow_unicode=True))
    (folder / "config.yml").write_text(CONFIG)
    (folder / "credentials.yml").write_text("rest:\n")


def bot_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.yml")):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def rasa_env(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env |= {
        "RASA_TELEMETRY_ENABLED": "false",
        "RASA_CACHE_DIRECTORY": str(folder / "cache"),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "SQLALCHEMY_SILENCE_UBER_WARNING": "1",
        "PYTHONUNBUFFERED": "1",
    }
    return env


def server(tmp: Path, port: int) -> tuple[Server, str]:
    """A `rasa run` of the small bot on `port` (trained first unless cached), and a note on
    what it is. Raises Unavailable when .venv-rasa has no Rasa."""
    if not RASA.exists():
        raise Unavailable(
            f"{VENV.relative_to(ROOT)} has no Rasa: `make rasa-venv` creates it (Python 3.10, "
            "Rasa 3.6 and TensorFlow from PyPI, a few minutes once)"
        )
    folder = tmp / "rasa"
    write_bot(folder)
    env = rasa_env(folder)
    cache = VENV / "kefu-load-models"
    model = cache / f"{bot_hash(folder)}.tar.gz"
    if not model.exists():
        print("rasa: training the small bot (once; cached in .venv-rasa) ...", file=sys.stderr)
        done = subprocess.run(
            [str(RASA), "train", "--fixed-model-name", "bench", "--out", str(folder / "models")],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        trained = folder / "models" / "bench.tar.gz"
        if done.returncode != 0 or not trained.exists():
            raise Unavailable(f"rasa train failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        cache.mkdir(exist_ok=True)
        shutil.copyfile(trained, model)
    trackers = folder / "trackers.db"
    (folder / "endpoints.yml").write_text(
        f"tracker_store:\n  type: SQL\n  dialect: sqlite\n  db: {trackers}\n"
    )
    argv = [
        str(RASA), "run", "--model", str(model), "--interface", "127.0.0.1", "--port", str(port),
        "--credentials", str(folder / "credentials.yml"),
        "--endpoints", str(folder / "endpoints.yml"),
    ]  # fmt: skip
    version = subprocess.run(
        [str(VENV / "bin" / "python"), "-c", "import rasa; print(rasa.__version__)"],
        capture_output=True,
        text=True,
        env=env,
    ).stdout.strip()
    note = (
        f"Rasa {version or '?'} (`rasa run`, Sanic, one process) from .venv-rasa, Python 3.10; "
        "the demo's NLU data, one rule-based response per intent (no forms, no actions: the "
        "hub's flows do more per message), FallbackClassifier 0.3, SQL tracker store on SQLite "
        "(stored = user events in it). REST only: Rasa has no plain-WebSocket widget channel "
        "(its socket.io channel speaks another protocol), so it gets the REST half's shape "
        "with all customers, and hub (a) is measured again under the same REST-only load."
    )
    return Server("rasa", argv, env, "/", folder / "rasa.log", port), note


def count_user_events(folder: Path) -> int:
    """User messages Rasa has stored in its tracker store."""
    path = folder / "rasa" / "trackers.db"
    if not path.exists():
        return 0
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        query = "SELECT count(*) FROM events WHERE type_name = 'user'"
        return int(conn.execute(query).fetchone()[0])
