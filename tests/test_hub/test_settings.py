from __future__ import annotations

from pathlib import Path

import pytest

from hub.settings import SettingsError, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = load_settings()
    assert settings.database_url == "sqlite+aiosqlite:///data/kefu.db"
    assert [c.name for c in settings.channels] == ["web", "rest"]
    assert settings.bot.nlu_threshold == "auto"


def test_repo_config_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    root = Path(__file__).resolve().parents[2]
    settings = load_settings(root / "config.yaml")
    assert settings.bot.path == root / "examples/shop"
    assert settings.bot.fallback.handoff_after == 2


def test_interpolation_and_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARTNER_URL", "http://127.0.0.1:9/cb")
    path = write(
        tmp_path,
        "channels:\n"
        "  - {name: partner, type: rest, callback_url: '${PARTNER_URL}', timeout: '${T:-3}'}\n",
    )
    channel = load_settings(path).channels[0]
    assert channel.options == {"callback_url": "http://127.0.0.1:9/cb", "timeout": "3"}


def test_unset_variable_names_variable_and_channel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WECHAT_TOKEN", raising=False)
    path = write(
        tmp_path,
        "channels:\n  - {name: web, type: web}\n"
        "  - {name: shop-wechat, type: wechat, token: '${WECHAT_TOKEN}'}\n",
    )
    with pytest.raises(SettingsError) as e:
        load_settings(path)
    assert "WECHAT_TOKEN" in str(e.value)
    assert "shop-wechat" in str(e.value)


def test_disabled_channel_may_keep_unset_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WECHAT_TOKEN", raising=False)
    path = write(
        tmp_path,
        "channels:\n  - {name: web, type: web}\n"
        "  - {name: wx, type: wechat, enabled: false, token: '${WECHAT_TOKEN}'}\n",
    )
    assert [c.name for c in load_settings(path).channels] == ["web"]


def test_environment_overrides_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "database_url: sqlite+aiosqlite:///from-config.db\n")
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://x@127.0.0.1/y")
    assert load_settings(path).database_url == "postgresql+asyncpg://x@127.0.0.1/y"


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("bot: {nlu_threshold: 1.5}\n", "bot.nlu_threshold"),
        ("bot: {colour: blue}\n", "bot.colour"),
        ("channels:\n  - {name: a, type: web}\n  - {name: a, type: rest}\n", "named 'a'"),
        ("channels:\n  - {name: 'a b', type: web}\n", "channels.0.name"),
        ("bot: [\n", "not valid YAML"),
    ],
)
def test_bad_config_says_what_is_wrong(tmp_path: Path, text: str, complaint: str) -> None:
    with pytest.raises(SettingsError) as e:
        load_settings(write(tmp_path, text))
    assert complaint in str(e.value)
    assert "config.yaml" in str(e.value)


def test_missing_named_config_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="no such config file"):
        load_settings(tmp_path / "nope.yaml")


def test_secret_key_generated_once_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KEFU_SECRET_KEY", raising=False)
    monkeypatch.setenv("KEFU_DATA_DIR", str(tmp_path / "d"))
    first = load_settings().jwt_secret()
    assert len(first) >= 32
    assert load_settings().jwt_secret() == first
    assert (tmp_path / "d" / "secret_key").stat().st_mode & 0o077 == 0
