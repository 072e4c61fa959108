"""The packages import from this repository, and the `kefu` command exists in both forms."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("package", ["hub", "channels", "nlu", "flows", "knowledge", "admin"])
def test_packages_come_from_this_repo(package: str) -> None:
    # Django Channels also installs `channels`: a clash must fail loudly, not import theirs.
    module = importlib.import_module(package)
    assert module.__file__ is not None
    assert Path(module.__file__).resolve().parent == ROOT / package


def test_python_dash_m_hub_is_the_kefu_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "hub", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("run", "migrate", "train", "check", "chat", "agent"):
        assert command in out.stdout
    kefu = Path(sys.executable).parent / "kefu"
    assert kefu.exists(), "the kefu console script is not installed"


def test_core_names_no_platform() -> None:
    """No channel names or platform SDKs outside channels/ (DESIGN.md section 1)."""
    forbidden = (
        "wechatpy",
        "aiogram",
        "slack_bolt",
        "slack_sdk",
        '"wechat"',
        '"telegram"',
        '"slack"',
    )
    for package in ("hub", "nlu", "flows", "knowledge", "admin"):
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            for name in forbidden:
                assert name not in text, f"{path.relative_to(ROOT)} names {name}"
