"""What the hub itself says to customers, in each language it knows (the bot's own words
come from the bot folder). Picked by the conversation's language, then the default."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "handoff": {
        "en": "I'm passing you to a human colleague. Someone will be with you shortly.",
        "zh": "正在为您转接人工客服，请稍候。",
    },
    # a handoff outside business hours (hub/features/hours/hours.py): {when} "on Monday at 09:00",
    # {zone}
    "after_hours": {
        "en": "Our team is away right now and back {when} ({zone}). Leave your message here "
        "and we'll answer it when we're back.",
        "zh": "人工客服现在不在工作时间，将于{when}（{zone}）回来。"
        "请在这里留言，我们上班后会尽快回复您。",
    },
    "after_hours_later": {
        "en": "Our team is away right now. Leave your message here and we'll answer it when "
        "we're back.",
        "zh": "人工客服现在不在工作时间。请在这里留言，我们上班后会尽快回复您。",
    },
    "after_hours_email": {
        "en": " If you'd like a reply by email, leave your email address too.",
        "zh": "如需邮件回复，请一并留下您的邮箱地址。",
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
    # a customer waiting for an agent (hub/features/routing/assignment.py): their place, and the
    # expected wait
    "queue_place": {
        "en": "You are number {position} in the queue.",
        "zh": "您目前排在第 {position} 位。",
    },
    "queue_wait": {
        "en": "You are number {position} in the queue; the expected wait is about {minutes} min.",
        "zh": "您目前排在第 {position} 位，预计等待约 {minutes} 分钟。",
    },
    "csat_question": {
        "en": "How satisfied are you with the help you got? Please rate it from 1 to 5.",
        "zh": "您对本次服务满意吗？请打 1 到 5 分。",
    },
    # its buttons, worst to best: on a channel without buttons they are numbered 1 to 5
    "csat_1": {"en": "Very dissatisfied", "zh": "非常不满意"},
    "csat_2": {"en": "Dissatisfied", "zh": "不满意"},
    "csat_3": {"en": "Neutral", "zh": "一般"},
    "csat_4": {"en": "Satisfied", "zh": "满意"},
    "csat_5": {"en": "Very satisfied", "zh": "非常满意"},
    "csat_thanks": {
        "en": "Thank you for your rating!",
        "zh": "感谢您的评价！",
    },
}


def text(key: str, language: str | None, default_language: str = "en") -> str:
    """The hub's text `key` in `language`, else the default language, else English."""
    variants = TEXTS[key]
    for lang in (language, default_language, "en"):
        if lang and lang in variants:
            return variants[lang]
    return next(iter(variants.values()))
