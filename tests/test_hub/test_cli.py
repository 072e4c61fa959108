"""The `kefu` command as a bot designer and an admin use it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def kefu(*args: str, tmp: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "KEFU_DATA_DIR": str(tmp / "data"),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'kefu.db'}",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "hub", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_passes_on_the_demo_bot(tmp_path: Path) -> None:
    out = kefu("check", tmp=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("ok:")


def test_check_lists_every_error_and_fails(tmp_path: Path) -> None:
    bot = tmp_path / "bot"
    shutil.copytree(ROOT / "examples/shop", bot)
    (bot / "flows" / "extra.yml").write_text(
        "flows:\n  ghost:\n    trigger: {intents: [no_such_intent]}\n    steps:\n      - jump: x\n"
        "  haunted:\n    trigger: {intents: [no_such_intent]}\n    steps: [{say: boo}]\n",
        encoding="utf-8",
    )
    out = kefu("check", "--bot", str(bot), tmp=tmp_path)
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert any(
        line.startswith(f"{bot}/flows/extra.yml:5:9:") and "unknown step" in line for line in lines
    )
    assert any(
        "extra.yml:7:25:" in line and "'no_such_intent' is not in the NLU data" in line
        for line in lines
    )


def test_agent_create_then_login_works_and_duplicates_are_refused(tmp_path: Path) -> None:
    args = (
        "agent",
        "create",
        "--email",
        "Mei@example.com",
        "--password",
        "pw-123456",
        "--role",
        "admin",
    )
    first = kefu(*args, tmp=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "created: mei@example.com (admin)" in first.stdout
    again = kefu(*args, tmp=tmp_path)
    assert again.returncode == 1 and "already exists" in again.stderr
    bad_role = kefu(
        "agent", "create", "--email", "x@y.z", "--password", "p", "--role", "boss", tmp=tmp_path
    )
    assert bad_role.returncode == 2


def test_migrate_and_configuration_errors(tmp_path: Path) -> None:
    assert kefu("migrate", tmp=tmp_path).returncode == 0
    config = tmp_path / "bad.yaml"
    config.write_text("channels:\n  - {name: wx, type: wechat, token: '${NOT_SET_ANYWHERE}'}\n")
    out = kefu("--config", str(config), "migrate", tmp=tmp_path)
    assert out.returncode == 2
    assert "NOT_SET_ANYWHERE" in out.stderr and "wx" in out.stderr


def test_train_skips_when_nothing_changed(tmp_path: Path) -> None:
    model = tmp_path / "data/models/nlu/model.npz"
    out = kefu("train", tmp=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("trained 17 intents") and model.exists()
    written = model.stat().st_mtime_ns

    again = kefu("train", tmp=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "is up to date" in again.stdout and model.stat().st_mtime_ns == written

    # the same data with another NLU setting is another model
    config = tmp_path / "config.yaml"
    config.write_text(
        f"bot:\n  path: {ROOT / 'examples/shop'}\n  nlu_threshold: 0.4\n", encoding="utf-8"
    )
    changed = kefu("train", tmp=tmp_path, KEFU_CONFIG=str(config))
    assert changed.stdout.startswith("trained"), changed.stdout + changed.stderr
    forced = kefu("train", "--force", tmp=tmp_path, KEFU_CONFIG=str(config))
    assert forced.stdout.startswith("trained"), forced.stdout + forced.stderr


def test_chat_in_the_terminal(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "hub", "chat"],
        input="hello\n转人工\n",
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "KEFU_DATA_DIR": str(tmp_path)},
    )
    assert out.returncode == 0, out.stderr
    assert "bot> Hello! I'm the Kefu Shop assistant" in out.stdout
    assert "system> 正在为您转接人工客服" in out.stdout


def test_bench_options_go_to_the_named_benchmark(tmp_path: Path) -> None:
    out = kefu("bench", "nlu", "--help", tmp=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: nlu_bench") and "--data" in out.stdout


def test_train_with_static_vectors(tmp_path: Path) -> None:
    from tests.test_nlu.test_vectors import make_vectors

    make_vectors(tmp_path / "vectors")
    config = tmp_path / "config.yaml"
    bot = f"bot:\n  path: {ROOT / 'examples/shop'}\n  nlu_vectors: {tmp_path / 'vectors'}\n"
    config.write_text(bot, encoding="utf-8")
    out = kefu("train", tmp=tmp_path, KEFU_CONFIG=str(config))
    assert out.stdout.startswith("trained"), out.stdout + out.stderr
    again = kefu("train", tmp=tmp_path, KEFU_CONFIG=str(config))
    assert "is up to date" in again.stdout, again.stdout + again.stderr

    config.write_text(bot.replace("vectors\n", "missing\n"), encoding="utf-8")
    missing = kefu("train", tmp=tmp_path, KEFU_CONFIG=str(config))
    assert missing.returncode == 2
    assert "bot.nlu_vectors" in missing.stderr and "make vectors" in missing.stderr
