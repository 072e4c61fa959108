"""Conversation tests (`kefu test`): the file format with path:line:column errors
(flows/convtest.py), the matching of `bot:` lines, the readable failure report, and the command
on a small bot folder (the runner: hub/testing/convtest.py)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flows.convtest import ConversationTest, ConversationTestError, load_tests
from hub.cli import main
from hub.messages import Button, Outbound, Sender, Status
from hub.ops.settings import Settings
from hub.testing.convtest import format_report, format_result, run_test, run_tests, summary
from nlu import IntentClassifier

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "convtest_bot"


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(folder: Path) -> list[str]:
    with pytest.raises(ConversationTestError) as e:
        load_tests(folder)
    return e.value.errors


def one_test(tmp_path: Path, steps: str, name: str = "t") -> ConversationTest:
    path = write(tmp_path / "t", "t.yml", f"tests:\n  - name: {name}\n    steps:\n{steps}")
    (test,) = load_tests(path.parent)
    return test


# --- the file format ----------------------------------------------------------------------------


def test_every_mistake_of_a_file_is_reported_with_its_position(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "orders.yml",
        "tests:\n"  # 1
        "  - name: mistakes\n"  # 2
        "    steps:\n"  # 3
        "      - bot: hello\n"  # 4: before any user line
        "      - user: where is my order\n"  # 5
        "      - bot: /Order ([0-9/\n"  # 6: bad regex
        "      - sya: hi\n"  # 7: unknown key
        "      - {user: a, bot: b}\n"  # 8: two keys
        "      - status: waiting\n"  # 9: unknown status
        "      - user: 12345678\n"  # 10: a number, not text
        "  - steps: [{user: hi}]\n"  # 11: no name
        "    chanel: web\n"  # 12: unknown test key
        "  - name: fine\n"  # 13
        "    steps: [{user: hi}, {bot: /hi/}]\n",  # 14
    )
    assert errors_of(tmp_path) == [
        f"{path}:4:9: `bot:` before any `user:` or `press:` step: there is nothing to answer",
        f"{path}:6:14: bad regex /Order ([0-9/: unterminated character set at position 7",
        f"{path}:7:9: unknown step key 'sya' (a step is one of: user, bot, not, press, agent, status)",
        f"{path}:8:9: a step has exactly one key, this one has 2 (user, bot)",
        f"{path}:9:17: unknown status 'waiting' (one of: bot, pending, open, snoozed, resolved)",
        f'{path}:10:15: user: must be text, not a number (put it in quotes, e.g. user: "12345678")',
        f"{path}:11:5: a test needs a `name:`",
        f"{path}:12:5: unknown test key 'chanel' (one of: name, channel, steps)",
    ]


def test_errors_of_every_file_in_the_folder(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yml", "tests:\n  - name: greeting\n    steps: [{user: hi}]\n")
    b = write(tmp_path, "b.yaml", "tests:\n  - name: greeting\n    steps: [{press: /human}]\n")
    c = write(tmp_path, "c.yml", "tests:\n  - name: [unclosed\n")
    d = write(tmp_path, "d.yml", "flows: {}\n")
    e = write(
        tmp_path,
        "e.yml",
        "tests:\n  - name: no steps\n  - name: status first\n    steps: [{status: bot}]\n",
    )
    write(tmp_path, "empty.yml", "# nothing yet\n")
    write(tmp_path, "notes.txt", "not a test file")
    assert errors_of(tmp_path) == [
        f"{b}:2:5: duplicate test name 'greeting' (first defined at {a}:2:5)",
        f"{c}:3:1: invalid YAML: expected ',' or ']', but got '<stream end>'",
        f"{d}:1:1: a conversation test file is a mapping with a `tests:` list",
        f"{e}:2:5: a test needs `steps:`",
        f"{e}:4:13: `status:` before any `user:` or `press:` step: no conversation yet",
    ]


def test_steps_keep_their_source(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "orders.yml",
        "tests:\n"
        "  - name: order lookup, happy path\n"
        "    channel: web\n"
        "    steps:\n"
        "      - user: where is my order\n"
        "      - bot: What's your order number?\n"
        '      - user: "12345678"\n'
        "      - bot: /Order 12345678 is/\n"
        "      - press: /human\n"
        "      - status: pending\n",
    )
    (test,) = load_tests(tmp_path)
    assert (test.name, test.channel, test.source) == (
        "order lookup, happy path",
        "web",
        f"{path}:2:5",
    )
    assert [(s.kind, s.value, s.source) for s in test.steps] == [
        ("user", "where is my order", f"{path}:5:9"),
        ("bot", "What's your order number?", f"{path}:6:9"),
        ("user", "12345678", f"{path}:7:9"),
        ("bot", "/Order 12345678 is/", f"{path}:8:9"),
        ("press", "/human", f"{path}:9:9"),
        ("status", "pending", f"{path}:10:9"),
    ]
    assert test.steps[3].pattern is not None and test.steps[1].pattern is None
    assert load_tests(tmp_path / "missing") == []


def test_not_and_agent_steps(tmp_path: Path) -> None:
    path = write(
        tmp_path / "bad",
        "agents.yml",
        "tests:\n"  # 1
        "  - name: mistakes\n"  # 2
        "    steps:\n"  # 3
        "      - not: /hello/\n"  # 4: before any user line
        "      - agent: resolve\n"  # 5: no conversation yet
        "      - user: hi\n"  # 6
        "      - not: /Order ([0-9/\n"  # 7: bad regex
        "      - agent: 12345\n"  # 8: a number
        "      - agent: ' '\n",  # 9: nothing
    )
    assert errors_of(tmp_path / "bad") == [
        f"{path}:4:9: `not:` before any `user:` or `press:` step: there is nothing to answer",
        f"{path}:5:9: `agent:` before any `user:` or `press:` step: no conversation yet",
        f"{path}:7:14: bad regex /Order ([0-9/: unterminated character set at position 7",
        f'{path}:8:16: agent: must be text, not a number (put it in quotes, e.g. agent: "12345678")',
        f"{path}:9:16: agent: needs an action (take, resolve) or the text of a reply",
    ]
    test = one_test(
        tmp_path,
        "      - user: hi\n"
        "      - not: /^Hello/i\n"
        "      - agent: resolve\n"
        "      - not: Goodbye!\n"
        "      - agent: Anything else I can do?\n",
    )
    assert [(s.kind, s.value) for s in test.steps] == [
        ("user", "hi"),
        ("not", "/^Hello/i"),
        ("agent", "resolve"),
        ("not", "Goodbye!"),
        ("agent", "Anything else I can do?"),
    ]
    assert test.steps[1].pattern is not None and test.steps[3].pattern is None


# --- matching -----------------------------------------------------------------------------------


def out(text: str, *buttons: tuple[str, str], sender: Sender = Sender.BOT) -> Outbound:
    return Outbound(
        message_id=1,
        conversation_id=1,
        channel="test",
        recipient_id="c",
        sender=sender,
        text=text,
        buttons=tuple(Button(title=t, payload=p) for t, p in buttons),
        created_at=datetime.now(UTC),
    )


class ScriptedBot:
    """A customer whose replies are scripted per text; records what it was sent."""

    def __init__(self, replies: dict[str, list[Outbound]], status: str = "bot") -> None:
        self.replies = replies
        self.sent: list[str] = []
        self._status = status

    async def say(self, text: str, message_id: str | None = None) -> list[Outbound]:
        self.sent.append(text)
        return self.replies.get(text, [])

    async def press(self, payload: str, title: str | None = None) -> list[Outbound]:
        self.sent.append(f"press {payload}")
        if payload == "/human":
            self._status = "pending"
        return self.replies.get(payload, [])

    async def status(self) -> Status:
        return Status(self._status)

    async def agent(self, action: str) -> list[Outbound]:
        self.sent.append(f"agent {action}")
        if action == "resolve":
            self._status = "resolved"
            return [out("How satisfied are you? Rate it from 1 to 5.", sender=Sender.SYSTEM)]
        self._status = "open"
        return [] if action == "take" else [out(action, sender=Sender.AGENT)]


REPLIES = {
    "hi": [
        out("Hello! I'm the shop assistant."),
        out("I can help with orders.", ("Where is my order?", "/check_order")),
        out("Anything else?", ("Talk to a human", "/human")),
    ],
    "bye": [out("Goodbye!")],
    "/human": [out("A colleague will be with you shortly.", sender=Sender.SYSTEM)],
}


@pytest.mark.parametrize(
    ("lines", "passes"),
    [
        (["Hello! I'm the shop assistant."], True),  # the others are allowed
        (["Anything else?"], True),
        (["Hello! I'm the shop assistant.", "Anything else?"], True),  # a subsequence
        (["  Hello!   I'm the shop\n assistant. "], True),  # whitespace runs are one space
        (["/orders/", "/else/"], True),  # regexes search
        (["/^orders/"], False),
        (["/HELLO/"], False),
        (["/HELLO/i"], True),
        (["Hello!"], False),  # exact text is the whole text
        (["Anything else?", "Hello! I'm the shop assistant."], False),  # order matters
        (["Anything else?", "/else/"], False),  # one message answers one line
        (["Goodbye!"], False),  # not an answer to this user line
    ],
)
async def test_bot_lines_match_an_in_order_subsequence(
    tmp_path: Path, lines: list[str], passes: bool
) -> None:
    steps = "      - user: hi\n" + "".join(f"      - bot: {line!r}\n" for line in lines)
    result = await run_test(ScriptedBot(REPLIES), one_test(tmp_path, steps))
    assert result.passed is passes, format_result(result)


async def test_bot_lines_answer_the_latest_user_line_and_a_test_stops_at_its_failure(
    tmp_path: Path,
) -> None:
    steps = (
        "      - user: hi\n"
        "      - bot: Anything else?\n"
        "      - user: bye\n"
        "      - bot: Goodbye!\n"
        "      - bot: /Hello/\n"  # said for `hi`, not for `bye`
        "      - user: never sent\n"
    )
    bot = ScriptedBot(REPLIES)
    result = await run_test(bot, one_test(tmp_path, steps))
    assert not result.passed and result.steps_run == 5
    assert result.failure is not None and result.failure.step.value == "/Hello/"
    assert bot.sent == ["hi", "bye"]


async def test_press_and_status(tmp_path: Path) -> None:
    steps = (
        "      - user: hi\n"
        "      - status: bot\n"
        "      - press: /human\n"
        "      - bot: /colleague/\n"
        "      - status: pending\n"
    )
    bot = ScriptedBot(REPLIES)
    assert (await run_test(bot, one_test(tmp_path, steps))).passed
    assert bot.sent == ["hi", "press /human"]

    wrong = await run_test(
        ScriptedBot(REPLIES), one_test(tmp_path, steps.replace("pending", "open"))
    )
    assert format_result(wrong).splitlines()[1:] == [
        f"  {tmp_path}/t/t.yml:8:9: status did not match",
        "    expected: open",
        "    got:      pending",
    ]


@pytest.mark.parametrize(
    ("lines", "passes"),
    [
        (["/Order/"], True),  # no message says it
        (["Goodbye!"], True),  # said, but for another turn
        (["/hello/"], True),
        (["/hello/i"], False),  # any message of the turn, ignoring case
        (["Anything else?"], False),  # exact text
        (["Anything else?  "], False),
        (["Anything"], True),  # exact text is the whole text
    ],
)
async def test_not_lines_hold_for_every_message_of_the_turn(
    tmp_path: Path, lines: list[str], passes: bool
) -> None:
    steps = "      - user: hi\n" + "".join(f"      - not: {line!r}\n" for line in lines)
    result = await run_test(ScriptedBot(REPLIES), one_test(tmp_path, steps))
    assert result.passed is passes, format_result(result)


async def test_a_not_line_looks_before_the_last_bot_line_too(tmp_path: Path) -> None:
    steps = "      - user: hi\n      - bot: Anything else?\n      - not: /shop assistant/\n"
    result = await run_test(ScriptedBot(REPLIES), one_test(tmp_path, steps))
    path = tmp_path / "t" / "t.yml"
    assert format_result(result).splitlines()[1:4] == [
        f"  {path}:6:9: a message of the turn matches the `not:` line",
        "    expected: no message like /shop assistant/",
        "    got:      Hello! I'm the shop assistant.",
    ]


async def test_agent_steps_are_a_turn_of_their_own(tmp_path: Path) -> None:
    steps = (
        "      - user: hi\n"
        "      - agent: take\n"
        "      - status: open\n"
        "      - not: /Hello/\n"  # what the customer got from the agent: nothing
        "      - agent: Hi, I'm Lin.\n"
        "      - bot: Hi, I'm Lin.\n"
        "      - agent: resolve\n"
        "      - bot: /1 to 5/\n"
        "      - status: resolved\n"
        "      - user: bye\n"
        "      - bot: Goodbye!\n"
    )
    bot = ScriptedBot(REPLIES)
    result = await run_test(bot, one_test(tmp_path, steps))
    assert result.passed, format_result(result)
    assert bot.sent == ["hi", "agent take", "agent Hi, I'm Lin.", "agent resolve", "bye"]


async def test_a_failure_reads_like_a_diff(tmp_path: Path) -> None:
    test = one_test(
        tmp_path,
        "      - user: hi\n      - bot: /Order 12345678 is/\n",
        name="order lookup, happy path",
    )
    result = await run_test(ScriptedBot(REPLIES), test)
    path = tmp_path / "t" / "t.yml"
    assert format_result(result) == (
        f"FAIL order lookup, happy path ({path}:2:5)\n"
        f"  {path}:5:9: bot line did not match\n"
        "    expected: /Order 12345678 is/\n"
        "    got:      Hello! I'm the shop assistant.\n"
        "              I can help with orders.\n"
        "              [Where is my order?] -> /check_order\n"
        "              Anything else?\n"
        "              [Talk to a human] -> /human"
    )
    silent = await run_test(
        ScriptedBot(REPLIES), one_test(tmp_path, "      - user: hmm\n      - bot: Hello\n")
    )
    assert format_result(silent).splitlines()[-2:] == [
        "    expected: Hello",
        "    got:      (no reply)",
    ]
    ok = await run_test(ScriptedBot(REPLIES), one_test(tmp_path, "      - user: hi\n"))
    assert format_result(ok) == f"PASS t ({path}:2:5)"
    assert summary([ok, result, silent]) == "1 passed, 2 failed"
    assert format_report([ok]) == f"PASS t ({path}:2:5)\n1 passed, 0 failed"


# --- a whole hub --------------------------------------------------------------------------------


@pytest.fixture
def bot_dir(tmp_path: Path) -> Path:
    """The small fixture bot (say and handoff flows, tests/) with the demo bot's NLU data."""
    bot = tmp_path / "bot"
    shutil.copytree(FIXTURE, bot)
    shutil.copytree(ROOT / "examples" / "shop" / "nlu", bot / "nlu")
    return bot


async def test_one_hub_and_a_conversation_per_test(
    bot_dir: Path, tmp_path: Path, classifier: IntentClassifier
) -> None:
    write(
        bot_dir / "tests",
        "more.yml",
        "tests:\n"
        "  - name: complaint, then handoff\n"
        "    steps:\n"
        "      - user: /complaint\n"
        "      - status: pending\n"
        "  - name: a new customer talks to the bot\n"  # not the conversation handed off above
        "    steps:\n"
        "      - user: /greet\n"
        "      - status: bot\n"
        "      - bot: /orders and returns/\n"
        "      - press: /human\n"
        "      - bot: /colleague/\n"
        "      - status: pending\n"
        "  - name: a wrong expectation\n"
        "    steps:\n"
        "      - user: /thanks\n"
        "      - bot: Thank you!\n",
    )
    settings = Settings(
        data_dir=tmp_path / "data", secret_key="k" * 40, bot={"path": bot_dir, "language": "en"}
    )
    tests = load_tests(bot_dir / "tests")
    seen: list[str] = []
    results = await run_tests(
        settings, tests, classifier, on_result=lambda r: seen.append(r.test.name)
    )
    assert seen == [t.name for t in tests]
    report = format_report(results)
    assert [r.passed for r in results] == [True, True, True, True, True, False], report
    assert report.splitlines()[-5:] == [
        f"FAIL a wrong expectation ({bot_dir}/tests/more.yml:14:5)",
        f"  {bot_dir}/tests/more.yml:17:9: bot line did not match",
        "    expected: Thank you!",
        "    got:      You're welcome!",
        "5 passed, 1 failed",
    ]


async def test_agent_steps_on_a_whole_hub(
    bot_dir: Path, tmp_path: Path, classifier: IntentClassifier
) -> None:
    """`agent:` steps go through the inbox API's code: the reply reaches the customer and
    opens the conversation, resolving asks for a rating, and a mistake is the step's error."""
    write(
        bot_dir / "tests",
        "agents.yml",
        "tests:\n"
        "  - name: an agent replies and resolves, the customer writes again\n"
        "    steps:\n"
        "      - user: /complaint\n"
        "      - status: pending\n"
        "      - agent: Hi, I've refunded you.\n"
        "      - bot: Hi, I've refunded you.\n"
        "      - status: open\n"
        "      - user: /thanks\n"
        "      - not: /welcome/\n"  # the agent has it: the bot is quiet
        "      - agent: resolve\n"
        "      - bot: /rate it from 1 to 5/\n"
        "      - status: resolved\n"
        "      - user: /thanks\n"
        "      - bot: You're welcome!\n"
        "      - status: bot\n"
        "  - name: take, then resolve twice\n"
        "    steps:\n"
        "      - user: /greet\n"
        "      - agent: take\n"
        "      - status: open\n"
        "      - agent: resolve\n"
        "      - agent: resolve\n",
    )
    settings = Settings(
        data_dir=tmp_path / "data", secret_key="k" * 40, bot={"path": bot_dir, "language": "en"}
    )
    tests = [t for t in load_tests(bot_dir / "tests") if "agents.yml" in t.source]
    replied, twice = await run_tests(settings, tests, classifier)
    assert replied.passed, format_result(replied)
    assert twice.failure is not None and twice.steps_run == 5
    assert twice.failure.message == (
        "error: InvalidTransition: the conversation is already resolved"
    )


def kefu_test(*args: str, config: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["--config", str(config), "test", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_kefu_test_command(
    bot_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KEFU_DATA_DIR", str(tmp_path / "data"))  # the trained model goes there
    monkeypatch.delenv("DATABASE_URL", raising=False)
    config = write(tmp_path, "config.yaml", f"bot:\n  path: {bot_dir}\n  language: en\n")

    code, stdout, _ = kefu_test(config=config, capsys=capsys)
    assert code == 0, stdout
    assert stdout.splitlines() == [
        f"PASS greeting ({bot_dir}/tests/basics.yml:3:5)",
        f"PASS a complaint goes to a person ({bot_dir}/tests/basics.yml:13:5)",
        f"PASS the human button ({bot_dir}/tests/buttons.yaml:2:5)",
        "3 passed, 0 failed",
    ]

    basics = bot_dir / "tests" / "basics.yml"
    basics.write_text(basics.read_text().replace("- bot: /^Hello!/", "- bot: Hi there!"))
    code, stdout, _ = kefu_test(config=config, capsys=capsys)
    assert code == 1
    assert stdout.splitlines()[:6] == [
        f"FAIL greeting ({basics}:3:5)",
        f"  {basics}:7:9: bot line did not match",
        "    expected: Hi there!",
        "    got:      Hello! I'm the test shop assistant.",
        "              I can help with orders and returns.",
        "              [Where is my order?] -> /check_order",
    ]
    assert stdout.splitlines()[-1] == "2 passed, 1 failed"

    code, stdout, _ = kefu_test("-k", "HUMAN BUTTON", config=config, capsys=capsys)
    assert (code, stdout.splitlines()[-1]) == (0, "1 passed, 0 failed")
    code, _, stderr = kefu_test("-k", "nothing like this", config=config, capsys=capsys)
    assert code == 1 and f"no conversation tests in {bot_dir / 'tests'}" in stderr

    write(
        bot_dir / "tests",
        "broken.yml",
        "tests:\n  - name: x\n    steps: [{user: hi}, {bott: hi}]\n",
    )
    code, stdout, _ = kefu_test(config=config, capsys=capsys)
    assert code == 2
    assert stdout.splitlines() == [
        f"{bot_dir}/tests/broken.yml:3:26: unknown step key 'bott' "
        "(a step is one of: user, bot, not, press, agent, status)"
    ]

    empty = tmp_path / "empty"
    (empty / "flows").mkdir(parents=True)
    code, _, stderr = kefu_test("--bot", str(empty), config=config, capsys=capsys)
    assert code == 1 and f"no conversation tests in {empty / 'tests'}" in stderr
