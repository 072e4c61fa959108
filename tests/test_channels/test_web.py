"""The web widget's WebSocket: /channels/web/ws?visitor=<id> (DESIGN.md section 4)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from tests.test_channels.conftest import MakeHub
from tests.test_channels.support import (
    NOTICE_EN,
    agent_reply,
    assert_silent,
    conversation_of,
    hello,
    messages,
    receive,
)

WS = "/channels/web/ws"


def send_message(
    ws: WebSocketTestSession, text: str, client_id: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Send a customer message; returns (its ack, the next frame)."""
    ws.send_json({"type": "message", "client_id": client_id, "text": text})
    ack = receive(ws)
    assert ack["type"] == "ack", ack
    return ack, receive(ws)


def test_hello_names_the_visitor(client: TestClient) -> None:
    with client.websocket_connect(f"{WS}?visitor=v-123") as ws:
        frame = hello(ws)
    assert frame["visitor"] == "v-123"
    assert "conversation_id" in frame


@pytest.mark.parametrize("query", ["", "?visitor=", "?visitor=not%20a%20valid%20id!"])
def test_the_server_assigns_a_visitor_when_missing_or_unusable(
    client: TestClient, query: str
) -> None:
    with client.websocket_connect(f"{WS}{query}") as ws:
        first = hello(ws)["visitor"]
    with client.websocket_connect(f"{WS}{query}") as ws:
        second = hello(ws)["visitor"]

    assert isinstance(first, str) and first and first != "not a valid id!"
    assert first != second  # each browser gets its own


def test_hello_after_a_conversation_names_it(client: TestClient, auth: dict) -> None:
    with client.websocket_connect(f"{WS}?visitor=v1") as ws:
        hello(ws)
        send_message(ws, "hello", "c-1")
    cid = conversation_of(client, auth, "web", "v1")["id"]

    with client.websocket_connect(f"{WS}?visitor=v1") as ws:
        assert hello(ws)["conversation_id"] == str(cid)


def test_message_is_acked_before_the_bot_answers(client: TestClient, auth: dict) -> None:
    with client.websocket_connect(f"{WS}?visitor=v1") as ws:
        hello(ws)
        ack, bot = send_message(ws, "hello", "c-1")

    assert ack["client_id"] == "c-1" and ack["id"]
    assert bot["type"] == "message" and bot["sender"] == "bot", bot
    assert bot["text"] and bot["id"] and int(bot["id"]) > int(ack["id"])
    created = datetime.fromisoformat(bot["created_at"])
    assert created.tzinfo is not None
    assert isinstance(bot["buttons"], list) and bot["buttons"]
    assert all(set(b) == {"title", "payload"} for b in bot["buttons"])
    assert bot["attachments"] == []
    # the ack's id is the stored customer message
    stored = messages(client, auth, conversation_of(client, auth, "web", "v1")["id"])
    assert [m["id"] for m in stored if m["sender"] == "contact"] == [int(ack["id"])]


def test_chinese_message_gets_a_chinese_reply(client: TestClient) -> None:
    with client.websocket_connect(f"{WS}?visitor=v-zh") as ws:
        hello(ws)
        _, bot = send_message(ws, "你好", "c-1")
    assert any("\u4e00" <= ch <= "\u9fff" for ch in bot["text"]), bot


def test_postback_human_hands_off_with_a_system_notice(client: TestClient, auth: dict) -> None:
    with client.websocket_connect(f"{WS}?visitor=v1") as ws:
        hello(ws)
        send_message(ws, "hello", "c-1")

        ws.send_json({"type": "postback", "payload": "/human", "title": "Talk to a human"})
        notice = receive(ws)

        assert notice["type"] == "message" and notice["sender"] == "system", notice
        assert NOTICE_EN in notice["text"]
        assert conversation_of(client, auth, "web", "v1")["status"] == "pending"

        # While pending, a message is acked but the bot stays silent.
        ws.send_json({"type": "message", "client_id": "c-2", "text": "hello?"})
        assert receive(ws)["type"] == "ack"
        assert_silent(ws)


def test_agent_reply_arrives_live_and_a_private_note_never_does(
    client: TestClient, auth: dict
) -> None:
    with client.websocket_connect(f"{WS}?visitor=v1") as ws:
        hello(ws)
        send_message(ws, "hello", "c-1")
        cid = conversation_of(client, auth, "web", "v1")["id"]

        agent_reply(client, auth, cid, "internal: VIP customer", private=True)
        sent = agent_reply(client, auth, cid, "Hi, I'm Lin from support.")

        # the outbox keeps order: a leaked note would arrive before the reply
        frame = receive(ws)
        assert frame["type"] == "message", frame
        assert (frame["sender"], frame["text"]) == ("agent", "Hi, I'm Lin from support.")
        assert frame["id"] == str(sent["id"])
        assert_silent(ws)


def test_two_tabs_of_a_visitor_both_get_the_agents_message(client: TestClient, auth: dict) -> None:
    with (
        client.websocket_connect(f"{WS}?visitor=v1") as tab1,
        client.websocket_connect(f"{WS}?visitor=v1") as tab2,
    ):
        hello(tab1)
        hello(tab2)
        send_message(tab1, "hello", "c-1")
        assert receive(tab2)["sender"] == "bot"  # the bot's answer shows in both tabs
        cid = conversation_of(client, auth, "web", "v1")["id"]

        agent_reply(client, auth, cid, "Hello from an agent")

        for tab in (tab1, tab2):
            frame = receive(tab)
            assert (frame["sender"], frame["text"]) == ("agent", "Hello from an agent")


def test_other_visitors_get_nothing(client: TestClient, auth: dict) -> None:
    with (
        client.websocket_connect(f"{WS}?visitor=v1") as ws1,
        client.websocket_connect(f"{WS}?visitor=v2") as ws2,
    ):
        hello(ws1)
        hello(ws2)
        send_message(ws1, "hello", "c-1")
        agent_reply(client, auth, conversation_of(client, auth, "web", "v1")["id"], "for v1")
        assert receive(ws1)["text"] == "for v1"
        assert_silent(ws2)


def test_resume_resends_everything_after_the_given_id(client: TestClient, auth: dict) -> None:
    with client.websocket_connect(f"{WS}?visitor=v1") as ws:
        hello(ws)
        first_ack, _ = send_message(ws, "hello", "c-1")
        ws.send_json({"type": "postback", "payload": "/human", "title": "Talk to a human"})
        receive(ws)  # the handoff notice
    cid = conversation_of(client, auth, "web", "v1")["id"]
    # while the widget is closed: a note and a reply
    agent_reply(client, auth, cid, "internal note", private=True)
    agent_reply(client, auth, cid, "Back with you in a minute")
    after = int(first_ack["id"])
    expected = [m for m in messages(client, auth, cid) if not m["private"] and m["id"] > after]

    with client.websocket_connect(f"{WS}?visitor=v1") as ws:
        hello(ws)
        ws.send_json({"type": "resume", "after": first_ack["id"]})
        frames = [receive(ws) for _ in expected]
        assert_silent(ws)

    assert [f["id"] for f in frames] == [str(m["id"]) for m in expected]
    assert [(f["sender"], f["text"]) for f in frames] == [
        (m["sender"], m["text"]) for m in expected
    ]
    senders = [f["sender"] for f in frames]
    assert "bot" in senders and "system" in senders and senders[-1] == "agent"
    assert "internal note" not in [f["text"] for f in frames]
    assert all(int(f["id"]) > after for f in frames)


def test_resume_after_the_last_message_sends_nothing(client: TestClient) -> None:
    with client.websocket_connect(f"{WS}?visitor=v1") as ws:
        hello(ws)
        _, bot = send_message(ws, "hello", "c-1")
        ws.send_json({"type": "resume", "after": bot["id"]})
        assert_silent(ws)


def test_resending_a_client_id_after_reconnect_is_the_same_message(
    client: TestClient, auth: dict
) -> None:
    with client.websocket_connect(f"{WS}?visitor=v1") as ws:
        hello(ws)
        first, _ = send_message(ws, "hello", "c-1")

    with client.websocket_connect(f"{WS}?visitor=v1") as ws:
        hello(ws)
        ws.send_json({"type": "message", "client_id": "c-1", "text": "hello"})
        again = receive(ws)
        assert again == first
        assert_silent(ws)  # and the bot does not answer it twice

    stored = messages(client, auth, conversation_of(client, auth, "web", "v1")["id"])
    assert [m["text"] for m in stored if m["sender"] == "contact"] == ["hello"]
    assert len([m for m in stored if m["sender"] == "bot"]) == 1


def test_client_ids_are_per_visitor(client: TestClient, auth: dict) -> None:
    for visitor in ("v1", "v2"):
        with client.websocket_connect(f"{WS}?visitor={visitor}") as ws:
            hello(ws)
            _, bot = send_message(ws, "hello", "c-1")
            assert bot["sender"] == "bot"
    for visitor in ("v1", "v2"):
        stored = messages(client, auth, conversation_of(client, auth, "web", visitor)["id"])
        assert [m["text"] for m in stored if m["sender"] == "contact"] == ["hello"]


INVALID = {
    "not json": ("hello there", "json"),
    "json but not an object": ("[1, 2]", "object"),
    "unknown type": (json.dumps({"type": "shout", "text": "hi"}), "shout"),
    "message without text": (json.dumps({"type": "message", "client_id": "c-9"}), "text"),
    "empty text": (json.dumps({"type": "message", "text": ""}), "text"),
    "text over 4000 chars": (json.dumps({"type": "message", "text": "x" * 4001}), "4000"),
    "resume after a non-id": (json.dumps({"type": "resume", "after": "yesterday"}), "after"),
    # found by fuzzing (test_fuzz_parsers.py): the database driver raised, closing the socket
    "resume after an id too large": (json.dumps({"type": "resume", "after": 2**70}), "after"),
    "resume after a negative id": (json.dumps({"type": "resume", "after": -(2**70)}), "after"),
}


@pytest.mark.parametrize("raw, hint", INVALID.values(), ids=INVALID.keys())
def test_invalid_frame_gets_an_error_and_the_socket_stays_usable(
    client: TestClient, raw: str, hint: str
) -> None:
    with client.websocket_connect(f"{WS}?visitor=v1") as ws:
        hello(ws)

        ws.send_text(raw)
        error = receive(ws)

        assert error["type"] == "error", error
        assert isinstance(error["error"], str) and hint in error["error"].lower(), error
        ack, bot = send_message(ws, "hello", "c-1")
        assert ack["client_id"] == "c-1" and bot["sender"] == "bot"


def test_frame_over_the_configured_size_is_refused(make_hub: MakeHub) -> None:
    client, _ = make_hub(channels=[{"name": "web", "type": "web", "max_frame_bytes": 200}])
    with client.websocket_connect(f"{WS}?visitor=v1") as ws:
        hello(ws)
        ws.send_json({"type": "message", "client_id": "c-0", "text": "y" * 300})
        error = receive(ws)
        assert error["type"] == "error" and "large" in error["error"], error
        _, bot = send_message(ws, "hello", "c-1")
        assert bot["sender"] == "bot"


def test_binary_frame_gets_an_error_and_the_socket_stays_usable(client: TestClient) -> None:
    with client.websocket_connect(f"{WS}?visitor=v1") as ws:
        hello(ws)
        ws.send_bytes(b"\x00\x01")
        error = receive(ws, 2.0)
        assert error["type"] == "error", error
        _, bot = send_message(ws, "hello", "c-1")
        assert bot["sender"] == "bot"


def test_a_web_channel_with_another_name_listens_at_its_own_path(make_hub: MakeHub) -> None:
    client, auth = make_hub(channels=[{"name": "shop", "type": "web"}])

    with client.websocket_connect("/channels/web/shop/ws?visitor=s1") as ws:
        assert hello(ws)["visitor"] == "s1"
        _, bot = send_message(ws, "hello", "c-1")
        assert bot["sender"] == "bot"

    assert conversation_of(client, auth, "shop", "s1")["channel"] == "shop"
    with pytest.raises(WebSocketDisconnect), client.websocket_connect(f"{WS}?visitor=s1") as ws:
        hello(ws)  # no instance named `web` here


def test_the_widget_script_and_the_demo_page_are_served(client: TestClient) -> None:
    script = client.get("/widget.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("application/javascript")
    assert "kefu-launcher" in script.text and "/channels/web" in script.text
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/widget.js" data-channel="web"' in page.text


# ---- uploads: POST /channels/web/upload?visitor=<id>&name=<file name>, raw body ----------------

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99"
    b"=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)
UPLOAD = "/channels/web/upload"


def upload(
    client: TestClient, data: bytes, mime_type: str, name: str = "photo.png", visitor: str = "v1"
) -> Any:
    return client.post(
        UPLOAD,
        params={"visitor": visitor, "name": name},
        content=data,
        headers={"content-type": mime_type},
    )


def test_an_uploaded_image_is_sent_as_an_attachment_the_agent_sees(
    client: TestClient, auth: dict
) -> None:
    r = upload(client, PNG, "image/png", name="../my photo.png")
    assert r.status_code == 201, r.text
    attachment = r.json()
    assert attachment["url"].startswith("/media/")
    assert attachment["kind"] == "image" and attachment["mime_type"] == "image/png"
    assert "/" not in attachment["name"] and attachment["name"].endswith(".png")
    assert client.get(attachment["url"]).content == PNG

    with client.websocket_connect(f"{WS}?visitor=v1") as ws:
        hello(ws)
        ws.send_json(
            {"type": "message", "client_id": "c-1", "text": "", "attachments": [attachment]}
        )
        ack = receive(ws)
        assert ack["type"] == "ack", ack

    stored = messages(client, auth, conversation_of(client, auth, "web", "v1")["id"])
    (mine,) = [m for m in stored if m["id"] == int(ack["id"])]
    (shown,) = mine["attachments"]
    assert shown["url"] == attachment["url"] and shown["kind"] == "image"
    assert shown["mime_type"] == "image/png"


def test_a_pdf_is_a_file_attachment(client: TestClient) -> None:
    r = upload(client, b"%PDF-1.4\n%\xe2\xe3\n1 0 obj<<>>endobj\n", "application/pdf", "a.pdf")
    assert r.status_code == 201, r.text
    assert r.json()["kind"] == "file" and r.json()["name"] == "a.pdf"


def test_an_upload_over_the_limit_is_refused_with_413(make_hub: MakeHub) -> None:
    client, _ = make_hub(channels=[{"name": "web", "type": "web", "upload_max_bytes": 100}])
    r = upload(client, PNG + b"\x00" * 100, "image/png")
    assert r.status_code == 413, r.text
    assert "100" in r.text


@pytest.mark.parametrize(
    ("data", "mime_type"),
    [
        (b"just some text, renamed to .png", "image/png"),  # the bytes are not a PNG
        (b"hello", "text/plain"),  # the type is not accepted
        (PNG, "image/svg+xml"),
    ],
)
def test_a_file_of_another_type_is_refused_with_415(
    client: TestClient, data: bytes, mime_type: str
) -> None:
    r = upload(client, data, mime_type, name="notes.png")
    assert r.status_code == 415, r.text
    assert "image/png" in r.text and "application/pdf" in r.text  # says what is accepted


@pytest.mark.parametrize(
    ("params", "data", "headers"),
    [
        ({"visitor": "v1"}, b"", {"content-type": "image/png"}),  # no file
        ({"visitor": "v1"}, PNG, {}),  # no type
        ({}, PNG, {"content-type": "image/png"}),  # no visitor
        ({"visitor": "bad id!"}, PNG, {"content-type": "image/png"}),
    ],
)
def test_a_bad_upload_is_refused_with_400(
    client: TestClient, params: dict, data: bytes, headers: dict
) -> None:
    r = client.post(UPLOAD, params=params, content=data, headers=headers)
    assert r.status_code == 400, r.text


def test_another_web_instance_uploads_at_its_own_path(make_hub: MakeHub) -> None:
    client, _ = make_hub(channels=[{"name": "shop", "type": "web"}])
    r = client.post(
        "/channels/web/shop/upload",
        params={"visitor": "s1"},
        content=PNG,
        headers={"content-type": "image/png"},
    )
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    "attachments",
    [
        [{"url": "https://evil.example/x.png", "kind": "image"}],  # not one of ours
        [{"url": "javascript:alert(1)", "kind": "file"}],
        [{"url": "/media/k/a.png", "kind": "video"}],
        [{"url": "/media/k/a.png", "kind": "image"}] * 6,  # too many
        "not a list",
    ],
)
def test_a_bad_attachment_gets_an_error_frame(client: TestClient, attachments: Any) -> None:
    with client.websocket_connect(f"{WS}?visitor=v1") as ws:
        hello(ws)
        ws.send_json(
            {"type": "message", "client_id": "c-0", "text": "", "attachments": attachments}
        )
        error = receive(ws)
        assert error["type"] == "error" and "attachments" in error["error"], error
        _, bot = send_message(ws, "hello", "c-1")
        assert bot["sender"] == "bot"
