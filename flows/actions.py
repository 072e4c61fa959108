"""Rasa-sdk custom actions for `action:` steps, in process or over HTTP.

A bot's `actions.py` holds `rasa_sdk.Action` subclasses, exactly as in a Rasa project; or the bot
names the URL of a running Rasa action server (`python -m rasa_sdk`, the webhook protocol Rasa's
`RemoteAction` speaks). Either way the action gets a rasa-sdk `Tracker`, a
`CollectingDispatcher` and a minimal domain; the `SlotSet` events it returns set slots and what
it dispatches is said. The tracker has the flow's slots, the latest message in Rasa's parse-data
shape (its `metadata.language` the reply language) and the conversation's events as Rasa
records them, so `tracker.events`, `get_last_event_for("bot")`, `events_after_latest_restart()`
and `get_latest_input_channel()` work: the conversation's earlier messages (`user` events, each
after an `action_listen`, and `bot` events for what the bot and agents said; at most
hub.core.history.HISTORY_LIMIT, read from the store only when an action runs), then this turn's
`action_listen` and `user` event, what the flow said in this turn before the action (`bot`),
and one `slot` event per slot of the flow.

Events other than `SlotSet` have no meaning in a flow and are ignored (logged): `FollowupAction`,
`AllSlotsReset`, `Restarted`, `ActiveLoop`, reminders, `BotUttered` (as in Rasa, only the
dispatched `responses` are said, not `BotUttered` events), `UserUtteranceReverted`, and so on.

Both runners hand back the same thing: the in-process one puts its result through JSON as the
action server does, so an action behaves the same either way (a tuple comes back as a list, a
value JSON cannot hold is an error rather than a surprise when the conversation is saved).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import importlib.util
import inspect
import json
import logging
import sys
import time
import types
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import rasa_sdk
from rasa_sdk.executor import ActionExecutor, CollectingDispatcher
from rasa_sdk.interfaces import Action, ActionExecutionRejection, Tracker

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActionRequest:
    """What an action is run with."""

    name: str  # the action's name, e.g. "lookup_order"
    sender_id: str  # the conversation's id as text
    slots: dict[str, Any]
    # Rasa's parse data: {"text", "intent": {"name", "confidence"}, "entities", "intent_ranking"}
    latest_message: dict[str, Any]
    language: str = "en"  # given to the action as latest_message["metadata"]["language"]
    # The conversation's earlier messages as Rasa tracker events (TurnContext.history),
    # read when the action runs; None: no history (a flow run outside a hub).
    history: Callable[[], Awaitable[list[dict[str, Any]]]] | None = None
    channel: str | None = None  # this message's channel: the user event's input_channel
    # What the flow said in this turn before the action: {"text", "buttons"} each
    said: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class ActionOutcome:
    """What an action did."""

    slots: dict[str, Any]  # from its SlotSet events, in order (a later one wins)
    messages: list[dict[str, Any]]  # what it dispatched: action-server `responses` items


class ActionError(Exception):
    """An action could not be run; the message says what failed."""


class ActionRunner(Protocol):
    def names(self) -> set[str] | None:
        """The actions offered, or None when that is not known (an action server)."""
        ...

    async def run(self, request: ActionRequest) -> ActionOutcome: ...


async def tracker_state(request: ActionRequest) -> dict[str, Any]:
    """The tracker as the action server receives it (rasa-sdk's `TrackerState`)."""
    latest = copy.deepcopy(request.latest_message)
    metadata = latest.get("metadata")
    metadata = dict(metadata) if isinstance(metadata, dict) else {}
    metadata["language"] = request.language
    latest["metadata"] = metadata
    return {
        "sender_id": request.sender_id,
        "slots": copy.deepcopy(request.slots),
        "latest_message": latest,
        "events": await tracker_events(request, latest),
        "paused": False,
        "followup_action": None,
        "active_loop": {},
        "latest_action_name": "action_listen",  # as in Rasa: the action runs after a message
    }


async def tracker_events(request: ActionRequest, latest: dict[str, Any]) -> list[dict[str, Any]]:
    """The conversation as Rasa tracker events, oldest first (see the module's docstring)."""
    earlier: list[dict[str, Any]] = []
    if request.history is not None:
        try:
            earlier = await request.history()
        except Exception as e:
            raise ActionError(
                f"action {request.name!r}: reading the conversation's history failed: "
                f"{type(e).__name__}: {e}"
            ) from e
    events: list[dict[str, Any]] = []
    for event in copy.deepcopy(earlier):
        if event.get("event") == "user":  # Rasa listens before each message
            events.append(_listen(event.get("timestamp")))
        events.append(event)
    now = time.time()
    events.append(_listen(now))
    events.append(
        {
            "event": "user",
            "timestamp": now,
            "text": latest.get("text"),
            "parse_data": copy.deepcopy(latest),
            "input_channel": request.channel,
            "message_id": None,
            "metadata": copy.deepcopy(latest["metadata"]),
        }
    )
    for said in request.said:
        data = {"buttons": copy.deepcopy(said.get("buttons") or [])}
        events.append({"event": "bot", "timestamp": now, "text": said.get("text"), "data": data})
    events.extend(
        {"event": "slot", "timestamp": now, "name": name, "value": copy.deepcopy(value)}
        for name, value in request.slots.items()
    )
    return events


def _listen(timestamp: Any) -> dict[str, Any]:
    return {
        "event": "action",
        "timestamp": timestamp,
        "name": "action_listen",
        "policy": None,
        "confidence": None,
    }


def domain_of(request: ActionRequest) -> dict[str, Any]:
    """A minimal domain (rasa-sdk's `DomainDict`): the slots the flow has, no responses."""
    message = request.latest_message
    intents: list[str] = []
    intent = message.get("intent")
    ranking = message.get("intent_ranking")
    for item in [intent, *(ranking if isinstance(ranking, list) else [])]:
        name = item.get("name") if isinstance(item, dict) else None
        if isinstance(name, str) and name not in intents:
            intents.append(name)
    entities: list[str] = []
    found = message.get("entities")
    for entity in found if isinstance(found, list) else []:
        kind = entity.get("entity") if isinstance(entity, dict) else None
        if isinstance(kind, str) and kind not in entities:
            entities.append(kind)
    return {
        "version": "3.1",
        "intents": intents,
        "entities": entities,
        "slots": {
            name: {"type": "any", "influence_conversation": False, "mappings": [{"type": "custom"}]}
            for name in request.slots
        },
        "responses": {},
        "actions": [request.name],
        "forms": {},
        "session_config": {"session_expiration_time": 60, "carry_over_slots_to_new_session": True},
    }


def outcome_of(name: str, events: Any, responses: Any, source: str) -> ActionOutcome:
    """Slots from the `SlotSet` events, the responses as they are; ActionError when malformed."""

    def malformed(why: str) -> ActionError:
        return ActionError(f"action {name!r}: {source} returned a malformed result: {why}")

    if not isinstance(events, list):
        raise malformed(f"events is {type(events).__name__}, not a list")
    if not isinstance(responses, list):
        raise malformed(f"responses is {type(responses).__name__}, not a list")
    slots: dict[str, Any] = {}
    ignored: list[str] = []
    for event in events:
        if not isinstance(event, dict):
            raise malformed(f"an event is {type(event).__name__}, not an object: {event!r}")
        if event.get("event") == "slot":
            slot = event.get("name")
            if not isinstance(slot, str) or not slot:
                raise malformed(f"a SlotSet event has no slot name: {event!r}")
            slots[slot] = event.get("value")
        else:
            ignored.append(str(event.get("event")))
    for message in responses:
        if not isinstance(message, dict):
            raise malformed(f"a response is {type(message).__name__}, not an object: {message!r}")
    if ignored:
        logger.info("action %s: ignored events a flow has no use for: %s", name, ", ".join(ignored))
    return ActionOutcome(slots=slots, messages=list(responses))


class InProcessActions:
    """The `Action` subclasses of a bot's `actions.py`, run in this process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.module = _import(path)
        self.actions: dict[str, Action] = {}
        for value in list(vars(self.module).values()):
            if not (
                inspect.isclass(value)
                and issubclass(value, Action)
                and value.__module__ == self.module.__name__
                and not inspect.isabstract(value)
            ):
                continue  # imported classes (FormValidationAction, ...) are not this file's
            try:
                action: Action = value()
                name = action.name()
            except NotImplementedError as e:  # the action server would not start either
                raise ActionError(
                    f"{path}: {value.__name__} has no name(); a base class of actions must be "
                    "abstract (class Base(Action, ABC) with an @abstractmethod)"
                ) from e
            except Exception as e:
                raise ActionError(
                    f"{path}: creating {value.__name__} failed: {type(e).__name__}: {e}"
                ) from e
            if not isinstance(name, str) or not name:
                raise ActionError(f"{path}: {value.__name__}.name() returned {name!r}, not a name")
            if name in self.actions:
                logger.warning("%s: two classes name themselves %r; the later wins", path, name)
            self.actions[name] = action

    def names(self) -> set[str]:
        return set(self.actions)

    async def run(self, request: ActionRequest) -> ActionOutcome:
        name = request.name
        action = self.actions.get(name)
        if action is None:
            offered = ", ".join(sorted(self.actions)) or "none"
            raise ActionError(f"unknown action {name!r}: {self.path} defines {offered}")
        tracker = Tracker.from_dict(await tracker_state(request))
        dispatcher = CollectingDispatcher()
        domain = domain_of(request)
        try:
            if inspect.iscoroutinefunction(action.run):
                result = await action.run(dispatcher, tracker, domain)
            else:  # a plain `def run`: may block (requests, a database), so not on the loop
                result = await asyncio.to_thread(action.run, dispatcher, tracker, domain)
                if inspect.isawaitable(result):
                    result = await result
            if getattr(dispatcher, "is_streaming_active", False):
                await dispatcher.stream_end()  # as the executor does for a stream left open
        except ActionExecutionRejection as e:
            raise ActionError(f"action {name!r} rejected execution: {e}") from e
        except Exception as e:
            raise ActionError(f"action {name!r} raised {type(e).__name__}: {e}") from e
        if result is None:
            result = []
        if not isinstance(result, list | tuple):
            raise ActionError(
                f"action {name!r} returned {type(result).__name__}, not a list of events"
            )
        events = ActionExecutor.validate_events(list(result), name)  # drops non-events, logged
        try:
            sent = json.loads(json.dumps({"events": events, "responses": dispatcher.messages}))
        except (TypeError, ValueError) as e:
            raise ActionError(
                f"action {name!r} returned or dispatched a value JSON cannot hold: {e}"
            ) from e
        return outcome_of(name, sent["events"], sent["responses"], "the action")


def _import(path: Path) -> types.ModuleType:
    """Import a bot's actions.py under a module name of its own (one per file: a reload
    replaces it), so it collides neither with another bot's nor with an `actions` package.

    The source is compiled here rather than by the loader: no __pycache__ in the bot folder, and
    no stale bytecode after an edit in the same second that keeps the file's size (the loader
    checks only those two), which a hot reload would otherwise run."""
    resolved = path.resolve()
    name = "kefu_bot_actions_" + hashlib.sha1(str(resolved).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None:
        raise ActionError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    previous = sys.modules.get(name)
    sys.modules[name] = module  # dataclasses, pickle and typing look the module up here
    try:
        source = importlib.util.decode_source(resolved.read_bytes())
        exec(compile(source, str(resolved), "exec", dont_inherit=True), module.__dict__)
    except (Exception, SystemExit) as e:
        if previous is not None:
            sys.modules[name] = previous
        else:
            del sys.modules[name]
        raise ActionError(f"{path}: importing it failed: {type(e).__name__}: {e}") from e
    return module


class HttpActions:
    """A Rasa action server (`python -m rasa_sdk`), over its webhook protocol."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ActionError(f"action endpoint {url!r} is not an http(s) URL")
        self.url = url
        self.timeout = timeout

    def names(self) -> set[str] | None:
        return None  # rasa-sdk's GET /actions would tell, but only once the server is up

    async def run(self, request: ActionRequest) -> ActionOutcome:
        name = request.name
        payload = {
            "next_action": name,
            "sender_id": request.sender_id,
            "tracker": await tracker_state(request),
            "domain": domain_of(request),
            "version": rasa_sdk.__version__,
        }
        server = f"the action server {self.url}"
        try:
            async with asyncio.timeout(self.timeout):  # in total, not per read
                async with httpx.AsyncClient(timeout=self.timeout) as client:
                    response = await client.post(self.url, json=payload)
        except (TimeoutError, httpx.TimeoutException) as e:
            raise ActionError(
                f"action {name!r}: {server} timed out after {self.timeout:g} s"
            ) from e
        except httpx.HTTPError as e:
            raise ActionError(
                f"action {name!r}: {server} could not be reached: {type(e).__name__}: {e}"
            ) from e
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        status = response.status_code
        if status != 200:
            error = body.get("error") if isinstance(body, dict) else None
            detail = str(error) if error else (response.text.strip()[:300] or "(empty body)")
            if status == 404:
                raise ActionError(
                    f"action {name!r}: {server} answered 404, no such action "
                    f"(or a wrong URL): {detail}"
                )
            if status == 400:
                raise ActionError(f"action {name!r} rejected execution ({server}): {detail}")
            raise ActionError(f"action {name!r} failed: {server} answered {status}: {detail}")
        if not isinstance(body, dict):
            what = "no JSON object" if body is None else f"JSON {type(body).__name__}"
            raise ActionError(
                f"action {name!r}: {server} returned a malformed result: {what}, "
                f"not {{events, responses}}"
            )
        return outcome_of(name, body.get("events") or [], body.get("responses") or [], server)


def load_actions(
    bot_path: Path, endpoint: str | None, timeout: float = 10.0
) -> ActionRunner | None:
    """The bot's actions: its action server when `endpoint` is set, else its `actions.py`, else
    None. Raises ActionError when actions.py cannot be imported or the endpoint is no URL."""
    if endpoint:
        return HttpActions(endpoint, timeout)
    path = bot_path / "actions.py"
    if path.is_file():
        return InProcessActions(path)
    return None
