"""The flow engine, turn by turn: ask/validate/retry, set, if/else, goto, http, interruptions,
cancel, state that survives a restart (it is plain JSON), languages and buttons."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request

from flows import FlowEngine, FlowFailure, load_flows
from flows.calls import json_path
from hub.bot.files import HUB_WORDS
from hub.core.arbiter import Arbiter, flow_turn
from hub.messages import Understanding
from hub.ports import FlowResult, HubWords, TurnContext


def engine_for(tmp_path: Path, text: str, language: str = "en") -> FlowEngine:
    (tmp_path / "flows.yml").write_text(text, encoding="utf-8")
    return FlowEngine(load_flows(tmp_path), language, words=HUB_WORDS)


def turn(
    text: str,
    intent: str | None = None,
    language: str = "en",
    postback: str | None = None,
    confidence: float | None = None,
    **entities: str,
) -> TurnContext:
    u = Understanding(
        text=text,
        intent=intent,
        confidence=confidence if confidence is not None else 1.0 if intent else 0.0,
        entities=tuple({"entity": k, "value": v} for k, v in entities.items()),
        postback=postback,
    )
    return TurnContext(understanding=u, language=language, conversation_id=7)


ARBITER = Arbiter(strong=0.5)  # the core's turn arbiter decides; the engine carries it out


class Chat:
    """A conversation with the engine, each message decided by the core's arbiter (without
    knowledge or handoff intents) as in the pipeline; the state goes through JSON each turn,
    as it does through the database (so a restart mid-flow is this same round trip)."""

    def __init__(self, engine: FlowEngine) -> None:
        self.engine = engine
        self.state: dict[str, Any] = {}
        self.last: FlowResult | None = None

    async def say(self, text: str, intent: str | None = None, **kw: Any) -> list[str]:
        context = turn(text, intent, **kw)
        view = self.engine.view(self.state, context)
        decision = ARBITER.decide(context.understanding, view, lambda: None)
        result = await flow_turn(decision, self.engine, self.state, context)
        self.state = json.loads(json.dumps(result.state))
        self.last = result
        return [r.text for r in result.replies]


RETURNS = """\
flows:
  returns:
    trigger: {intents: [returns]}
    interruptible: true
    steps:
      - ask: order_id
        say: {en: "Which order?", zh: "哪个订单？"}
        validate: '^\\d{6,12}$'
        retries: 1
        on_invalid: {en: "Order numbers have 6 to 12 digits.", zh: "订单号为 6 到 12 位数字。"}
      - ask: reason
        say: "Why?"
        choices:
          - {value: too_small, title: "Too small", synonyms: [small, 太小]}
          - {value: broken, title: "Broken", synonyms: [damaged, 坏了]}
      - ask: email
        say: "Your email?"
        type: email
      - say: "Return of {{ slots.order_id }} ({{ slots.reason }}) registered; we'll write to {{ slots.email }}."
  hours:
    trigger: {intents: [hours]}
    steps:
      - say: "We are open 9-18."
  human_help:
    trigger: {intents: [help_me]}
    steps:
      - handoff: {team: care}
"""


async def test_ask_validates_reasks_and_fills(tmp_path: Path) -> None:
    chat = Chat(engine_for(tmp_path, RETURNS))
    assert await chat.say("I want to return something", "returns") == ["Which order?"]
    assert await chat.say("it's 12ab") == ["Order numbers have 6 to 12 digits.", "Which order?"]
    assert await chat.say("my order is 12345678") == ["Why?"]
    assert chat.last is not None
    assert [b.payload for b in chat.last.replies[0].buttons] == ["too_small", "broken"]
    assert await chat.say("it arrived damaged") == ["Your email?"]
    assert await chat.say("Ann@Example.COM") == [
        "Return of 12345678 (broken) registered; we'll write to Ann@example.com."
    ]
    assert chat.state == {}  # the flow is over


async def test_entities_fill_without_asking_and_buttons_answer(tmp_path: Path) -> None:
    chat = Chat(engine_for(tmp_path, RETURNS))
    replies = await chat.say("return order 12345678", "returns", order_id="12345678")
    assert replies == ["Why?"]
    assert await chat.say("Too small", postback="too_small") == ["Your email?"]


async def test_retries_exhausted_hand_over_with_the_slots(tmp_path: Path) -> None:
    chat = Chat(engine_for(tmp_path, RETURNS))
    await chat.say("return", "returns")
    await chat.say("no idea")
    await chat.say("still no idea")
    assert chat.last is not None and chat.last.handoff is not None
    assert chat.last.handoff.reason == "flow"
    assert "order_id" in (chat.last.handoff.note or "")
    assert chat.state == {}


async def test_on_fail_goes_to_a_flow(tmp_path: Path) -> None:
    chat = Chat(
        engine_for(
            tmp_path,
            """\
flows:
  quiz:
    trigger: {intents: [quiz]}
    steps:
      - ask: n
        say: "A number?"
        type: number
        retries: 0
        on_fail: sorry
  sorry:
    steps:
      - say: "Let's try that another time."
""",
        )
    )
    await chat.say("quiz", "quiz")
    assert await chat.say("banana") == ["Let's try that another time."]


async def test_interruption_resumes_and_says_so(tmp_path: Path) -> None:
    chat = Chat(engine_for(tmp_path, RETURNS))
    await chat.say("return", "returns")
    replies = await chat.say("when are you open?", "hours")
    assert replies == ["We are open 9-18.", "Now, back to where we were.", "Which order?"]
    assert await chat.say("12345678") == ["Why?"]


async def test_not_interruptible_treats_the_message_as_an_answer(tmp_path: Path) -> None:
    chat = Chat(
        engine_for(tmp_path, RETURNS.replace("interruptible: true", "interruptible: false"))
    )
    await chat.say("return", "returns")
    assert await chat.say("when are you open?", "hours") == [
        "Order numbers have 6 to 12 digits.",
        "Which order?",
    ]


@pytest.mark.parametrize("word", ["cancel", "取消", "Cancel!"])
async def test_cancel_leaves_the_flow(tmp_path: Path, word: str) -> None:
    chat = Chat(engine_for(tmp_path, RETURNS))
    await chat.say("return", "returns")
    replies = await chat.say(word, language="zh" if word == "取消" else "en")
    assert replies in (["OK, I've stopped that."], ["好的，已取消。"])
    assert chat.state == {}
    assert await chat.say("12345678") == []  # no flow waits for it any more


LENT = """\
flows:
  order:
    trigger: {intents: [order]}
    interruptible: true
    steps:
      - ask: order_id
        say: "Which order?"
        validate: '^\\d+$'
      - say: {knowledge: "{{ slots.order_id }}"}
  hours:
    trigger: {intents: [hours]}
    steps:
      - say: "We are open 9-18."
"""


class OneEntry:
    """A knowledge base that confidently knows order 42 only."""

    @dataclass(frozen=True)
    class Hit:
        entry: str
        score: float = 1.0
        confident: bool = True

    def search(self, query: str, k: int = 5, language: str | None = None) -> list[Hit]:
        return [self.Hit("entry-42")] if query == "42" else []


async def test_the_hubs_own_words_are_the_ones_it_lends(tmp_path: Path) -> None:
    """The engine's built-in sentences and how it says a knowledge entry come from the
    HubWords it is given, with the reply language and the bot's default."""
    words = HubWords(
        text=lambda key, language, default: f"<{key} {language}/{default}>",
        entry_text=lambda entry, language, default: f"<{entry} {language}/{default}>",
    )
    (tmp_path / "flows.yml").write_text(LENT, encoding="utf-8")
    chat = Chat(FlowEngine(load_flows(tmp_path), "zh", knowledge=OneEntry(), words=words))
    await chat.say("my order", "order")
    assert await chat.say("abc") == ["<invalid_answer en/zh>", "Which order?"]
    assert await chat.say("hours?", "hours") == [
        "We are open 9-18.",
        "<resume en/zh>",
        "Which order?",
    ]
    assert await chat.say("cancel") == ["<cancelled en/zh>"]
    assert chat.state == {}
    await chat.say("my order", "order")
    assert await chat.say("42") == ["<entry-42 en/zh>"]
    await chat.say("my order", "order")
    assert await chat.say("7", language="fr") == ["<knowledge_not_found fr/zh>"]


@pytest.mark.parametrize(
    ("language", "said"),
    [
        ("en", "Sorry, that doesn't look right."),
        ("zh", "抱歉，您的回答格式不对。"),
        ("fr", "Sorry, that doesn't look right."),
    ],
)
async def test_an_answer_that_does_not_fit_without_on_invalid(
    tmp_path: Path, language: str, said: str
) -> None:
    chat = Chat(engine_for(tmp_path, LENT))
    await chat.say("my order", "order", language=language)
    assert await chat.say("abc", language=language) == [said, "Which order?"]


async def test_state_survives_a_new_engine(tmp_path: Path) -> None:
    """A restart: the saved JSON state and a freshly loaded engine go on at the same step."""
    chat = Chat(engine_for(tmp_path, RETURNS))
    await chat.say("return", "returns")
    await chat.say("12345678")
    chat.engine = FlowEngine(load_flows(tmp_path), "en", words=HUB_WORDS)
    assert await chat.say("too small") == ["Your email?"]


async def test_a_changed_flow_is_left_not_resumed_at_a_wrong_step(tmp_path: Path) -> None:
    chat = Chat(engine_for(tmp_path, RETURNS))
    await chat.say("return", "returns")
    chat.engine = engine_for(tmp_path, RETURNS.replace("Which order?", "Order number?"))
    result = await chat.engine.run(chat.state, turn("12345678"))
    assert not result.handled  # the fallback chain answers instead


async def test_set_if_else_goto_and_templates(tmp_path: Path) -> None:
    chat = Chat(
        engine_for(
            tmp_path,
            """\
flows:
  size:
    trigger: {intents: [size]}
    steps:
      - ask: height
        say: "Your height in cm?"
        type: number
      - set: {big: "{{ slots.height > 180 }}", label: "h{{ slots.height }}"}
      - if: "slots.height > 180"
        then:
          - say: "Take an XL."
        else:
          - if: "slots.height < 150"
            then: [{say: "Take an S."}]
            else: [{say: "Take an M."}]
      - goto: done
  done:
    steps:
      - say: "Anything else, {{ slots.label }}?"
      - end: true
      - say: never
""",
        )
    )
    await chat.say("size?", "size")
    assert await chat.say("190") == ["Take an XL.", "Anything else, h190?"]
    await chat.say("size?", "size")
    assert await chat.say("一百四十") == ["Take an S.", "Anything else, h140?"]
    await chat.say("size?", "size")
    assert await chat.say("170 cm") == ["Take an M.", "Anything else, h170?"]


async def test_goto_loop_fails_the_turn(tmp_path: Path) -> None:
    engine = engine_for(
        tmp_path,
        """\
flows:
  a:
    trigger: {intents: [a]}
    steps: [{goto: b}]
  b:
    steps: [{goto: a}]
""",
    )
    with pytest.raises(FlowFailure, match="goto loop"):
        await engine.run({}, turn("a", "a"))


async def test_languages_and_image(tmp_path: Path) -> None:
    engine = engine_for(
        tmp_path,
        """\
flows:
  hi:
    trigger: {intents: [hi]}
    steps:
      - say: {en: "Hello", zh: "你好"}
        image: "https://shop.example/{{ message.language or 'x' }}.png"
        buttons: [{title: {en: "Yes", zh: "是"}, payload: /affirm}]
""",
        language="zh",
    )
    zh = await engine.run({}, turn("你好", "hi", language="zh"))
    assert zh.replies[0].text == "你好" and zh.replies[0].buttons[0].title == "是"
    assert zh.replies[0].attachments[0].url == "https://shop.example/x.png"
    en = await engine.run({}, turn("hi", "hi", language="en"))
    assert en.replies[0].text == "Hello" and en.replies[0].buttons[0].title == "Yes"
    other = await engine.run({}, turn("hola", "hi", language="es"))
    assert other.replies[0].text == "你好"  # the bot's default language


# ---- http steps against a local server -----------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    app = FastAPI()
    seen: list[dict[str, Any]] = []

    @app.post("/orders/{order_id}")
    async def order(order_id: str, request: Request) -> dict[str, Any]:
        body = await request.json()
        seen.append({"order_id": order_id, "body": body, "auth": request.headers.get("x-key")})
        if order_id == "404404":
            from fastapi import HTTPException

            raise HTTPException(404)
        return {"order": {"status": "shipped", "items": [{"name": "shoes"}]}}

    @app.post("/slow/{order_id}")
    async def slow(order_id: str) -> dict[str, Any]:
        await asyncio.sleep(3)
        return {}

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(5)


def http_flows(base: str, path: str = "orders", on_error: str = "handoff") -> str:
    return f"""\
flows:
  track:
    trigger: {{intents: [track]}}
    steps:
      - ask: order_id
        say: "Order number?"
        validate: '\\d{{6}}'
      - http:
          method: POST
          url: "{base}/{path}/{{{{ slots.order_id }}}}"
          headers: {{x-key: "k-{{{{ conversation.id }}}}"}}
          json: {{lang: "{{{{ conversation.language }}}}", id: "{{{{ slots.order_id }}}}"}}
          save: {{status: $.order.status, first: "$.order.items[0].name"}}
          timeout: 0.5
        on_error: {on_error}
      - say: "{{{{ slots.first }}}} {{{{ slots.status | default('unknown') }}}}"
"""


async def test_http_step_calls_the_api_and_saves(tmp_path: Path, api: str) -> None:
    chat = Chat(engine_for(tmp_path, http_flows(api)))
    await chat.say("track", "track")
    assert await chat.say("123456") == ["shoes shipped"]
    await chat.engine.aclose()


@pytest.mark.parametrize("path,order", [("orders", "404404"), ("slow", "123456")])
async def test_http_errors_hand_over_or_continue(
    tmp_path: Path, api: str, path: str, order: str
) -> None:
    chat = Chat(engine_for(tmp_path, http_flows(api, path)))
    await chat.say("track", "track")
    await chat.say(order)
    await chat.engine.aclose()
    assert chat.last is not None and chat.last.handoff is not None
    expected = "answered 404" if order == "404404" else "timed out after 0.5 s"
    assert expected in (chat.last.handoff.note or "")
    chat = Chat(engine_for(tmp_path, http_flows(api, path, on_error="continue")))
    await chat.say("track", "track")
    assert await chat.say(order) == ["unknown"]
    await chat.engine.aclose()


def test_json_path() -> None:
    data = {"a": {"b": [{"c": 1}, {"c": 2}]}}
    assert json_path(data, "$.a.b[1].c") == 2
    assert json_path(data, "a.b.0.c") == 1
    with pytest.raises(LookupError):
        json_path(data, "$.a.x")
    with pytest.raises(LookupError):
        json_path(data, "$.a.b[5]")


async def test_keywords_are_words_and_regexes_see_the_text_as_written(tmp_path: Path) -> None:
    engine = engine_for(
        tmp_path,
        """\
flows:
  hello:
    trigger: {keywords: [hi, 你好]}
    steps: [{say: hello}]
  orders:
    trigger: {regex: 'Order [A-Z]{2}\\d+'}
    steps: [{say: order}]
""",
    )
    assert (await engine.run({}, turn("Hi there"))).replies[0].text == "hello"
    assert (await engine.run({}, turn("你好呀"))).replies[0].text == "hello"
    assert not (await engine.run({}, turn("shipping costs"))).handled
    assert (await engine.run({}, turn("my Order AB123"))).replies[0].text == "order"
    assert not (await engine.run({}, turn("my order ab123"))).handled


def test_end_false_is_a_mistake(tmp_path: Path) -> None:
    from flows import FlowError

    (tmp_path / "a.yml").write_text("flows:\n  a:\n    steps: [{end: false}]\n", "utf-8")
    with pytest.raises(FlowError, match=r"a.yml:3:\d+: flows.a.steps.0.end"):
        load_flows(tmp_path)


async def test_a_weak_intent_does_not_interrupt(tmp_path: Path) -> None:
    chat = Chat(engine_for(tmp_path, RETURNS))
    await chat.say("return", "returns")
    assert await chat.say("when are you open?", "hours", confidence=0.3) == [
        "Order numbers have 6 to 12 digits.",
        "Which order?",
    ]
    assert await chat.say("when are you open?", "hours", confidence=0.6) == [
        "We are open 9-18.",
        "Now, back to where we were.",
        "Which order?",
    ]


async def test_the_waiting_flows_own_intent_does_not_restart_it(tmp_path: Path) -> None:
    chat = Chat(engine_for(tmp_path, RETURNS))
    await chat.say("return", "returns")
    await chat.say("12345678")
    assert await chat.say("I want to return it", "returns") == [
        "Sorry, that doesn't look right.",
        "Why?",
    ]
    assert chat.state["frames"][-1]["slots"] == {"order_id": "12345678"}


async def test_a_change_of_mind_changes_an_earlier_answer_and_goes_on_from_there(
    tmp_path: Path,
) -> None:
    chat = Chat(engine_for(tmp_path, RETURNS))
    await chat.say("return", "returns")
    await chat.say("12345678")
    assert await chat.say("too small") == ["Your email?"]
    view = chat.engine.view(chat.state, turn("no wait, it's broken"))
    assert view.waiting is not None and view.waiting.corrects == "reason"
    assert await chat.say("no wait, it's broken") == ["Your email?"]
    assert chat.state["frames"][-1]["slots"] == {"order_id": "12345678", "reason": "broken"}
    assert await chat.say("sorry, the order is 87654321") == ["Your email?"]
    assert chat.state["frames"][-1]["slots"]["order_id"] == "87654321"
    # the same value again, or a text no earlier question takes, is just a wrong answer
    assert await chat.say("broken") == ["Sorry, that doesn't look right.", "Your email?"]
    assert (await chat.say("a@example.com"))[0].startswith("Return of 87654321 (broken)")
