"""The automation engine: the bot's rules (`automations/*.yml`, see hub.features.automations.rules)
run on the hub's events.

For each event on the bus that this process published (`local_only`: with several processes
each event is acted on once), the rules written for it are evaluated in file order against the
event and the conversation as it is then; a rule whose conditions all hold runs its actions
in order. Actions go through `Conversations` and the store like an agent's: stored, audited as
`automation:<rule name>`, published. A failing action is logged and the next one runs.

No loops: the events an action causes carry `caused_by: "automation:<name>"` in their data,
and no rule runs on such an event, so automations never trigger automations (an agent's or the
bot's change does trigger them).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from hub.core.bus import follow
from hub.core.conversations import Conversations, Feature
from hub.core.views import conversation_view
from hub.features.automations.rules import (
    WEEKDAYS,
    AddLabel,
    AssignTeam,
    LoadedRule,
    RemoveLabel,
    Rule,
    SendMessage,
    SendWebhook,
    SetPriority,
    SetStatus,
    Strict,
    TimeCondition,
    parse_range,
)
from hub.features.webhooks import encode, sign
from hub.messages import Event, Reply, Sender, Status, utcnow
from hub.ops.netguard import Guard, GuardedTransport, Refused
from hub.ops.settings import WebhookSettings
from hub.ports import Bus, Subscription
from hub.store import Conversation, Store

log = logging.getLogger(__name__)

CAUSED_BY = "caused_by"  # the key events caused by an automation carry in their data
ACTOR_PREFIX = "automation:"


class Tagged:
    """The bus as an automation's actions see it: every event they publish says who caused it."""

    def __init__(self, bus: Bus, actor: str) -> None:
        self.bus, self.actor = bus, actor

    async def publish(self, event: Event) -> None:
        data = {**event.data, CAUSED_BY: self.actor}
        await self.bus.publish(event.model_copy(update={"data": data}))

    def subscribe(self, local_only: bool = False) -> Subscription:
        return self.bus.subscribe(local_only)


class Automations(Feature):
    """Runs the loaded rules on this process's events, from its start; `use` swaps in a
    reloaded set."""

    def __init__(
        self,
        store: Store,
        bus: Bus,
        webhooks: WebhookSettings,
        rules: Iterable[LoadedRule] = (),
        clock: Callable[[], datetime] = utcnow,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.store, self.bus = store, bus
        self.conversations: Conversations | None = None  # what the rules act through, from start
        self.webhooks = webhooks
        self.rules: list[LoadedRule] = list(rules)
        self.clock = clock  # tests set the time the `time:` conditions see
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._subscription: Subscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._deliveries: set[asyncio.Task[None]] = set()

    def use(self, rules: Sequence[LoadedRule]) -> None:
        """Run these rules from the next event on (the bot reload's swap)."""
        self.rules = list(rules)

    # ---- life cycle ---------------------------------------------------------------------

    async def start(self, conversations: Conversations) -> None:
        self.conversations = conversations
        self._client = httpx.AsyncClient(
            timeout=self.webhooks.timeout,
            follow_redirects=False,
            # the same address rules as the hub's webhooks (hub.ops.netguard): a rule's URL may not
            # reach the hub's own network unless webhooks.allow_hosts lists the host
            transport=self._transport or GuardedTransport(Guard(self.webhooks.allow_hosts)),
            trust_env=False,
            headers={"user-agent": "KefuHub-Automations/1"},
        )
        self._subscription = self.bus.subscribe(local_only=True)
        self._task = asyncio.create_task(
            follow(self.bus, self._subscription, self.handle, "automations")
        )

    async def stop(self) -> None:
        """Stop; webhook deliveries still retrying are dropped (logged)."""
        if self._deliveries:
            log.warning("automations: %d webhook deliveries dropped at stop", len(self._deliveries))
        tasks = [t for t in (self._task, *self._deliveries) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._subscription is not None:
            await self._subscription.aclose()
        if self._client is not None:
            await self._client.aclose()

    # ---- rules --------------------------------------------------------------------------

    async def handle(self, event: Event) -> list[str]:
        """Run the rules written for this event; returns the names of those that ran."""
        if str(event.data.get(CAUSED_BY, "")).startswith(ACTOR_PREFIX):
            return []  # caused by an automation: never a trigger (no loops)
        fired: list[str] = []
        # every event reaches here (each message, the bot's too): the conversation is read
        # only for rules whose conditions on the event itself hold, and again after a rule
        # acted on it (the next rule sees its labels, team, status)
        conversation: Conversation | None = None
        for loaded in self.rules:
            if loaded.rule.on != event.type or not self.event_matches(loaded.rule, event):
                continue
            if conversation is None:
                conversation = await self.store.get_conversation(event.conversation_id)
                if conversation is None:
                    return fired
            if not self.conversation_matches(loaded.rule, conversation):
                continue
            fired.append(loaded.name)
            await self.run(loaded, event, conversation)
            conversation = None
        return fired

    def event_matches(self, rule: Rule, event: Event) -> bool:
        """Whether the rule's conditions on the event itself (sender, intent, text) hold."""
        when = rule.if_
        data = event.data
        if event.type == "message.created":
            senders = when.sender or [Sender.CONTACT]
            if data.get("sender") not in senders:
                return False
        if when.intent is not None and (data.get("nlu") or {}).get("intent") not in when.intent:
            return False
        if when.text is not None:
            text = str(data.get("text") or "")
            words = [w.casefold() for w in when.text.contains]
            if words and not any(w in text.casefold() for w in words):
                return False
            if when.text.matches and not re.search(when.text.matches, text, re.IGNORECASE):
                return False
        return True

    def conversation_matches(self, rule: Rule, conversation: Conversation) -> bool:
        """Whether the rule's conditions on the conversation (channel, labels, status) and on
        the time hold, now."""
        when = rule.if_
        if when.channel is not None and conversation.channel not in when.channel:
            return False
        if when.labels is not None:
            labels = set(conversation.labels)
            if not set(when.labels.has) <= labels or labels & set(when.labels.lacks):
                return False
        if when.status is not None and conversation.status not in when.status:
            return False
        return when.time is None or within(when.time, self.clock())

    async def run(self, loaded: LoadedRule, event: Event, conversation: Conversation) -> None:
        """The rule's actions in order; one that fails is logged and the next one runs."""
        actor = ACTOR_PREFIX + loaded.name
        assert self.conversations is not None, "automations run from their start"
        acting = copy.copy(self.conversations)  # the hub's, with its hooks (hours, CSAT, ...)
        acting.bus = Tagged(self.bus, actor)
        for i, action in enumerate(loaded.rule.then):
            try:
                conversation = await self.act(action, acting, conversation, actor, event)
            except Exception as e:
                log.warning(
                    "automation %r (%s): action %d in conversation %s failed: %s: %s",
                    loaded.name,
                    loaded.source,
                    i + 1,
                    conversation.id,
                    type(e).__name__,
                    e,
                )

    async def act(
        self,
        action: Strict,
        acting: Conversations,
        conversation: Conversation,
        actor: str,
        event: Event,
    ) -> Conversation:
        """One action; returns the conversation as it is afterwards."""
        conversation_id = conversation.id
        assert conversation_id is not None
        if isinstance(action, AssignTeam):
            if conversation.team == action.assign_team:
                return conversation
            return await acting.assign(conversation, actor, team=action.assign_team)
        if isinstance(action, AddLabel | RemoveLabel):
            labels = list(conversation.labels)
            if isinstance(action, AddLabel) and action.add_label not in labels:
                labels.append(action.add_label)
            elif isinstance(action, RemoveLabel) and action.remove_label in labels:
                labels.remove(action.remove_label)
            else:
                return conversation
            return await self._update(acting, conversation, actor, "labels", labels)
        if isinstance(action, SetPriority):
            if conversation.priority == action.set_priority:
                return conversation
            return await self._update(acting, conversation, actor, "priority", action.set_priority)
        if isinstance(action, SetStatus):
            if conversation.status == action.set_status:
                return conversation
            return await acting.transition(
                conversation, Status(action.set_status), actor, reason=actor
            )
        if isinstance(action, SendMessage):
            spec = action.send_message
            text = spec.text
            if isinstance(text, dict):
                language = conversation.language or acting.default_language
                text = text.get(language) or next(iter(text.values()))
            message, _ = await acting.post(
                conversation, Reply(text=text, sender=Sender.SYSTEM), private=spec.private
            )
            what = "note" if spec.private else "message"
            await self.store.audit(actor, what, conversation_id, message_id=message.id)
            return await self.store.get_conversation(conversation_id) or conversation
        if isinstance(action, SendWebhook):
            payload = await self._payload(actor, event, conversation_id)
            task = asyncio.create_task(self._deliver(action, actor, payload))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)
            return conversation
        raise TypeError(f"unknown action {action!r}")

    async def _update(
        self, acting: Conversations, conversation: Conversation, actor: str, what: str, value: Any
    ) -> Conversation:
        """Set labels or priority as the inbox does: stored, audited, `conversation.updated`."""
        assert conversation.id is not None
        before = getattr(conversation, what)
        updated = await self.store.update_conversation(conversation.id, **{what: value})
        await self.store.audit(actor, what, conversation.id, source=before, target=value)
        await acting.publish("conversation.updated", updated, await self._view(conversation.id))
        return updated

    async def _view(self, conversation_id: int) -> dict[str, Any]:
        row = await self.store.conversation_row(conversation_id)
        if row is None:
            return {"id": conversation_id}
        assignee = row.conversation.assignee_id
        agents = await self.store.agents_by_ids([assignee] if assignee else [])
        return conversation_view(row, agents)

    # ---- webhooks -----------------------------------------------------------------------

    async def _payload(self, actor: str, event: Event, conversation_id: int) -> dict[str, Any]:
        return {
            "id": f"evt_{uuid.uuid4().hex}",
            "type": event.type,
            "automation": actor.removeprefix(ACTOR_PREFIX),
            "conversation_id": conversation_id,
            "data": event.data,
            "conversation": await self._view(conversation_id),
            "created_at": utcnow().isoformat(),
        }

    async def _deliver(self, action: SendWebhook, actor: str, payload: dict[str, Any]) -> None:
        """POST the payload, signed like the hub's outgoing webhooks; retried with backoff on
        a timeout, a connection error, 408, 429 or 5xx, up to `webhooks.attempts` times."""
        assert self._client is not None
        spec = action.webhook
        body = encode(payload)
        delivery = uuid.uuid4().hex
        settings = self.webhooks
        outcome = "not sent"
        status: int | None = None
        for attempt in range(1, settings.attempts + 1):
            timestamp = str(int(time.time()))
            headers = {
                "content-type": "application/json",
                "x-kefu-event": str(payload["type"]),
                "x-kefu-automation": str(payload["automation"]),
                "x-kefu-delivery": delivery,
                "x-kefu-timestamp": timestamp,
            }
            if spec.secret:
                headers["x-kefu-signature"] = sign(spec.secret, timestamp, body)
            try:
                response = await self._client.post(str(spec.url), content=body, headers=headers)
                status = response.status_code
                if 200 <= status < 300:
                    outcome = "sent"
                    break
                outcome = f"HTTP {status}"
                retry = status in (408, 429) or status >= 500
            except Refused as e:  # an address webhooks may not target: final
                outcome, retry = f"refused: {e}", False
            except httpx.HTTPError as e:
                outcome, retry = f"{type(e).__name__}: {e}".rstrip(": "), True
            if not retry or attempt == settings.attempts:
                break
            delay = min(settings.backoff * 2 ** (attempt - 1), settings.backoff_max)
            log.warning("%s: webhook to %s: %s; retry in %.1fs", actor, spec.url, outcome, delay)
            await asyncio.sleep(delay)
        if outcome != "sent":
            log.error("%s: webhook to %s failed: %s", actor, spec.url, outcome)
        await self.store.audit(
            actor,
            "webhook",
            payload["conversation_id"],
            url=str(spec.url),
            outcome=outcome,
            status=status,
        )


def within(condition: TimeCondition, now: datetime) -> bool:
    """Whether `now` (aware) falls on the condition's weekdays and within its hours, in its
    timezone. A range past midnight ("22:00-06:00") is the night."""
    local = now.astimezone(ZoneInfo(condition.timezone))
    if condition.weekdays is not None and WEEKDAYS[local.weekday()] not in condition.weekdays:
        return False
    if condition.between is None:
        return True
    start, end = parse_range(condition.between)
    clock = local.time().replace(tzinfo=None)
    if start < end:
        return start <= clock < end
    return clock >= start or clock < end
