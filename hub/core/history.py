"""The conversation so far as Rasa tracker events, for the actions that read a tracker's
history (`TurnContext.history`): read from the store only when an action asks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from hub.store import Message, Store

HISTORY_LIMIT = 100  # messages: what an action may look back on


def tracker_event(message: Message) -> dict[str, Any]:
    """One stored message as a Rasa tracker event: `user` for the customer's, `bot` for the
    bot's and agents' (Rasa has no agent; their words are what the customer was told)."""
    timestamp = message.created_at.timestamp()
    if message.sender_type == "contact":
        nlu = message.payload.get("nlu") or {}
        return {
            "event": "user",
            "text": message.text,
            "timestamp": timestamp,
            "parse_data": {
                "text": message.text,
                "intent": {"name": nlu.get("intent"), "confidence": nlu.get("confidence", 0.0)},
                "entities": list(nlu.get("entities", [])),
                "intent_ranking": [
                    {"name": name, "confidence": confidence}
                    for name, confidence in nlu.get("ranking", [])
                ],
            },
            "input_channel": message.channel,
            "message_id": str(message.id),
        }
    buttons = message.payload.get("buttons") or []
    return {
        "event": "bot",
        "text": message.text,
        "timestamp": timestamp,
        "data": {"buttons": [{"title": b["title"], "payload": b["payload"]} for b in buttons]},
    }


def history(
    store: Store, conversation_id: int, message_id: int
) -> Callable[[], Awaitable[list[dict[str, Any]]]]:
    """`TurnContext.history` for a turn on message `message_id`: the events before it."""

    async def read() -> list[dict[str, Any]]:
        earlier = await store.messages_before(conversation_id, message_id, HISTORY_LIMIT)
        return [tracker_event(m) for m in earlier]

    return read
