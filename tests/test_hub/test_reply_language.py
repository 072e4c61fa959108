"""The reply language across messages that carry none: a bare order or tracking number, an id,
a URL, an email address or an emoji keeps the conversation's language (P12 point 4)."""

from __future__ import annotations

import re

import pytest

from flows import FlowEngine
from hub.messages import Sender
from hub.ops.settings import Settings
from hub.testing import TestBot
from nlu import IntentClassifier

HAN = re.compile("[\u4e00-\u9fff]")

NO_LANGUAGE = [
    "SF1234567890",
    "20240517008",
    "JD0001234",
    "order-2024-0517",
    "AB12CD34",
    "https://shop.example.com/orders/20240517008",
    "li.wei@example.com",
    "👍",
]


async def said_in(bot: TestBot, text: str) -> list[str]:
    """The texts the hub answered `text` with (the bot's and the hub's own)."""
    replies = await bot.say(text)
    texts = [r.text for r in replies if r.sender in (Sender.BOT, Sender.SYSTEM) and r.text]
    assert texts, f"no answer to {text!r}"
    return texts


def chinese(texts: list[str]) -> bool:
    return all(HAN.search(t) for t in texts)


def english(texts: list[str]) -> bool:
    return not any(HAN.search(t) for t in texts)


async def stored_language(bot: TestBot) -> str | None:
    conversation = await bot.hub.store.get_conversation(await bot.conversation_id())
    assert conversation is not None
    return conversation.language


@pytest.mark.parametrize("start", ["我要查物流", "我要退款"])
@pytest.mark.parametrize("bare", NO_LANGUAGE)
async def test_a_chinese_conversation_stays_chinese(
    testbot: TestBot, start: str, bare: str
) -> None:
    assert chinese(await said_in(testbot, start))
    assert chinese(await said_in(testbot, bare)), bare
    assert await stored_language(testbot) == "zh"


@pytest.mark.parametrize("start", ["where is my order", "I want a refund"])
@pytest.mark.parametrize("bare", NO_LANGUAGE)
async def test_an_english_conversation_stays_english(
    settings: Settings, classifier: IntentClassifier, flows: FlowEngine, start: str, bare: str
) -> None:
    # the bot's default is Chinese here, so English can only come from the conversation
    zh_default = settings.model_copy(
        update={"bot": settings.bot.model_copy(update={"language": "zh"})}
    )
    async with TestBot.running(zh_default, classifier, flows) as bot:
        assert english(await said_in(bot, start))
        assert english(await said_in(bot, bare)), bare
        assert await stored_language(bot) == "en"


async def test_a_conversation_that_starts_with_a_number_is_in_the_bots_language_until_words(
    testbot: TestBot,
) -> None:
    # the test bot's default language is English
    assert english(await said_in(testbot, "SF1234567890"))
    assert chinese(await said_in(testbot, "我的订单到哪了"))
    assert chinese(await said_in(testbot, "20240517008"))
    assert await stored_language(testbot) == "zh"


async def test_words_switch_the_language_even_with_an_id_in_them(testbot: TestBot) -> None:
    assert chinese(await said_in(testbot, "我要查物流"))
    assert english(await said_in(testbot, "my parcel is SF1234567890"))
    assert await stored_language(testbot) == "en"
