"""Rasa-sdk custom actions: a bot's actions.py run in process, and the same file served by a
real `python -m rasa_sdk` action server, give the same slots and messages; every failure is an
ActionError that says what went wrong."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from rasa_sdk.interfaces import Tracker

from flows.actions import (
    ActionError,
    ActionOutcome,
    ActionRequest,
    ActionRunner,
    HttpActions,
    InProcessActions,
    load_actions,
    tracker_state,
)

BOT = Path(__file__).resolve().parents[1] / "fixtures" / "actions"

SHOP_ACTIONS = {
    "lookup_order",
    "greet_customer",
    "slow_sync",
    "slow_async",
    "explode",
    "reject",
    "validate_order_form",
}


def request(
    name: str,
    slots: dict[str, Any] | None = None,
    text: str = "where is 12345678",
    language: str = "en",
    **entities: str,
) -> ActionRequest:
    return ActionRequest(
        name=name,
        sender_id="42",
        slots=slots or {},
        latest_message={
            "text": text,
            "intent": {"name": "check_order", "confidence": 0.93},
            "entities": [
                {"entity": k, "value": v, "start": 0, "end": len(v)} for k, v in entities.items()
            ],
            "intent_ranking": [
                {"name": "check_order", "confidence": 0.93},
                {"name": "greet", "confidence": 0.04},
            ],
        },
        language=language,
    )


# ---- in process ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local() -> InProcessActions:
    return InProcessActions(BOT / "actions.py")


def test_every_action_class_of_the_file_is_offered_by_its_name(local: InProcessActions) -> None:
    # not the abstract helper base class, not FormValidationAction it imports
    assert local.names() == SHOP_ACTIONS
    runner = load_actions(BOT, None)
    assert isinstance(runner, InProcessActions)
    assert runner.names() == SHOP_ACTIONS


async def test_an_async_action_reads_entities_and_sets_slots(local: InProcessActions) -> None:
    outcome = await local.run(request("lookup_order", order_id="87654321"))
    assert outcome.slots == {
        "order_id": "87654321",
        "order_status": "lost",  # two SlotSets of order_status: the later one wins
        "intent_seen": "check_order",
    }
    first, second = outcome.messages
    assert first["text"] == "Order 87654321: lost"
    assert first["buttons"] == [{"title": "Talk to a human", "payload": "/human"}]
    assert second["image"] == "https://example.com/parcel.png"
    assert second["custom"] == {"order": "87654321"}


async def test_slots_are_read_and_the_language_is_in_the_metadata(local: InProcessActions) -> None:
    outcome = await local.run(
        request("lookup_order", slots={"order_id": "12345678"}, text="查订单", language="zh")
    )
    assert outcome.slots["order_status"] == "shipped"
    assert outcome.messages[0]["text"] == "订单 12345678：shipped"


async def test_an_action_does_not_change_the_request(local: InProcessActions) -> None:
    req = request("lookup_order", slots={"order_id": "12345678"})
    await local.run(req)
    assert req.slots == {"order_id": "12345678"}
    assert "metadata" not in req.latest_message


async def test_a_sync_action(local: InProcessActions) -> None:
    outcome = await local.run(request("greet_customer", slots={"name": "Li Lei", "order_id": "1"}))
    assert outcome.slots == {"greeted": True, "slots_in_domain": ["name", "order_id"]}
    hello, menu = outcome.messages
    assert hello["text"] == "Hello Li Lei!"
    assert menu["response"] == "utter_menu"  # a domain response by name, for the caller to resolve


async def test_a_blocking_sync_action_does_not_stall_the_event_loop(
    local: InProcessActions,
) -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        outcome = await local.run(request("slow_sync"))  # time.sleep(0.3) inside
    finally:
        ticker.cancel()
    assert outcome.slots == {"done": True}
    assert ticks >= 10


async def test_an_action_that_raises(local: InProcessActions) -> None:
    with pytest.raises(
        ActionError, match=r"action 'explode' raised ValueError: order database is down"
    ):
        await local.run(request("explode"))


async def test_an_action_that_rejects(local: InProcessActions) -> None:
    with pytest.raises(ActionError, match=r"'reject' rejected execution: cannot handle gift cards"):
        await local.run(request("reject"))


async def test_an_unknown_action_names_what_there_is(local: InProcessActions) -> None:
    with pytest.raises(ActionError) as e:
        await local.run(request("refund_order"))
    assert "unknown action 'refund_order'" in str(e.value)
    assert "lookup_order" in str(e.value)


def test_a_syntax_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "actions.py"
    path.write_text(
        "from rasa_sdk import Action\n\nclass Broken(Action:\n    pass\n", encoding="utf-8"
    )
    with pytest.raises(ActionError) as e:
        load_actions(tmp_path, None)
    assert str(path) in str(e.value)
    assert "SyntaxError" in str(e.value)
    assert "line 3" in str(e.value)


def test_an_import_error_names_the_file_and_the_module(tmp_path: Path) -> None:
    path = tmp_path / "actions.py"
    path.write_text("import kefu_no_such_module\n", encoding="utf-8")
    with pytest.raises(ActionError) as e:
        InProcessActions(path)
    assert str(path) in str(e.value)
    assert "ModuleNotFoundError" in str(e.value)
    assert "kefu_no_such_module" in str(e.value)


def test_an_action_class_without_a_name_is_an_error(tmp_path: Path) -> None:
    # rasa-sdk's action server does not start with such a class either
    path = tmp_path / "actions.py"
    path.write_text(
        "from rasa_sdk import Action\n\nclass Base(Action):\n    pass\n", encoding="utf-8"
    )
    with pytest.raises(ActionError, match=r"Base has no name\(\)"):
        InProcessActions(path)


async def test_a_fixed_file_loads_again(tmp_path: Path) -> None:
    path = tmp_path / "actions.py"
    path.write_text("raise RuntimeError('half written')\n", encoding="utf-8")
    with pytest.raises(ActionError, match="half written"):
        InProcessActions(path)
    path.write_text(
        "from rasa_sdk import Action\n"
        "from rasa_sdk.events import SlotSet\n"
        "class Ping(Action):\n"
        "    def name(self): return 'ping'\n"
        "    def run(self, dispatcher, tracker, domain): return [SlotSet('pong', 1)]\n",
        encoding="utf-8",
    )
    assert await InProcessActions(path).run(request("ping")) == ActionOutcome({"pong": 1}, [])


async def test_a_reload_runs_the_edited_code_even_when_the_size_is_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # with bytecode caching on, Python's loader would run the stale .pyc (same mtime second and size)
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    path = tmp_path / "actions.py"
    code = (
        "from rasa_sdk import Action\n"
        "from rasa_sdk.events import SlotSet\n"
        "class Status(Action):\n"
        "    def name(self): return 'status'\n"
        "    def run(self, dispatcher, tracker, domain): return [SlotSet('s', 'OLD')]\n"
    )
    path.write_text(code, encoding="utf-8")
    old = InProcessActions(path)
    path.write_text(code.replace("OLD", "NEW"), encoding="utf-8")  # same size, same second
    assert (await InProcessActions(path).run(request("status"))).slots == {"s": "NEW"}
    assert (await old.run(request("status"))).slots == {"s": "OLD"}  # the old one still serves
    assert not (tmp_path / "__pycache__").exists()  # nothing written into the bot folder


async def test_a_value_json_cannot_hold_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "actions.py"
    path.write_text(
        "from rasa_sdk import Action\n"
        "from rasa_sdk.events import SlotSet\n"
        "class Odd(Action):\n"
        "    def name(self): return 'odd'\n"
        "    def run(self, dispatcher, tracker, domain): return [SlotSet('when', object())]\n",
        encoding="utf-8",
    )
    with pytest.raises(ActionError, match=r"'odd'.*JSON"):
        await InProcessActions(path).run(request("odd"))


def test_no_actions_file_and_no_endpoint_means_no_actions(tmp_path: Path) -> None:
    assert load_actions(tmp_path, None) is None
    runner = load_actions(tmp_path, "http://localhost:5055/webhook", timeout=3)
    assert isinstance(runner, HttpActions)
    assert runner.names() is None
    with pytest.raises(ActionError, match="not an http"):
        load_actions(tmp_path, "localhost:5055")


# ---- over HTTP, against a real rasa-sdk action server -----------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def serving(folder: Path, module: str, log: Path) -> Iterator[str]:
    """`python -m rasa_sdk --actions MODULE` with `folder` on its path; yields its webhook URL."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(folder),
        "PYTHONDONTWRITEBYTECODE": "1",
        "SANIC_HOST": "127.0.0.1",
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rasa_sdk", "--actions", module, "--port", str(port)],
            cwd=log.parent,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: Sanic runs the app in a child
        )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"the rasa-sdk action server did not start:\n{log.read_text(errors='replace')}"
                )
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/webhook"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture(scope="module")
def action_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m rasa_sdk --actions actions` serving tests/fixtures/actions/actions.py."""
    log = tmp_path_factory.mktemp("action_server") / "server.log"
    with serving(BOT, "actions", log) as url:
        yield url


@pytest.fixture
def remote(action_server: str) -> HttpActions:
    return HttpActions(action_server, timeout=5)


@pytest.mark.parametrize(
    "req",
    [
        request("lookup_order", order_id="87654321"),
        request("lookup_order", slots={"order_id": "12345678"}, text="查订单", language="zh"),
        request("lookup_order", text="where is my parcel"),
        request("greet_customer", slots={"name": "Li Lei", "order_id": "1"}),
    ],
    ids=["entity", "slot-zh", "nothing", "sync"],
)
async def test_the_action_server_gives_what_in_process_gives(
    req: ActionRequest, remote: HttpActions, local: InProcessActions
) -> None:
    over_http = await remote.run(req)
    assert over_http == await local.run(req)
    assert over_http.slots or over_http.messages


async def test_an_unknown_action_on_the_server(remote: HttpActions) -> None:
    with pytest.raises(ActionError) as e:
        await remote.run(request("refund_order"))
    message = str(e.value)
    assert "'refund_order'" in message
    assert "404" in message
    assert "No registered action found for name 'refund_order'" in message  # the server's words


async def test_a_rejection_on_the_server(remote: HttpActions) -> None:
    with pytest.raises(ActionError, match=r"'reject' rejected execution.*cannot handle gift cards"):
        await remote.run(request("reject"))


async def test_an_action_that_raises_on_the_server(remote: HttpActions) -> None:
    with pytest.raises(ActionError, match=r"'explode' failed.*500.*order database is down"):
        await remote.run(request("explode"))


async def test_a_server_that_takes_too_long(action_server: str) -> None:
    started = time.monotonic()
    with pytest.raises(ActionError, match=r"'slow_async'.*timed out after 0\.5 s"):
        await HttpActions(action_server, timeout=0.5).run(request("slow_async"))
    assert time.monotonic() - started < 2


async def test_nothing_listening() -> None:
    url = f"http://127.0.0.1:{free_port()}/webhook"
    with pytest.raises(ActionError) as e:
        await HttpActions(url, timeout=2).run(request("lookup_order"))
    assert f"the action server {url} could not be reached" in str(e.value)
    assert "ConnectError" in str(e.value)


async def serve_raw(
    status: str, body: bytes, content_type: str = "application/json"
) -> asyncio.Server:
    """A stand-in HTTP server that answers every request with a canned response."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        await reader.readexactly(length)
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        ("200 OK", b"<html>hello</html>", r"malformed result: no JSON object"),
        ("200 OK", b"[1, 2]", r"malformed result: JSON list"),
        (
            "200 OK",
            b'{"events": {"event": "slot"}}',
            r"malformed result: events is dict, not a list",
        ),
        (
            "200 OK",
            b'{"events": [{"event": "slot", "value": 1}]}',
            r"malformed result: a SlotSet event has no slot name",
        ),
        ("200 OK", b'{"events": [], "responses": ["hi"]}', r"malformed result: a response is str"),
        (
            "502 Bad Gateway",
            b"upstream down",
            r"'lookup_order' failed: the action server .* answered 502: upstream down",
        ),
    ],
)
async def test_a_malformed_answer(status: str, body: bytes, expected: str) -> None:
    server = await serve_raw(status, body)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(ActionError, match=expected):
            await HttpActions(f"http://127.0.0.1:{port}/webhook", timeout=2).run(
                request("lookup_order")
            )
    finally:
        server.close()
        await server.wait_closed()


async def test_events_other_than_slot_set_are_ignored_and_missing_lists_are_empty() -> None:
    server = await serve_raw(
        "200 OK",
        b'{"events": [{"event": "restart"}, {"event": "slot", "name": "a", "value": [1]}]}',
    )
    port = server.sockets[0].getsockname()[1]
    try:
        outcome = await HttpActions(f"http://127.0.0.1:{port}/webhook").run(request("lookup_order"))
    finally:
        server.close()
        await server.wait_closed()
    assert outcome == ActionOutcome(slots={"a": [1]}, messages=[])


# ---- driven from a flow ----------------------------------------------------------------------

ORDER_FLOW = """\
flows:
  order:
    trigger: {intents: [check_order]}
    steps:
      - ask: order_id
        say: "Which order?"
        validate: '^\\d{8}$'
      - action: lookup_order
        sets: [order_status]
      - if: "slots.order_status == 'lost'"
        then:
          - handoff: {team: logistics, note: "Lost parcel {{ slots.order_id }}"}
      - say: "Anything else about {{ slots.order_id }}?"
"""


@pytest.mark.parametrize("where", ["in_process", "action_server"])
async def test_a_flow_runs_the_action_and_uses_its_slots(
    tmp_path: Path, where: str, request: pytest.FixtureRequest
) -> None:
    from flows import FlowEngine, load_flows
    from hub.bot.files import HUB_WORDS
    from hub.messages import Understanding
    from hub.ports import TurnContext

    (tmp_path / "order.yml").write_text(ORDER_FLOW, encoding="utf-8")
    runner: ActionRunner = (
        InProcessActions(BOT / "actions.py")
        if where == "in_process"
        else HttpActions(request.getfixturevalue("action_server"), timeout=5)
    )
    engine = FlowEngine(load_flows(tmp_path), "en", runner, words=HUB_WORDS)

    def turn(text: str, intent: str | None = None) -> TurnContext:
        u = Understanding(text=text, intent=intent, confidence=1.0)
        return TurnContext(understanding=u, language="en", conversation_id=3)

    first = await engine.run({}, turn("where is my order", "check_order"))
    shipped = await engine.run(first.state, turn("12345678"))
    assert [r.text for r in shipped.replies] == [
        "Order 12345678: shipped",
        "",  # the image message
        "Anything else about 12345678?",
    ]
    assert shipped.replies[0].buttons[0].payload == "/human"
    assert shipped.replies[1].attachments[0].url == "https://example.com/parcel.png"
    assert shipped.replies[0].meta["step"] == "action lookup_order"
    first = await engine.run({}, turn("where is my order", "check_order"))
    lost = await engine.run(first.state, turn("87654321"))
    assert lost.handoff is not None and lost.handoff.team == "logistics"
    assert lost.handoff.note == "Lost parcel 87654321"
    assert lost.handoff.slots["order_status"] == "lost"


# ---- the conversation's events in the tracker ------------------------------------------------

HISTORY_ACTIONS = '''\
"""Actions that read the tracker's history, as Rasa actions do."""

from rasa_sdk import Action
from rasa_sdk.events import SlotSet


class Recall(Action):
    def name(self):
        return "recall"

    def run(self, dispatcher, tracker, domain):
        last_bot = tracker.get_last_event_for("bot")
        users = [e["text"] for e in tracker.events if e["event"] == "user"]
        earlier_order = next(
            (
                entity["value"]
                for e in tracker.events
                if e["event"] == "user"
                for entity in e["parse_data"]["entities"]
                if entity["entity"] == "order_id"
            ),
            None,
        )
        dispatcher.utter_message(text=f"You answered {last_bot['text']!r} with {users[-1]!r}")
        dispatcher.utter_message(text=f"First you said {users[0]!r}, about order {earlier_order}")
        return [
            SlotSet("last_bot", last_bot["text"]),
            SlotSet("last_buttons", last_bot["data"]["buttons"]),
            SlotSet("first_user", users[0]),
            SlotSet("earlier_order", earlier_order),
            SlotSet("latest", tracker.latest_message["text"]),
            SlotSet("channel", tracker.get_latest_input_channel()),
            SlotSet("kinds", [e["event"] for e in tracker.events_after_latest_restart()]),
            SlotSet("listens", [e.get("name") for e in tracker.events if e["event"] == "action"]),
            SlotSet("slot_events", {e["name"]: e["value"] for e in tracker.events if e["event"] == "slot"}),
            SlotSet("city", tracker.get_slot("city")),
        ]
'''

EARLIER = [  # as hub/core/history.py gives them
    {
        "event": "user",
        "text": "my order 12345678 is late",
        "timestamp": 1700000000.0,
        "parse_data": {
            "text": "my order 12345678 is late",
            "intent": {"name": "check_order", "confidence": 0.9},
            "entities": [{"entity": "order_id", "value": "12345678", "start": 9, "end": 17}],
            "intent_ranking": [{"name": "check_order", "confidence": 0.9}],
        },
        "input_channel": "web",
        "message_id": "7",
    },
    {
        "event": "bot",
        "text": "Order 12345678 is on its way.",
        "timestamp": 1700000001.0,
        "data": {"buttons": []},
    },
    {
        "event": "user",
        "text": "I want it sent to another city",
        "timestamp": 1700000100.0,
        "parse_data": {
            "text": "I want it sent to another city",
            "intent": {"name": "change_address", "confidence": 0.8},
            "entities": [],
            "intent_ranking": [{"name": "change_address", "confidence": 0.8}],
        },
        "input_channel": "web",
        "message_id": "9",
    },
    {
        "event": "bot",
        "text": "Which city?",
        "timestamp": 1700000101.0,
        "data": {"buttons": [{"title": "Shanghai", "payload": "Shanghai"}]},
    },
]


def with_history(
    events: list[dict[str, Any]] | None, calls: list[int] | None = None, **fields: Any
) -> ActionRequest:
    async def history() -> list[dict[str, Any]]:
        if calls is not None:
            calls.append(1)
        return events or []

    base = request("recall", slots={"city": "Hangzhou"}, text="Hangzhou")
    return replace(base, history=None if events is None else history, channel="web", **fields)


@pytest.fixture(scope="module")
def history_bot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("history_bot")
    (folder / "history_actions.py").write_text(HISTORY_ACTIONS, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def history_server(history_bot: Path) -> Iterator[str]:
    with serving(history_bot, "history_actions", history_bot / "server.log") as url:
        yield url


@pytest.fixture(params=["in_process", "action_server"])
def history_runner(request: pytest.FixtureRequest, history_bot: Path) -> ActionRunner:
    if request.param == "in_process":
        return InProcessActions(history_bot / "history_actions.py")
    return HttpActions(request.getfixturevalue("history_server"), timeout=5)


async def test_an_action_reads_the_last_bot_utterance_and_an_earlier_message(
    history_runner: ActionRunner,
) -> None:
    outcome = await history_runner.run(with_history(EARLIER))
    slots = outcome.slots
    assert slots["last_bot"] == "Which city?"  # what the customer is answering
    assert slots["last_buttons"] == [{"title": "Shanghai", "payload": "Shanghai"}]
    assert slots["first_user"] == "my order 12345678 is late"
    assert slots["earlier_order"] == "12345678"  # an entity of an earlier message
    assert slots["latest"] == "Hangzhou"
    assert slots["channel"] == "web"
    assert outcome.messages[0]["text"] == "You answered 'Which city?' with 'Hangzhou'"
    # as Rasa records a conversation: a listen before each message, this turn's message last,
    # then the flow's slots
    assert slots["kinds"] == [
        *["action", "user", "bot"] * 2,
        *["action", "user", "slot"],
    ]
    assert slots["listens"] == ["action_listen"] * 3
    assert slots["slot_events"] == {"city": "Hangzhou"}
    assert slots["city"] == "Hangzhou"


async def test_what_the_flow_said_this_turn_is_the_last_bot_utterance(
    history_runner: ActionRunner,
) -> None:
    said = ({"text": "Let me check that for you.", "buttons": []},)
    outcome = await history_runner.run(with_history(EARLIER, said=said))
    assert outcome.slots["last_bot"] == "Let me check that for you."
    assert outcome.slots["kinds"][-3:] == ["user", "bot", "slot"]


async def test_without_history_the_tracker_has_this_turn_only(history_bot: Path) -> None:
    local = InProcessActions(history_bot / "history_actions.py")
    req = replace(with_history([]), name="greet_customer")
    tracker = Tracker.from_dict(await tracker_state(replace(req, history=None)))
    assert [e["event"] for e in tracker.events] == ["action", "user", "slot"]
    assert tracker.events[1]["parse_data"]["metadata"] == {"language": "en"}
    assert tracker.latest_message["text"] == "Hangzhou"
    with pytest.raises(ActionError, match=r"'recall' raised TypeError"):  # no bot event to read
        await local.run(with_history(None))


async def test_history_is_read_only_when_the_action_runs(history_bot: Path) -> None:
    from flows.calls import action_request
    from flows.schema import ActionStep
    from hub.messages import Understanding
    from hub.ports import TurnContext

    calls: list[int] = []

    async def history() -> list[dict[str, Any]]:
        calls.append(1)
        return EARLIER

    context = TurnContext(
        understanding=Understanding(text="Hangzhou", intent="inform", confidence=0.9),
        language="zh",
        conversation_id=5,
        contact={"id": "u1", "channel": "web"},
        history=history,
    )
    req = action_request(ActionStep(action="recall"), {"city": "Hangzhou"}, context, "zh")
    assert calls == []  # building the request costs no query
    outcome = await InProcessActions(history_bot / "history_actions.py").run(req)
    assert calls == [1]
    assert outcome.slots["last_bot"] == "Which city?"
    assert outcome.slots["channel"] == "web"


async def test_a_history_that_cannot_be_read_is_an_action_error(history_bot: Path) -> None:
    async def broken() -> list[dict[str, Any]]:
        raise ConnectionError("database is gone")

    req = replace(with_history(EARLIER), history=broken)
    with pytest.raises(ActionError, match=r"'recall': reading the conversation's history failed"):
        await InProcessActions(history_bot / "history_actions.py").run(req)


HISTORY_NLU = """\
nlu:
- intent: check_order
  examples: |
    - my order [12345678](order_id) is late
    - where is my order
    - order [87654321](order_id) has not arrived
- intent: change_address
  examples: |
    - I want it sent to another city
    - change the delivery address
    - send it somewhere else
- intent: greet
  examples: |
    - hello
    - hi there
    - good morning
- regex: order_id
  examples: |
    - \\d{8}
"""

HISTORY_FLOWS = """\
flows:
  order:
    trigger: {intents: [check_order]}
    steps:
      - ask: order_id
        say: "Which order?"
      - say: "Order {{ slots.order_id }} is on its way."
  address:
    trigger: {intents: [change_address]}
    steps:
      - ask: city
        say: "Which city?"
        type: text
      - action: recall
        sets: [last_bot, first_user]
"""


async def test_in_a_hub_the_action_gets_the_stored_conversation(
    tmp_path: Path, settings: Any
) -> None:
    from hub.bot import load_flow_engine
    from hub.testing import TestBot
    from nlu import IntentClassifier, TrainingData

    bot = tmp_path / "bot"
    for folder in ("nlu", "flows"):
        (bot / folder).mkdir(parents=True)
    (bot / "nlu" / "nlu.yml").write_text(HISTORY_NLU, encoding="utf-8")
    (bot / "flows" / "flows.yml").write_text(HISTORY_FLOWS, encoding="utf-8")
    (bot / "actions.py").write_text(HISTORY_ACTIONS, encoding="utf-8")
    ours = settings.model_copy(update={"bot": settings.bot.model_copy(update={"path": bot})})
    classifier = IntentClassifier.train(TrainingData.load(bot / "nlu"))
    async with TestBot.running(ours, classifier, load_flow_engine(ours)) as testbot:
        assert [r.text for r in await testbot.say("my order 12345678 is late")] == [
            "Order 12345678 is on its way."
        ]
        assert [r.text for r in await testbot.say("I want it sent to another city")] == [
            "Which city?"
        ]
        replies = [r.text for r in await testbot.say("Hangzhou")]
    assert replies == [
        "You answered 'Which city?' with 'Hangzhou'",
        "First you said 'my order 12345678 is late', about order 12345678",
    ]
