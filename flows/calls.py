"""The steps that call out of the flow: a rasa-sdk action (`action:`) and an HTTP API
(`http:`), with what they bring back into the slots and the replies."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from flows.actions import ActionRequest
from flows.schema import ActionStep, HttpSpec
from hub.messages import Attachment, Button, Kind, Reply
from hub.ports import TurnContext


def action_request(
    step: ActionStep,
    slots: dict[str, Any],
    context: TurnContext,
    language: str,
    said: Sequence[Reply] = (),
) -> ActionRequest:
    """What the action is told, as rasa-sdk's tracker has it: the slots, the latest message,
    and the conversation's history (`context.history`, read only when the action runs) with
    what the flow `said` in this turn before the action."""
    u = context.understanding
    channel = context.contact.get("channel")
    return ActionRequest(
        name=step.action,
        sender_id=str(context.conversation_id),
        slots=dict(slots),
        latest_message={
            "text": u.text,
            "intent": {"name": u.intent, "confidence": u.confidence},
            "entities": [dict(e) for e in u.entities],
            "intent_ranking": [{"name": n, "confidence": c} for n, c in u.ranking],
        },
        language=language,
        history=context.history,
        channel=channel if isinstance(channel, str) else None,
        said=tuple(
            {
                "text": r.text,
                "buttons": [{"title": b.title, "payload": b.payload} for b in r.buttons],
            }
            for r in said
        ),
    )


def action_replies(messages: list[dict[str, Any]]) -> list[Reply]:
    """The messages an action dispatched (rasa-sdk's `responses`) as replies; empty ones
    are left out."""
    return [reply for message in messages if (reply := _action_reply(message)) is not None]


def _action_reply(message: dict[str, Any]) -> Reply | None:
    text = str(message.get("text") or "")
    buttons = tuple(
        Button(title=str(b.get("title", "")), payload=str(b.get("payload", "")))
        for b in message.get("buttons") or []
        if isinstance(b, dict)
    )
    attachments: tuple[Attachment, ...] = ()
    if message.get("image"):
        attachments = (Attachment(kind=Kind.IMAGE, url=str(message["image"])),)
    if not (text or buttons or attachments):
        return None
    return Reply(text=text, buttons=buttons, attachments=attachments)


async def call_http(
    client: httpx.AsyncClient,
    spec: HttpSpec,
    render: Callable[[Any], Any],
    slots: dict[str, Any],
) -> str | None:
    """Call the API (`render` fills the templates of the URL, headers and JSON body); save
    what the step asks for into `slots`. Returns what went wrong, or None."""
    url = render(spec.url) or ""
    headers = {k: render(v) or "" for k, v in spec.headers.items()}
    body = render(spec.json_) if spec.json_ is not None else None
    try:
        response = await client.request(
            spec.method, url, headers=headers, json=body, timeout=spec.timeout
        )
    except httpx.TimeoutException:
        return f"{spec.method} {url} timed out after {spec.timeout:g} s"
    except httpx.HTTPError as e:
        return f"{spec.method} {url} failed: {type(e).__name__}: {e}"
    if response.status_code >= 300:  # redirects are not followed: an API moved is an error
        return f"{spec.method} {url} answered {response.status_code}"
    if not spec.save:
        return None
    try:
        data = response.json()
    except ValueError:
        return f"{spec.method} {url} did not answer JSON"
    for slot, path in spec.save.items():
        try:
            slots[slot] = json_path(data, path)
        except LookupError:
            return f"{spec.method} {url}: the response has no {path}"
    return None


_PATH_PART = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")


def json_path(data: Any, path: str) -> Any:
    """`$.order.items[0].name` (or without `$.`) in decoded JSON; LookupError when absent."""
    rest = path.strip()
    rest = rest[1:] if rest.startswith("$") else rest
    value = data
    position = 0
    while position < len(rest):
        m = _PATH_PART.match(rest, position)
        if not m:
            raise LookupError(path)
        key, index = m.group(1), m.group(2)
        if index is not None:
            if not isinstance(value, list) or int(index) >= len(value):
                raise LookupError(path)
            value = value[int(index)]
        else:
            if isinstance(value, dict) and key in value:
                value = value[key]
            elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
                value = value[int(key)]
            else:
                raise LookupError(path)
        position = m.end()
    return value
