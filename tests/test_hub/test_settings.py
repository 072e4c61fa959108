from __future__ import annotations

from pathlib import Path

import pytest

from hub.ops.settings import SettingsError, load_settings


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


def test_a_short_secret_key_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEFU_SECRET_KEY", "x")
    with pytest.raises(SettingsError) as e:
        load_settings()
    message = str(e.value)
    assert "KEFU_SECRET_KEY has 1 characters; it needs at least 32" in message
    assert "secrets.token_urlsafe(48)" in message  # how to make one
    monkeypatch.setenv("KEFU_SECRET_KEY", "k" * 31)
    with pytest.raises(SettingsError, match="KEFU_SECRET_KEY has 31 characters"):
        load_settings()
    monkeypatch.setenv("KEFU_SECRET_KEY", "k" * 32)
    assert load_settings().jwt_secret() == "k" * 32


def test_generated_key_and_database_are_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the umask: the data folder 0700, the key and the database files 0600."""
    import asyncio
    import os

    from hub.store import Database, migrate

    monkeypatch.delenv("KEFU_SECRET_KEY", raising=False)
    data = tmp_path / "data"
    monkeypatch.setenv("KEFU_DATA_DIR", str(data))
    old_umask = os.umask(0o002)  # a permissive one: group and others may read new files
    try:
        load_settings().jwt_secret()

        async def open_database() -> dict[str, int]:
            db = Database(f"sqlite+aiosqlite:///{data / 'kefu.db'}")
            try:
                await migrate(db)
                async with db.transaction():  # the -wal and -shm files exist while open
                    return {f.name: f.stat().st_mode & 0o777 for f in data.glob("kefu.db*")}
            finally:
                await db.close()

        modes = asyncio.run(open_database())
    finally:
        os.umask(old_umask)
    assert data.stat().st_mode & 0o777 == 0o700
    assert (data / "secret_key").stat().st_mode & 0o777 == 0o600
    assert modes == {"kefu.db": 0o600, "kefu.db-shm": 0o600, "kefu.db-wal": 0o600}


def test_trusted_proxies_from_the_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KEFU_TRUSTED_PROXIES", raising=False)
    assert load_settings(write(tmp_path, "bot: {}\n")).trusted_proxies == []  # none by default
    config = write(tmp_path, "trusted_proxies: [10.0.0.5, 172.28.0.0/24, '::1']\n")
    assert load_settings(config).trusted_proxies == ["10.0.0.5", "172.28.0.0/24", "::1"]
    monkeypatch.setenv("KEFU_TRUSTED_PROXIES", "172.28.0.10, 10.1.0.0/16")
    assert load_settings(config).trusted_proxies == ["172.28.0.10", "10.1.0.0/16"]
    for bad, why in (("*", "every client"), ("proxy.local", "not an IP address or CIDR")):
        monkeypatch.setenv("KEFU_TRUSTED_PROXIES", bad)
        with pytest.raises(SettingsError, match=why):
            load_settings(config)
