"""The WeChat official account channel: URL verification, plaintext and safe mode, the
5-second rule (passive reply or the customer-service API), WeChat's retries, the access_token,
the 48-hour window, media, and the vectors in tests/fixtures/wechat (see its README)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import xmltodict
from fastapi import FastAPI
from fastapi.testclient import TestClient
from wechatpy import parse_message
from wechatpy.crypto import PrpCrypto, WeChatCrypto

from channels.base import ChannelConfigError
from channels.wechat import (
    MAX_TEXT_BYTES,
    AccessToken,
    Refused,
    WeChatApi,
    WeChatChannel,
    WeChatOptions,
    normalize,
    parse,
    signature,
    split_text,
)
from channels.wechat.replay import MemoryNonces, RedisNonces, Reused
from channels.wechat.tokens import MemoryTokenCache
from hub.messages import Attachment, Kind, Outbound, Sender, utcnow
from hub.ports import Unavailable
from tests.conftest import need
from tests.test_channels import fake_wechat
from tests.test_channels.conftest import MakeHub
from tests.test_channels.kit_wechat import (
    ACCOUNT,
    APP_ID,
    APP_SECRET,
    TOKEN,
    options,
    passive_reply,
    signed,
    text_xml,
    xml_message,
)
from tests.test_channels.kits import Request
from tests.test_channels.support import (
    NOTICE_EN,
    agent_reply,
    conversation_of,
    conversations,
    message_by_id,
    messages,
    wait_for,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "wechat"
NAME = "shop"
PATH = f"/channels/wechat/{NAME}"
GREETING = "Hello! I'm the Kefu Shop assistant"

Hub = tuple[TestClient, dict[str, str]]
UNUSED: Any = None  # the receiver of a channel tested on its own, which never calls it


def send(client: TestClient, request: Request) -> Any:
    return client.request(request.method, request.path, content=request.body, params=request.params)


def drain(client: TestClient) -> None:
    client.portal.call(client.app.state.hub.outbox.drain)  # type: ignore[attr-defined,union-attr,call-arg]


def stored(client: TestClient) -> list[Any]:
    """Every message stored for the instance, oldest first (with payload and kind)."""
    hub = client.app.state.hub  # type: ignore[attr-defined]

    async def load() -> list[Any]:
        from sqlmodel import col, select

        from hub.store.models import Message

        async with hub.db.read() as s:
            query = select(Message).where(Message.channel == NAME).order_by(col(Message.id))
            return list((await s.exec(query)).all())

    return client.portal.call(load)  # type: ignore[union-attr]


def inbound_ids(client: TestClient) -> list[str | None]:
    return [m.channel_message_id for m in stored(client) if m.direction == "in"]


@pytest.fixture
def api() -> Iterator[fake_wechat.FakeWeChat]:
    with fake_wechat.running(APP_ID, APP_SECRET) as fake:
        yield fake


@pytest.fixture
def wechat(make_hub: MakeHub, api: fake_wechat.FakeWeChat) -> Callable[..., Hub]:
    """wechat(aes=True, settings={...}, **channel options) -> (client, agent auth)."""

    def make(aes: bool = True, settings: dict[str, Any] | None = None, **extra: Any) -> Hub:
        channel = {"name": NAME, "type": "wechat", **options(api.base, aes=aes, **extra)}
        return make_hub(channels=[channel], **(settings or {}))

    return make


def say(client: TestClient, sender: str, text: str, message_id: str, aes: bool = True) -> Any:
    response = send(client, signed(NAME, text_xml(sender, text, message_id), aes=aes))
    assert response.status_code == 200, response.text
    return response


# ---- URL verification ----------------------------------------------------------------------


def now() -> str:
    return str(int(time.time()))


def at_time(client: TestClient, timestamp: str | int) -> None:
    """The channel's clock reads `timestamp`: a vector signed long ago is fresh again."""
    channel = client.app.state.hub.channels[NAME]  # type: ignore[attr-defined]
    channel.replay.clock = lambda: float(timestamp)


def test_url_verification_echoes_echostr(wechat: Callable[..., Hub]) -> None:
    client, _ = wechat()
    query = {"timestamp": now(), "nonce": "1320562132", "echostr": "5927782489442352469"}
    query["signature"] = signature(TOKEN, query["timestamp"], query["nonce"])

    r = client.get(PATH, params=query)

    assert r.status_code == 200 and r.text == "5927782489442352469"


@pytest.mark.parametrize("change", ["signature", "nonce", "timestamp", "missing"])
def test_url_verification_with_a_wrong_signature_is_403(
    wechat: Callable[..., Hub], change: str
) -> None:
    client, _ = wechat()
    query = {"timestamp": now(), "nonce": "1320562132", "echostr": "secret-echo"}
    query["signature"] = signature(TOKEN, query["timestamp"], query["nonce"])
    if change == "missing":
        del query["signature"]
    else:
        first = query[change][0]
        query[change] = ("1" if first == "0" else "0") + query[change][1:]  # always another

    r = client.get(PATH, params=query)

    assert r.status_code == 403 and "secret-echo" not in r.text


def test_an_unconfigured_channel_refuses_everything() -> None:
    """An empty token would make every signature computable by anyone."""
    channel = WeChatChannel("blank", {}, receiver=UNUSED)
    app = FastAPI()
    app.include_router(channel.router())
    client = TestClient(app)
    query = {"timestamp": "1", "nonce": "2", "echostr": "x", "signature": signature("", "1", "2")}

    assert client.get("/channels/wechat/blank", params=query).status_code == 403
    assert client.post("/channels/wechat/blank", params=query, content=b"<xml/>").status_code == 403


def test_starting_without_token_app_id_or_secret_names_the_channel(
    make_hub: MakeHub, api: fake_wechat.FakeWeChat
) -> None:
    client, _ = make_hub(channels=[{"name": NAME, "type": "wechat", "token": "t", "app_id": "wx1"}])

    assert re.search(r"'shop'.*app_secret", client.get("/readyz").json()["channels"][NAME])


@pytest.mark.parametrize(
    "bad",
    [{"encoding_aes_key": "too-short"}, {"encoding_aes_key": "!" * 43}, {"token_cache": "mem"}],
)
def test_bad_options_are_config_errors(bad: dict[str, Any]) -> None:
    with pytest.raises(ChannelConfigError, match=next(iter(bad))):
        WeChatChannel("shop", {"token": "t", **bad}, receiver=UNUSED)


# ---- messages in, passive replies out -----------------------------------------------------


@pytest.mark.parametrize("aes", [False, True], ids=["plaintext", "safe mode"])
def test_a_message_is_stored_and_answered_passively(
    wechat: Callable[..., Hub], api: fake_wechat.FakeWeChat, aes: bool
) -> None:
    client, auth = wechat(aes=aes)

    response = say(client, "o-alice", "hello", "1001", aes=aes)
    drain(client)

    reply = passive_reply(response, aes=aes)
    assert reply.type == "text" and reply.content.startswith(GREETING), reply
    assert (reply.source, reply.target) == (ACCOUNT, "o-alice")
    # no buttons on WeChat: the hub sent numbered options, and said how to choose
    assert "\n1. Where is my order?" in reply.content
    assert "Reply with the number of your choice." in reply.content
    assert api.sent == [] and api.token_fetches == 0  # nothing needed the API
    conversation = conversation_of(client, auth, NAME, "o-alice")
    shown = messages(client, auth, conversation["id"])
    assert (shown[0]["sender"], shown[0]["text"]) == ("contact", "hello")
    assert [m["delivery"] for m in shown if m["sender"] == "bot"] == ["sent"]
    assert inbound_ids(client) == ["1001"]


def test_in_safe_mode_a_plaintext_request_is_still_accepted_and_answered_in_plaintext(
    wechat: Callable[..., Hub],
) -> None:
    """The account may switch modes on mp.weixin.qq.com before the hub's config follows."""
    client, _ = wechat(aes=True)
    response = say(client, "o-plain", "hello", "1002", aes=False)
    assert passive_reply(response, aes=False).content.startswith(GREETING)


@pytest.mark.parametrize("aes", [False, True], ids=["plaintext", "safe mode"])
def test_a_wrong_signature_is_403_and_stores_nothing(
    wechat: Callable[..., Hub], api: fake_wechat.FakeWeChat, aes: bool
) -> None:
    client, auth = wechat(aes=aes)
    forged = signed(NAME, text_xml("o-mallory", "hello", "1003"), aes=aes, forge=True)

    r = send(client, forged)
    drain(client)

    assert r.status_code == 403, r.text
    assert conversations(client, auth) == [] and api.sent == []


def test_a_message_for_another_app_id_is_403_and_stores_nothing(
    wechat: Callable[..., Hub],
) -> None:
    client, auth = wechat()
    other = signed(NAME, text_xml("o-x", "hello", "1004"), app_id="wx0000000000000000")

    r = send(client, other)

    assert r.status_code == 403 and "app_id" in r.text
    assert conversations(client, auth) == []


def test_a_request_without_signature_parameters_is_403(wechat: Callable[..., Hub]) -> None:
    client, auth = wechat(aes=False)
    r = client.post(PATH, content=text_xml("o-x", "hello", "1005").encode())
    assert r.status_code == 403
    assert conversations(client, auth) == []


MALFORMED = {
    "not xml": "hello there",
    "empty xml": "<xml></xml>",
    "no MsgType": "<xml><FromUserName>u</FromUserName><CreateTime>1</CreateTime></xml>",
    "no FromUserName": "<xml><MsgType>text</MsgType><Content>x</Content></xml>",
    "another root": "<root><MsgType>text</MsgType></root>",
    "a location that isn't one": xml_message(
        "o-x", 1, MsgType="location", Location_X="north", Location_Y="1", MsgId="7"
    ),
    # found by fuzzing (test_fuzz_parsers.py): each was a 500
    "a location without coordinates": xml_message("o-x", 1, MsgType="location", MsgId="8"),
    "a location at NaN": xml_message(
        "o-x", 1, MsgType="location", Location_X="nan", Location_Y="1", MsgId="9"
    ),
    "a repeated element": "<xml><FromUserName>o-x</FromUserName><MsgType>link</MsgType>"
    "<Title>a</Title><Title>b</Title><MsgId>10</MsgId></xml>",
    "a nested element": "<xml><FromUserName>o-x</FromUserName><MsgType>location</MsgType>"
    "<Location_X><a>1</a></Location_X><Location_Y>1</Location_Y><MsgId>11</MsgId></xml>",
    "entity expansion": '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><xml><FromUserName>u</FromUserName>'
    "<MsgType>text</MsgType><Content>&lol2;</Content></xml>",
}


@pytest.mark.parametrize("aes", [False, True], ids=["plaintext", "safe mode"])
@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_message_is_400_and_stores_nothing(
    shared_wechat: Hub, body: str, aes: bool
) -> None:
    client, _ = shared_wechat
    before = len(stored(client))

    r = send(client, signed(NAME, body, aes=aes))

    assert r.status_code == 400, r.text
    assert len(stored(client)) == before


@pytest.mark.parametrize(
    "body",
    [
        "not xml",
        "<xml><ToUserName>gh</ToUserName></xml>",
        "<xml><Encrypt><![CDATA[bm90IGNpcGhlcnRleHQ=]]></Encrypt></xml>",
        "<xml><Encrypt><![CDATA[%%% not base64]]></Encrypt></xml>",
    ],
    ids=["not xml", "no Encrypt", "not ciphertext", "not base64"],
)
def test_a_broken_safe_mode_envelope_is_400(shared_wechat: Hub, body: str) -> None:
    client, _ = shared_wechat
    before = len(stored(client))
    timestamp, nonce = now(), str(time.time_ns())
    params = {"timestamp": timestamp, "nonce": nonce, "encrypt_type": "aes"}
    encrypt = re.search(r"CDATA\[(.*?)\]\]", body)
    params["msg_signature"] = signature(
        TOKEN, timestamp, nonce, encrypt.group(1) if encrypt else ""
    )

    r = client.post(PATH, params=params, content=body.encode())

    assert r.status_code == 400, r.text
    assert len(stored(client)) == before


def test_a_body_that_is_not_utf8_is_400(shared_wechat: Hub) -> None:
    client, _ = shared_wechat
    request = signed(NAME, "x", aes=False)
    r = client.post(PATH, params=request.params, content="<xml>你好</xml>".encode("gb18030"))
    assert r.status_code == 400


@pytest.fixture(scope="module")
def shared_wechat(
    tmp_path_factory: pytest.TempPathFactory, classifier: Any, flows: Any
) -> Iterator[Hub]:
    """One hub (safe mode) for tests that only compare before and after."""
    from tests.conftest import client_for, create_agent, login, make_settings, migrated_sqlite

    tmp = tmp_path_factory.mktemp("wechat-hub")
    url = migrated_sqlite(tmp)
    with fake_wechat.running(APP_ID, APP_SECRET) as fake:
        channel = {"name": NAME, "type": "wechat", **options(fake.base)}
        settings = make_settings(url, tmp, channels=[channel])
        create_agent(settings, role="admin")
        with client_for(settings, classifier, flows) as client:
            yield client, login(client)


# ---- replays: the freshness window and the nonce memory ----------------------------------


@pytest.mark.parametrize("aes", [False, True], ids=["plaintext", "safe mode"])
@pytest.mark.parametrize("offset", [-301, 301, -86400 * 365], ids=["old", "future", "a year old"])
def test_a_request_outside_the_five_minute_window_is_403_and_stores_nothing(
    wechat: Callable[..., Hub], api: fake_wechat.FakeWeChat, aes: bool, offset: int
) -> None:
    client, auth = wechat(aes=aes)
    request = signed(
        NAME, text_xml("o-late", "hello", "8001"), aes=aes, at=int(time.time()) + offset
    )

    r = send(client, request)
    drain(client)

    assert r.status_code == 403 and "timestamp" in r.text, r.text
    assert conversations(client, auth) == [] and stored(client) == [] and api.sent == []


def test_a_clock_a_little_off_is_within_the_window_and_max_age_sets_it(
    wechat: Callable[..., Hub],
) -> None:
    client, _ = wechat(max_age=60)
    then = int(time.time())

    near = send(client, signed(NAME, text_xml("o-skew", "hello", "8002"), at=then - 50))
    far = send(client, signed(NAME, text_xml("o-skew", "hello again", "8003"), at=then - 70))

    assert passive_reply(near).content.startswith(GREETING)
    assert far.status_code == 403
    assert inbound_ids(client) == ["8002"]


@pytest.mark.parametrize("aes", [False, True], ids=["plaintext", "safe mode"])
def test_a_nonce_reused_with_another_message_is_403_its_own_retry_is_answered(
    wechat: Callable[..., Hub], api: fake_wechat.FakeWeChat, aes: bool
) -> None:
    """Plaintext mode signs the token, timestamp and nonce, not the body: a captured
    signature must not carry another message (another text, another MsgId). WeChat's own
    retry of the request is still answered as a redelivery: stored once, answered once."""
    client, auth = wechat(aes=aes)
    then, nonce = int(time.time()), "555000111"
    first = signed(NAME, text_xml("o-cap", "hello", "8101"), aes=aes, at=then, nonce=nonce)
    forged_text = signed(
        NAME, text_xml("o-cap", "refund me", "8101"), aes=aes, at=then, nonce=nonce
    )
    forged_id = signed(NAME, text_xml("o-cap", "hello", "8102"), aes=aes, at=then, nonce=nonce)
    other_sender = signed(NAME, text_xml("o-eve", "hi", "8103"), aes=aes, at=then, nonce=nonce)

    answered = send(client, first)
    refused = [send(client, r) for r in (forged_text, forged_id, other_sender)]
    retry = send(client, first)  # WeChat's retry: the very same request
    drain(client)

    assert passive_reply(answered, aes=aes).content.startswith(GREETING)
    assert [r.status_code for r in refused] == [403, 403, 403], [r.text for r in refused]
    assert all("nonce" in r.text for r in refused)
    assert retry.status_code == 200 and retry.text == "success"
    assert inbound_ids(client) == ["8101"]
    assert [m.sender_type for m in stored(client)] == ["contact", "bot"]
    [conversation] = conversations(client, auth)
    assert messages(client, auth, conversation["id"])[0]["text"] == "hello"
    assert api.sent == []


def test_the_same_nonce_at_another_timestamp_is_another_request(
    wechat: Callable[..., Hub],
) -> None:
    """WeChat's nonces are random numbers, not unique forever: what is remembered is the
    signed pair (timestamp, nonce)."""
    client, _ = wechat(aes=False)
    then = int(time.time())

    a = send(
        client, signed(NAME, text_xml("o-n", "hello", "8201"), aes=False, at=then - 1, nonce="7")
    )
    b = send(client, signed(NAME, text_xml("o-n", "1", "8202"), aes=False, at=then, nonce="7"))

    assert (a.status_code, b.status_code) == (200, 200)
    assert inbound_ids(client) == ["8201", "8202"]


@pytest.mark.parametrize("offset", [-301, 301])
def test_url_verification_outside_the_window_is_403(
    wechat: Callable[..., Hub], offset: int
) -> None:
    client, _ = wechat()
    query = {"timestamp": str(int(time.time()) + offset), "nonce": "1", "echostr": "echo-me"}
    query["signature"] = signature(TOKEN, query["timestamp"], query["nonce"])

    r = client.get(PATH, params=query)

    assert r.status_code == 403 and "echo-me" not in r.text


@pytest.mark.parametrize("timestamp", ["", "abc", "１７００００００００", "9" * 40, "-5"])
def test_a_timestamp_that_is_not_unix_seconds_is_403(shared_wechat: Hub, timestamp: str) -> None:
    client, _ = shared_wechat
    before = len(stored(client))
    params = {"timestamp": timestamp, "nonce": "1"}
    params["signature"] = signature(TOKEN, timestamp, "1")

    r = client.post(PATH, params=params, content=text_xml("o-t", "hi", "8301").encode())

    assert r.status_code == 403, r.text
    assert len(stored(client)) == before


def test_the_official_sample_is_refused_301_seconds_after_it_was_signed(
    wechat: Callable[..., Hub],
) -> None:
    client, auth = spamtest_hub(wechat)
    at_time(client, int(SPAMTEST["query"]["timestamp"]) + 301)

    r = client.post(PATH, params=SPAMTEST["query"], content=SPAMTEST["post_body_xml"].encode())

    assert r.status_code == 403 and "is 301 s old" in r.text, r.text
    assert conversations(client, auth) == []


def test_when_the_nonce_memory_is_unreachable_wechat_is_asked_to_retry(
    wechat: Callable[..., Hub], api: fake_wechat.FakeWeChat
) -> None:
    """Redis (token_cache) down: 503, nothing stored; WeChat sends the request again."""
    client, auth = wechat(token_cache="redis://127.0.0.1:1/0")

    r = send(client, signed(NAME, text_xml("o-r", "hello", "8401")))

    assert r.status_code == 503 and "nonce memory" in r.text, r.text
    assert conversations(client, auth) == []


async def test_the_nonce_memory_is_shared_through_redis() -> None:
    """Two hub processes of one account (token_cache: the same Redis): a nonce taken on one
    is refused with another message on the other; the same request passes on both."""
    import redis.asyncio as aioredis

    url = os.environ.get("KEFU_TEST_REDIS", "redis://127.0.0.1:6379/15")
    probe = aioredis.from_url(url, socket_timeout=2)
    try:
        await probe.ping()
    except Exception as e:
        need("Redis", f"{url}: {e}")
    finally:
        await probe.aclose()
    app_id = f"wx-nonce-{time.time_ns()}"
    one, two = (
        WeChatChannel(f"p{i}", options("http://unused", app_id=app_id, token_cache=url), UNUSED)
        for i in range(2)
    )
    then, xml = str(int(time.time())), text_xml("o-r", "hello", "8501")
    try:
        assert isinstance(one.replay.nonces, RedisNonces)
        await one.replay.admit(then, "42", xml)
        await two.replay.admit(then, "42", xml)  # WeChat's retry, reaching another process
        with pytest.raises(Reused):
            await two.replay.admit(then, "42", text_xml("o-r", "refund", "8502"))
        ttl = await one.api.tokens.cache.redis.ttl(f"kefu:wechat:{app_id}:nonce:{then}:42")  # type: ignore[attr-defined]
        assert 290 <= ttl <= 302  # kept while the timestamp is in the window, no longer
    finally:
        for channel in (one, two):
            await channel.stop()


async def test_the_nonce_memory_in_a_process_forgets_and_is_bounded() -> None:
    now = [1000.0]
    nonces = MemoryNonces(max_size=3, clock=lambda: now[0])

    assert await nonces.claim("a", "x", ttl=10) is None
    assert await nonces.claim("a", "y", ttl=10) == "x"
    now[0] += 11  # out of the window: the key is new again
    assert await nonces.claim("a", "y", ttl=10) is None
    for key in "bcd":
        await nonces.claim(key, "z", ttl=10)
    assert await nonces.claim("a", "w", ttl=10) is None  # the oldest made room


def test_a_file_wechat_answers_garbage_for_is_noted_and_the_message_kept(
    wechat: Callable[..., Hub], api: fake_wechat.FakeWeChat
) -> None:
    """An optional lookup that fails in an unforeseen way (media/get answering JSON that
    isn't) never costs the customer's message: stored with a note, and answered."""
    api.add_media("m-junk", b"{not json", "application/json", "junk.json")
    client, auth = wechat()
    xml = xml_message(
        "o-junk", int(time.time()), MsgType="image", PicUrl="http://x", MediaId="m-junk",
        MsgId="8601",
    )  # fmt: skip

    response = send(client, signed(NAME, xml))

    assert passive_reply(response) is not None
    [first, *_] = messages(client, auth, conversation_of(client, auth, NAME, "o-junk")["id"])
    assert first["kind"] == "image" and first["text"].startswith("[image not kept:")
    assert inbound_ids(client) == ["8601"]


def test_a_cdata_terminator_in_a_reply_does_not_break_the_xml() -> None:
    channel = WeChatChannel("shop", options("http://unused"), receiver=UNUSED)
    message = parse(text_xml("o-x", "hi", "1"))
    from channels.wechat import Envelope

    for encrypted in (False, True):
        sealed = channel.seal(message, Envelope("", encrypted, "123"), "a]]>b<c>&d")
        if encrypted:
            crypto = WeChatCrypto(TOKEN, options("")["encoding_aes_key"], APP_ID)
            fields = xmltodict.parse(sealed)["xml"]  # the envelope: Encrypt, MsgSignature, ...
            sealed = crypto.decrypt_message(
                sealed, fields["MsgSignature"], fields["TimeStamp"], fields["Nonce"]
            )
        assert parse_message(sealed).content == "a]]>b<c>&d"


# ---- the 5-second rule ----------------------------------------------------------------------


def test_a_slow_answer_is_success_and_goes_through_the_api(
    wechat: Callable[..., Hub], api: fake_wechat.FakeWeChat
) -> None:
    client, auth = wechat(reply_within=0)  # the budget is always already spent

    response = say(client, "o-slow", "hello", "2001")

    assert response.text == "success"
    sent = wait_for(lambda: api.texts_to("o-slow"), "the greeting through the API")
    assert len(sent) == 1 and sent[0].startswith(GREETING)
    drain(client)
    conversation = conversation_of(client, auth, NAME, "o-slow")
    bot = [m for m in messages(client, auth, conversation["id"]) if m["sender"] == "bot"]
    assert [m["delivery"] for m in bot] == ["sent"]


def test_a_message_the_hub_cannot_store_is_refused_and_its_retry_taken(
    wechat: Callable[..., Hub], api: fake_wechat.FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database is down, and saying so takes longer than the passive reply budget (a
    connect timeout): WeChat must not get `success` (it would not send the message again);
    its retry, once the database is back, is stored and answered once."""
    client, _ = wechat(reply_within=0.2)
    hub = client.app.state.hub  # type: ignore[attr-defined]
    real = hub.store.record_inbound

    async def database_down(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.6)
        raise Unavailable("database unavailable: TimeoutError")

    monkeypatch.setattr(hub.store, "record_inbound", database_down)
    request = signed(NAME, text_xml("o-down", "hello", "2101"))
    refused = send(client, request)
    assert refused.status_code == 503 and refused.text != "success"
    monkeypatch.setattr(hub.store, "record_inbound", real)
    retry = send(client, request)  # WeChat's retry: the same MsgId
    assert retry.status_code == 200
    drain(client)
    assert inbound_ids(client) == ["2101"]
    answers = api.texts_to("o-down") + (
        [passive_reply(retry).content] if "<xml>" in retry.text else []
    )
    assert len(answers) == 1 and answers[0].startswith(GREETING)


def test_an_answer_later_than_the_budget_goes_through_the_api_once(
    wechat: Callable[..., Hub], api: fake_wechat.FakeWeChat
) -> None:
    """The image takes longer to fetch than the budget: `success` once the message is stored
    (after the fetch, within WeChat's 5 s), the bot's answer through the API when it comes,
    and not in any response."""
    api.add_media("m-slow", b"\x89PNG slow", "image/png", "slow.png")
    api.media_delay = 0.8
    client, _ = wechat(reply_within=0.2)
    xml = xml_message(
        "o-late",
        int(time.time()),
        MsgType="image",
        PicUrl="http://x",
        MediaId="m-slow",
        MsgId="2002",
    )

    started = time.monotonic()
    response = send(client, signed(NAME, xml))

    assert response.text == "success" and 0.8 <= time.monotonic() - started < 4.5
    sent = wait_for(lambda: api.texts_to("o-late"), "the answer through the API")
    drain(client)
    assert len(api.texts_to("o-late")) == len(sent) == 1, api.texts_to("o-late")


def test_several_replies_the_first_passive_the_rest_through_the_api(
    wechat: Callable[..., Hub], api: fake_wechat.FakeWeChat
) -> None:
    client, auth = wechat()

    response = say(client, "o-angry", "/complaint", "2003")
    drain(client)

    reply = passive_reply(response)
    assert reply.content.startswith("I'm really sorry to hear that")
    assert [t[: len(NOTICE_EN)] for t in api.texts_to("o-angry")] == [NOTICE_EN]
    conversation = conversation_of(client, auth, NAME, "o-angry")
    assert conversation["status"] == "pending"
    out = [m for m in messages(client, auth, conversation["id"]) if m["sender"] != "contact"]
    assert [m["delivery"] for m in out] == ["sent", "sent"]


def test_three_retries_store_one_message_and_answer_once(
    wechat: Callable[..., Hub], api: fake_wechat.FakeWeChat
) -> None:
    client, _ = wechat()
    request = signed(NAME, text_xml("o-retry", "hello", "3001"))

    first, *retries = [send(client, request) for _ in range(3)]
    drain(client)

    assert passive_reply(first).content.startswith(GREETING)
    assert [r.text for r in retries] == ["success", "success"]
    assert inbound_ids(client) == ["3001"]
    assert [m.sender_type for m in stored(client)] == ["contact", "bot"]
    assert api.texts_to("o-retry") == []


def test_a_retry_while_the_first_is_still_handled_waits_for_it(
    wechat: Callable[..., Hub], api: fake_wechat.FakeWeChat
) -> None:
    """WeChat retries while the image is still being fetched: one fetch, one stored message,
    one answer (in the first request's response)."""
    api.add_media("m-1", b"\x89PNG one", "image/png", "one.png")
    api.media_delay = 0.6
    client, _ = wechat()
    xml = xml_message(
        "o-twice", int(time.time()), MsgType="image", PicUrl="http://x", MediaId="m-1", MsgId="3002"
    )
    request = signed(NAME, xml)
    responses: dict[str, Any] = {}

    def post(which: str) -> None:
        responses[which] = send(client, request)

    first = threading.Thread(target=post, args=("first",))
    first.start()
    time.sleep(0.2)
    post("retry")
    first.join(10)
    drain(client)

    # one carries the answer, the other is `success` (normally the retry, unless load made
    # it arrive first)
    answers = [passive_reply(r) for r in responses.values()]
    assert sorted(a is None for a in answers) == [False, True], [r.text for r in responses.values()]
    assert api.media_fetches == 1
    assert inbound_ids(client) == ["3002"]
    assert [m.sender_type for m in stored(client)] == ["contact", "bot"]
    assert api.texts_to("o-twice") == []


def test_events_are_deduplicated_by_sender_time_and_event(
    wechat: Callable[..., Hub], api: fake_wechat.FakeWeChat
) -> None:
    client, _ = wechat(reply_within=0)
    xml = xml_message("o-fan", 1700000000, MsgType="event", Event="subscribe")

    for _ in range(3):
        assert send(client, signed(NAME, xml)).text == "success"
    wait_for(lambda: api.texts_to("o-fan"), "the greeting")
    drain(client)

    assert inbound_ids(client) == ["o-fan:1700000000:subscribe"]
    assert len(api.texts_to("o-fan")) == 1


# ---- numbered options, events ------------------------------------------------------------


def test_a_number_picks_the_numbered_option(wechat: Callable[..., Hub]) -> None:
    client, _ = wechat()

    menu = passive_reply(say(client, "o-menu", "hello", "4001")).content
    picked = passive_reply(say(client, "o-menu", "1", "4002")).content

    assert "1. Where is my order?" in menu
    assert picked.startswith("Sure! What's your order number?"), picked


def test_a_follow_by_qr_code_greets_and_keeps_the_scene(wechat: Callable[..., Hub]) -> None:
    client, _ = wechat()
    xml = xml_message(
        "o-new", int(time.time()), MsgType="event", Event="subscribe",
        EventKey="qrscene_store-42", Ticket="TICKET",
    )  # fmt: skip

    reply = passive_reply(send(client, signed(NAME, xml)))

    assert reply.content.startswith(GREETING)
    event = stored(client)[0]
    assert (event.kind, event.text, event.payload["postback"]) == ("event", "", "/greet")
    assert event.payload["event"] == {
        "type": "subscribe_scan", "key": "store-42", "scene": "store-42", "ticket": "TICKET"
    }  # fmt: skip
    assert event.payload["nlu"]["intent"] == "greet"


def test_a_menu_click_with_a_payload_key_is_that_button(
    wechat: Callable[..., Hub], api: fake_wechat.FakeWeChat
) -> None:
    client, auth = wechat()
    xml = xml_message(
        "o-click", int(time.time()), MsgType="event", Event="CLICK", EventKey="/human"
    )

    reply = passive_reply(send(client, signed(NAME, xml)))

    assert reply.content.startswith(NOTICE_EN)
    assert conversation_of(client, auth, NAME, "o-click")["status"] == "pending"


def test_unsubscribe_is_not_answered_and_reaches_the_inbox(
    wechat: Callable[..., Hub], api: fake_wechat.FakeWeChat
) -> None:
    client, auth = wechat()
    say(client, "o-bye", "hello", "5001")
    before = stored(client)
    conversation_id = conversation_of(client, auth, NAME, "o-bye")["id"]
    token = auth["authorization"].split()[1]
    xml = xml_message("o-bye", int(time.time()), MsgType="event", Event="unsubscribe")

    with client.websocket_connect(f"/api/v1/events?token={token}") as events:
        response = send(client, signed(NAME, xml))
        event = events.receive_json()
    drain(client)

    assert response.text == "success"
    assert event == {
        "type": "contact.unsubscribed",
        "conversation_id": conversation_id,
        "data": {"channel": NAME, "sender_id": "o-bye"},
    }
    assert len(stored(client)) == len(before) and api.sent == []


@pytest.mark.parametrize(
    "fields",
    [
        {"Event": "VIEW", "EventKey": "https://shop.example.com"},
        {
            "Event": "LOCATION",
            "Latitude": "23.137466",
            "Longitude": "113.352425",
            "Precision": "119.385040",
        },
        {"Event": "TEMPLATESENDJOBFINISH", "Status": "success"},
    ],
    ids=["view", "location report", "template job"],
)
def test_events_that_are_not_conversation_are_not_answered(
    wechat: Callable[..., Hub], api: fake_wechat.FakeWeChat, fields: dict[str, str]
) -> None:
    client, _ = wechat()
    xml = xml_message("o-quiet", int(time.time()), MsgType="event", **fields)

    response = send(client, signed(NAME, xml))
    drain(client)

    assert response.text == "success"
    assert stored(client) == [] and api.sent == []


# ---- the customer-service API -------------------------------------------------------------


def handed_over(client: TestClient, auth: dict[str, str], openid: str) -> int:
    say(client, openid, "/human", f"{abs(hash(openid)) % 10**9}")
    drain(client)
    return int(conversation_of(client, auth, NAME, openid)["id"])


def test_an_agent_reply_goes_through_the_api_in_raw_utf8(
    wechat: Callable[..., Hub], api: fake_wechat.FakeWeChat
) -> None:
    client, auth = wechat()
    conversation_id = handed_over(client, auth, "o-agent")

    sent = agent_reply(client, auth, conversation_id, "您好，我是客服小林。")
    drain(client)

    assert api.texts_to("o-agent") == ["您好，我是客服小林。"]
    assert "您好".encode() in api.sent[0].raw and b"\\u" not in api.sent[0].raw
    assert message_by_id(client, auth, conversation_id, sent["id"])["delivery"] == "sent"


def test_one_token_fetch_serves_many_messages(
    wechat: Callable[..., Hub], api: fake_wechat.FakeWeChat
) -> None:
    client, _ = wechat(reply_within=0)

    for i in range(5):
        say(client, f"o-many-{i}", "hello", f"600{i}")
    wait_for(lambda: all(api.texts_to(f"o-many-{i}") for i in range(5)), "five greetings")
    drain(client)

    assert api.token_fetches == 1


async def test_concurrent_calls_share_one_token_fetch(api: fake_wechat.FakeWeChat) -> None:
    client = WeChatApi(WeChatOptions(**options(api.base)), MemoryTokenCache())
    try:
        await asyncio.gather(*(client.send_text(f"o-{i}", "hi") for i in range(20)))
    finally:
        await client.close()
    assert api.token_fetches == 1 and len(api.sent) == 20


async def test_the_token_is_fetched_again_shortly_before_it_expires() -> None:
    now = [1000.0]
    fetched: list[str] = []

    async def fetch() -> tuple[str, float]:
        fetched.append(f"T{len(fetched) + 1}")
        return fetched[-1], 7200.0

    tokens = AccessToken(fetch, MemoryTokenCache(clock=lambda: now[0]), margin=300.0)
    assert await tokens.get() == "T1"
    now[0] += 7200 - 300 - 1
    assert await tokens.get() == "T1"
    now[0] += 2  # within the margin: renewed while the old one still works
    assert await tokens.get() == "T2"


def test_a_rejected_token_is_renewed_and_the_send_retried_once(
    wechat: Callable[..., Hub], api: fake_wechat.FakeWeChat
) -> None:
    client, auth = wechat()
    conversation_id = handed_over(client, auth, "o-renew")
    agent_reply(client, auth, conversation_id, "first")
    drain(client)
    api.revoke_token()  # e.g. another server fetched a new one

    sent = agent_reply(client, auth, conversation_id, "second")
    drain(client)

    assert api.texts_to("o-renew") == ["first", "second"]
    assert api.token_fetches == 2
    assert message_by_id(client, auth, conversation_id, sent["id"])["delivery"] == "sent"


def test_out_of_the_48_hour_window_the_delivery_fails_visibly(
    wechat: Callable[..., Hub], api: fake_wechat.FakeWeChat
) -> None:
    client, auth = wechat()
    conversation_id = handed_over(client, auth, "o-gone")
    api.fail_next(45015)

    sent = agent_reply(client, auth, conversation_id, "are you still there?")
    drain(client)

    shown = message_by_id(client, auth, conversation_id, sent["id"])
    assert shown["delivery"] == "failed", shown
    assert (
        "45015" in shown["delivery_error"]
        and "response out of time limit" in shown["delivery_error"]
    )
    assert "48 hours" in shown["delivery_error"]
    assert api.texts_to("o-gone") == []


def test_a_server_error_is_retried(wechat: Callable[..., Hub], api: fake_wechat.FakeWeChat) -> None:
    client, auth = wechat()
    conversation_id = handed_over(client, auth, "o-flaky")
    api.fail_next(500)

    sent = agent_reply(client, auth, conversation_id, "hello again")
    drain(client)

    assert api.texts_to("o-flaky") == ["hello again"]
    assert message_by_id(client, auth, conversation_id, sent["id"])["delivery"] == "sent"


def test_a_long_text_is_split_into_several_messages(
    wechat: Callable[..., Hub], api: fake_wechat.FakeWeChat
) -> None:
    client, auth = wechat()
    conversation_id = handed_over(client, auth, "o-long")
    text = "\n".join(f"第{i}行：" + "很长的说明" * 20 for i in range(30))

    agent_reply(client, auth, conversation_id, text)
    drain(client)

    pieces = api.texts_to("o-long")
    assert len(pieces) > 1
    assert all(len(p.encode()) <= MAX_TEXT_BYTES for p in pieces)
    assert "\n".join(pieces) == text


def test_split_text_cuts_lines_too_long_on_their_own() -> None:
    text = "短\n" + "字" * 1000 + "\nend"
    pieces = split_text(text)
    assert all(len(p.encode()) <= MAX_TEXT_BYTES for p in pieces)
    assert "".join(pieces).replace("\n", "") == text.replace("\n", "")
    assert split_text("") == [] and split_text("hi") == ["hi"]


async def test_an_image_goes_out_as_a_link(api: fake_wechat.FakeWeChat) -> None:
    channel = WeChatChannel(
        "shop",
        options(api.base, public_url="https://hub.example.com/"),
        receiver=UNUSED,
    )
    message = Outbound(
        message_id=1, conversation_id=1, channel="shop", recipient_id="o-pic",
        sender=Sender.AGENT, text="Here is the label:", created_at=utcnow(),
        attachments=(Attachment(kind=Kind.IMAGE, url="/media/abc/label.png"),),
    )  # fmt: skip
    try:
        await channel.send(message)
    finally:
        await channel.stop()
    assert api.texts_to("o-pic") == [
        "Here is the label:\nhttps://hub.example.com/media/abc/label.png"
    ]


async def test_the_token_is_shared_through_redis(api: fake_wechat.FakeWeChat) -> None:
    import redis.asyncio as aioredis

    url = os.environ.get("KEFU_TEST_REDIS", "redis://127.0.0.1:6379/15")
    probe = aioredis.from_url(url, socket_timeout=2)
    try:
        await probe.ping()
    except Exception as e:
        need("Redis", f"{url}: {e}")
    finally:
        await probe.aclose()
    app_id = f"wx-redis-{time.time_ns()}"
    api.app_id = app_id
    channels = [
        WeChatChannel(f"p{i}", options(api.base, app_id=app_id, token_cache=url), receiver=UNUSED)
        for i in range(2)
    ]  # two hub processes of one account
    try:
        await channels[0].api.send_text("o-r", "from one")
        await channels[1].api.send_text("o-r", "from two")
        api.revoke_token()
        await channels[1].api.send_text("o-r", "renewed")  # renews for both
        await channels[0].api.send_text("o-r", "shared")
    finally:
        await channels[0].api.tokens.cache.drop(f"TOKEN-{api.token_fetches}")
        for channel in channels:
            await channel.stop()
    assert api.texts_to("o-r") == ["from one", "from two", "renewed", "shared"]
    assert api.token_fetches == 2


def test_secrets_in_httpx_logs_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    WeChatChannel("shop", {"token": "t"}, receiver=UNUSED)
    with caplog.at_level(logging.INFO, logger="httpx"):
        logging.getLogger("httpx").info(
            'HTTP Request: %s %s "%s"',
            "GET",
            "https://x/cgi-bin/token?appid=wx1&secret=S3CRET",
            "200",
        )
    assert "S3CRET" not in caplog.text and "secret=***" in caplog.text


# ---- media --------------------------------------------------------------------------------


def test_an_image_is_fetched_stored_and_attached(
    wechat: Callable[..., Hub], api: fake_wechat.FakeWeChat
) -> None:
    api.add_media("m-img", b"\x89PNG the picture", "image/png", "photo.png")
    client, auth = wechat()
    xml = xml_message(
        "o-img",
        int(time.time()),
        MsgType="image",
        PicUrl="http://mmbiz/x",
        MediaId="m-img",
        MsgId="7001",
    )

    say_response = send(client, signed(NAME, xml))

    assert say_response.status_code == 200
    conversation = conversation_of(client, auth, NAME, "o-img")
    first = messages(client, auth, conversation["id"])[0]
    assert first["kind"] == "image"
    [attachment] = first["attachments"]
    assert attachment["kind"] == "image" and attachment["mime_type"] == "image/png"
    assert attachment["url"].startswith("/media/") and attachment["url"].endswith("photo.png")
    assert client.get(attachment["url"]).content == b"\x89PNG the picture"


def test_a_voice_message_is_its_recognized_text(
    wechat: Callable[..., Hub], api: fake_wechat.FakeWeChat
) -> None:
    api.add_media("m-voice", b"#!AMR voice", "audio/amr", "voice.amr")
    client, auth = wechat()
    xml = xml_message(
        "o-voice", int(time.time()), MsgType="voice", MediaId="m-voice", Format="amr",
        Recognition="where is my order 12345678", MsgId="7002",
    )  # fmt: skip

    reply = passive_reply(send(client, signed(NAME, xml)))

    assert "12345678" in reply.content
    first = messages(client, auth, conversation_of(client, auth, NAME, "o-voice")["id"])[0]
    assert (first["kind"], first["text"]) == ("audio", "where is my order 12345678")
    assert first["attachments"][0]["url"].endswith("voice.amr")


@pytest.mark.parametrize("case", ["too large", "unknown media_id"])
def test_media_that_cannot_be_kept_leaves_a_note(
    wechat: Callable[..., Hub], api: fake_wechat.FakeWeChat, case: str
) -> None:
    api.add_media("m-big", b"x" * 5000, "image/jpeg", "big.jpg")
    client, auth = wechat(settings={"media_max_bytes": 1000})
    media_id = "m-big" if case == "too large" else "m-none"
    xml = xml_message(
        "o-big",
        int(time.time()),
        MsgType="image",
        PicUrl="http://x",
        MediaId=media_id,
        MsgId="7003",
    )

    response = send(client, signed(NAME, xml))

    assert response.status_code == 200 and passive_reply(response) is not None  # answered
    first = messages(client, auth, conversation_of(client, auth, NAME, "o-big")["id"])[0]
    assert first["kind"] == "image" and first["attachments"] == []
    assert first["text"].startswith("[image not kept:")
    assert ("1,000" if case == "too large" else "40007") in first["text"]


# ---- vectors: Tencent's official sample --------------------------------------------------------

SPAMTEST = json.loads((FIXTURES / "official_sample_spamtest.json").read_text())


def spamtest_hub(wechat: Callable[..., Hub], app_id: str = SPAMTEST["appid"]) -> Hub:
    return wechat(
        token=SPAMTEST["token"], encoding_aes_key=SPAMTEST["encoding_aes_key"], app_id=app_id
    )


def test_official_sample_signatures() -> None:
    q = SPAMTEST["query"]
    assert signature(SPAMTEST["token"], q["timestamp"], q["nonce"]) == q["signature"]
    assert (
        signature(SPAMTEST["token"], q["timestamp"], q["nonce"], SPAMTEST["encrypt"])
        == q["msg_signature"]
    )


def test_official_sample_decrypts_and_is_answered_encrypted(wechat: Callable[..., Hub]) -> None:
    client, auth = spamtest_hub(wechat)
    at_time(client, SPAMTEST["query"]["timestamp"])  # signed in 2014
    expected = parse_message(SPAMTEST["expected"]["decrypted_xml"])

    r = client.post(PATH, params=SPAMTEST["query"], content=SPAMTEST["post_body_xml"].encode())

    reply = passive_reply(
        r, token=SPAMTEST["token"], key=SPAMTEST["encoding_aes_key"], app_id=SPAMTEST["appid"]
    )
    assert (reply.source, reply.target) == (expected.target, expected.source)
    assert reply.content  # the bot's answer to "abcdteT"
    shown = messages(client, auth, conversation_of(client, auth, NAME, expected.source)["id"])
    assert (shown[0]["sender"], shown[0]["text"]) == ("contact", "abcdteT")
    assert inbound_ids(client) == ["6054768590064713728"]


def test_official_sample_get_verification(wechat: Callable[..., Hub]) -> None:
    client, _ = spamtest_hub(wechat)
    q = SPAMTEST["query"]
    at_time(client, int(q["timestamp"]) + 299)
    params = {
        "signature": q["signature"],
        "timestamp": q["timestamp"],
        "nonce": q["nonce"],
        "echostr": "hi",
    }
    assert client.get(PATH, params=params).text == "hi"


def test_official_sample_unsealed_is_the_expected_xml() -> None:
    channel = WeChatChannel(
        "s", {"token": SPAMTEST["token"], "encoding_aes_key": SPAMTEST["encoding_aes_key"], "app_id": SPAMTEST["appid"]},
        receiver=UNUSED,
    )  # fmt: skip
    envelope = channel.unseal(SPAMTEST["query"], SPAMTEST["post_body_xml"].encode())
    assert envelope.xml == SPAMTEST["expected"]["decrypted_xml"] and envelope.encrypted


@pytest.mark.parametrize("case", sorted(SPAMTEST["expected"]["negative"]))
def test_official_sample_negative_cases_are_403_and_store_nothing(
    wechat: Callable[..., Hub], case: str
) -> None:
    field, value = case.split()
    query = dict(SPAMTEST["query"])
    app_id = SPAMTEST["appid"]
    if field == "appid":
        app_id = value  # the hub is configured for another account
    else:
        query[field] = value
    client, auth = spamtest_hub(wechat, app_id=app_id)
    at_time(client, SPAMTEST["query"]["timestamp"])  # refused for what is wrong, not its age

    r = client.post(PATH, params=query, content=SPAMTEST["post_body_xml"].encode())

    assert r.status_code == 403, r.text
    assert ("app_id" if field == "appid" else "signature") in r.text
    assert conversations(client, auth) == []


# ---- vectors: wechatpy's WeCom crypto (the same AES envelope) -------------------------------

WECOM = json.loads((FIXTURES / "wechatpy_work_crypto.json").read_text())


def wecom_channel() -> WeChatChannel:
    wecom = {
        "token": WECOM["token"],
        "encoding_aes_key": WECOM["encoding_aes_key"],
        "app_id": WECOM["receive_id"],
    }
    return WeChatChannel("w", wecom, receiver=UNUSED)


def test_wecom_vector_decrypts_through_the_channel() -> None:
    post = WECOM["decrypt_POST"]
    # WeCom's query has no encrypt_type; an official account's safe-mode request has it
    params = {k: post[k] for k in ("msg_signature", "timestamp", "nonce")} | {"encrypt_type": "aes"}

    assert (
        wecom_channel().unseal(params, post["body"].encode()).xml == post["expected_decrypted_xml"]
    )
    with pytest.raises(Refused):
        wecom_channel().unseal(
            params | {"nonce": WECOM["verify_url_GET"]["negative_nonce"]}, post["body"].encode()
        )


def test_wecom_vector_deterministic_encryption(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reply encryption the channel relies on (wechatpy's), with the random prefix fixed."""
    vector = WECOM["encrypt_reply_deterministic"]
    monkeypatch.setattr(PrpCrypto, "get_random_string", lambda self: vector["random16"])
    crypto = WeChatCrypto(WECOM["token"], WECOM["encoding_aes_key"], WECOM["receive_id"])

    envelope = crypto.encrypt_message(vector["reply_xml"], vector["nonce"], vector["timestamp"])
    sealed = xmltodict.parse(envelope)["xml"]

    assert sealed["Encrypt"] == vector["expected_Encrypt"]
    assert sealed["MsgSignature"] == vector["expected_MsgSignature"]


# ---- vectors: wechatpy's 50 inbound samples ------------------------------------------------

MANIFEST = json.loads((FIXTURES / "mp_messages" / "manifest.json").read_text())
CONVERSATIONAL = {
    ("text", None): Kind.TEXT,
    ("image", None): Kind.IMAGE,
    ("voice", None): Kind.AUDIO,
    ("video", None): Kind.VIDEO,
    ("location", None): Kind.LOCATION,
    ("link", None): Kind.TEXT,
    ("unknown", None): Kind.TEXT,  # a message type the channel doesn't know: kept, text-less
    ("event", "subscribe"): Kind.EVENT,
    ("event", "subscribe_scan"): Kind.EVENT,
    ("event", "subscribe_scan_product"): Kind.EVENT,
    ("event", "scan"): Kind.EVENT,
    ("event", "click"): Kind.EVENT,
}


def sample(entry: dict[str, Any]) -> str:
    return (FIXTURES / entry["file"]).read_text()


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"].split("/")[1] for e in MANIFEST])
def test_mp_message_sample_parses_and_normalizes(entry: dict[str, Any]) -> None:
    message = parse(sample(entry))

    assert message.type == entry["wechatpy_1.8.18_type"]
    assert getattr(message, "event", None) == entry["wechatpy_1.8.18_event"]
    assert (message.source, message.target, str(message.id)) == (
        entry["source"],
        entry["target"],
        entry["id"],
    )
    if "content" in entry:
        assert message.content == entry["content"]
    incoming = normalize(message, "shop", "/greet")
    inbound = incoming.inbound
    is_event = message._data["MsgType"] == "event"  # also the 3 events wechatpy doesn't know
    event = getattr(message, "event", None)
    expected = (
        None
        if message.type == "unknown" and is_event
        else CONVERSATIONAL.get((message.type, event))
    )
    assert incoming.conversational == (expected is not None), inbound
    assert expected is None or inbound.kind == expected
    assert inbound.sender_id == entry["source"] and inbound.channel == "shop"
    if is_event:  # no MsgId: WeChat's retries keep sender, CreateTime and Event
        assert str(inbound.channel_message_id).startswith(f"{entry['source']}:")
    else:
        assert inbound.channel_message_id == entry["id"]
    if "scene_id" in entry:
        assert inbound.payload["event"]["scene"] == entry["scene_id"]
    if message.type == "event" and message.event in ("subscribe", "subscribe_scan", "scan"):
        assert inbound.postback == "/greet"


def test_all_mp_message_samples_go_through_the_webhook(
    wechat: Callable[..., Hub], api: fake_wechat.FakeWeChat
) -> None:
    """Each sample, with its own MsgId and CreateTime (several share them), answers 200; the
    conversational ones are stored once, the others not at all."""
    client, _ = wechat(aes=False)
    expected: list[str] = []
    for i, entry in enumerate(MANIFEST):
        xml = re.sub(r"<MsgId>\d+</MsgId>", f"<MsgId>{900000 + i}</MsgId>", sample(entry))
        xml = re.sub(
            r"<CreateTime>\d+</CreateTime>", f"<CreateTime>{1600000000 + i}</CreateTime>", xml
        )
        incoming = normalize(parse(xml), NAME, "/greet")

        r = send(client, signed(NAME, xml, aes=False))

        assert r.status_code == 200, (entry["file"], r.text)
        if incoming.conversational:
            expected.append(str(incoming.inbound.channel_message_id))
    drain(client)
    assert inbound_ids(client) == expected
    assert len(expected) == 17, expected
