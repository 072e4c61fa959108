"""The web widget's WebSocket: /channels/web/ws?visitor=<id>&token=<token> (DESIGN.md section 4),
its uploads, and the public endpoints' rate limits as a visitor meets them."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from hub.ops.ratelimit import MemoryRateLimiter
from hub.ops.settings import Settings
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


def test_hello_names_the_visitor_and_gives_its_token(client: TestClient) -> None:
    with client.websocket_connect(f"{WS}?visitor=v-123") as ws:
        frame = hello(ws)
        assert_silent(ws)  # a first visit needs no token: no error
    assert frame["visitor"] == "v-123"
    assert "conversation_id" in frame
    assert isinstance(frame["token"], str) and len(frame["token"]) >= 32
    with client.websocket_connect(f"{WS}?visitor=v-123") as ws:
        assert hello(ws)["token"] == frame["token"]  # the visitor's own, every time
    with client.websocket_connect(f"{WS}?visitor=v-124") as ws:
        assert hello(ws)["token"] != frame["token"]


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
        token = hello(ws)["token"]
        send_message(ws, "hello", "c-1")
    cid = conversation_of(client, auth, "web", "v1")["id"]

    with client.websocket_connect(f"{WS}?visitor=v1&token={token}") as ws:
        again = hello(ws)
    assert (again["visitor"], again["conversation_id"]) == ("v1", str(cid))


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
        token = hello(ws)["token"]
        first_ack, _ = send_message(ws, "hello", "c-1")
        ws.send_json({"type": "postback", "payload": "/human", "title": "Talk to a human"})
        receive(ws)  # the handoff notice
    cid = conversation_of(client, auth, "web", "v1")["id"]
    # while the widget is closed: a note and a reply
    agent_reply(client, auth, cid, "internal note", private=True)
    agent_reply(client, auth, cid, "Back with you in a minute")
    after = int(first_ack["id"])
    expected = [m for m in messages(client, auth, cid) if not m["private"] and m["id"] > after]

    with client.websocket_connect(f"{WS}?visitor=v1&token={token}") as ws:
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
        token = hello(ws)["token"]
        first, _ = send_message(ws, "hello", "c-1")

    with client.websocket_connect(f"{WS}?visitor=v1&token={token}") as ws:
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


# ---- the token: a visitor id alone is not a secret -------------------------------------------


@pytest.mark.parametrize("token", [None, "", "not-the-token", "another visitor's"])
def test_a_socket_without_the_visitors_token_is_a_new_visitor_and_sees_nothing(
    client: TestClient, auth: dict, token: str | None
) -> None:
    with client.websocket_connect(f"{WS}?visitor=v1") as owner:
        own_token = hello(owner)["token"]
        send_message(owner, "hello", "c-1")
        cid = conversation_of(client, auth, "web", "v1")["id"]
        if token == "another visitor's":
            with client.websocket_connect(f"{WS}?visitor=v2") as other:
                token = hello(other)["token"]  # a real token, but v2's
        query = "" if token is None else f"&token={token}"
        with client.websocket_connect(f"{WS}?visitor=v1{query}") as stranger:
            greeting = hello(stranger)
            assert greeting["visitor"] != "v1" and greeting["conversation_id"] is None
            assert greeting["token"] and greeting["token"] != own_token
            error = receive(stranger)
            assert error["type"] == "error" and "token" in error["error"], error

            stranger.send_json({"type": "resume", "after": "0"})  # no history
            assert_silent(stranger)
            agent_reply(client, auth, cid, "Your parcel goes to 1 Main St")
            assert receive(owner)["text"] == "Your parcel goes to 1 Main St"
            assert_silent(stranger)  # no live message either

            # the new visitor's messages start a conversation of its own
            _, bot = send_message(stranger, "hello", "c-1")
            assert bot["sender"] == "bot"
            assert_silent(owner)
    mine = conversation_of(client, auth, "web", greeting["visitor"])["id"]
    assert mine != cid
    assert [m["text"] for m in messages(client, auth, cid) if m["sender"] == "contact"] == ["hello"]


def test_a_token_proves_its_visitor_on_its_own_web_channel_only(make_hub: MakeHub) -> None:
    client, _ = make_hub(channels=[{"name": "web", "type": "web"}, {"name": "shop", "type": "web"}])
    with client.websocket_connect(f"{WS}?visitor=x1") as ws:
        web_token = hello(ws)["token"]
    with client.websocket_connect("/channels/web/shop/ws?visitor=x1") as ws:
        shop_token = hello(ws)["token"]
        send_message(ws, "hello", "c-1")
    assert web_token != shop_token

    with client.websocket_connect(f"/channels/web/shop/ws?visitor=x1&token={web_token}") as ws:
        assert hello(ws)["visitor"] != "x1"
    with client.websocket_connect(f"/channels/web/shop/ws?visitor=x1&token={shop_token}") as ws:
        assert hello(ws)["visitor"] == "x1"


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
    # json.loads raised RecursionError and ValueError (not JSONDecodeError): a dropped socket
    "nested 20000 deep": ("[" * 20_000 + "]" * 20_000, "nested"),
    "a message nested 20000 deep": (
        '{"type": "message", "text": "hi", "x": ' + "[" * 20_000 + "]" * 20_000 + "}",
        "nested",
    ),
    "a 5000-digit number": ('{"type": "resume", "after": ' + "7" * 5000 + "}", "digits"),
    "a number too large for a float": ('{"type": "resume", "after": 1e999}', "after"),
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


# ---- uploads: POST /channels/web/upload?visitor=<id>&token=<token>&name=<file name>, raw body --

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff\x89\x99"
    b"=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)
UPLOAD = "/channels/web/upload"


def upload(
    client: TestClient,
    data: bytes,
    mime_type: str,
    name: str = "photo.png",
    visitor: str = "v1",
    token: str | None = None,
) -> Any:
    params = {"visitor": visitor, "name": name} | ({"token": token} if token is not None else {})
    return client.post(
        UPLOAD,
        params=params,
        content=data,
        headers={"content-type": mime_type, "origin": "https://shop.example"},
    )


def stored_files(settings: Settings) -> list[Path]:
    return [p for p in (settings.data_dir / "media").rglob("*") if p.is_file()]


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


def test_an_upload_for_a_visitor_with_a_conversation_needs_its_token(
    client: TestClient, auth: dict, settings: Settings
) -> None:
    assert upload(client, PNG, "image/png").status_code == 201  # a first visit: none needed
    with client.websocket_connect(f"{WS}?visitor=v1") as ws:
        token = hello(ws)["token"]
        send_message(ws, "hello", "c-1")
    before = stored_files(settings)

    r = upload(client, PNG, "image/png")
    assert r.status_code == 401, r.text
    assert "token" in r.json()["detail"]
    with client.websocket_connect(f"{WS}?visitor=v2") as ws:
        r = upload(client, PNG, "image/png", token=hello(ws)["token"])  # v2's, not v1's
    assert r.status_code == 403, r.text
    assert "token" in r.json()["detail"]
    assert stored_files(settings) == before  # nothing kept of the refused ones

    r = upload(client, PNG, "image/png", token=token)
    assert r.status_code == 201, r.text
    assert len(stored_files(settings)) == len(before) + 1


def test_an_upload_over_the_hubs_body_limit_within_the_channels_is_taken(
    client: TestClient,
) -> None:
    big = PNG + b"\x00" * 1_500_000  # over max_body_bytes (1 MB), under upload_max_bytes (10 MB)
    r = upload(client, big, "image/png")
    assert r.status_code == 201, r.text
    served = client.get(r.json()["url"])
    assert served.status_code == 200 and len(served.content) == len(big)
    # every other path keeps the hub's limit
    body = json.dumps({"sender": "u1", "message": "x" * 1_100_000})
    assert client.post("/webhooks/rest/webhook", content=body).status_code == 413


def test_a_chunked_upload_over_the_channels_limit_is_cut_off_with_413(make_hub: MakeHub) -> None:
    client, _ = make_hub(channels=[{"name": "web", "type": "web", "upload_max_bytes": 1_200_000}])
    big = PNG + b"\x00" * 1_300_000

    def chunks() -> Any:  # no Content-Length: Transfer-Encoding chunked
        for i in range(0, len(big), 100_000):
            yield big[i : i + 100_000]

    r = client.post(
        UPLOAD, params={"visitor": "v1"}, content=chunks(), headers={"content-type": "image/png"}
    )
    assert r.status_code == 413, r.text
    assert "1200000" in r.text
    assert upload(client, big[:1_100_000], "image/png").status_code == 201


def test_uploads_answer_a_cors_preflight_and_allow_any_origin(client: TestClient) -> None:
    r = client.options(
        UPLOAD,
        headers={
            "origin": "https://shop.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert r.status_code in (200, 204), r.text
    assert r.headers["access-control-allow-origin"] == "*"
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "content-type" in r.headers["access-control-allow-headers"].lower()

    for answer in (upload(client, PNG, "image/png"), upload(client, b"hi", "text/plain")):
        assert answer.headers["access-control-allow-origin"] == "*", answer.status_code


# ---- rate limits (config.yaml `limits:`) -----------------------------------------------------


def test_a_visitor_over_the_message_limit_is_told_to_wait_and_nothing_is_stored(
    make_hub: MakeHub,
) -> None:
    client, auth = make_hub(limits={"widget_messages": {"count": 3, "seconds": 60}})
    with client.websocket_connect(f"{WS}?visitor=v1") as ws:
        hello(ws)
        for i in range(3):
            send_message(ws, "hello", f"c-{i}")
        ws.send_json({"type": "message", "client_id": "c-9", "text": "one too many"})
        refused = receive(ws)
        assert refused["type"] == "error" and "too many messages" in refused["error"], refused
        assert refused["client_id"] == "c-9" and 55 <= refused["retry_after"] <= 60, refused
        ws.send_json({"type": "postback", "payload": "/human", "title": "Talk to a human"})
        pressed = receive(ws)
        assert pressed["type"] == "error" and pressed["payload"] == "/human", pressed
        assert_silent(ws)  # no ack, no answer
        ws.send_json({"type": "resume", "after": "0"})  # other frames still go
        assert receive(ws)["type"] == "message"

    conversation = conversation_of(client, auth, "web", "v1")
    assert conversation["status"] == "bot"  # the button press was not taken
    said = [
        m["text"] for m in messages(client, auth, conversation["id"]) if m["sender"] == "contact"
    ]
    assert said == ["hello"] * 3
    with client.websocket_connect(f"{WS}?visitor=v2") as ws:  # another visitor is not held up
        hello(ws)
        send_message(ws, "hello", "c-1")


def test_a_refused_message_sent_again_after_the_wait_is_taken(make_hub: MakeHub) -> None:
    client, auth = make_hub(limits={"widget_messages": {"count": 1, "seconds": 5}})
    now = [1000.0]
    client.app.state.hub.limits.limiter = MemoryRateLimiter(clock=lambda: now[0])  # type: ignore[attr-defined]
    with client.websocket_connect(f"{WS}?visitor=v1") as ws:
        hello(ws)
        send_message(ws, "hello", "c-1")
        now[0] += 2
        ws.send_json({"type": "message", "client_id": "c-2", "text": "thanks"})
        refused = receive(ws)
        assert refused["retry_after"] == 3, refused
        now[0] += 3  # the widget waits as told, then sends it again
        ws.send_json({"type": "message", "client_id": "c-2", "text": "thanks"})
        ack = receive(ws)
        assert (ack["type"], ack["client_id"]) == ("ack", "c-2"), ack
    stored = messages(client, auth, conversation_of(client, auth, "web", "v1")["id"])
    assert [m["text"] for m in stored if m["sender"] == "contact"] == ["hello", "thanks"]


def test_a_flood_of_frames_of_any_type_is_refused(make_hub: MakeHub) -> None:
    client, _ = make_hub(limits={"widget_frames": {"count": 5, "seconds": 60}})
    with client.websocket_connect(f"{WS}?visitor=v1") as ws:
        hello(ws)
        for _ in range(5):
            ws.send_json({"type": "typing", "on": True})
        assert_silent(ws)
        ws.send_json({"type": "typing", "on": False})
        refused = receive(ws)
        assert "too many frames" in refused["error"] and refused["retry_after"] >= 55, refused
        ws.send_json({"type": "message", "client_id": "c-1", "text": "hello"})
        assert receive(ws)["client_id"] == "c-1"  # refused too (an error, not an ack)
        ws.send_text("[" * 20_000)  # even a bad frame counts
        assert "retry_after" in receive(ws)


def closed_with(ws: WebSocketTestSession) -> int:
    """The code the server closed the socket with (after whatever frames it sent)."""
    with pytest.raises(WebSocketDisconnect) as closed:
        while True:
            ws.receive_json()
    return closed.value.code


def test_a_visitor_may_have_so_many_sockets_open(make_hub: MakeHub) -> None:
    client, _ = make_hub(limits={"widget_sockets": 2})
    with client.websocket_connect(f"{WS}?visitor=v1") as one:
        token = hello(one)["token"]
        with client.websocket_connect(f"{WS}?visitor=v1&token={token}") as two:
            hello(two)
            with client.websocket_connect(f"{WS}?visitor=v1&token={token}") as three:
                error = receive(three)
                assert error["type"] == "error" and "2 sockets open" in error["error"], error
                assert closed_with(three) == 1013  # try again later
            with client.websocket_connect(f"{WS}?visitor=v2") as other:  # per visitor
                hello(other)
        # one closed: there is room again
        with client.websocket_connect(f"{WS}?visitor=v1&token={token}") as again:
            assert hello(again)["visitor"] == "v1"


def test_no_limit_per_address_by_default(make_hub: MakeHub) -> None:
    client, _ = make_hub()
    for i in range(15):  # many visitors behind one NAT
        with client.websocket_connect(f"{WS}?visitor=nat-{i}") as ws:
            hello(ws)
        assert upload(client, PNG, "image/png", visitor=f"nat-{i}").status_code == 201


def test_a_limit_per_address_can_be_set_for_sockets_and_uploads(make_hub: MakeHub) -> None:
    client, _ = make_hub(
        limits={
            "widget_sockets_per_ip": {"count": 2, "seconds": 60},
            "widget_uploads_per_ip": {"count": 2, "seconds": 60},
        }
    )
    for visitor in ("a", "b"):
        with client.websocket_connect(f"{WS}?visitor={visitor}") as ws:
            hello(ws)
        assert upload(client, PNG, "image/png", visitor=visitor).status_code == 201
    with client.websocket_connect(f"{WS}?visitor=c") as ws:
        error = receive(ws)
        assert error["type"] == "error" and 55 <= error["retry_after"] <= 60, error
        assert closed_with(ws) == 1013
    r = upload(client, PNG, "image/png", visitor="c")
    assert r.status_code == 429, r.text
    assert 55 <= int(r.headers["retry-after"]) <= 60


def test_uploads_per_visitor_are_limited_and_nothing_is_kept_beyond(
    make_hub: MakeHub, tmp_path: Path
) -> None:
    client, _ = make_hub(limits={"widget_uploads": {"count": 2, "seconds": 60}})
    for _ in range(2):
        assert upload(client, PNG, "image/png").status_code == 201
    files = [p for p in (tmp_path / "media").rglob("*") if p.is_file()]

    r = upload(client, PNG, "image/png")
    assert r.status_code == 429, r.text
    assert 55 <= int(r.headers["retry-after"]) <= 60
    assert r.json()["retry_after"] == int(r.headers["retry-after"])
    assert "too many uploads" in r.json()["detail"]
    assert r.headers["access-control-allow-origin"] == "*"  # the widget can read it
    assert "retry-after" in r.headers["access-control-expose-headers"].lower()
    assert [p for p in (tmp_path / "media").rglob("*") if p.is_file()] == files
    assert upload(client, PNG, "image/png", visitor="v2").status_code == 201
