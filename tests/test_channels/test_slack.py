"""The Slack channel, driven from outside as Slack drives it: requests signed as Slack signs
them, the Events API vectors from bolt-python's own tests (tests/fixtures/slack/), interaction
payloads for button clicks, and a local fake of the Web API (fake_slack.py) that records what
the hub posts and fails on demand."""

from __future__ import annotations

import asyncio
import copy
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import slack_sdk.signature
from fastapi import FastAPI
from fastapi.testclient import TestClient
from slack_sdk.signature import SignatureVerifier

from channels.base import ChannelConfigError, DeliveryError
from channels.slack import (
    SECTION_LIMIT,
    Place,
    SeenEvents,
    SlackChannel,
    plain_text,
    render,
    to_mrkdwn,
)
from hub.messages import Attachment, Button, Event, Inbound, Kind, Outbound, Sender, utcnow
from hub.ports import Unavailable
from tests.test_channels.conftest import MakeHub
from tests.test_channels.fake_slack import (
    APP_TOKEN,
    BOT_TOKEN,
    IDENTITY,
    Answer,
    FakeSlack,
    error,
    fake_slack,
    ratelimited,
    server_error,
    slow,
)
from tests.test_channels.kit_slack import (
    KIT,
    SIGNING_SECRET,
    body_of,
    dm_event,
    events_path,
    signature,
    signed,
)
from tests.test_channels.kits import Request
from tests.test_channels.support import conversations, messages, wait_for

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "slack"
NAME = "shop-slack"
PATH = events_path(NAME)
BOT_USER = str(IDENTITY["user_id"])  # the bot's own user id, as auth.test tells it
MENTION = f"<@{BOT_USER}>"


def vector(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / "events" / f"{name}.json").read_text())


def vector_bytes(name: str) -> bytes:
    """A vector exactly as stored, to sign and send byte for byte."""
    return (FIXTURES / "events" / f"{name}.json").read_bytes()


# What the hub does with each vector as Slack sends it (the manifest says what each is).
EXPECTED = {
    "test_events_url_verification__event_body": "answered: challenge",
    "test_events_ignore_self__self_event": "ignored: our own reaction (bolt's self filter)",
    "test_events_ignore_self__response_url_message_event": "ignored: our own bot's message",
    "test_events_ignore_self__different_app_response_url_message_event": "ignored: a bot",
    "test_message_bot__bot_message_event_payload": "ignored: a bot (bot_id, no subtype)",
    "test_message_bot__classic_bot_message_event_payload": "ignored: a bot (bot_message)",
    "test_message_bot__user_message_event_payload": "ignored: a channel message not to the bot",
    "test_message_changed__event_payload": "handled: edits the stored message",
    "test_message_deleted__event_payload": "handled: marks the stored message deleted",
    "test_message_file_share__event_payload": "ignored: a channel message not to the bot",
    "test_message_thread_broadcast__event_payload": "handled once its thread is a conversation",
}
BOTS = [name for name, outcome in EXPECTED.items() if outcome.startswith("ignored: our own")] + [
    name for name, outcome in EXPECTED.items() if outcome.startswith("ignored: a bot")
]


def test_the_manifest_describes_the_vectors_and_each_has_an_expectation() -> None:
    manifest = json.loads((FIXTURES / "events" / "manifest.json").read_text())
    assert sorted(Path(item["file"]).stem for item in manifest) == sorted(EXPECTED)
    for item in manifest:
        body = json.loads((FIXTURES / item["file"]).read_text())
        event = body.get("event") or {}
        assert body["type"] == item["type"] and body.get("event_id") == item["event_id"]
        assert event.get("type") == item["event_type"]
        assert event.get("subtype") == item["subtype"]
        assert event.get("bot_id") == item["bot_id"]


# ---- a hub with the Slack channel, and Slack's side of it ---------------------------------


@dataclass
class Slack:
    """The hub under test (client, agent auth) and the fake Slack it talks to."""

    client: TestClient
    auth: dict[str, str]
    api: FakeSlack

    def post(self, payload: dict[str, Any] | bytes, **headers: str) -> Any:
        body = payload if isinstance(payload, bytes) else body_of(payload)
        return self.send(signed(PATH, body, headers=headers))

    def click(self, payload: dict[str, Any]) -> Any:
        """An interaction as Slack posts it: form-encoded `payload=<json>`, signed."""
        body = f"payload={quote(json.dumps(payload))}".encode()
        return self.send(signed(PATH, body, content_type="application/x-www-form-urlencoded"))

    def send(self, request: Request) -> Any:
        return self.client.request(
            request.method, request.path, headers=request.headers, content=request.body
        )

    def drain(self) -> None:
        hub = self.client.app.state.hub  # type: ignore[attr-defined]
        self.client.portal.call(hub.outbox.drain)  # type: ignore[union-attr]

    def conversations(self) -> list[dict[str, Any]]:
        return conversations(self.client, self.auth, channel=NAME)

    def conversation(self, sender_id: str) -> dict[str, Any]:
        found = [c for c in self.conversations() if c["contact"]["external_id"] == sender_id]
        assert len(found) == 1, (sender_id, [c["contact"] for c in self.conversations()])
        return found[0]

    def messages(self, sender_id: str) -> list[dict[str, Any]]:
        return messages(self.client, self.auth, self.conversation(sender_id)["id"])

    def customer_texts(self, sender_id: str) -> list[str]:
        return [m["text"] for m in self.messages(sender_id) if m["direction"] == "in"]

    def stored(self, channel_message_id: str) -> Any:
        hub = self.client.app.state.hub  # type: ignore[attr-defined]
        return self.client.portal.call(  # type: ignore[union-attr]
            hub.store.find_inbound, NAME, channel_message_id
        )


@pytest.fixture
def api() -> Iterator[FakeSlack]:
    with fake_slack() as fake:
        fake.add_user("U-mei", "Mei", "Mei Chen")
        yield fake


@pytest.fixture
def slack(api: FakeSlack, make_hub: MakeHub) -> Slack:
    # `api` first: fixtures are torn down in reverse, so the hub stops before its Slack does
    # (a Socket Mode client would otherwise reconnect to a server going away)
    client, auth = make_hub(channels=[{"name": NAME, "type": "slack", **KIT.options(api.base)}])
    return Slack(client, auth, api)


def dm(text: str, message_id: str, user: str = "U-mei", channel: str = "D111") -> dict[str, Any]:
    """A direct message from `user` in the DM channel `channel`."""
    body = dm_event(channel, text, message_id)
    body["event"]["user"] = user
    return body


def channel_event(
    kind: str,
    text: str,
    ts: str,
    *,
    channel: str = "C111",
    thread_ts: str | None = None,
    user: str = "U-mei",
    event_id: str | None = None,
) -> dict[str, Any]:
    """An app_mention or a channel `message` event (message.channels)."""
    event: dict[str, Any] = {
        "type": kind,
        "text": text,
        "user": user,
        "ts": ts,
        "team": "T111",
        "channel": channel,
        "event_ts": ts,
    }
    if kind == "message":
        event["channel_type"] = "channel"
    if thread_ts:
        event["thread_ts"] = thread_ts
    return {
        "token": "verification-token",
        "team_id": "T111",
        "api_app_id": "A111",
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev-{kind}-{ts}",
        "event_time": 1700000000,
    }


def block_actions(
    button: dict[str, Any], channel: str, message_ts: str, thread_ts: str | None = None
) -> dict[str, Any]:
    """Slack's interaction payload for a click on `button` (an element of our blocks)."""
    container: dict[str, Any] = {
        "type": "message",
        "message_ts": message_ts,
        "channel_id": channel,
        "is_ephemeral": False,
    }
    message: dict[str, Any] = {"type": "message", "ts": message_ts, "bot_id": "BZYBOTHED"}
    if thread_ts:
        container["thread_ts"] = message["thread_ts"] = thread_ts
    return {
        "type": "block_actions",
        "user": {"id": "U-mei", "username": "mei", "name": "mei", "team_id": "T111"},
        "api_app_id": "A111",
        "token": "verification-token",
        "container": container,
        "trigger_id": "111.222.abc",
        "team": {"id": "T111", "domain": "shop"},
        "channel": {"id": channel, "name": "support"},
        "message": message,
        "response_url": "https://hooks.slack.com/actions/T111/1/abc",
        "actions": [
            {
                "action_id": button["action_id"],
                "block_id": "b1",
                "text": button["text"],
                "value": button["value"],
                "type": "button",
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }


def buttons_of(post: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in post.get("blocks") or [] if b["type"] == "actions" for e in b["elements"]]


# ---- verification: signature, clock, url_verification -------------------------------------


def test_the_signing_helper_matches_slacks_documented_example() -> None:
    example = json.loads((FIXTURES / "signing_example.json").read_text())
    got = signature(
        example["signing_secret"],
        example["X-Slack-Request-Timestamp"],
        example["raw_body"].encode(),
    )
    assert got == example["expected_X-Slack-Signature"]


SIGNING_EXAMPLE = json.loads((FIXTURES / "signing_example.json").read_text())


def example_case(case: str) -> tuple[int, str]:
    """The example's negative cases as (seconds after its timestamp, text added to its body):
    "clock=ts+301" and "body+'------'"."""
    if case.startswith("clock=ts+"):
        return int(case.removeprefix("clock=ts+")), ""
    return 0, case.removeprefix("body+").strip("'")


@pytest.mark.parametrize("case", sorted(SIGNING_EXAMPLE["negative"]))
def test_the_documented_example_through_the_hub(
    api: FakeSlack, make_hub: MakeHub, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    """Slack's example request (a slash command), verbatim, with the example's cases: bolt's
    check in front of our endpoint accepts it up to 300 s after its timestamp and refuses it
    a second later or with a changed body. (Accepted, it reaches bolt's router, which has no
    slash command listener: 404. Not a 401 is what matters.)"""
    example = SIGNING_EXAMPLE
    offset, suffix = example_case(case)
    verdict = example["negative"][case].split()[0]
    sent_at = int(example["X-Slack-Request-Timestamp"])
    options = {**KIT.options(api.base), "signing_secret": example["signing_secret"]}
    client, _ = make_hub(channels=[{"name": NAME, "type": "slack", **options}])
    monkeypatch.setattr(slack_sdk.signature.Clock, "now", lambda self: sent_at + offset)
    response = client.post(
        PATH,
        content=(example["raw_body"] + suffix).encode(),
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "x-slack-request-timestamp": example["X-Slack-Request-Timestamp"],
            "x-slack-signature": example["expected_X-Slack-Signature"],
        },
    )
    assert response.status_code == (404 if verdict == "valid" else 401), response.text


def test_the_verifier_bolt_uses_agrees_with_the_example() -> None:
    example = json.loads((FIXTURES / "signing_example.json").read_text())
    ts, body, sig = (
        example["X-Slack-Request-Timestamp"],
        example["raw_body"],
        example["expected_X-Slack-Signature"],
    )

    class Clock(slack_sdk.signature.Clock):
        def __init__(self, now: float) -> None:
            self._now = now

        def now(self) -> float:
            return self._now

    def verifier(offset: int) -> SignatureVerifier:
        return SignatureVerifier(example["signing_secret"], clock=Clock(int(ts) + offset))

    assert verifier(300).is_valid(body, ts, sig)
    assert not verifier(301).is_valid(body, ts, sig)
    assert not verifier(0).is_valid(body + "------", ts, sig)


def test_url_verification_is_answered(slack: Slack) -> None:
    body = vector_bytes("test_events_url_verification__event_body")
    response = slack.post(body)
    assert response.status_code == 200, response.text
    assert response.json() == {"challenge": json.loads(body)["challenge"]}


def test_a_forged_signature_is_refused_and_nothing_is_stored(slack: Slack) -> None:
    body = body_of(dm("hello", "forged"))
    response = slack.send(signed(PATH, body, secret="someone-elses-secret"))
    assert response.status_code == 401
    unsigned = slack.client.post(PATH, content=body)
    assert unsigned.status_code == 401
    slack.drain()
    assert slack.conversations() == [] and slack.api.posts() == []


def test_a_stale_timestamp_is_refused_a_fresh_one_accepted(slack: Slack) -> None:
    stale = signed(PATH, body_of(dm("hello", "old")), timestamp=int(time.time()) - 310)
    assert slack.send(stale).status_code == 401
    slack.drain()
    assert slack.conversations() == []
    recent = signed(PATH, body_of(dm("hello", "recent")), timestamp=int(time.time()) - 290)
    assert slack.send(recent).status_code == 200
    assert slack.customer_texts("T111:D111") == ["hello"]


def test_bad_input_is_a_4xx_never_a_500(slack: Slack) -> None:
    now = str(int(time.time()))
    garbage = {"x-slack-request-timestamp": "soon", "x-slack-signature": "v0=00"}
    assert slack.client.post(PATH, content=b"{}", headers=garbage).status_code == 401
    unsigned = {"x-slack-request-timestamp": now, "x-slack-signature": "v0=00"}
    assert slack.client.post(PATH, content=b"{not json", headers=unsigned).status_code == 401
    signed_garbage = slack.send(signed(PATH, b"{not json"))
    assert signed_garbage.status_code == 400, signed_garbage.text
    assert slack.send(signed(PATH, b"\xff\xfe{")).status_code in (400, 401)


def test_a_signed_event_callback_whose_event_is_null_is_400(slack: Slack) -> None:
    """Found by fuzzing (test_fuzz_parsers.py): bolt's middleware raised on it, bolt answered
    500 (and Slack would have retried it)."""
    body = dm("hello", "null-event")
    body["event"] = None
    response = slack.send(signed(PATH, body_of(body)))
    assert response.status_code == 400, response.text
    slack.drain()
    assert slack.conversations() == [] and slack.api.posts() == []


def test_socket_mode_without_a_signing_secret_refuses_http(
    api: FakeSlack, make_hub: MakeHub
) -> None:
    options = {"bot_token": BOT_TOKEN, "app_token": APP_TOKEN, "api_base": api.base}
    client, _ = make_hub(channels=[{"name": NAME, "type": "slack", **options}])
    body = body_of(dm("hello", "no-secret"))
    request = signed(PATH, body, secret="")  # what an empty secret would accept
    assert client.post(PATH, content=body, headers=request.headers).status_code == 401


@pytest.mark.parametrize(
    ("options", "missing"),
    [
        ({"signing_secret": SIGNING_SECRET}, "bot_token"),
        ({"bot_token": BOT_TOKEN}, "signing_secret"),
    ],
)
async def test_a_half_configured_channel_does_not_start(
    options: dict[str, str], missing: str
) -> None:
    channel = SlackChannel(NAME, options, GatedReceiver())  # config checks may build it
    with pytest.raises(ChannelConfigError, match=missing) as raised:
        await channel.start()
    assert NAME in str(raised.value)


# ---- acknowledge first, work after --------------------------------------------------------


class GatedReceiver:
    """A hub whose bot takes as long as the test says: receive() waits for `release`."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.received: list[Inbound] = []
        self.called = asyncio.Event()

    async def receive(self, inbound: Inbound, on_stored: Any = None) -> list[Outbound]:
        self.called.set()
        if on_stored is not None:  # as the hub: stored first, then the bot's turn
            await on_stored(1)
        await self.release.wait()
        self.received.append(inbound)
        return []

    async def history(self, channel: str, sender_id: str, after_id: int) -> list[Outbound]:
        return []

    async def current_conversation(self, channel: str, sender_id: str) -> int | None:
        return None

    async def publish(self, event: Event) -> None:
        pass

    async def edit(self, channel: str, channel_message_id: str, text: str) -> bool:
        return False

    async def delete(self, channel: str, channel_message_id: str) -> bool:
        return False

    async def save_media(
        self, data: bytes, *, name: str | None = None, mime_type: str | None = None
    ) -> str:
        return "/media/x"


async def test_slack_gets_its_answer_before_the_bot_has_answered(api: FakeSlack) -> None:
    """The HTTP response is complete once the message is stored, while the bot is still busy
    (Slack waits 3 s at most): the ASGI app is driven directly, with a bot that answers only
    when the test lets it."""
    receiver = GatedReceiver()
    channel = SlackChannel(NAME, KIT.options(api.base), receiver)
    app = FastAPI()
    app.include_router(channel.router())
    request = signed(PATH, body_of(dm("hello", "slow-bot")))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "path": PATH,
        "raw_path": PATH.encode(),
        "root_path": "",
        "scheme": "http",
        "query_string": b"",
        "headers": [(k.encode(), v.encode()) for k, v in request.headers.items()],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    chunks = [{"type": "http.request", "body": request.body, "more_body": False}]
    sent: list[dict[str, Any]] = []
    answered = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if chunks:
            return chunks.pop(0)
        await asyncio.Event().wait()  # no disconnect while the app works
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            answered.set()

    started = time.monotonic()
    task = asyncio.create_task(app(scope, receive, send))
    await asyncio.wait_for(answered.wait(), 3)  # Slack's patience
    assert sent[0]["status"] == 200
    assert time.monotonic() - started < 1.0
    await asyncio.wait_for(receiver.called.wait(), 3)  # the work starts after the answer...
    assert receiver.received == []  # ...and the bot is still busy
    receiver.release.set()
    await asyncio.wait_for(task, 5)
    [inbound] = receiver.received
    assert inbound.text == "hello" and inbound.sender_id == "T111:D111"
    assert inbound.sender_name == "Mei"  # users.info, from the fake


# ---- Slack's retries ------------------------------------------------------------------------


def test_a_retry_of_the_same_event_is_dropped(slack: Slack) -> None:
    body = body_of(dm("hello", "retried"))
    assert slack.post(body).status_code == 200
    slack.drain()
    for attempt in ("1", "2"):
        again = slack.post(body, **{"X-Slack-Retry-Num": attempt, "X-Slack-Retry-Reason": "x"})
        assert again.status_code == 200 and again.content == b""
    slack.drain()
    assert slack.customer_texts("T111:D111") == ["hello"]
    assert len(slack.api.posts("D111")) == 1


def test_an_event_the_hub_cannot_store_gets_503_and_its_retry_is_taken(
    slack: Slack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database is down: Slack must not get its 200 (it would never deliver the event
    again); its retry, once the database is back, is stored and answered once."""
    hub = slack.client.app.state.hub  # type: ignore[attr-defined]
    real = hub.store.record_inbound

    async def database_down(*args: Any, **kwargs: Any) -> Any:
        raise Unavailable("database unavailable: ConnectionRefusedError")

    monkeypatch.setattr(hub.store, "record_inbound", database_down)
    body = body_of(dm("is my parcel lost?", "db-down"))
    refused = slack.post(body)
    assert refused.status_code == 503 and refused.headers["retry-after"]
    slack.drain()
    assert slack.api.posts("D111") == []
    monkeypatch.setattr(hub.store, "record_inbound", real)
    retry = slack.post(body, **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_error"})
    assert retry.status_code == 200
    slack.drain()
    assert slack.customer_texts("T111:D111") == ["is my parcel lost?"]
    assert len(slack.api.posts("D111")) == 1


USERS_INFO_FAILURES = {
    "HTTP 500": server_error(500),
    "JSON that isn't": Answer(200, text='{"ok": true, "user": {', content_type="application/json"),
    "no user": Answer(200, {"ok": True}),
    "a user that is no object": Answer(200, {"ok": True, "user": "U-mei"}),
    "a name that is no text": Answer(200, {"ok": True, "user": {"profile": {"display_name": 7}}}),
    "ratelimited": ratelimited(30),
}


@pytest.mark.parametrize("answer", USERS_INFO_FAILURES.values(), ids=USERS_INFO_FAILURES.keys())
def test_a_failing_users_info_never_costs_the_message(
    slack: Slack, answer: Answer, caplog: pytest.LogCaptureFixture
) -> None:
    """The sender's name is optional: whatever users.info answers, the message is stored
    (without the name), answered, and the failure logged."""
    slack.api.answer_next("users.info", answer)

    assert slack.post(dm("where is my parcel?", "no-name")).status_code == 200
    slack.drain()

    assert slack.customer_texts("T111:D111") == ["where is my parcel?"]
    assert slack.conversation("T111:D111")["contact"]["name"] != "Mei"
    assert len(slack.api.posts("D111")) == 1
    if "display_name" not in str(answer.body):  # (a name that is no text: just no name)
        assert "users.info U-mei failed" in caplog.text


def test_a_file_that_cannot_be_kept_for_any_reason_leaves_the_message_stored(
    slack: Slack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub's disk is full (an OSError, not one the channel knew of): the text is kept,
    with why the file is missing, and answered."""
    url = slack.api.add_file("label.png", b"\x89PNG label")
    hub = slack.client.app.state.hub  # type: ignore[attr-defined]

    def disk_full(*args: Any) -> str:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(hub.media, "save", disk_full)
    body = dm("here is the label", "disk-full")
    body["event"]["subtype"] = "file_share"
    body["event"]["files"] = [
        {"id": "F1", "name": "label.png", "mimetype": "image/png", "url_private": url},
        "not a file",
    ]

    assert slack.post(body).status_code == 200
    slack.drain()

    [message] = [m for m in slack.messages("T111:D111") if m["direction"] == "in"]
    assert message["text"] == "here is the label" and message["attachments"] == []
    event = body["event"]
    problems = slack.stored(f"{event['channel']}:{event['ts']}").payload["slack"]["files_not_saved"]
    assert "No space left on device" in problems[0]
    assert len(slack.api.posts("D111")) == 1


def test_an_event_whose_handling_fails_before_it_is_stored_is_redelivered_and_kept(
    slack: Slack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a 200 for a message the hub did not keep: Slack's retry of it is taken."""
    hub = slack.client.app.state.hub  # type: ignore[attr-defined]
    real = hub.store.record_inbound

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug on the way to the database")

    monkeypatch.setattr(hub.store, "record_inbound", broken)
    body = body_of(dm("I was charged twice", "fails-once"))
    failed = slack.post(body)
    monkeypatch.setattr(hub.store, "record_inbound", real)
    retry = slack.post(body, **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_error"})
    slack.drain()

    assert failed.status_code == 500, failed.text
    assert retry.status_code == 200
    assert slack.customer_texts("T111:D111") == ["I was charged twice"]
    assert len(slack.api.posts("D111")) == 1


def test_a_lone_surrogate_in_the_text_is_stored_as_a_replacement_character(slack: Slack) -> None:
    """JSON may escape half of a UTF-16 pair ("\\udfff"); Slack's body is read with json.loads,
    which keeps it, and no database stores it as text: the message is kept and answered, that
    character replaced (found by fuzzing)."""
    assert slack.post(dm("hello \udfff there \ud83d\ude00", "surrogate")).status_code == 200
    slack.drain()
    assert slack.customer_texts("T111:D111") == ["hello \ufffd there \U0001f600"]
    assert len(slack.api.posts("D111")) == 1


def test_a_message_without_a_channel_is_acknowledged_and_ignored(
    slack: Slack, caplog: pytest.LogCaptureFixture
) -> None:
    """Nowhere to answer it: not stored, and no reply left failing in the outbox (found by
    fuzzing)."""
    assert slack.post(dm("hello", "no-channel", channel="")).status_code == 200
    slack.drain()
    assert slack.conversations() == []
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_the_same_message_under_a_new_event_id_is_still_stored_once(slack: Slack) -> None:
    """Another process (or a restart) doesn't share the event ids seen: the pipeline's dedupe
    on the message's channel and ts is the second line."""
    first = dm("hello", "twice")
    second = copy.deepcopy(first)
    second["event_id"] = "Ev-another-delivery"
    slack.post(first)
    slack.post(second)
    slack.drain()
    assert slack.customer_texts("T111:D111") == ["hello"]
    assert len(slack.api.posts("D111")) == 1


def test_seen_events_forget_after_their_ttl() -> None:
    seen = SeenEvents(ttl=0.05, limit=3)
    assert seen.first_time("Ev1") and not seen.first_time("Ev1")
    time.sleep(0.06)
    assert seen.first_time("Ev1")
    for i in range(5):
        seen.first_time(f"Ev-x{i}")
    assert len(seen._expiry) <= 3
    assert seen.first_time(None) and seen.first_time(None)


# ---- what is ignored --------------------------------------------------------------------------


def as_dm_to_the_bot(body: dict[str, Any]) -> dict[str, Any]:
    """The vector moved to a DM and addressed to the bot: only the sender can be the reason
    it is ignored."""
    body = copy.deepcopy(body)
    event = body["event"]
    if event["type"] == "message":
        event["channel"], event["channel_type"] = "D111", "im"
        event["text"] = f"{MENTION} {event.get('text', '')}"
    body["event_id"] = body["event_id"] + "-dm"
    return body


@pytest.mark.parametrize("name", BOTS)
def test_bot_and_self_events_are_ignored(slack: Slack, name: str) -> None:
    as_sent = slack.post(vector_bytes(name))
    in_a_dm = slack.post(as_dm_to_the_bot(vector(name)))
    assert as_sent.status_code == 200 and in_a_dm.status_code == 200
    slack.drain()
    assert slack.conversations() == [], EXPECTED[name]
    assert slack.api.posts() == []


def test_a_channel_message_not_addressed_to_the_bot_is_ignored(slack: Slack) -> None:
    for name in (
        "test_message_bot__user_message_event_payload",
        "test_message_file_share__event_payload",
        "test_message_thread_broadcast__event_payload",  # a thread the bot isn't in
    ):
        assert slack.post(vector_bytes(name)).status_code == 200
    slack.drain()
    assert slack.conversations() == []
    assert slack.api.posts() == [] and slack.api.calls_to("files") == []


# ---- direct messages and channels ----------------------------------------------------------------


def test_a_dm_is_answered_in_the_dm(slack: Slack) -> None:
    slack.post(dm("hello", "dm-1"))
    slack.drain()
    conversation = slack.conversation("T111:D111")
    assert conversation["contact"]["name"] == "Mei"  # users.info's display name
    [post] = slack.api.posts("D111")
    assert post["text"].startswith("Hello!") and "thread_ts" not in post
    assert slack.api.calls_to("chat.postMessage")[0].token == BOT_TOKEN


def test_the_user_message_vector_as_a_dm_is_answered(slack: Slack) -> None:
    body = as_dm_to_the_bot(vector("test_message_bot__user_message_event_payload"))
    body["event"]["text"] = "hello"
    slack.post(body)
    slack.drain()
    assert slack.customer_texts("T111:D111") == ["hello"]
    assert slack.api.texts_to("D111")[0].startswith("Hello!")


def test_a_mention_in_a_channel_is_answered_in_its_thread(slack: Slack) -> None:
    ts = "1700000001.000100"
    slack.post(channel_event("app_mention", f"{MENTION} hello", ts))
    slack.drain()
    assert slack.customer_texts(f"T111:C111:{ts}") == ["hello"]  # the mention is not text
    [post] = slack.api.posts("C111")
    assert post["thread_ts"] == ts and post["text"].startswith("Hello!")


def test_one_conversation_per_thread(slack: Slack) -> None:
    root, other = "1633663824.000500", "1700000002.000100"
    slack.post(channel_event("app_mention", f"{MENTION} hello", root))
    # the same message also arrives as message.channels: a mention, left to app_mention
    slack.post(channel_event("message", f"{MENTION} hello", root))
    # in the thread, no mention needed
    slack.post(channel_event("message", "thanks", "1633663900.000100", thread_ts=root))
    # the vector: a reply in that thread, also sent to the channel
    slack.post(vector("test_message_thread_broadcast__event_payload"))
    # a new mention at the top of the channel: a new conversation
    slack.post(channel_event("app_mention", f"{MENTION} hi again", other))
    # not addressed to the bot, in no thread of its own
    slack.post(channel_event("message", "lunch?", "1700000003.000100"))
    slack.drain()

    thread = f"T111:C111:{root}"
    assert slack.customer_texts(thread) == ["hello", "thanks", "Hi there!"]
    assert slack.customer_texts(f"T111:C111:{other}") == ["hi again"]
    assert len(slack.conversations()) == 2
    assert {p["thread_ts"] for p in slack.api.posts("C111")} == {root, other}


# ---- buttons ----------------------------------------------------------------------------------


def test_buttons_are_block_kit_and_a_click_is_a_postback(slack: Slack) -> None:
    slack.post(dm("hello", "menu"))
    slack.drain()
    [post] = slack.api.posts("D111")
    kinds = [b["type"] for b in post["blocks"]]
    assert kinds == ["section", "actions"], kinds
    assert post["blocks"][0]["text"]["text"].startswith("Hello!")
    human = next(b for b in buttons_of(post) if b["value"] == "/human")
    assert human["text"]["text"] == "Talk to a human"

    response = slack.click(block_actions(human, "D111", "1700000010.000100"))
    assert response.status_code == 200, response.text
    slack.drain()

    conversation = slack.conversation("T111:D111")
    assert conversation["status"] == "pending"
    assert slack.customer_texts("T111:D111") == ["hello", "Talk to a human"]
    assert len(slack.conversations()) == 1  # the same conversation


def test_a_click_in_a_thread_stays_in_the_thread(slack: Slack) -> None:
    root = "1700000020.000100"
    slack.post(channel_event("app_mention", f"{MENTION} hello", root))
    slack.drain()
    [post] = slack.api.posts("C111")
    human = next(b for b in buttons_of(post) if b["value"] == "/human")

    slack.click(block_actions(human, "C111", "1700000021.000100", thread_ts=root))
    slack.drain()

    assert slack.conversation(f"T111:C111:{root}")["status"] == "pending"
    assert len(slack.conversations()) == 1
    assert all(p["thread_ts"] == root for p in slack.api.posts("C111"))


# ---- edits, deletions, files ---------------------------------------------------------------


def test_message_changed_edits_the_stored_text(slack: Slack) -> None:
    edit = vector("test_message_changed__event_payload")
    original_ts = edit["event"]["previous_message"]["ts"]
    slack.post(channel_event("app_mention", f"{MENTION} original message", original_ts))
    slack.drain()
    assert slack.customer_texts(f"T111:C111:{original_ts}") == ["original message"]

    assert slack.post(vector_bytes("test_message_changed__event_payload")).status_code == 200

    assert slack.customer_texts(f"T111:C111:{original_ts}") == ["updated message"]
    message = slack.stored(f"C111:{original_ts}")
    assert message.payload["original_text"] == "original message"


def test_message_deleted_marks_the_stored_message(slack: Slack) -> None:
    deleted_ts = vector("test_message_deleted__event_payload")["event"]["deleted_ts"]
    slack.post(channel_event("app_mention", f"{MENTION} Delete this message", deleted_ts))
    slack.drain()
    assert slack.post(vector_bytes("test_message_deleted__event_payload")).status_code == 200
    assert slack.stored(f"C111:{deleted_ts}").payload["deleted"] is True


def test_a_shared_file_is_fetched_with_the_bot_token_and_stored(slack: Slack) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"pixels" * 100
    url = slack.api.add_file("file.png", png)
    body = as_dm_to_the_bot(vector("test_message_file_share__event_payload"))
    [file] = body["event"]["files"]
    file["url_private"] = file["url_private_download"] = url
    body["event"]["text"] = "Hi there!"

    assert slack.post(body).status_code == 200
    slack.drain()

    [fetch] = slack.api.calls_to("files")
    assert fetch.token == BOT_TOKEN
    [message] = [m for m in slack.messages("T111:D111") if m["direction"] == "in"]
    assert message["text"] == "Hi there!" and message["kind"] == "image"
    [attachment] = message["attachments"]
    assert attachment["name"] == "file.png" and attachment["mime_type"] == "image/png"
    assert slack.client.get(attachment["url"]).content == png


def test_a_file_off_slack_never_gets_the_token(slack: Slack) -> None:
    body = dm("look", "offsite")
    body["event"]["subtype"] = "file_share"
    body["event"]["files"] = [
        {
            "id": "F9",
            "name": "x.png",
            "mimetype": "image/png",
            "url_private": "https://evil.example/x",
        }
    ]
    slack.post(body)
    slack.drain()
    message = slack.stored(f"D111:{body['event']['ts']}")
    assert message.text == "look"
    assert "not a Slack URL" in message.payload["slack"]["files_not_saved"][0]


# ---- delivery errors ----------------------------------------------------------------------------


def test_a_429_is_retried_after_retry_after(slack: Slack) -> None:
    slack.api.answer_next("chat.postMessage", ratelimited(retry_after=1))
    slack.post(dm("hello", "limited"))
    slack.drain()
    first, second = slack.api.calls_to("chat.postMessage")
    assert second.at - first.at >= 0.95
    [reply] = [m for m in slack.messages("T111:D111") if m["direction"] == "out"]
    assert reply["delivery"] == "sent"
    assert len(slack.api.posts("D111")) == 1


def test_not_in_channel_fails_with_the_error_visible(slack: Slack) -> None:
    slack.api.answer_next("chat.postMessage", error("not_in_channel"))
    ts = "1700000030.000100"
    slack.post(channel_event("app_mention", f"{MENTION} hello", ts))
    slack.drain()
    [reply] = [m for m in slack.messages(f"T111:C111:{ts}") if m["direction"] == "out"]
    assert reply["delivery"] == "failed"
    assert "not_in_channel" in reply["delivery_error"]
    assert len(slack.api.calls_to("chat.postMessage")) == 1  # not worth a retry


def outbound(text: str = "hi", recipient: str = "T111:D111", **extra: Any) -> Outbound:
    return Outbound(
        message_id=1,
        conversation_id=1,
        channel=NAME,
        recipient_id=recipient,
        sender=Sender.BOT,
        text=text,
        created_at=utcnow(),
        **extra,
    )


@pytest.mark.parametrize(
    ("answer", "retryable", "retry_after", "named"),
    [
        (ratelimited(retry_after=7), True, 7.0, "ratelimited"),
        (server_error(503), True, None, "503"),
        (error("internal_error"), True, None, "internal_error"),
        (slow(3), True, None, "TimeoutError"),
        (error("channel_not_found"), False, None, "channel_not_found"),
        (error("invalid_auth"), False, None, "invalid_auth"),
        (error("not_in_channel"), False, None, "not_in_channel"),
    ],
)
async def test_web_api_errors_as_delivery_errors(
    api: FakeSlack, answer: Any, retryable: bool, retry_after: float | None, named: str
) -> None:
    channel = SlackChannel(NAME, {**KIT.options(api.base), "timeout": 1}, GatedReceiver())
    api.answer_next("chat.postMessage", answer)
    with pytest.raises(DeliveryError) as raised:
        await channel.send(outbound())
    assert raised.value.retryable is retryable
    assert raised.value.retry_after == retry_after
    assert named in str(raised.value)
    await channel.send(outbound())  # and the next one goes through
    assert api.texts_to("D111") == ["hi"]


async def test_a_reply_into_a_thread_and_a_bad_recipient(api: FakeSlack) -> None:
    channel = SlackChannel(NAME, KIT.options(api.base), GatedReceiver())
    await channel.send(outbound("in the thread", "T111:C111:1700000040.000100"))
    [post] = api.posts("C111")
    assert post["thread_ts"] == "1700000040.000100"
    with pytest.raises(DeliveryError) as raised:
        await channel.send(outbound(recipient="no-colon"))
    assert raised.value.retryable is False


# ---- rendering and reading text ------------------------------------------------------------------


def test_render_plain_text_without_blocks() -> None:
    assert render(outbound("**Order** 12 & <b>")) == {"text": "*Order* 12 &amp; &lt;b&gt;"}


def test_render_long_text_buttons_and_images() -> None:
    text = "\n".join(f"line {i} " + "x" * 90 for i in range(80))  # ~7,900 characters
    message = outbound(
        text,
        buttons=tuple(Button(title=f"Option {i}", payload=f'/pick{{"n": {i}}}') for i in range(30)),
        attachments=(
            Attachment(kind=Kind.IMAGE, url="https://cdn.example/p.png", name="parcel"),
            Attachment(kind=Kind.FILE, url="https://cdn.example/invoice.pdf", name="invoice"),
        ),
    )
    rendered = render(message)
    blocks = rendered["blocks"]
    sections = [b for b in blocks if b["type"] == "section"]
    assert len(sections) == 3 and all(len(b["text"]["text"]) <= SECTION_LIMIT for b in sections)
    assert "".join(b["text"]["text"] for b in sections).count("line ") == 80
    assert "<https://cdn.example/invoice.pdf|invoice>" in sections[-1]["text"]["text"]
    assert [b for b in blocks if b["type"] == "image"] == [
        {"type": "image", "image_url": "https://cdn.example/p.png", "alt_text": "parcel"}
    ]
    actions = [b for b in blocks if b["type"] == "actions"]
    assert [len(a["elements"]) for a in actions] == [25, 5]
    values = [e["value"] for a in actions for e in a["elements"]]
    assert values[3] == '/pick{"n": 3}'
    assert len({e["action_id"] for e in actions[0]["elements"]}) == 25
    assert rendered["text"].startswith("line 0")


def test_to_mrkdwn() -> None:
    assert to_mrkdwn("# Returns\nSee [the policy](https://x.example/r?a=1&b=2)") == (
        "*Returns*\nSee <https://x.example/r?a=1&amp;b=2|the policy>"
    )


def test_plain_text_reads_what_the_customer_typed() -> None:
    text = f"{MENTION} where is <https://shop.example/o/1|shop.example/o/1> &amp; <#C1|general> <!here>"
    assert plain_text(text, BOT_USER) == "where is shop.example/o/1 & #general @here"
    assert plain_text("<mailto:a@b.example|a@b.example> &lt;3", None) == "a@b.example <3"
    assert plain_text("<https://x.example|click>", None) == "click (https://x.example)"


def test_place_round_trips() -> None:
    for place in (Place("T1", "D1"), Place("T1", "C1", "1700000000.000100")):
        assert Place.parse(place.sender_id) == place
    with pytest.raises(ValueError):
        Place.parse("T1")


def test_a_channels_threads_share_its_rate_limit() -> None:
    channel = SlackChannel("s", {}, receiver=None)  # type: ignore[arg-type]
    one, two = Place("T1", "C1", "1700000000.000100"), Place("T1", "C1", "1700000000.000200")
    assert channel.rate_bucket(one.sender_id) == channel.rate_bucket(two.sender_id)
    assert channel.rate_bucket(one.sender_id) != channel.rate_bucket(Place("T1", "C2").sender_id)


# ---- Socket Mode ----------------------------------------------------------------------------


def test_socket_mode_connects_to_the_api_base_and_answers(
    api: FakeSlack, make_hub: MakeHub
) -> None:
    """With an app token the hub opens Slack's WebSocket itself (apps.connections.open on
    api_base), acknowledges each envelope, and answers through chat.postMessage."""
    options = {**KIT.options(api.base), "app_token": APP_TOKEN}
    client, auth = make_hub(channels=[{"name": NAME, "type": "slack", **options}])
    wait_for(lambda: api.socket_connected, "the Socket Mode connection")
    [opened] = api.calls_to("apps.connections.open")
    assert opened.token == APP_TOKEN

    api.push(dm("hello", "over-the-socket"), envelope_id="env-1")

    wait_for(lambda: api.texts_to("D111"), "the reply")
    assert {"envelope_id": "env-1"} in api.acks
    assert api.texts_to("D111")[0].startswith("Hello!")
    found = conversations(client, auth, channel=NAME)
    assert [c["contact"]["external_id"] for c in found] == ["T111:D111"]
