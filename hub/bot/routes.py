"""What the admin pages show of the bot being served (files, errors, reload) and the try-it
chat, which talks to the real bot through the built-in `try-it` channel."""

from __future__ import annotations

import asyncio
import weakref
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import Field, field_validator

from channels.memory import MemoryChannel
from flows.schema import iter_steps
from hub.bot.files import BotFiles, current_files, model_stamp, train_classifier
from hub.bot.reloader import BotReloader
from hub.core.receiver import TRY_IT
from hub.core.views import message_view
from hub.features.automations.rules import AutomationError, load_bot_automations
from hub.features.automations.runner import Automations
from hub.inbox.deps import CurrentAgent, DesignerAgent, HubDep, actor, part
from hub.inbox.schemas import Body
from hub.messages import Inbound
from hub.ops.settings import SettingsError
from hub.yaml_places import by_place
from nlu import NluDataError

router = APIRouter(prefix="/api/v1", tags=["admin"])

KEEP_SENT = 100  # what the try-it channel remembers of what it "delivered"

Reloader = Annotated[BotReloader, Depends(part("reloader"))]
Rules = Annotated[Automations, Depends(part("automations"))]


# ---- the bot ----------------------------------------------------------------------------


def _relative(path: str, folder: Path) -> str:
    try:
        return str(Path(path).relative_to(folder))
    except ValueError:
        return path


def bot_view(
    folder: Path, reloader: BotReloader, automations: Automations, files: BotFiles
) -> dict[str, Any]:
    status = reloader.status()
    flows = []
    for name in sorted(files.flows):
        loaded = files.flows[name]
        line = loaded.source.rsplit(":", 2)[-2] if loaded.source.count(":") >= 2 else ""
        flows.append(
            {
                "name": name,
                "description": loaded.flow.description,
                "intents": list(loaded.flow.trigger.intents),
                "steps": sum(1 for _ in iter_steps(loaded.flow.steps)),
                "file": _relative(loaded.path, folder),
                **({"line": int(line)} if line.isdigit() else {}),
            }
        )
    examples: dict[str, int] = {}
    for example in files.data.training_examples if files.data else []:
        examples[example.intent] = examples.get(example.intent, 0) + 1
    return {
        "path": status["path"],
        "loaded_at": status["loaded_at"],
        "reloads": status["reloads"],
        "served_errors": list(reloader.errors),
        "errors": list(files.errors),
        "flows": flows,
        "intents": [{"name": n, "examples": examples[n]} for n in sorted(examples)],
        "automations": [  # the rules being served, in the order they run
            {
                "name": loaded.name,
                "on": loaded.rule.on,
                "file": _relative(loaded.path, folder),
                "line": loaded.line,
            }
            for loaded in automations.rules
        ],
        "knowledge": [
            {
                "id": entry.id,
                "kind": entry.kind,
                "title": entry.title,
                "languages": sorted(entry.answer),
                "file": entry.path,
                "line": entry.line,
            }
            for entry in files.knowledge.entries
        ],
    }


@router.get("/bot")
async def get_bot(
    hub: HubDep, reloader: Reloader, automations: Rules, agent: CurrentAgent
) -> dict[str, Any]:
    """The bot being served (`loaded_at`, `served_errors`: why the last reload was refused,
    `automations`: the rules running) and its folder as it is now: `errors` (automations'
    too), flows, intents and knowledge entries."""
    files = await asyncio.to_thread(current_files, hub.settings)
    view = bot_view(hub.settings.bot.path, reloader, automations, files)
    try:
        intents = files.data.intents if files.data else None
        await asyncio.to_thread(load_bot_automations, hub.settings, intents)
    except AutomationError as e:
        view["errors"] = by_place([*view["errors"], *e.errors])
    return view


class ReloadBody(Body):
    force_train: bool = False


_reloading: weakref.WeakKeyDictionary[Any, asyncio.Lock] = weakref.WeakKeyDictionary()


@router.post("/bot/reload")
async def reload_bot(
    body: ReloadBody, hub: HubDep, reloader: Reloader, agent: DesignerAgent
) -> dict[str, Any]:
    """Load the bot folder again (retraining the NLU when its data changed, or always with
    `force_train`). With invalid files `ok` is false, `errors` says where, and the last good
    bot keeps serving."""
    lock = _reloading.setdefault(hub, asyncio.Lock())
    async with lock:
        settings = hub.settings
        before = await asyncio.to_thread(model_stamp, settings)
        trained = False
        errors: list[str] = []
        if body.force_train:
            files = await asyncio.to_thread(current_files, settings)
            errors = list(files.errors)
            if not errors:
                try:
                    await asyncio.to_thread(train_classifier, settings, True)
                    trained = True
                except (SettingsError, NluDataError) as e:
                    errors = str(e).splitlines()
        if not errors:
            errors = await reloader.reload()
        after = await asyncio.to_thread(model_stamp, hub.settings)
    trained = trained or (not errors and after != before)
    await hub.store.audit(actor(agent), "bot.reload", ok=not errors, trained=trained)
    return {
        "ok": not errors,
        "errors": errors,
        "loaded_at": reloader.loaded_at.isoformat(),
        "trained": trained,
    }


# ---- try it -----------------------------------------------------------------------------


class TryBody(Body):
    text: str = Field(min_length=1, max_length=2000, description="what the customer says")
    session: str = Field(
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="1 to 64 of A-Z a-z 0-9 _ -; a new one starts a new customer",
    )

    @field_validator("text")
    @classmethod
    def _not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("text is blank: say something")
        return text


@router.post("/bot/try")
async def try_bot(body: TryBody, hub: HubDep, agent: CurrentAgent) -> dict[str, Any]:
    """Say something to the bot as a customer on the `try-it` channel (`/intent{...}` is an
    intent payload, as on the REST channel): the bot's real answer, and what the NLU made
    of the message. Each agent's session is a customer of its own."""
    channel = hub.channels.get(TRY_IT)
    if channel is None:
        raise HTTPException(
            409, f"the {TRY_IT!r} channel is off: config.yaml has a disabled channel of that name"
        )
    stored: list[int] = []

    async def on_stored(message_id: int) -> None:
        stored.append(message_id)

    inbound = Inbound(
        channel=TRY_IT,
        sender_id=f"agent{agent.id}-{body.session}",
        sender_name=agent.name,
        text=body.text,
    )
    await hub.receive(inbound, on_stored)
    if isinstance(channel, MemoryChannel):
        del channel.sent[:-KEEP_SENT]
    message = await hub.store.get_message(stored[0]) if stored else None
    if message is None:
        raise HTTPException(409, "the message was not stored: try again")
    conversation = await hub.store.get_conversation(message.conversation_id)
    assert conversation is not None and message.id is not None
    await hub.store.audit(actor(agent), "bot.try", conversation.id, session=body.session)
    replies = await hub.store.replies_to(message.id)
    return {
        "conversation_id": conversation.id,
        "status": str(conversation.status),
        "nlu": message.payload.get("nlu"),
        "replies": [message_view(m) for m in replies],
    }
