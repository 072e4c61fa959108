"""What the hub itself says to customers, in each language it knows (the bot's own words
come from the bot folder). Picked by the conversation's language, then the default."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "handoff": {
        "en": "I'm passing you to a human colleague. Someone will be with you shortly.",
        "zh": "正在为您转接人工客服，请稍候。",
    },
    "fallback": {
        "en": "Sorry, I didn't understand that. Could you rephrase it?",
        "zh": "抱歉，我没有理解您的意思，可以换个说法吗？",
    },
    "talk_to_human": {"en": "Talk to a human", "zh": "转人工"},
    "did_you_mean": {
        "en": "Sorry, I'm not sure I understood. Did you mean one of these?",
        "zh": "抱歉，我不太确定您的意思。您是想问以下哪个问题？",
    },
    "knowledge_not_found": {
        "en": "Sorry, I couldn't find an answer to that in our help articles.",
        "zh": "抱歉，帮助中心里没有找到相关的答案。",
    },
    "did_this_help": {"en": "Did this answer your question?", "zh": "这解答了您的问题吗？"},
    "yes_thanks": {"en": "Yes, thanks", "zh": "是的，谢谢"},
    "no_human": {"en": "No, talk to a human", "zh": "没有，转人工"},
    "glad_to_help": {
        "en": "Glad I could help! Anything else?",
        "zh": "很高兴能帮到您！还有其他问题吗？",
    },
    "cancelled": {"en": "OK, I've stopped that.", "zh": "好的，已取消。"},
    "invalid_answer": {
        "en": "Sorry, that doesn't look right.",
        "zh": "抱歉，您的回答格式不对。",
    },
    "resume": {"en": "Now, back to where we were.", "zh": "我们继续刚才的话题。"},
    "choose_number": {
        "en": "Reply with the number of your choice.",
        "zh": "请回复选项前的数字。",
    },
}


def text(key: str, language: str | None, default_language: str = "en") -> str:
    """The hub's text `key` in `language`, else the default language, else English."""
    variants = TEXTS[key]
    for lang in (language, default_language, "en"):
        if lang and lang in variants:
            return variants[lang]
    return next(iter(variants.values()))
