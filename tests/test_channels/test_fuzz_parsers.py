"""Every channel's parser fuzzed (hypothesis): random and mutated real inputs, signed as the
platform signs so they get past the signature check. A parser raises nothing but its channel's
documented rejection; through the HTTP endpoint the answer is never a 5xx, no handler crashes
behind a 200 (an ERROR logged with a traceback), and a refused request stores nothing.
Bounded and reproducible; tests/fuzzing.py says how to run it longer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import xmltodict
from fastapi.testclient import TestClient
from hypothesis import assume, given
from hypothesis import strategies as st
from wechatpy.crypto import WeChatCrypto

from channels.email.channel import EmailChannel
from channels.email.content import ParsedMail, _parse, parse_mail
from channels.email.quotes import reply_text
from channels.rest import RestMessage
from channels.web.frames import _frames
from channels.wechat import Malformed, encrypted_part, normalize, parse, signature
from flows import FlowEngine
from hub.ops.settings import ChannelConfig
from nlu import IntentClassifier
from tests.conftest import client_for, make_settings, migrated_sqlite
from tests.fuzzing import fuzz
from tests.test_channels import kit_slack, kit_telegram, kit_wechat
from tests.test_channels.fake_slack import fake_slack
from tests.test_channels.fake_telegram import running_fake
from tests.test_channels.fake_wechat import running as running_wechat
from tests.test_channels.support import receive

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
WECHAT_XML = sorted((FIXTURES / "wechat" / "mp_messages").glob("*.xml"))
TELEGRAM_JSON = sorted((FIXTURES / "telegram").glob("*/*.json"))
SLACK_JSON = sorted(
    p for p in (FIXTURES / "slack" / "events").glob("*.json") if p.stem != "manifest"
)
EMAILS = sorted((FIXTURES / "email").rglob("*.eml"))

# ---- inputs -------------------------------------------------------------------------------

ODD = ["\ud800", "\udfff", "\x00", "\u202e", "\ufeff", "]]>", "<", "&", "\r\n", "😀", "售后"]
texts = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(ODD) | st.text(max_size=5), max_size=6).map("".join),
    st.sampled_from(["", " ", "/human", '/check_order{"order_id": "1"}', "9" * 30]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    texts,
)
json_trees = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=20,
)


@st.composite
def mutated(draw: st.DrawFn, value: Any, depth: int = 0) -> Any:
    """A JSON value like `value`: here and there a field replaced, dropped or added."""
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return draw(json_trees)
    if isinstance(value, dict) and value and depth < 8:
        out = dict(value)
        for key in draw(st.lists(st.sampled_from(sorted(out)), max_size=3, unique=True)):
            if draw(st.integers(0, 4)) == 0:
                del out[key]
            else:
                out[key] = draw(mutated(out[key], depth + 1))
        if draw(st.integers(0, 5)) == 0:
            out[draw(texts)] = draw(json_trees)
        return out
    if isinstance(value, list) and value and depth < 8:
        i = draw(st.integers(0, len(value) - 1))
        return [*value[:i], draw(mutated(value[i], depth + 1)), *value[i + 1 :]]
    if choice <= 3:
        return draw(scalars)
    return value


@st.composite
def tweaked(draw: st.DrawFn, value: Any) -> Any:
    """`value` in the same shape, some of its leaves given other values of their type: odd
    contents that still get past the platform's schema, to the code behind it."""
    if isinstance(value, dict):
        return {k: draw(tweaked(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [draw(tweaked(v)) for v in value]
    if draw(st.integers(0, 3)):
        return value
    if isinstance(value, bool):
        return draw(st.booleans())
    if isinstance(value, int):
        return draw(st.integers(-(2**70), 2**70) | st.integers(-5, 5))
    if isinstance(value, str):
        return draw(texts)
    return value


def like(value: Any) -> st.SearchStrategy[Any]:
    """`value` as it is, tweaked, or mutated."""
    return st.one_of(st.just(value), tweaked(value), mutated(value))


@st.composite
def mangled(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` with a few slices deleted, duplicated, replaced or flipped."""
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            return draw(st.binary(max_size=64))
        i = draw(st.integers(0, len(data) - 1))
        j = draw(st.integers(i, min(len(data), i + 64)))
        how = draw(st.integers(0, 3))
        if how == 0:
            data = data[:i] + data[j:]
        elif how == 1:
            data = data[:j] + data[i:j] + data[j:]
        elif how == 2:
            data = data[:i] + draw(st.binary(max_size=16)) + data[j:]
        else:
            data = data[:i] + bytes(b ^ 0x20 for b in data[i:j]) + data[j:]
    return data


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def dumps(value: Any) -> bytes:
    """JSON as a platform may send it; lone surrogates as \\u escapes, like any JSON encoder."""
    return json.dumps(value).encode()


# ---- the hub: every channel type, its platform faked locally -------------------------------

WX, WX_PLAIN, TG, SL, MAIL = "fuzz-wx", "fuzz-wx-plain", "fuzz-tg", "fuzz-sl", "fuzz-mail"
TABLES = ("contact", "conversation", "message")


@dataclass
class Hub:
    client: TestClient
    errors: list[logging.LogRecord]

    @property
    def hub(self) -> Any:
        return self.client.app.state.hub  # type: ignore[attr-defined]

    def call(self, fn: Any, *args: Any) -> Any:
        return self.client.portal.call(fn, *args)  # type: ignore[union-attr]

    def counts(self) -> tuple[int, ...]:
        from sqlalchemy import text

        async def count() -> tuple[int, ...]:
            async with self.hub.db.read() as s:
                found = []
                for table in TABLES:
                    found.append((await s.exec(text(f"SELECT count(*) FROM {table}"))).one()[0])
                return tuple(found)

        return self.call(count)  # type: ignore[no-any-return]

    def half_stored(self) -> list[str]:
        """Conversations without a message, contacts without a conversation."""
        from sqlalchemy import text

        checks = {
            "conversation without a message": "SELECT id FROM conversation WHERE id NOT IN "
            "(SELECT conversation_id FROM message)",
            # (an email sender may write in another's thread: in that contact's conversation)
            "contact without a conversation": "SELECT id FROM contact WHERE id NOT IN "
            f"(SELECT contact_id FROM conversation) AND channel != '{MAIL}'",
        }

        async def run() -> list[str]:
            async with self.hub.db.read() as s:
                return [
                    f"{what}: {rows}"
                    for what, sql in checks.items()
                    if (rows := (await s.exec(text(sql))).all())
                ]

        return self.call(run)  # type: ignore[no-any-return]

    def settle(self) -> None:
        """Background work of the last request done: channel tasks, then the outbox."""

        async def settle() -> None:
            for _ in range(3):
                pending = [
                    t
                    for t in asyncio.all_tasks()
                    if t is not asyncio.current_task() and "_take" in repr(t.get_coro())
                ]
                if pending:
                    await asyncio.wait(pending, timeout=5)
            await self.hub.outbox.drain()

        self.call(settle)

    def send(self, method: str, path: str, **kwargs: Any) -> Any:
        """A request whose answer must not be a 5xx; a 4xx leaves the store as it was, and no
        handler crashed behind the answer."""
        before = self.counts()
        self.errors.clear()
        response = self.client.request(method, path, **kwargs)
        self.settle()
        assert response.status_code < 500, (response.status_code, response.text[:500])
        if response.status_code >= 400:
            assert self.counts() == before, (response.status_code, response.text[:300])
        crashes = [r for r in self.errors if r.exc_info]
        assert not crashes, [f"{r.name}: {r.getMessage()}" for r in crashes]
        assert self.half_stored() == []
        return response


class _Collect(logging.Handler):
    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__(logging.ERROR)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record)


@pytest.fixture(scope="module")
def hub(
    tmp_path_factory: pytest.TempPathFactory, classifier: IntentClassifier, flows: FlowEngine
) -> Iterator[Hub]:
    tmp = tmp_path_factory.mktemp("fuzz-parsers")
    with contextlib.ExitStack() as stack:
        wechat = stack.enter_context(running_wechat(kit_wechat.APP_ID, kit_wechat.APP_SECRET))
        telegram = stack.enter_context(running_fake(kit_telegram.TOKEN))
        slack = stack.enter_context(fake_slack())
        channels = [
            ChannelConfig(name="web", type="web"),
            ChannelConfig(name="rest", type="rest"),
            ChannelConfig(
                name=WX, type="wechat", **kit_wechat.options(wechat.base, reply_within=1.0)
            ),
            ChannelConfig(
                name=WX_PLAIN,
                type="wechat",
                **kit_wechat.options(wechat.base, aes=False, reply_within=1.0),
            ),
            ChannelConfig(name=TG, type="telegram", **kit_telegram.KIT.options(telegram.base)),
            ChannelConfig(name=SL, type="slack", **kit_slack.KIT.options(slack.base)),
        ]
        # rate limits off: the fuzzer sends many messages from a few senders, and a 429 would
        # hide what the parser does with them (test_rest.py tests the limit)
        no_limits = {"rest_messages": None, "widget_messages": None, "widget_frames": None}
        settings = make_settings(migrated_sqlite(tmp), tmp, channels=channels, limits=no_limits)
        client = stack.enter_context(client_for(settings, classifier, flows))
        errors: list[logging.LogRecord] = []
        handler = _Collect(errors)
        for name in ("channels", "hub"):
            logging.getLogger(name).addHandler(handler)
        stack.callback(
            lambda: [logging.getLogger(n).removeHandler(handler) for n in ("channels", "hub")]
        )
        found = Hub(client, errors)
        # Email is fetched over IMAP, not posted: its instance takes raw mail directly. Every
        # mail counts as automated (limit 0), so the bot answers none and nothing is sent.
        mail = EmailChannel(
            MAIL, {"address": "support@example.com", "auto_reply_limit": 0}, found.hub
        )
        found.hub.channels[MAIL] = mail
        yield found


# ---- WeChat --------------------------------------------------------------------------------

WECHAT_FIELDS = [
    "ToUserName", "FromUserName", "CreateTime", "MsgType", "Content", "MsgId", "MediaId",
    "PicUrl", "Format", "Recognition", "ThumbMediaId", "Location_X", "Location_Y", "Scale",
    "Label", "Title", "Description", "Url", "Event", "EventKey", "Ticket", "Latitude",
    "Longitude", "Precision", "Encrypt",
]  # fmt: skip
MSG_TYPES = ["text", "image", "voice", "video", "shortvideo", "location", "link", "event", "x"]
EVENTS = ["subscribe", "unsubscribe", "SCAN", "LOCATION", "CLICK", "VIEW", "scancode_push", "x"]


def xml_value(value: str) -> str:
    return f"<![CDATA[{value.replace(']]>', '')}]]>"


@st.composite
def wechat_xml(draw: st.DrawFn) -> str:
    """An <xml> message of WeChat's fields, some missing, repeated, nested or odd."""
    fields = {
        "FromUserName": draw(st.sampled_from(["oCustomer", ""]) | texts),
        "CreateTime": draw(st.sampled_from(["1700000000", "", "-1", "1e9", "abc"])),
        "MsgType": draw(st.sampled_from(MSG_TYPES)),
        "Event": draw(st.sampled_from(EVENTS)),
    }
    for name in draw(st.lists(st.sampled_from(WECHAT_FIELDS), max_size=8)):
        fields[name] = draw(texts | st.sampled_from(["0", "1.5", "NaN", "inf", "1e400", "-"]))
    parts = []
    for name, value in fields.items():
        how = draw(st.integers(0, 11))
        if how == 0:
            parts.append(f"<{name}>{xml_value(value)}</{name}><{name}>{xml_value(value)}</{name}>")
        elif how == 1:
            parts.append(f"<{name}><a>{xml_value(value)}</a></{name}>")
        elif how == 2:
            parts.append(f"<{name}/>")
        else:
            parts.append(f"<{name}>{xml_value(value)}</{name}>")
    return "<xml>" + "".join(parts) + "</xml>"


wechat_inputs = st.one_of(
    wechat_xml(),
    texts.map(lambda text: kit_wechat.text_xml("oCustomer", text, "1")),
    st.sampled_from(WECHAT_XML)
    .flatmap(lambda p: mangled(p.read_bytes()))
    .map(lambda b: b.decode("utf-8", "replace")),
    st.text(max_size=200),
    st.sampled_from(["<xml/>", "<xml></xml>", "<a>", "<!DOCTYPE x><xml/>", "<xml>" * 500]),
)


@fuzz(300)
@given(xml=wechat_inputs)
def test_wechat_parse_raises_only_malformed(xml: str) -> None:
    """What is taken is read as the XML says: its sender, and a text message's words."""
    try:
        message = parse(xml)
    except Malformed:
        return
    fields = xmltodict.parse(xml)["xml"]  # the XML's elements, read on their own
    assert message.source == fields["FromUserName"]
    try:
        inbound = normalize(message, WX, "/greet").inbound
    except ValueError:  # documented: unreadable numbers (location) are a 400
        pass
    else:
        assert (inbound.channel, inbound.sender_id) == (WX, fields["FromUserName"])
        if message.type == "text":
            assert inbound.text == (fields.get("Content") or ""), fields
    try:
        encrypt = encrypted_part(xml)
    except Malformed:
        return
    assert encrypt == fields["Encrypt"]


def wechat_post(name: str, body: bytes, aes: bool) -> dict[str, Any]:
    """The request arguments WeChat would send with this body: signed (in safe mode, over the
    <Encrypt> text the body carries, whatever it is)."""
    # a new nonce each time: the channel refuses a nonce reused with another body
    timestamp, nonce = str(int(time.time())), str(time.time_ns())
    params = {"timestamp": timestamp, "nonce": nonce, "openid": "x"}
    params["signature"] = signature(kit_wechat.TOKEN, timestamp, nonce)
    if aes:
        try:
            encrypt = encrypted_part(body.decode())
        except (Malformed, UnicodeDecodeError):
            encrypt = ""
        params.update(
            encrypt_type="aes",
            msg_signature=signature(kit_wechat.TOKEN, timestamp, nonce, encrypt),
        )
    return {"params": params, "content": body}


def sealed(xml: str) -> bytes:
    """`xml` encrypted for the safe-mode instance, as WeChat sends it."""
    crypto = WeChatCrypto(kit_wechat.TOKEN, kit_wechat.AES_KEY, kit_wechat.APP_ID)
    encrypt = xmltodict.parse(crypto.encrypt_message(xml, "12345", str(int(time.time()))))["xml"][
        "Encrypt"
    ]
    return f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>".encode()


@fuzz(40)
@given(
    xml=wechat_inputs,
    how=st.sampled_from(["plain", "plain-gbk", "plain-utf16", "sealed", "garbage-encrypt"]),
    junk=st.binary(max_size=80),
    n=st.integers(2, 10**12),
)
def test_wechat_webhook_never_fails_on_input(
    hub: Hub, xml: str, how: str, junk: bytes, n: int
) -> None:
    assume("\x00" not in xml)  # not XML: refused as 400 below, by the plain cases
    # each example a new customer and message, not WeChat's retry of an earlier one
    xml = xml.replace("oCustomer", f"o-{n}").replace("<MsgId>1</MsgId>", f"<MsgId>{n}</MsgId>")
    if how == "plain":
        request = wechat_post(WX_PLAIN, xml.encode("utf-8", "surrogatepass"), aes=False)
        path = WX_PLAIN
    elif how == "plain-gbk":
        request = wechat_post(WX_PLAIN, xml.encode("gbk", "replace"), aes=False)
        path = WX_PLAIN
    elif how == "plain-utf16":
        request = wechat_post(WX_PLAIN, xml.encode("utf-16", "surrogatepass"), aes=False)
        path = WX_PLAIN
    elif how == "sealed":
        try:
            request = wechat_post(WX, sealed(xml), aes=True)
        except UnicodeEncodeError:  # a lone surrogate can't be encrypted: nothing to send
            return
        path = WX
    else:
        import base64

        body = f"<xml><Encrypt><![CDATA[{base64.b64encode(junk).decode()}]]></Encrypt></xml>"
        request = wechat_post(WX, body.encode(), aes=True)
        path = WX
    hub.send("POST", f"/channels/wechat/{path}", **request)


# ---- Telegram ------------------------------------------------------------------------------

telegram_updates = st.one_of(
    json_trees,
    st.sampled_from(TELEGRAM_JSON).flatmap(lambda p: like(load_json(p))),
    like(kit_telegram.text_update("fuzz", "hello", "m-1")),
    st.sampled_from(TELEGRAM_JSON)
    .flatmap(lambda p: mutated(load_json(p)))
    .map(lambda u: {**u, "update_id": 1} if isinstance(u, dict) else u),
)


@fuzz(300)
@given(raw=telegram_updates)
def test_telegram_parse_update_never_raises(hub: Hub, raw: Any) -> None:
    channel = hub.hub.channels[TG]
    if isinstance(raw, dict):
        update, problem = channel.parse_update(raw)
        assert (update is None) == bool(problem)


@fuzz(40)
@given(raw=telegram_updates, update_id=st.integers(1, 2**31))
def test_telegram_webhook_never_fails_on_input(hub: Hub, raw: Any, update_id: int) -> None:
    if isinstance(raw, dict) and "update_id" in raw:
        raw = {**raw, "update_id": update_id}  # not a redelivery of an earlier example's
        if isinstance(raw.get("message"), dict) and "message_id" in raw["message"]:
            raw["message"] = {**raw["message"], "message_id": update_id}
    headers = {
        "content-type": "application/json",
        "x-telegram-bot-api-secret-token": kit_telegram.SECRET,
    }
    hub.send("POST", f"/channels/telegram/{TG}", headers=headers, content=dumps(raw))


# ---- Slack ---------------------------------------------------------------------------------

slack_bodies = st.one_of(
    st.sampled_from(SLACK_JSON).flatmap(lambda p: like(load_json(p))).map(dumps),
    like(kit_slack.dm_event("D-fuzz", "hello", "m-1")).map(dumps),
    st.sampled_from(SLACK_JSON).flatmap(lambda p: st.just(p.read_bytes()).flatmap(mangled)),
    json_trees.map(dumps),
    st.binary(max_size=200),
)


@fuzz(60)
@given(body=slack_bodies, event_id=st.integers(0, 10**9), form=st.booleans())
def test_slack_events_never_fail_on_input(hub: Hub, body: bytes, event_id: int, form: bool) -> None:
    with contextlib.suppress(ValueError, UnicodeDecodeError):
        event = json.loads(body)
        if isinstance(event, dict) and "event_id" in event:
            event["event_id"] = f"Ev{event_id}"  # not a retry of an earlier example's
            if isinstance(event.get("event"), dict) and "ts" in event["event"]:
                event["event"]["ts"] = f"1700000000.{event_id:06d}"
            body = dumps(event)
    content_type = "application/json"
    if form:  # interactions come form-encoded: payload=<json>
        from urllib.parse import urlencode

        body = urlencode({"payload": body.decode("utf-8", "replace")}).encode()
        content_type = "application/x-www-form-urlencoded"
    request = kit_slack.signed(kit_slack.events_path(SL), body, content_type=content_type)
    hub.send("POST", request.path, headers=request.headers, content=request.body)


# ---- email ---------------------------------------------------------------------------------

HEADER_MUTATIONS = [
    (b"charset=", b"charset=gb2312-x"),
    (b"charset=", b'charset="'),
    (b"charset=", b"charset=utf-7"),
    (b"boundary=", b"boundary=x"),
    (b"boundary=", b'boundary=""'),
    (b"Content-Transfer-Encoding: ", b"Content-Transfer-Encoding: base64x"),
    (b"Content-Transfer-Encoding: ", b"Content-Transfer-Encoding: quoted-printable\r\nX: "),
    (b"Subject: ", b"Subject: =?utf-8?b?5ZSu5ZCO?= =?gbk?q?=C4=E3?= =?x?b?@@?="),
    (b"From: ", b"From: =?utf-8?q?a=00b?= <a@b"),
    (b"Date: ", b"Date: 31 Feb 99999 25:61:61 +9999 "),
    (b"Message-ID: ", b"Message-ID: <<>>"),
    (b"Content-Type: ", b"Content-Type: multipart/mixed; boundary=\r\nX: "),
    (b"Content-Disposition: ", b"Content-Disposition: attachment; filename*=utf-8''%ff%fe"),
]


@st.composite
def emails(draw: st.DrawFn) -> bytes:
    how = draw(st.integers(0, 3))
    if how == 0:
        return draw(st.binary(max_size=300))
    raw = draw(st.sampled_from(EMAILS)).read_bytes()
    if how == 1:
        return draw(mangled(raw))
    for old, new in draw(st.lists(st.sampled_from(HEADER_MUTATIONS), min_size=1, max_size=4)):
        raw = raw.replace(old, new, 1) if old in raw else new + b"\r\n" + raw
    return raw if how == 2 else draw(mangled(raw))


@fuzz(150)
@given(raw=emails())
def test_email_parsing_reads_whatever_it_can(raw: bytes) -> None:
    mail = _parse(raw)  # parse_mail's catch-all is the last guard, not the way
    assert isinstance(mail, ParsedMail)
    assert parse_mail(raw) == mail
    reply_text(mail.text)
    for text in (mail.text, mail.subject, mail.from_address or "", *mail.to):
        text.encode("utf-8")  # storable: no lone surrogates


@fuzz(40)
@given(raw=emails(), n=st.integers(0, 10**9))
def test_email_take_stores_or_skips_any_mail(hub: Hub, raw: bytes, n: int) -> None:
    raw = b"Message-ID: <fuzz-%d@example.com>\r\n" % n + raw  # each example a new mail
    channel = hub.hub.channels[MAIL]
    hub.errors.clear()
    hub.call(channel.take, raw)
    hub.settle()
    crashes = [r for r in hub.errors if r.exc_info]
    assert not crashes, [f"{r.name}: {r.getMessage()}" for r in crashes]
    assert hub.half_stored() == []


# ---- web widget ----------------------------------------------------------------------------

VALID_FRAMES: list[dict[str, Any]] = [
    {"type": "message", "client_id": "c-1", "text": "hello"},
    {"type": "message", "text": "", "attachments": [{"url": "/media/x.png", "kind": "image"}]},
    {"type": "postback", "payload": "/human", "title": "Talk to a human"},
    {"type": "resume", "after": "1"},
    {"type": "resume", "after": 0},
    {"type": "typing", "on": True},
]
web_frames = st.one_of(
    st.sampled_from(VALID_FRAMES).flatmap(like).map(lambda f: json.dumps(f)),
    json_trees.map(json.dumps),
    st.text(max_size=100),
)
SENTINEL = json.dumps({"type": "resume", "after": "sentinel"})
typed = st.builds(  # what a customer types, in the widget's message frame
    lambda text, client_id: json.dumps({"type": "message", "client_id": client_id, "text": text}),
    texts,
    st.none() | st.sampled_from(["c-1", "c-2"]),
)


@fuzz(300)
@given(raw=web_frames | typed)
def test_web_frames_validate_or_are_refused(raw: str) -> None:
    """The widget's own frames are taken; a frame taken carries what the customer wrote or
    pressed as it was sent."""
    from pydantic import ValidationError

    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        return
    try:
        frame = _frames.validate_python(data)
    except ValidationError:
        assert data not in VALID_FRAMES, data
        return
    assert frame.type == data["type"]
    for field in ("text", "client_id", "payload", "title"):
        if field in data and hasattr(frame, field):
            assert getattr(frame, field) == data[field], (field, data)


@fuzz(30)
@given(frames=st.lists(web_frames, min_size=1, max_size=4), visitor=st.integers(0, 10**9))
def test_web_socket_survives_any_frame(hub: Hub, frames: list[str], visitor: int) -> None:
    hub.errors.clear()
    with hub.client.websocket_connect(f"/channels/web/ws?visitor=fuzz-{visitor}") as ws:
        assert receive(ws)["type"] == "hello"
        for raw in [*frames, SENTINEL]:
            ws.send_text(raw)
        while True:  # the socket still answers after them (it is not closed by a crash)
            frame = receive(ws)
            if frame.get("error") == "resume.after must be a message id":
                break
    hub.settle()
    crashes = [r for r in hub.errors if r.exc_info]
    assert not crashes, [f"{r.name}: {r.getMessage()}" for r in crashes]
    assert hub.half_stored() == []


@fuzz(40)
@given(
    body=st.binary(max_size=64).map(lambda b: b"\x89PNG" + b) | st.binary(max_size=64),
    content_type=st.sampled_from(
        ["image/png", "IMAGE/PNG; x=1", "application/pdf", "", "x/y", "image/png\x00"]
    ),
    name=texts,
    visitor=st.sampled_from(["fuzz-up", "", "a" * 200, "../x"]) | texts,
    length=st.none() | st.sampled_from(["-1", "abc", "99999999999999999999", "1"]),
)
def test_web_upload_never_fails_on_input(
    hub: Hub, body: bytes, content_type: str, name: str, visitor: str, length: str | None
) -> None:
    headers = {"content-type": content_type}
    if length is not None:
        headers["content-length"] = length
    try:
        hub.send(
            "POST",
            "/channels/web/upload",
            params={"visitor": visitor, "name": name},
            headers=headers,
            content=body,
        )
    except UnicodeEncodeError:  # an HTTP client can't send it either
        pass


# ---- REST ----------------------------------------------------------------------------------

rest_bodies = st.one_of(
    st.fixed_dictionaries(
        {"sender": texts, "message": texts},
        optional={"metadata": json_trees | st.fixed_dictionaries({"message_id": json_trees})},
    )
    .flatmap(like)
    .map(dumps),
    json_trees.map(dumps),
    st.binary(max_size=100),
)


@fuzz(300)
@given(body=rest_bodies)
def test_rest_body_validates_or_is_refused(body: bytes) -> None:
    """Rasa's body (a sender of 1-255 characters, a message of at most 10,000) is taken, as
    sent; what is taken is what the body says."""
    from pydantic import ValidationError

    try:
        message = RestMessage.model_validate_json(body)
    except ValidationError:
        assert not plain_rest_body(body), body
        return
    data = json.loads(body)
    assert (message.sender, message.message) == (data["sender"], data["message"])
    assert message.metadata == data.get("metadata")


def plain_rest_body(body: bytes) -> bool:
    """A JSON object with a sender and a message of the allowed lengths and no metadata, and
    no lone surrogate (\\ud800) anywhere, which the REST channel refuses as invalid JSON."""
    try:
        data = json.loads(body)
        json.dumps(data, ensure_ascii=False).encode()
    except ValueError:  # not JSON, or a lone surrogate (UnicodeEncodeError)
        return False
    if not isinstance(data, dict) or data.get("metadata") is not None:
        return False
    sender, text = data.get("sender"), data.get("message")
    return (
        isinstance(sender, str)
        and 1 <= len(sender) <= 255
        and isinstance(text, str)
        and len(text) <= 10_000
    )


@fuzz(40)
@given(body=rest_bodies)
def test_rest_webhook_never_fails_on_input(hub: Hub, body: bytes) -> None:
    response = hub.send("POST", "/webhooks/rest/webhook", content=body)
    assert response.status_code in (200, 413, 422), response.text
