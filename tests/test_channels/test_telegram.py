"""The Telegram channel, driven as Telegram drives it: updates POSTed to the webhook with the
secret-token header (or served to long polling), and a local Bot API server
(fake_telegram.py) that aiogram's real HTTP client talks to.

Two harnesses: the channel alone behind its own router with a recording Receiver (what
exactly it hands the hub), and the whole hub with the demo bot (stored, answered, retried)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from channels.base import ChannelConfigError
from channels.telegram import (
    CALLBACK_DATA_LIMIT,
    SECRET_HEADER,
    TEXT_LIMIT,
    RecentUpdates,
    TelegramChannel,
    callback_data,
    split_text,
)
from flows import FlowEngine
from hub.app import create_app
from hub.messages import Button, Event, Inbound, Kind, Outbound, Sender, utcnow
from hub.ports import DeliveryError, FlowResult, FlowView, TurnContext
from nlu import IntentClassifier
from tests.conftest import client_for, make_settings
from tests.test_channels.conftest import MakeHub
from tests.test_channels.fake_telegram import BOT_USERNAME, FakeTelegram, bot_id, running_fake
from tests.test_channels.kit_telegram import KIT, SECRET, TOKEN, text_update
from tests.test_channels.support import (
    NOTICE_EN,
    agent_reply,
    conversation_of,
    conversations,
    messages,
    wait_for,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "telegram"
NAME = "tg"
WEBHOOK = f"/channels/telegram/{NAME}"
BOT_ID = bot_id(TOKEN)
GREETING = "Hello! I'm the Kefu Shop assistant."
PRIVATE = 1111111  # the chat (and user) id in the vectors
FILE_ID = "AwADBAADbXXXXXXXXXXXGBdhD2l6_XX"  # the vectors' document and voice


def fixture(path: str) -> dict[str, Any]:
    return json.loads((FIXTURES / path).read_text())


def post(client: TestClient, update: Any, secret: str | None = SECRET) -> Any:
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    body = update if isinstance(update, bytes) else json.dumps(update).encode()
    return client.post(WEBHOOK, content=body, headers=headers)


def user(user_id: int, first_name: str) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": first_name}


def group_update(
    update_id: int,
    sender: dict[str, Any],
    text: str,
    entities: list[dict[str, Any]] | None = None,
    reply_to: dict[str, Any] | None = None,
    chat_id: int = -100555,
) -> dict[str, Any]:
    chat = {"id": chat_id, "type": "supergroup", "title": "Shop fans"}
    message: dict[str, Any] = {
        "message_id": update_id,
        "date": 1_700_000_000,
        "chat": chat,
        "from": sender,
        "text": text,
    }
    if entities:
        message["entities"] = entities
    if reply_to:
        message["reply_to_message"] = {
            "message_id": 1,
            "date": 1_700_000_000,
            "chat": chat,
            **reply_to,
        }
    return {"update_id": update_id, "message": message}


def mention(text: str, part: str = f"@{BOT_USERNAME}", kind: str = "mention") -> dict[str, Any]:
    """The entity Telegram marks `part` of `text` with (ASCII: UTF-16 offsets are indexes)."""
    return {"type": kind, "offset": text.index(part), "length": len(part)}


def callback_update(
    update_id: int, chat_id: int, data: str, keyboard: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A button pressed under the bot's message (whose keyboard Telegram sends along)."""
    message: dict[str, Any] = {
        "message_id": 900,
        "date": 1_700_000_000,
        "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
        "from": {"id": BOT_ID, "is_bot": True, "first_name": "Kefu Shop"},
        "text": "Hello!",
    }
    if keyboard is not None:
        message["reply_markup"] = keyboard
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"cb-{update_id}",
            "from": user(abs(chat_id), "Presser"),
            "chat_instance": "42",
            "message": message,
            "data": data,
        },
    }


def outbound(text: str = "hi", recipient: str = "4242", **fields: Any) -> Outbound:
    return Outbound(
        message_id=fields.pop("message_id", 1),
        conversation_id=1,
        channel=NAME,
        recipient_id=recipient,
        sender=Sender.BOT,
        text=text,
        created_at=utcnow(),
        **fields,
    )


# ---- harness 1: the channel alone, with a Receiver that records -------------------------


class RecordingReceiver:
    def __init__(self) -> None:
        self.inbound: list[Inbound] = []
        self.edits: list[tuple[str, str]] = []
        self.media: dict[str, tuple[bytes, str | None, str | None]] = {}
        self.stored: list[Outbound] = []  # what history() returns

    async def receive(self, inbound: Inbound, on_stored: Any = None) -> list[Outbound]:
        self.inbound.append(inbound)
        return []

    async def history(self, channel: str, sender_id: str, after_id: int) -> list[Outbound]:
        return [m for m in self.stored if m.recipient_id == sender_id]

    async def current_conversation(self, channel: str, sender_id: str) -> int | None:
        return None

    async def publish(self, event: Event) -> None:
        pass

    async def edit(self, channel: str, channel_message_id: str, text: str) -> bool:
        self.edits.append((channel_message_id, text))
        return True

    async def delete(self, channel: str, channel_message_id: str) -> bool:
        return True

    async def save_media(
        self, data: bytes, *, name: str | None = None, mime_type: str | None = None
    ) -> str:
        url = f"/media/{len(self.media)}/{name}"
        self.media[url] = (data, name, mime_type)
        return url


@pytest.fixture
def api() -> Iterator[FakeTelegram]:
    with running_fake(TOKEN) as fake:
        yield fake


@contextlib.contextmanager
def channel_app(
    api: FakeTelegram, receiver: RecordingReceiver, **options: Any
) -> Iterator[tuple[TestClient, TelegramChannel]]:
    """The channel's router in an app of its own, started and stopped with it."""
    channel = TelegramChannel(NAME, {**KIT.options(api.base), **options}, receiver)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await channel.start()
        try:
            yield
        finally:
            await channel.stop()

    app = FastAPI(lifespan=lifespan)
    router = channel.router()
    if router is not None:
        app.include_router(router)
    with TestClient(app) as client:
        yield client, channel


@pytest.fixture
def receiver() -> RecordingReceiver:
    return RecordingReceiver()


@pytest.fixture
def alone(api: FakeTelegram, receiver: RecordingReceiver) -> Iterator[TestClient]:
    with channel_app(api, receiver) as (client, _):
        yield client


# The schema_current vectors: what each becomes. (kind, text) of the Inbound, or the edit.
CURRENT = {
    "message_text.json": (Kind.TEXT, "/start"),
    "message_text_minimal.json": (Kind.TEXT, "/start"),
    "message_with_entities.json": (Kind.TEXT, "Bold and italics"),
    "message_with_reply.json": (Kind.TEXT, "/start"),
    "forwarded_message.json": (Kind.TEXT, "/start"),
    "document.json": (Kind.FILE, ""),
    "voice.json": (Kind.AUDIO, ""),
    "callback_query.json": (Kind.TEXT, "Data from button callback"),
    "edited_message.json": None,
}


def test_every_current_vector_is_known_here() -> None:
    assert sorted(p.name for p in (FIXTURES / "schema_current").glob("*.json")) == sorted(CURRENT)
    assert sorted(p.name for p in (FIXTURES / "official_webhook_guide").glob("*.json")) == sorted(
        CURRENT
    )


@pytest.mark.parametrize("name", sorted(CURRENT))
def test_current_schema_vectors_are_taken(
    name: str, alone: TestClient, api: FakeTelegram, receiver: RecordingReceiver
) -> None:
    api.add_file(FILE_ID, b"%PDF-1.4 test", "documents/file_3.pdf")

    response = post(alone, fixture(f"schema_current/{name}"))

    assert response.status_code == 200, response.text
    assert response.json() == {"ok": True}
    expected = CURRENT[name]
    if expected is None:  # edited_message: the stored message is edited, nothing new arrives
        assert receiver.inbound == []
        assert receiver.edits == [(f"{PRIVATE}:1365", "Edited text")]
        return
    [inbound] = receiver.inbound
    assert (inbound.kind, inbound.text) == expected
    assert inbound.channel == NAME and inbound.sender_id == str(PRIVATE)
    if name == "callback_query.json":  # an inline message: no chat, the presser's own id
        assert inbound.postback == "Data from button callback"
        assert inbound.channel_message_id == "callback:4382bfdwdsb323b2d9"
        [answer] = api.calls_of("answerCallbackQuery")
        assert answer.params["callback_query_id"] == "4382bfdwdsb323b2d9"
        return
    assert inbound.channel_message_id == f"{PRIVATE}:1365"
    # a customer's first message, /start, greets
    assert inbound.postback == ("/greet" if inbound.text == "/start" else None)
    assert inbound.sender_name in ("Test Firstname Test Lastname", "Test Test Lastname")
    if inbound.kind in (Kind.FILE, Kind.AUDIO):
        [attachment] = inbound.attachments
        data, file_name, mime = receiver.media[attachment.url]
        assert data == b"%PDF-1.4 test"
        assert attachment.kind == inbound.kind
        assert mime == ("application/pdf" if name == "document.json" else "audio/ogg")
        assert file_name == ("Testfile.pdf" if name == "document.json" else "file_3.pdf")
        assert api.calls_of("getFile")[0].params["file_id"] == FILE_ID


@pytest.mark.parametrize("name", sorted(CURRENT))
def test_official_guide_samples_are_ignored_with_200_and_nothing_taken(
    name: str,
    alone: TestClient,
    api: FakeTelegram,
    receiver: RecordingReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Telegram's own samples fail aiogram's validation. Refusing them with a 4xx would make
    Telegram redeliver an update forever, so the hub says why, answers 200, takes nothing."""
    with caplog.at_level(logging.WARNING, logger="channels.telegram"):
        response = post(alone, fixture(f"official_webhook_guide/{name}"))

    assert response.status_code == 200, response.text
    assert response.json()["ignored"].startswith("invalid update: "), response.json()
    assert receiver.inbound == [] and receiver.edits == [] and api.calls == []
    assert "update 10000 ignored: invalid update" in caplog.text


def test_a_guide_sample_says_which_fields_are_missing(alone: TestClient) -> None:
    response = post(alone, fixture("official_webhook_guide/message_text_minimal.json"))

    ignored = response.json()["ignored"]
    assert "message.chat.type: Field required" in ignored
    assert "message.from.is_bot: Field required" in ignored


def test_aiograms_own_test_update_is_taken(alone: TestClient, receiver: RecordingReceiver) -> None:
    response = post(alone, fixture("aiogram_test_aiohttp_server_update.json"))

    assert response.status_code == 200
    [inbound] = receiver.inbound
    assert (inbound.sender_id, inbound.channel_message_id, inbound.text) == ("42", "42:0", "test")
    assert inbound.sender_name == "Test"


@pytest.mark.parametrize(
    ("secret", "status"),
    [(None, 401), ("wrong-secret", 403), (SECRET[:-1], 403), (SECRET + "x", 403)],
)
def test_a_missing_or_wrong_secret_token_is_refused(
    secret: str | None, status: int, alone: TestClient, receiver: RecordingReceiver
) -> None:
    response = post(alone, text_update(7, "hello", 1), secret=secret)

    assert response.status_code == status, response.text
    assert receiver.inbound == []


def test_a_secret_with_non_ascii_bytes_is_refused_not_a_500(
    alone: TestClient, receiver: RecordingReceiver
) -> None:
    response = alone.post(
        WEBHOOK,
        content=json.dumps(text_update(7, "hello", 1)).encode(),
        headers={SECRET_HEADER: "sécret".encode()},  # type: ignore[dict-item]
    )

    assert response.status_code == 403
    assert receiver.inbound == []


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"\xff\xfe\x00",
        b"[1, 2]",
        b'"update"',
        b'{"message": {}}',
        b'{"update_id": "7"}',
    ],
)
def test_a_body_that_is_not_an_update_is_a_400(
    body: bytes, alone: TestClient, receiver: RecordingReceiver
) -> None:
    response = post(alone, body)

    assert response.status_code == 400, response.text
    assert "detail" in response.json()
    assert receiver.inbound == []


def update_bytes(update: dict[str, Any], field: str, raw: bytes) -> bytes:
    """The update as JSON with `raw` (JSON text json.dumps can't write) as its message's `field`."""
    return (
        json.dumps({**update, "message": {**update["message"], field: "@@"}})
        .encode()
        .replace(b'"@@"', raw)
    )


HOSTILE = {
    "an array 20,000 deep": b"[" * 20_000 + b"]" * 20_000,
    "a field 20,000 deep": update_bytes(
        text_update(7, "hi", 41), "x", b"[" * 20_000 + b"]" * 20_000
    ),
    "a field 900 deep": update_bytes(
        text_update(7, "hi", 42), "x", b"{" + b'"a":{' * 899 + b"}" * 900
    ),
    "a 5000-digit update_id": b'{"update_id": ' + b"9" * 5000 + b"}",
    "a 5000-digit message_id": update_bytes(text_update(7, "hi", 43), "message_id", b"7" * 5000),
    "a 5000-digit chat id": json.dumps(text_update(7, "hi", 44))
    .encode()
    .replace(str(text_update(7, "hi", 44)["message"]["chat"]["id"]).encode(), b"1" * 5000),
    "NaN": update_bytes(text_update(7, "hi", 45), "x", b"NaN"),
    "1e999": update_bytes(text_update(7, "hi", 46), "x", b"1e999"),
}


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_body_nested_too_deep_or_with_a_huge_number_is_a_400_never_a_500(
    body: bytes, alone: TestClient, receiver: RecordingReceiver
) -> None:
    response = post(alone, body)

    assert response.status_code == 400, response.text
    assert response.json()["detail"].startswith("unreadable body: "), response.json()
    assert receiver.inbound == []
    assert post(alone, text_update(7, "still here", 47)).status_code == 200  # nothing broke
    assert [i.text for i in receiver.inbound] == ["still here"]


def test_an_update_type_this_aiogram_does_not_know_is_ignored(
    alone: TestClient, receiver: RecordingReceiver
) -> None:
    response = post(alone, {"update_id": 5, "future_thing": {"id": 1}})

    assert response.status_code == 200
    assert response.json() == {"ok": True, "ignored": "unknown update type"}
    assert receiver.inbound == []


def test_a_redelivered_update_id_is_taken_once(
    alone: TestClient, receiver: RecordingReceiver
) -> None:
    update = text_update(7, "hello", 31)

    assert post(alone, update).status_code == 200
    assert post(alone, update).status_code == 200

    assert len(receiver.inbound) == 1


def test_update_ids_are_forgotten_after_their_ttl() -> None:
    now = [0.0]
    recent = RecentUpdates(ttl=60, clock=lambda: now[0])

    assert not recent.seen(1)
    assert recent.seen(1)
    now[0] = 59.0
    assert recent.seen(1)
    now[0] = 61.0  # update_id restarts at random after a quiet week: an old id is new again
    assert not recent.seen(1)


def test_update_ids_remembered_are_bounded() -> None:
    recent = RecentUpdates(ttl=60, max_size=3)
    for update_id in range(5):
        recent.seen(update_id)

    assert not recent.seen(0)  # the oldest made room
    assert recent.seen(4)


def photo_update(chat: int, message_id: int, caption: str, small: str, big: str) -> Any:
    """A photo message as Telegram sends it: the sizes smallest first, the caption its text."""
    update = text_update(chat, "", message_id)
    del update["message"]["text"]
    update["message"]["caption"] = caption
    update["message"]["photo"] = [
        {"file_id": small, "file_unique_id": "s", "width": 90, "height": 67},
        {"file_id": big, "file_unique_id": "b", "width": 1280, "height": 960},
    ]
    return update


def test_a_photo_takes_its_largest_size(
    alone: TestClient, api: FakeTelegram, receiver: RecordingReceiver
) -> None:
    api.add_file("big", b"\x89PNG big", "photos/file_9.jpg")
    update = photo_update(7, 40, "is this broken?", "small", "big")

    post(alone, update)

    [inbound] = receiver.inbound
    assert (inbound.kind, inbound.text) == (Kind.IMAGE, "is this broken?")
    [attachment] = inbound.attachments
    assert receiver.media[attachment.url] == (b"\x89PNG big", "file_9.jpg", "image/jpeg")
    assert [c.params["file_id"] for c in api.calls_of("getFile")] == ["big"]


def test_a_file_telegram_will_not_give_is_stored_without_it(
    alone: TestClient, api: FakeTelegram, receiver: RecordingReceiver
) -> None:
    api.fail("getFile", 400, "Bad Request: file is too big")

    post(alone, fixture("schema_current/document.json"))

    [inbound] = receiver.inbound
    assert inbound.kind == Kind.FILE and inbound.attachments == ()
    assert "file is too big" in inbound.payload["file_error"]


def test_a_location_carries_its_coordinates(alone: TestClient, receiver: RecordingReceiver) -> None:
    update = text_update(7, "", 41)
    del update["message"]["text"]
    update["message"]["location"] = {"latitude": 22.54, "longitude": 114.06}

    post(alone, update)

    [inbound] = receiver.inbound
    assert inbound.kind == Kind.LOCATION
    assert (inbound.payload["lat"], inbound.payload["lon"]) == (22.54, 114.06)


def test_a_sticker_is_not_taken(alone: TestClient, receiver: RecordingReceiver) -> None:
    update = text_update(7, "", 42)
    del update["message"]["text"]
    update["message"]["sticker"] = {
        "file_id": "st",
        "file_unique_id": "st",
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
    }

    assert post(alone, update).status_code == 200
    assert receiver.inbound == []


def contact_card(update_id: int, phone: str, user_id: int | None) -> dict[str, Any]:
    update = text_update(7, "", update_id)
    del update["message"]["text"]
    card: dict[str, Any] = {"phone_number": phone, "first_name": "Mei"}
    if user_id is not None:
        card["user_id"] = user_id
    update["message"]["contact"] = card
    return update


def test_sharing_ones_own_contact_card_verifies_the_phone(
    alone: TestClient, receiver: RecordingReceiver
) -> None:
    sender = text_update(7, "", 43)["message"]["from"]["id"]
    assert post(alone, contact_card(43, "8613800138000", sender)).status_code == 200

    [inbound] = receiver.inbound
    assert inbound.text == "8613800138000" and inbound.payload["contact"]["name"] == "Mei"
    assert inbound.verified is not None and inbound.verified.phone == "+8613800138000"


def test_someone_elses_contact_card_verifies_nothing(
    alone: TestClient, receiver: RecordingReceiver
) -> None:
    post(alone, contact_card(44, "+8613900139000", 424242))
    post(alone, contact_card(45, "+8613900139000", None))

    assert [i.text for i in receiver.inbound] == ["+8613900139000"] * 2
    assert [i.verified for i in receiver.inbound] == [None, None]


# ---- groups ----------------------------------------------------------------------------

ALICE, BOB = user(7001, "Alice"), user(7002, "Bob")


def addressed_updates() -> list[tuple[str, dict[str, Any], str]]:
    """(how, update, the text the bot gets) for each way of addressing the bot."""
    text = f"@{BOT_USERNAME} where is my order?"
    command = f"/human@{BOT_USERNAME}"
    return [
        ("mention", group_update(1, ALICE, text, [mention(text)]), "where is my order?"),
        (
            "command",
            group_update(2, ALICE, command, [mention(command, command, "bot_command")]),
            "/human",
        ),
        (
            "reply",
            group_update(
                3,
                ALICE,
                "and now?",
                reply_to={"from": {"id": BOT_ID, "is_bot": True, "first_name": "K"}},
            ),
            "and now?",
        ),
        (
            "text_mention",
            group_update(
                4,
                ALICE,
                "Kefu help",
                [
                    {
                        "type": "text_mention",
                        "offset": 0,
                        "length": 4,
                        "user": {"id": BOT_ID, "is_bot": True, "first_name": "Kefu"},
                    }
                ],
            ),
            "Kefu help",
        ),
    ]


@pytest.mark.parametrize(("how", "update", "text"), addressed_updates())
def test_a_group_message_addressing_the_bot_is_taken(
    how: str,
    update: dict[str, Any],
    text: str,
    alone: TestClient,
    receiver: RecordingReceiver,
) -> None:
    post(alone, update)

    [inbound] = receiver.inbound
    assert inbound.text == text
    assert inbound.sender_id == "-100555"  # the group is the conversation
    assert inbound.sender_name == "Alice"  # whoever wrote
    assert inbound.payload["telegram"]["from_id"] == 7001
    assert inbound.payload["telegram"]["chat_title"] == "Shop fans"


@pytest.mark.parametrize(
    "update",
    [
        group_update(10, ALICE, "where is my order?"),
        group_update(11, ALICE, "@someone_else hi", [mention("@someone_else hi", "@someone_else")]),
        group_update(
            12,
            ALICE,
            "/human@other_bot",
            [mention("/human@other_bot", "/human@other_bot", "bot_command")],
        ),
        group_update(13, ALICE, "ok", reply_to={"from": BOB}),
        group_update(14, ALICE, f"mail me at x@{BOT_USERNAME}.com"),
    ],
)
def test_a_group_message_not_for_the_bot_is_ignored(
    update: dict[str, Any], alone: TestClient, receiver: RecordingReceiver
) -> None:
    assert post(alone, update).status_code == 200
    assert receiver.inbound == []


def test_group_mode_all_takes_every_group_message(
    api: FakeTelegram, receiver: RecordingReceiver
) -> None:
    with channel_app(api, receiver, group_mode="all") as (client, _):
        post(client, group_update(20, ALICE, "where is my order?"))

    assert [i.text for i in receiver.inbound] == ["where is my order?"]


def test_group_mode_off_takes_nothing_from_groups(
    api: FakeTelegram, receiver: RecordingReceiver
) -> None:
    text = f"@{BOT_USERNAME} hi"
    with channel_app(api, receiver, group_mode="off") as (client, _):
        post(client, group_update(21, ALICE, text, [mention(text)]))
        post(client, callback_update(22, -100555, "/human"))
        post(client, text_update(7, "private chats still work", 23))

    assert [i.text for i in receiver.inbound] == ["private chats still work"]
    assert len(api.calls_of("answerCallbackQuery")) == 1  # the spinner stops all the same


# ---- buttons ---------------------------------------------------------------------------


def test_a_button_press_is_a_postback_titled_like_the_button(
    alone: TestClient, api: FakeTelegram, receiver: RecordingReceiver
) -> None:
    keyboard = {"inline_keyboard": [[{"text": "Talk to a human", "callback_data": "/human"}]]}

    post(alone, callback_update(30, 4242, "/human", keyboard))

    [inbound] = receiver.inbound
    assert (inbound.postback, inbound.text, inbound.sender_id) == (
        "/human",
        "Talk to a human",
        "4242",
    )
    assert inbound.channel_message_id == "callback:cb-30"
    assert api.calls_of("answerCallbackQuery")[0].params["callback_query_id"] == "cb-30"


async def test_a_payload_over_64_bytes_goes_out_as_a_key_and_comes_back_whole(
    api: FakeTelegram, receiver: RecordingReceiver
) -> None:
    long_payload = '/check_order{"order_id": "12345678", "note": "' + "x" * 80 + '"}'
    buttons = (Button(title="Track it", payload=long_payload), Button(title="No", payload="/deny"))
    message = outbound("Shall I track it?", buttons=buttons)
    receiver.stored.append(message)
    with channel_app(api, receiver) as (client, channel):
        client.portal.call(channel.send, message)  # type: ignore[union-attr]
        [sent] = api.calls_of("sendMessage")
        keyboard = sent.params["reply_markup"]
        datas = [row[0]["callback_data"] for row in keyboard["inline_keyboard"]]
        assert datas[1] == "/deny"
        assert datas[0] != long_payload and len(datas[0].encode()) <= CALLBACK_DATA_LIMIT

        post(client, callback_update(31, 4242, datas[0], keyboard))

    [inbound] = receiver.inbound
    assert (inbound.postback, inbound.text) == (long_payload, "Track it")


def test_an_unknown_key_falls_back_to_the_button_title(
    alone: TestClient, receiver: RecordingReceiver
) -> None:
    key = callback_data("/gone" + "x" * 80)
    keyboard = {"inline_keyboard": [[{"text": "Track it", "callback_data": key}]]}

    post(alone, callback_update(32, 4242, key, keyboard))

    [inbound] = receiver.inbound
    assert (inbound.postback, inbound.text) == (None, "Track it")


def test_callback_data_fits_telegrams_64_bytes() -> None:
    assert callback_data("/human") == "/human"
    assert callback_data("x" * 64) == "x" * 64
    for payload in ("x" * 65, "转人工" * 30, "", "#tag"):  # "#" starts keys: never sent as is
        data = callback_data(payload)
        assert data.startswith("#") and len(data.encode()) <= CALLBACK_DATA_LIMIT, payload
    assert callback_data("x" * 65) == callback_data("x" * 65) != callback_data("y" * 65)


# ---- sending ---------------------------------------------------------------------------


@pytest.fixture
async def sender(api: FakeTelegram) -> AsyncIterator[TelegramChannel]:
    """The channel as the outbox uses it: send() only."""
    channel = TelegramChannel(NAME, KIT.options(api.base), RecordingReceiver())
    yield channel
    await channel.stop()


async def test_text_over_4096_characters_goes_in_several_messages(
    sender: TelegramChannel, api: FakeTelegram
) -> None:
    words = " ".join(f"word{i}" for i in range(2000))  # ~17,800 characters
    buttons = (Button(title="Talk to a human", payload="/human"),)

    await sender.send(outbound(words, buttons=buttons))

    calls = api.calls_of("sendMessage")
    assert len(calls) == 5
    texts = [c.params["text"] for c in calls]
    assert all(len(t) <= TEXT_LIMIT for t in texts)
    assert " ".join(texts) == words  # broken at spaces, nothing lost
    assert [("reply_markup" in c.params) for c in calls] == [False] * 4 + [True]


def test_split_text_counts_utf16_units_and_prefers_newlines() -> None:
    emoji = "😀" * 3000  # two UTF-16 units each: 6000 units
    parts = split_text(emoji)
    assert [len(p) for p in parts] == [2048, 952]
    assert "".join(parts) == emoji

    lines = ("a" * 3000 + "\n") + ("b " * 1000)
    assert split_text(lines) == ["a" * 3000, "b " * 1000]
    assert split_text("x" * 5000) == ["x" * 4096, "x" * 904]
    assert split_text("short") == ["short"]
    assert split_text("") == []


async def test_a_retry_after_a_part_failed_goes_on_from_that_part(
    sender: TelegramChannel, api: FakeTelegram
) -> None:
    api.fail("sendMessage", 502, "Bad Gateway", after=1)
    message = outbound("a" * 4096 + "b" * 10)

    with pytest.raises(DeliveryError) as raised:
        await sender.send(message)
    assert raised.value.retryable
    await sender.send(message)  # the outbox's retry

    assert [c.params["text"] for c in api.calls_of("sendMessage")] == ["a" * 4096, "b" * 10]


async def test_a_flood_limit_says_when_to_retry(sender: TelegramChannel, api: FakeTelegram) -> None:
    api.fail("sendMessage", 429, "Too Many Requests: retry after 7", retry_after=7)

    with pytest.raises(DeliveryError) as raised:
        await sender.send(outbound())

    assert raised.value.retryable and raised.value.retry_after == 7.0
    assert "Too Many Requests: retry after 7" in str(raised.value)


@pytest.mark.parametrize(
    ("status", "description", "retryable"),
    [
        (403, "Forbidden: bot was blocked by the user", False),
        (400, "Bad Request: chat not found", False),
        (401, "Unauthorized", False),
        (500, "Internal Server Error", True),
        (502, "Bad Gateway", True),
    ],
)
async def test_telegrams_refusals_become_delivery_errors(
    status: int, description: str, retryable: bool, sender: TelegramChannel, api: FakeTelegram
) -> None:
    api.fail("sendMessage", status, description)

    with pytest.raises(DeliveryError) as raised:
        await sender.send(outbound())

    assert raised.value.retryable is retryable
    assert raised.value.retry_after is None
    assert description in str(raised.value)


async def test_a_network_failure_is_retryable() -> None:
    channel = TelegramChannel(
        NAME, {**KIT.options("http://127.0.0.1:9"), "request_timeout": 2}, RecordingReceiver()
    )
    try:
        with pytest.raises(DeliveryError) as raised:
            await channel.send(outbound())
    finally:
        await channel.stop()

    assert raised.value.retryable


async def test_images_go_as_photos_and_files_as_documents(
    sender: TelegramChannel, api: FakeTelegram
) -> None:
    from hub.messages import Attachment

    attachments = (
        Attachment(kind=Kind.IMAGE, url="https://shop.example/p.jpg"),
        Attachment(kind=Kind.FILE, url="https://shop.example/invoice.pdf"),
    )
    await sender.send(outbound("Here you are", attachments=attachments))

    assert [c.method for c in api.calls] == ["sendMessage", "sendPhoto", "sendDocument"]
    assert api.calls[1].params["photo"] == "https://shop.example/p.jpg"


async def test_a_relative_attachment_url_fails_before_anything_is_sent(
    sender: TelegramChannel, api: FakeTelegram
) -> None:
    from hub.messages import Attachment

    message = outbound("see", attachments=(Attachment(kind=Kind.IMAGE, url="/media/ab/x.jpg"),))
    with pytest.raises(DeliveryError) as raised:
        await sender.send(message)

    assert not raised.value.retryable and "absolute URL" in str(raised.value)
    assert api.calls == []


async def test_a_recipient_that_is_not_a_chat_id_fails_for_good(sender: TelegramChannel) -> None:
    with pytest.raises(DeliveryError) as raised:
        await sender.send(outbound(recipient="cust-1"))
    assert not raised.value.retryable


async def test_a_send_after_stop_waits_for_the_next_start(
    sender: TelegramChannel, api: FakeTelegram
) -> None:
    await sender.stop()

    with pytest.raises(DeliveryError) as raised:
        await sender.send(outbound())

    assert raised.value.retryable  # stays queued; resent when the hub starts again
    assert api.calls == []


# ---- configuration ---------------------------------------------------------------------


def test_options_are_checked_when_the_channel_is_built() -> None:
    with pytest.raises(ChannelConfigError, match="token"):
        TelegramChannel("shop-telegram", {"token": "not a token"}, RecordingReceiver())
    with pytest.raises(ChannelConfigError, match="group_mode"):
        TelegramChannel("shop-telegram", {"group_mode": "some"}, RecordingReceiver())
    with pytest.raises(ChannelConfigError, match="secret_token"):
        TelegramChannel("shop-telegram", {"secret_token": "has spaces"}, RecordingReceiver())


async def test_start_requires_a_token_and_in_webhook_mode_a_secret() -> None:
    with pytest.raises(ChannelConfigError, match="token is required"):
        await TelegramChannel("t", {}, RecordingReceiver()).start()
    channel = TelegramChannel("t", {"token": TOKEN}, RecordingReceiver())
    with pytest.raises(ChannelConfigError, match="secret_token is required"):
        await channel.start()
    await channel.stop()


def test_the_webhook_path_names_the_instance() -> None:
    channel = TelegramChannel("shop-telegram", {"token": TOKEN}, RecordingReceiver())
    router = channel.router()
    assert router is not None
    assert [r.path for r in router.routes] == ["/channels/telegram/shop-telegram"]  # type: ignore[attr-defined]
    polling = TelegramChannel("p", {"token": TOKEN, "mode": "polling"}, RecordingReceiver())
    assert polling.router() is None


# ---- harness 2: the whole hub with the demo bot ----------------------------------------


def channel_config(api: FakeTelegram, **options: Any) -> dict[str, Any]:
    return {"name": NAME, "type": "telegram", **KIT.options(api.base), **options}


@pytest.fixture
def hub(make_hub: MakeHub, api: FakeTelegram) -> tuple[TestClient, dict[str, str]]:
    return make_hub(channels=[channel_config(api)])


def drain(client: TestClient) -> None:
    client.portal.call(client.app.state.hub.outbox.drain)  # type: ignore[attr-defined, union-attr]


def test_a_message_is_answered_with_the_bots_buttons_as_an_inline_keyboard(
    hub: tuple[TestClient, dict[str, str]], api: FakeTelegram
) -> None:
    client, auth = hub

    assert post(client, text_update(4242, "hello", 1)).json() == {"ok": True}
    drain(client)

    [sent] = api.sent_to(4242)
    assert sent["text"].startswith(GREETING)
    rows = sent["reply_markup"]["inline_keyboard"]
    assert [b for row in rows for b in row][-1] == {
        "text": "Talk to a human",
        "callback_data": "/human",
    }
    assert all(len(row) == 1 for row in rows) and len(rows) == 5
    conversation = conversation_of(client, auth, NAME, "4242")
    assert conversation["contact"]["name"] == "Test"
    [inbound, reply] = messages(client, auth, conversation["id"])
    assert (inbound["text"], reply["delivery"]) == ("hello", "sent")


def test_start_and_a_deep_link_greet(
    hub: tuple[TestClient, dict[str, str]], api: FakeTelegram
) -> None:
    client, _ = hub

    post(client, text_update(5151, "/start", 1))
    post(client, text_update(5252, "/start spring-sale", 2))
    drain(client)

    for chat in (5151, 5252):
        [sent] = api.sent_to(chat)
        assert sent["text"].startswith(GREETING)  # not the "didn't understand" fallback


def test_a_deep_link_parameter_is_kept_and_greeting_can_be_turned_off(
    api: FakeTelegram, receiver: RecordingReceiver
) -> None:
    with channel_app(api, receiver) as (client, _):
        post(client, text_update(5252, "/start@kefu_bot spring-sale", 2))
    with channel_app(api, receiver, greeting=None) as (client, _):
        post(client, text_update(5353, "/start", 3))

    linked, plain = receiver.inbound
    assert (linked.postback, linked.payload["start"]) == ("/greet", "spring-sale")
    assert (plain.postback, plain.text) == (None, "/start")


class GatedFlows:
    """The demo bot's flows, held until the test opens the gate: a slow bot turn."""

    def __init__(self, inner: FlowEngine) -> None:
        self.inner = inner
        self.gate = asyncio.Event()

    def view(self, state: dict[str, Any], context: TurnContext) -> FlowView:
        return self.inner.view(state, context)

    async def run(self, state: dict[str, Any], context: TurnContext) -> FlowResult:
        await self.gate.wait()
        return await self.inner.run(state, context)

    async def start(self, state: dict[str, Any], context: TurnContext, flow: str) -> FlowResult:
        await self.gate.wait()
        return await self.inner.start(state, context, flow)

    def resume(self, state: dict[str, Any], context: TurnContext) -> FlowResult:
        return self.inner.resume(state, context)

    def cancel(self, state: dict[str, Any], context: TurnContext) -> FlowResult:
        return self.inner.cancel(state, context)


async def test_the_webhook_answers_before_the_bots_turn_is_over(
    sqlite_url: str,
    tmp_path: Path,
    classifier: IntentClassifier,
    flows: FlowEngine,
    api: FakeTelegram,
) -> None:
    settings = make_settings(sqlite_url, tmp_path, channels=[channel_config(api)])
    slow = GatedFlows(flows)
    app = create_app(settings, classifier=classifier, flows=slow)  # type: ignore[arg-type]
    body = json.dumps(text_update(4242, "hello", 1)).encode()
    sent: list[dict[str, Any]] = []
    answered, finished = asyncio.Event(), asyncio.Event()
    requests = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if requests:
            return requests.pop()
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            answered.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": WEBHOOK,
        "raw_path": WEBHOOK.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (SECRET_HEADER.lower().encode(), SECRET.encode()),
        ],
        "client": ("149.154.167.220", 44000),
        "server": ("hub.example", 443),
    }
    async with app.router.lifespan_context(app):
        request = asyncio.create_task(app(scope, receive, send))
        await asyncio.wait_for(answered.wait(), 10)

        assert sent[0]["status"] == 200  # Telegram has its answer...
        assert not request.done()  # ...while the bot is still thinking
        assert api.sent_to(4242) == []

        slow.gate.set()
        await asyncio.wait_for(request, 10)
        finished.set()
        await app.state.hub.outbox.drain()
        assert api.texts_to(4242)[0].startswith(GREETING)


def test_hostile_json_reaching_the_hub_stores_nothing_and_the_hub_answers_on(
    hub: tuple[TestClient, dict[str, str]], api: FakeTelegram
) -> None:
    """Signed as Telegram signs (the secret token header), through the whole hub."""
    client, auth = hub

    answers = [post(client, body).status_code for body in HOSTILE.values()]
    assert answers == [400] * len(HOSTILE)
    assert conversations(client, auth) == []

    assert post(client, text_update(4244, "hello", 3)).json() == {"ok": True}
    drain(client)
    assert api.texts_to(4244)[0].startswith(GREETING)


def test_a_redelivery_is_stored_once_even_under_a_new_update_id(
    hub: tuple[TestClient, dict[str, str]], api: FakeTelegram
) -> None:
    """The update_id set is per process; the pipeline's (channel, channel_message_id)
    dedupe catches what another process's redelivery would bring."""
    client, auth = hub
    update = text_update(4243, "hello", 2)
    again = {**update, "update_id": update["update_id"] + 1}

    for delivery in (update, update, again):
        assert post(client, delivery).status_code == 200
        drain(client)

    [conversation] = conversations(client, auth, channel=NAME)
    assert [m["direction"] for m in messages(client, auth, conversation["id"])] == ["in", "out"]
    assert len(api.sent_to(4243)) == 1


def test_an_edited_message_edits_the_stored_text(
    hub: tuple[TestClient, dict[str, str]], api: FakeTelegram
) -> None:
    client, auth = hub
    update = text_update(4244, "where is my ordr", 3)
    edited = {"update_id": 99, "edited_message": {**update["message"], "edit_date": 1_700_000_100}}
    edited["edited_message"]["text"] = "where is my order"

    post(client, update)
    drain(client)
    replies = len(api.sent_to(4244))
    post(client, edited)
    drain(client)

    conversation = conversation_of(client, auth, NAME, "4244")
    inbound = [m for m in messages(client, auth, conversation["id"]) if m["direction"] == "in"]
    assert [m["text"] for m in inbound] == ["where is my order"]
    assert len(api.sent_to(4244)) == replies  # an edit is not a new turn


def test_pressing_talk_to_a_human_hands_the_conversation_over(
    hub: tuple[TestClient, dict[str, str]], api: FakeTelegram
) -> None:
    client, auth = hub
    post(client, text_update(4245, "hello", 4))
    drain(client)
    keyboard = api.sent_to(4245)[0]["reply_markup"]

    response = post(client, callback_update(5, 4245, "/human", keyboard))
    drain(client)

    assert response.status_code == 200
    conversation = conversation_of(client, auth, NAME, "4245")
    assert conversation["status"] == "pending"
    pressed = [m for m in messages(client, auth, conversation["id"]) if m["direction"] == "in"][-1]
    assert pressed["text"] == "Talk to a human"
    assert [c.params["callback_query_id"] for c in api.calls_of("answerCallbackQuery")] == ["cb-5"]
    assert NOTICE_EN in api.texts_to(4245)[-1]


def test_a_flood_limit_is_waited_out_and_the_message_sent_once(
    hub: tuple[TestClient, dict[str, str]], api: FakeTelegram
) -> None:
    client, auth = hub
    # Telegram's retry_after is whole seconds; 2 s is more than the outbox's own backoff
    # (0.5 s) and pacing (1 s), so only honouring it explains the wait.
    api.fail("sendMessage", 429, "Too Many Requests: retry after 2", retry_after=2)

    post(client, text_update(4246, "hello", 6))
    drain(client)

    attempts = api.calls_of("sendMessage", ok_only=False)
    assert [c.status for c in attempts] == [429, 200]
    assert attempts[1].at - attempts[0].at >= 1.95
    conversation = conversation_of(client, auth, NAME, "4246")
    assert messages(client, auth, conversation["id"])[-1]["delivery"] == "sent"


def test_a_blocked_bot_fails_the_message_with_telegrams_description(
    hub: tuple[TestClient, dict[str, str]], api: FakeTelegram
) -> None:
    client, auth = hub
    api.fail("sendMessage", 403, "Forbidden: bot was blocked by the user", times=10)

    post(client, text_update(4247, "hello", 7))
    drain(client)

    assert len(api.calls_of("sendMessage", ok_only=False)) == 1  # not retried
    conversation = conversation_of(client, auth, NAME, "4247")
    reply = messages(client, auth, conversation["id"])[-1]
    assert reply["delivery"] == "failed"
    assert "Forbidden: bot was blocked by the user" in reply["delivery_error"]


def test_a_group_is_one_conversation_that_hears_only_what_addresses_the_bot(
    hub: tuple[TestClient, dict[str, str]], api: FakeTelegram
) -> None:
    client, auth = hub
    chatter = group_update(50, ALICE, "anyone tried the new jacket?")
    asks = f"@{BOT_USERNAME} hello"
    replying = group_update(
        52, BOB, "hello", reply_to={"from": {"id": BOT_ID, "is_bot": True, "first_name": "K"}}
    )

    post(client, chatter)
    drain(client)
    assert conversations(client, auth, channel=NAME) == []  # nothing stored
    post(client, group_update(51, ALICE, asks, [mention(asks)]))
    drain(client)
    post(client, replying)
    drain(client)

    [conversation] = conversations(client, auth, channel=NAME)
    assert conversation["contact"]["external_id"] == "-100555"
    inbound = [m for m in messages(client, auth, conversation["id"]) if m["direction"] == "in"]
    assert [m["text"] for m in inbound] == ["hello", "hello"]
    texts = api.texts_to(-100555)
    assert len(texts) == 2 and all(t.startswith(GREETING) for t in texts)


def test_a_photo_is_fetched_stored_and_served_by_the_hub(
    hub: tuple[TestClient, dict[str, str]], api: FakeTelegram
) -> None:
    client, auth = hub
    api.add_file("AgAD-big", b"\xff\xd8\xff jpeg bytes", "photos/file_12.jpg")
    update = photo_update(4248, 8, "the box arrived like this", "AgAD-small", "AgAD-big")

    post(client, update)
    drain(client)

    conversation = conversation_of(client, auth, NAME, "4248")
    photo = messages(client, auth, conversation["id"])[0]
    assert (photo["kind"], photo["text"]) == ("image", "the box arrived like this")
    [attachment] = photo["attachments"]
    assert attachment["kind"] == "image" and attachment["mime_type"] == "image/jpeg"
    served = client.get(attachment["url"])
    assert served.status_code == 200 and served.content == b"\xff\xd8\xff jpeg bytes"


def test_an_agents_long_reply_reaches_telegram_in_parts(
    hub: tuple[TestClient, dict[str, str]], api: FakeTelegram
) -> None:
    client, auth = hub
    post(client, callback_update(9, 4249, "/human"))
    drain(client)
    conversation = conversation_of(client, auth, NAME, "4249")
    long = " ".join(["Here is everything about your order."] * 150)  # 5,549 characters

    agent_reply(client, auth, conversation["id"], long)
    drain(client)

    parts = api.texts_to(4249)[1:]  # after the handoff notice
    assert len(parts) == 2 and " ".join(parts) == long


def test_polling_mode_end_to_end(
    sqlite_url: str,
    tmp_path: Path,
    classifier: IntentClassifier,
    flows: FlowEngine,
    api: FakeTelegram,
) -> None:
    settings = make_settings(
        sqlite_url, tmp_path, channels=[channel_config(api, mode="polling", polling_timeout=5)]
    )
    update = text_update(4250, "hello", 10)

    with client_for(settings, classifier, flows) as client:
        assert client.post(WEBHOOK, json=update).status_code == 404  # no webhook when polling
        api.push_update(update)
        wait_for(lambda: api.texts_to(4250), "the reply to a polled update")
        confirmed = update["update_id"] + 1
        wait_for(
            lambda: any(int(c.params.get("offset", 0)) == confirmed for c in api.calls),
            "getUpdates to confirm the update",
        )
        channel = client.app.state.hub.channels[NAME]  # type: ignore[attr-defined]
        stopping = time.monotonic()

    assert time.monotonic() - stopping < 3  # a pending long poll doesn't hold up the stop
    assert channel._polling is None
    methods = [c.method for c in api.calls]
    assert methods.index("deleteWebhook") < methods.index("getUpdates")
    assert api.texts_to(4250)[0].startswith(GREETING)
    polls = len(api.calls_of("getUpdates", ok_only=False))
    time.sleep(0.3)
    assert len(api.calls_of("getUpdates", ok_only=False)) == polls  # polling has ended
