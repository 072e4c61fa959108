"""One contract for every registered channel type (DESIGN.md section 1): a channel is one
module that implements `channels.base.Channel` and is registered by name."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter

from channels.base import Channel, ChannelConfigError
from channels.registry import build_channels, channel_types
from hub.app import create_app
from hub.messages import Event, Inbound, Outbound
from hub.ops.settings import SettingsError
from hub.ports import Capabilities
from tests.conftest import make_settings

TYPES = channel_types()


class NullReceiver:
    """A Receiver that is never called: constructing a channel must not talk to the hub."""

    async def receive(self, inbound: Inbound, on_stored: Any = None) -> list[Outbound]:
        raise AssertionError("a channel received a message while being constructed")

    async def history(self, channel: str, sender_id: str, after_id: int) -> list[Outbound]:
        raise AssertionError("unexpected history() call")

    async def current_conversation(self, channel: str, sender_id: str) -> int | None:
        raise AssertionError("unexpected current_conversation() call")

    async def publish(self, event: Event) -> None:
        raise AssertionError("unexpected publish() call")


def test_the_built_in_channels_are_registered() -> None:
    assert {"web", "rest"} <= set(TYPES), sorted(TYPES)


@pytest.mark.parametrize("type_name", sorted(TYPES))
def test_channel_type_contract(type_name: str) -> None:
    cls = TYPES[type_name]

    assert inspect.isclass(cls) and issubclass(cls, Channel)
    assert cls.type == type_name
    assert isinstance(cls.capabilities, Capabilities)
    assert not inspect.isabstract(cls), f"abstract methods left: {cls.__abstractmethods__}"
    assert inspect.iscoroutinefunction(cls.send)
    assert cls.send is not Channel.send

    channel = cls("contract", {}, NullReceiver())  # every option has a default

    assert channel.name == "contract"
    router = channel.router()
    assert router is None or isinstance(router, APIRouter), router


@pytest.mark.parametrize("type_name", sorted(TYPES))
def test_unknown_option_is_a_config_error_naming_the_channel(type_name: str) -> None:
    with pytest.raises(ChannelConfigError) as raised:
        TYPES[type_name]("my-channel", {"no_such_option": 1}, NullReceiver())

    message = str(raised.value)
    assert "my-channel" in message and "no_such_option" in message, message


def test_build_channels_names_an_unknown_type() -> None:
    with pytest.raises(ChannelConfigError, match="carrier-pigeon"):
        build_channels([("birds", "carrier-pigeon", {})], NullReceiver())


def test_create_app_refuses_an_unknown_channel_type(sqlite_url: str, tmp_path: Path) -> None:
    settings = make_settings(
        sqlite_url, tmp_path, channels=[{"name": "birds", "type": "carrier-pigeon"}]
    )
    with pytest.raises(SettingsError) as raised:
        create_app(settings, classifier=object(), flows=object())  # type: ignore[arg-type]

    message = str(raised.value)
    assert "carrier-pigeon" in message and "birds" in message, message


def test_create_app_refuses_an_unknown_channel_option(sqlite_url: str, tmp_path: Path) -> None:
    settings = make_settings(
        sqlite_url, tmp_path, channels=[{"name": "partner", "type": "rest", "callbak_url": "x"}]
    )
    with pytest.raises(SettingsError) as raised:
        create_app(settings, classifier=object(), flows=object())  # type: ignore[arg-type]

    message = str(raised.value)
    assert "partner" in message and "callbak_url" in message, message


def test_the_built_in_platforms_are_registered_by_entry_point() -> None:
    assert {"wechat", "telegram", "slack", "email"} <= set(TYPES), sorted(TYPES)


def test_a_channel_missing_its_credentials_is_reported_and_the_others_serve(
    make_hub: Any,
) -> None:
    client, _ = make_hub(
        channels=[
            {"name": "web", "type": "web"},
            {"name": "rest", "type": "rest"},
            {"name": "mp", "type": "wechat"},  # no token, app_id, app_secret
        ]
    )

    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    channels = ready.json()["channels"]
    assert channels["rest"] == "ok" and channels["web"] == "ok"
    assert "mp" in channels["mp"] and "app_secret" in channels["mp"], channels
    answer = client.post("/webhooks/rest/webhook", json={"sender": "ann", "message": "hello"})
    assert answer.status_code == 200 and answer.json(), answer.text


def test_the_shipped_config_yaml_builds_every_platform_channel_once_enabled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub.ops.settings import load_settings

    shipped = Path(__file__).resolve().parents[2] / "config.yaml"
    text = shipped.read_text(encoding="utf-8")
    assert text.count("\n    enabled: false") == 4
    config = tmp_path / "config.yaml"
    config.write_text(text.replace("\n    enabled: false", "\n    enabled: true"), encoding="utf-8")
    env = {
        "WECHAT_TOKEN": "t",
        "WECHAT_APP_ID": "wx1",
        "WECHAT_APP_SECRET": "s",
        "WECHAT_AES_KEY": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        "TELEGRAM_TOKEN": "123:abc",
        "TELEGRAM_SECRET": "secret",
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "x",
        "IMAP_PASSWORD": "p",
        "SMTP_PASSWORD": "p",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    settings = load_settings(config)
    channels = build_channels(
        ((c.name, c.type, c.options) for c in settings.enabled_channels), NullReceiver()
    )

    assert {n: c.type for n, c in channels.items()} == {
        "web": "web",
        "rest": "rest",
        "shop-wechat": "wechat",
        "shop-telegram": "telegram",
        "shop-slack": "slack",
        "support-mail": "email",
    }
