"""The `kefu` command as a bot designer and an admin use it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from flows import FlowEngine
from nlu import IntentClassifier

ROOT = Path(__file__).resolve().parents[2]


def kefu(
    *args: str, tmp: Path, input: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
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
        input=input,
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
    # the data folder is the hub's own, even when the database lives elsewhere
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700
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


def test_agent_passwd_list_and_deactivate(
    tmp_path: Path, classifier: IntentClassifier, flows: FlowEngine
) -> None:
    from fastapi.testclient import TestClient

    from hub.app import create_app
    from tests.conftest import make_settings

    def create(email: str, role: str, *teams: str) -> None:
        args = ["agent", "create", "--email", email, "--password", "first-pass", "--role", role]
        for team in teams:
            args += ["--team", team]
        out = kefu(*args, tmp=tmp_path)
        assert out.returncode == 0, out.stderr

    create("mei@example.com", "admin")
    create("bo@example.com", "agent", "care", "vip")
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'kefu.db'}", tmp_path / "data")
    with TestClient(create_app(settings, classifier=classifier, flows=flows)) as client:

        def login(email: str, password: str) -> dict[str, str] | None:
            body = {"email": email, "password": password}
            r = client.post("/api/v1/auth/login", json=body)
            return {"authorization": f"Bearer {r.json()['access_token']}"} if r.is_success else None

        def works(auth: dict[str, str] | None) -> bool:
            return auth is not None and client.get("/api/v1/me", headers=auth).is_success

        before = login("bo@example.com", "first-pass")
        assert works(before)
        out = kefu(
            "agent",
            "passwd",
            "--email",
            "BO@example.com",
            "--password",
            "second-pass",
            tmp=tmp_path,
        )
        assert out.returncode == 0, out.stderr
        assert "password of bo@example.com changed" in out.stdout
        assert not works(before)  # the earlier login is signed out
        assert login("bo@example.com", "first-pass") is None
        assert works(login("bo@example.com", "second-pass"))

        # without --password (and no terminal): one line of stdin
        out = kefu(
            "agent", "passwd", "--email", "bo@example.com", tmp=tmp_path, input="third-pass\n"
        )
        assert out.returncode == 0, out.stderr
        after = login("bo@example.com", "third-pass")
        assert works(after)
        short = kefu("agent", "passwd", "--email", "bo@example.com", tmp=tmp_path, input="abc\n")
        assert short.returncode == 2 and "at least 8 characters" in short.stderr
        nobody = kefu(
            "agent", "passwd", "--email", "x@y.z", "--password", "long-enough", tmp=tmp_path
        )
        assert nobody.returncode == 1 and "no agent with email x@y.z" in nobody.stderr

        listed = kefu("agent", "list", tmp=tmp_path)
        assert listed.returncode == 0, listed.stderr
        header, *rows = listed.stdout.splitlines()
        assert header.split() == ["ID", "EMAIL", "NAME", "ROLE", "TEAMS", "ACTIVE"]
        assert [row.split() for row in rows] == [
            ["1", "mei@example.com", "mei", "admin", "-", "yes"],
            ["2", "bo@example.com", "bo", "agent", "care,vip", "yes"],
        ]

        out = kefu("agent", "deactivate", "--email", "bo@example.com", tmp=tmp_path)
        assert out.returncode == 0 and "deactivated" in out.stdout, out.stderr
        assert not works(after)  # at once
        assert login("bo@example.com", "third-pass") is None
        assert kefu("agent", "list", tmp=tmp_path).stdout.splitlines()[2].split()[-1] == "no"
        last_admin = kefu("agent", "deactivate", "--email", "mei@example.com", tmp=tmp_path)
        assert last_admin.returncode == 1 and "no active admin" in last_admin.stderr
        assert works(login("mei@example.com", "first-pass"))


def test_a_short_secret_key_stops_every_command(tmp_path: Path) -> None:
    out = kefu("migrate", tmp=tmp_path, KEFU_SECRET_KEY="too-short")
    assert out.returncode == 2
    assert "KEFU_SECRET_KEY has 9 characters; it needs at least 32" in out.stderr
    assert "too-short" not in out.stderr  # the key itself is not printed
