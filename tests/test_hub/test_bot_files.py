"""Flows through the whole hub: a restart mid-flow, text-only channels, the reply language,
and the hot reload of a running hub's bot files."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import pytest
from fastapi.testclient import TestClient

from channels.base import Capabilities
from channels.memory import MemoryChannel
from channels.registry import register
from hub.app import create_app
from hub.ops.settings import ChannelConfig, Settings
from hub.testing import TestBot
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[2]

FLOWS = """\
flows:
  returns:
    trigger: {intents: [returns]}
    steps:
      - ask: order_id
        say: {en: "Which order?", zh: "哪个订单？"}
        validate: '^\\d{6,12}$'
      - ask: reason
        say: {en: "Why do you return it?", zh: "退货原因？"}
        choices:
          - {value: too_small, title: {en: Too small, zh: 太小了}}
          - {value: broken, title: {en: Broken, zh: 坏了}}
      - say: {en: "Return of {{ slots.order_id }}: {{ slots.reason }}.", zh: "订单 {{ slots.order_id }} 退货：{{ slots.reason }}。"}
"""


@pytest.fixture
def bot_folder(tmp_path: Path) -> Path:
    bot = tmp_path / "bot"
    shutil.copytree(ROOT / "examples/shop/nlu", bot / "nlu")
    (bot / "flows").mkdir()
    (bot / "flows" / "main.yml").write_text(FLOWS, encoding="utf-8")
    return bot


@pytest.fixture
def bot_settings(sqlite_url: str, tmp_path: Path, bot_folder: Path) -> Settings:
    settings = make_settings(sqlite_url, tmp_path)
    return settings.model_copy(update={"bot": settings.bot.model_copy(update={"path": bot_folder})})


async def test_a_restart_mid_flow_resumes_at_the_same_step(bot_settings: Settings) -> None:
    async with TestBot.running(bot_settings) as bot:
        assert [m.text for m in await bot.say("I want to return my shoes")] == ["Which order?"]
        await bot.say("12345678")
    async with TestBot.running(bot_settings) as bot:  # a new hub on the same database
        replies = await bot.say("Broken", message_id="after-restart")
        assert [m.text for m in replies] == ["Return of 12345678: broken."]


class TextOnly(MemoryChannel):
    type: ClassVar[str] = "memory_text"
    capabilities: ClassVar[Capabilities] = Capabilities(buttons=False)


class SmsCustomer(TestBot):
    CHANNEL = "sms"


async def test_text_only_channels_get_numbered_options(bot_settings: Settings) -> None:
    register("memory_text", TextOnly)
    settings = bot_settings.model_copy(
        update={"channels": [ChannelConfig(name="sms", type="memory_text")]}
    )
    async with TestBot.running(settings) as bot:
        customer = SmsCustomer(bot.hub, "138")
        await customer.say("我要退货")
        [question] = await customer.say("12345678")
        assert question.text == "退货原因？\n1. 太小了\n2. 坏了\n请回复选项前的数字。"
        assert [m.text for m in await customer.say("2")] == ["订单 12345678 退货：broken。"]
        # a number with no options on offer is just text
        assert [m.text for m in await customer.say("2")] != ["订单 12345678 退货：broken。"]


async def test_the_last_menu_of_a_turn_is_the_one_numbers_answer(bot_settings: Settings) -> None:
    register("memory_text", TextOnly)
    flows = FLOWS.replace(
        "      - ask: reason\n",
        "      - say: Menu one\n        buttons: [{title: Human, payload: /human}]\n"
        "      - ask: reason\n",
    )
    (bot_settings.bot.path / "flows" / "main.yml").write_text(flows, "utf-8")
    settings = bot_settings.model_copy(
        update={"channels": [ChannelConfig(name="sms", type="memory_text")]}
    )
    async with TestBot.running(settings) as bot:
        customer = SmsCustomer(bot.hub, "139")
        await customer.say("I want to return my shoes")
        menu_one, menu_two = await customer.say("12345678")
        assert menu_one.text.startswith("Menu one\n1. Human")
        assert menu_two.text.startswith("Why do you return it?\n1. Too small\n2. Broken")
        assert [m.text for m in await customer.say("1")] == ["Return of 12345678: too_small."]


async def test_asking_for_a_human_mid_flow_hands_over_the_slots(bot_settings: Settings) -> None:
    async with TestBot.running(bot_settings) as bot:
        await bot.say("I want to return my shoes")
        await bot.say("12345678")
        await bot.press("/human")
        assert await bot.status() == "pending"
        conversation = await bot.hub.store.get_conversation(await bot.conversation_id())
        assert conversation.handoff["slots"] == {"order_id": "12345678"}
        assert conversation.handoff["reason"] == "customer_request"


async def test_the_reply_language_follows_the_customer(bot_settings: Settings) -> None:
    async with TestBot.running(bot_settings) as bot:
        assert [m.text for m in await bot.say("我想退货")] == ["哪个订单？"]
        # digits tell no language: the conversation's stays
        assert [m.text for m in await bot.say("12345678")] == ["退货原因？"]
        english = bot.customer("en-customer")
        assert [m.text for m in await english.say("I'd like to return an item")] == ["Which order?"]


# ---- hot reload ------------------------------------------------------------------------------


async def test_reload_swaps_in_valid_files_and_keeps_the_last_good_bot(
    bot_settings: Settings, bot_folder: Path
) -> None:
    async with TestBot.running(bot_settings) as bot:
        reloader = bot.hub.reloader
        flows = bot_folder / "flows" / "main.yml"
        flows.write_text(FLOWS.replace("Which order?", "Your order number, please?"), "utf-8")
        assert await reloader.reload() == []
        assert [m.text for m in await bot.say("I want to return this")] == [
            "Your order number, please?"
        ]
        await bot.say("cancel")

        flows.write_text(FLOWS + "      - goto: nowhere\n      - dance: 1\n", "utf-8")
        errors = await reloader.reload()
        assert any(f"{flows}:15:" in e and "unknown step kind" in e for e in errors)
        assert reloader.status()["errors"] == errors
        # the last good bot keeps serving
        assert [m.text for m in await bot.customer("b").say("return please")] == [
            "Your order number, please?"
        ]


async def test_reload_retrains_when_the_nlu_data_changes(
    bot_settings: Settings, bot_folder: Path
) -> None:
    async with TestBot.running(bot_settings) as bot:
        nlu = bot_folder / "nlu" / "support.yml"
        nlu.write_text(
            nlu.read_text("utf-8")
            + "\n- intent: opening_hours\n  examples: |\n"
            + "".join(
                f"    - {t}\n"
                for t in [
                    "when are you open",
                    "what are your opening hours",
                    "are you open on sunday",
                    "你们几点开门",
                    "营业时间是什么时候",
                    "周末营业吗",
                ]
            ),
            "utf-8",
        )
        flows = bot_folder / "flows" / "main.yml"
        flows.write_text(
            FLOWS
            + "  hours:\n    trigger: {intents: [opening_hours]}\n"
            + "    steps: [{say: 'We are open 9-18.'}]\n",
            "utf-8",
        )
        assert await bot.hub.reloader.reload() == []
        assert "opening_hours" in bot.hub.classifier.intents  # type: ignore[attr-defined]
        assert [m.text for m in await bot.say("what are your opening hours on sunday?")] == [
            "We are open 9-18."
        ]


def test_the_watcher_reloads_a_running_app_and_readyz_shows_errors(
    bot_settings: Settings, bot_folder: Path
) -> None:
    settings = bot_settings.model_copy(
        update={"bot": bot_settings.bot.model_copy(update={"reload": True})}
    )
    with TestClient(create_app(settings)) as client:
        flows = bot_folder / "flows" / "main.yml"
        flows.write_text(FLOWS.replace("  returns:", "  returns:\n    bogus: 1"), "utf-8")
        detail = _wait_for(client, lambda bot: bool(bot["errors"]))
        assert any("flows.returns.bogus" in e for e in detail["errors"])
        assert client.get("/readyz").status_code == 200  # the last good bot serves

        flows.write_text(FLOWS, "utf-8")
        detail = _wait_for(client, lambda bot: not bot["errors"] and bot["reloads"] >= 1)
        assert detail["reloads"] >= 1


def _wait_for(client: TestClient, ok: object, seconds: float = 15.0) -> dict[str, object]:
    import time

    deadline = time.monotonic() + seconds
    while True:
        bot = client.get("/readyz").json()["bot"]
        if ok(bot):  # type: ignore[operator]
            return bot  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise AssertionError(f"the bot was not reloaded in {seconds} s: {bot}")
        time.sleep(0.1)


async def test_reload_applies_the_bot_section_of_a_changed_config_file(
    tmp_path: Path, bot_folder: Path
) -> None:
    import os

    from hub.ops.settings import load_settings

    config = tmp_path / "config.yaml"
    config.write_text(f"bot: {{path: {bot_folder}, language: en, reload: false}}\n", "utf-8")
    settings = load_settings(config, data_dir=tmp_path / "data")
    async with TestBot.running(settings) as bot:
        assert [m.text for m in await bot.press("/returns")] == ["Which order?"]
        config.write_text(f"bot: {{path: {bot_folder}, language: zh, reload: false}}\n", "utf-8")
        os.utime(config, (1, 1))  # a different modification time, whatever the clock says
        assert await bot.hub.reloader.reload() == []
        assert [m.text for m in await bot.customer("new").press("/returns")] == ["哪个订单？"]
        config.write_text("bot: {nlu_threshold: 7}\n", "utf-8")
        os.utime(config, (2, 2))
        errors = await bot.hub.reloader.reload()
        assert errors and "bot.nlu_threshold" in errors[0]


async def test_a_cancel_word_stops_the_flow_even_if_read_as_a_handoff_intent(
    bot_settings: Settings,
) -> None:
    class SaysHuman:
        """A classifier that reads everything as a request for a human."""

        def parse(self, text: str) -> object:
            from nlu.classifier import Parse

            return Parse(text=text, intent="human", confidence=0.9, ranking=[("human", 0.9)])

    async with TestBot.running(bot_settings) as bot:
        await bot.press("/returns")
        bot.hub.pipeline.bot = replace(bot.hub.pipeline.bot, classifier=SaysHuman())
        assert [m.text for m in await bot.say("stop")] == ["OK, I've stopped that."]
        assert await bot.status() == "bot"
        await bot.say("please, a person")
        assert await bot.status() == "pending"


FAQ = """\
faq:
  - id: invoice-request
    questions: ["How do I get an invoice?", "怎么开发票"]
    answer: {en: "Tap Request invoice on the order page.", zh: "在订单页点击申请开票。"}
"""


async def test_knowledge_answers_reload_and_bad_files_keep_the_last_good_base(
    bot_settings: Settings, bot_folder: Path
) -> None:
    knowledge = bot_folder / "knowledge"
    knowledge.mkdir()
    faq = knowledge / "invoices.yml"
    faq.write_text(FAQ, "utf-8")
    async with TestBot.running(bot_settings) as bot:
        [answer] = await bot.say("how do I get an invoice?")
        assert answer.text.startswith("Tap Request invoice on the order page.")

        faq.write_text(FAQ.replace("Tap Request", "Press Request"), "utf-8")
        assert await bot.hub.reloader.reload() == []
        [answer] = await bot.customer("b").say("how do I get an invoice?")
        assert answer.text.startswith("Press Request invoice")

        faq.write_text(FAQ.replace("questions:", "qustions:"), "utf-8")
        errors = await bot.hub.reloader.reload()
        assert any(e.startswith(f"{faq}:") and "qustions" in e for e in errors), errors
        [answer] = await bot.customer("c").say("how do I get an invoice?")
        assert answer.text.startswith("Press Request invoice")  # the last good base serves


HELPDESK = """\
  helpdesk:
    trigger: {keywords: [helpdesk]}
    steps:
      - ask: topic
        say: {en: "What is your question?"}
        type: text
      - say: {knowledge: "{{ slots.topic }}"}
"""


async def test_a_flow_step_says_the_best_article(bot_settings: Settings, bot_folder: Path) -> None:
    (bot_folder / "knowledge").mkdir()
    (bot_folder / "knowledge" / "invoices.yml").write_text(FAQ, "utf-8")
    (bot_folder / "flows" / "main.yml").write_text(FLOWS + HELPDESK, "utf-8")
    async with TestBot.running(bot_settings) as bot:
        assert [m.text for m in await bot.say("helpdesk")] == ["What is your question?"]
        [answer] = await bot.say("How do I get an invoice?")
        assert answer.text == "Tap Request invoice on the order page."
        await bot.say("helpdesk")
        [nothing] = await bot.say("what is the meaning of life")
        assert nothing.text.startswith("Sorry, I couldn't find an answer")


async def test_a_helpful_answer_is_counted_as_self_served(
    bot_settings: Settings, bot_folder: Path
) -> None:
    from sqlmodel import select

    from hub.store import AuditLog

    (bot_folder / "knowledge").mkdir()
    (bot_folder / "knowledge" / "invoices.yml").write_text(FAQ, "utf-8")
    async with TestBot.running(bot_settings) as bot:
        [answer] = await bot.say("how do I get an invoice?")
        yes = answer.buttons[0]
        await bot.press(yes.payload, yes.title)
        async with bot.hub.db.read() as s:
            actions = [a.action for a in (await s.exec(select(AuditLog))).all()]
    assert "knowledge.answered" in actions and "knowledge.helpful" in actions
