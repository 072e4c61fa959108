"""The WeChat channel's kit (tests/test_channels/kits.py): requests signed and encrypted as
WeChat's servers make them (safe mode, with wechatpy's crypto), and a local fake of the official
account's API. test_wechat.py uses the same helpers, in plaintext mode too."""

from __future__ import annotations

import secrets
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import xmltodict
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto

from channels.wechat import signature
from tests.test_channels import fake_wechat
from tests.test_channels.kits import Request

TOKEN = "kefu-test-token"
APP_ID = "wx0123456789abcdef"
APP_SECRET = "kefu-test-secret"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
ACCOUNT = "gh_kefu_test"  # the account's original id, ToUserName of what customers send
NUMBERS = {"MsgId", "Location_X", "Location_Y", "Scale", "Latitude", "Longitude", "Precision"}


def options(api_base: str, aes: bool = True, **extra: Any) -> dict[str, Any]:
    found: dict[str, Any] = {
        "token": TOKEN,
        "app_id": APP_ID,
        "app_secret": APP_SECRET,
        "api_base": api_base,
        **extra,
    }
    if aes:
        found["encoding_aes_key"] = AES_KEY
    return found


def msg_id(message_id: str) -> str:
    """WeChat's MsgId is a number: the same test id gives the same number."""
    return message_id if message_id.isdigit() else str(zlib.crc32(message_id.encode()) + 10**12)


def xml_message(sender: str, create_time: int | str, **fields: str) -> str:
    """A message as WeChat pushes it: <xml> with CDATA text fields (MsgType, Content, ...)."""
    parts = [
        f"<ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>",
        f"<FromUserName><![CDATA[{sender}]]></FromUserName>",
        f"<CreateTime>{create_time}</CreateTime>",
    ]
    for name, value in fields.items():
        number = name in NUMBERS
        parts.append(
            f"<{name}>{value}</{name}>" if number else f"<{name}><![CDATA[{value}]]></{name}>"
        )
    return "<xml>" + "".join(parts) + "</xml>"


def text_xml(sender: str, text: str, message_id: str) -> str:
    return xml_message(
        sender, int(time.time()), MsgType="text", Content=text, MsgId=msg_id(message_id)
    )


def signed(
    name: str,
    xml: str,
    aes: bool = True,
    token: str = TOKEN,
    key: str = AES_KEY,
    app_id: str = APP_ID,
    forge: bool = False,
    at: int | None = None,
    nonce: str | None = None,
) -> Request:
    """A POST to the channel instance `name`, signed (and encrypted) as WeChat does it: at
    this time (`at`: Unix seconds) with a new nonce, unless they are given."""
    timestamp = str(int(time.time()) if at is None else at)
    nonce = str(secrets.randbelow(10**10)) if nonce is None else nonce
    params = {"timestamp": timestamp, "nonce": nonce, "openid": "ignored-by-the-channel"}
    params["signature"] = signature(token, timestamp, nonce)
    body = xml
    if aes:
        sealed = xmltodict.parse(
            WeChatCrypto(token, key, app_id).encrypt_message(xml, nonce, timestamp)
        )["xml"]
        body = f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName><Encrypt><![CDATA[{sealed['Encrypt']}]]></Encrypt></xml>"
        params.update(encrypt_type="aes", msg_signature=sealed["MsgSignature"])
    if forge:
        for field in ("signature", "msg_signature"):
            if field in params:
                params[field] = signature("not-the-token", timestamp, nonce)
    return Request("POST", f"/channels/wechat/{name}", body=body.encode(), params=params)


def passive_reply(
    response: Any, aes: bool = True, token: str = TOKEN, key: str = AES_KEY, app_id: str = APP_ID
) -> Any:
    """The passive reply in a response (decrypted, its signature checked), or None for
    `success`."""
    assert response.status_code == 200, response.text
    if response.text in ("success", ""):
        return None
    xml = response.text
    if aes:
        sealed = xmltodict.parse(xml)["xml"]
        xml = WeChatCrypto(token, key, app_id).decrypt_message(
            xml, sealed["MsgSignature"], sealed["TimeStamp"], sealed["Nonce"]
        )
    return parse_message(xml)


class WeChatKit:
    type = "wechat"

    def options(self, api_base: str) -> dict[str, Any]:
        return options(api_base)

    @contextmanager
    def fake_api(self) -> Iterator[fake_wechat.FakeWeChat]:
        with fake_wechat.running(APP_ID, APP_SECRET) as fake:
            yield fake

    def message(self, name: str, sender: str, text: str, message_id: str) -> Request:
        return signed(name, text_xml(sender, text, message_id))

    def forged(self, name: str, sender: str, text: str, message_id: str) -> Request:
        return signed(name, text_xml(sender, text, message_id), forge=True)

    def replies(self, response: Any, api: Any, sender: str) -> list[str]:
        reply = passive_reply(response)
        passive = [reply.content] if reply is not None else []
        if reply is not None:
            assert (reply.target, reply.source) == (sender, ACCOUNT), reply
        return passive + api.texts_to(sender)

    def verification(self, name: str, challenge: str) -> Request:
        timestamp, nonce = str(int(time.time())), "1234567"
        params = {"timestamp": timestamp, "nonce": nonce, "echostr": challenge}
        params["signature"] = signature(TOKEN, timestamp, nonce)
        return Request("GET", f"/channels/wechat/{name}", params=params)


KIT = WeChatKit()
