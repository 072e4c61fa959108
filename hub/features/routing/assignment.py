"""Auto-assignment: pending conversations go to online agents with room, round robin per team;
when every agent is full they wait in a queue, and the customer is told their place in it.

A round (`assign_waiting`) takes the pending conversations, urgent first, then high, then the
longest waiting, and gives each to the next online agent of its team (round robin: after the
last agent that team was given one) whose open conversations are fewer than their capacity. A
conversation without a team, or of a team no active agent belongs to, goes to any online agent.
Designers are never given conversations (they read them, they don't work them).

Rounds start when a conversation starts waiting, when one an agent had stops being open (room
for the next), when an agent's presence changes, and every `assignment.every` seconds. Rounds
never overlap, in one process (a lock) nor across processes (`Store.exclusive`, a PostgreSQL
advisory lock), so counts read at a round's start are right to its end; each assignment is also
a compare-and-set on the pending status, so a conversation an agent took meanwhile is skipped.
An agent going offline gives their open conversations back to the queue, where they keep their
place (they wait since their handoff), and the next round hands them to others."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from hub.core.bus import SubscriberLagged
from hub.core.conversations import Conversations, Feature
from hub.core.status import InvalidTransition
from hub.core.texts import text
from hub.messages import Event, Reply, Sender, Status, utcnow
from hub.ops.settings import AssignmentSettings
from hub.ops.tasks import cancel
from hub.ports import Bus, Unavailable
from hub.store import Agent, Conversation, Store

log = logging.getLogger(__name__)

PRIORITY = {"urgent": 0, "high": 1}  # any other priority, or none, comes after these
WORKERS = frozenset({"admin", "agent"})  # the roles that work conversations
OFFLINE = "agent went offline"  # the reason of the move back to the queue, in the audit log
WAIT_WINDOW = timedelta(hours=24)  # the recent waits the expected wait is figured from
RETELL_AFTER = 60.0  # seconds before a waiting customer who writes is told the same place again


@dataclass(frozen=True)
class Waiting:
    """A pending conversation in its team's queue."""

    conversation: Conversation
    since: datetime  # waiting since its handoff
    position: int  # in its team's queue, from 1
    expected_wait: float | None  # seconds: the median recent wait of its team; None: no figures


def queue_order(item: tuple[Conversation, datetime]) -> tuple[int, datetime, int]:
    conversation, since = item
    return PRIORITY.get(conversation.priority or "", len(PRIORITY)), since, conversation.id or 0


class Routing(Feature):
    """Assigns waiting conversations and keeps the queue. A feature: at a handoff it assigns
    at once when an agent has room, else adds the customer's place to the notice; its rounds
    run while the hub runs. It acts through the `conversations` each call is given."""

    def __init__(
        self,
        store: Store,
        bus: Bus,
        settings: AssignmentSettings,
        redis: aioredis.Redis | None = None,
        prefix: str = "kefu:",
    ) -> None:
        self.store, self.bus, self.settings = store, bus, settings
        self.redis, self.prefix = redis, prefix
        self._round = asyncio.Lock()
        self._last: dict[str, int] = {}  # team ("" for none) -> the agent last given one
        self._wake = asyncio.Event()
        self._told: dict[int, tuple[int, float]] = {}  # conversation -> (place, when) told
        self._task: asyncio.Task[None] | None = None

    # ---- as a feature -------------------------------------------------------------------

    async def start(self, conversations: Conversations) -> None:
        if self.settings.enabled:
            self._task = asyncio.create_task(self.watch(conversations))

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None

    async def handoff_notice(
        self, conversations: Conversations, conversation: Conversation, notice: str
    ) -> str:
        """At a handoff: an agent now if one has room, else the customer's place in the
        queue, said with the handoff notice."""
        if not self.settings.enabled:
            return notice
        place = await self.on_handoff(conversations, conversation)
        return f"{notice}\n{place}" if place else notice

    # ---- assigning ----------------------------------------------------------------------

    async def assign_waiting(self, conversations: Conversations) -> list[Conversation]:
        """One round: every pending conversation an online agent has room for is assigned.
        Returns the conversations assigned."""
        if not self.settings.enabled:
            return []
        async with self._round, self.store.exclusive("assignment"):
            waiting = sorted(await self.store.pending_since(), key=queue_order)
            if not waiting:
                return []
            workers = [a for a in await self.store.list_agents() if a.active and a.role in WORKERS]
            counts = await self.store.open_counts()
            room = {a.id: a.capacity - counts.get(a.id or 0, 0) for a in workers}
            online = [a for a in workers if a.presence == "online"]
            assigned = []
            for conversation, _ in waiting:
                team = conversation.team
                members = [a for a in workers if team in a.teams] if team else []
                pool = [a for a in online if team in a.teams] if members else online
                candidates = [a for a in pool if room[a.id] > 0]
                if not candidates:
                    continue
                agent = await self._next(team or "", candidates)
                try:
                    updated = await conversations.assign(conversation, "system", agent.id)
                except InvalidTransition:  # an agent took it (or it was resolved) meanwhile
                    continue
                room[agent.id] -= 1
                await self._remember(team or "", agent)
                self._told.pop(conversation.id or 0, None)
                assigned.append(updated)
            return assigned

    async def _next(self, team: str, candidates: Sequence[Agent]) -> Agent:
        """Round robin: the first candidate after the agent `team` was last given one."""
        last = await self._recall(team)
        ordered = sorted(candidates, key=lambda a: a.id or 0)
        return next((a for a in ordered if (a.id or 0) > last), ordered[0])

    async def _recall(self, team: str) -> int:
        if self.redis is not None:
            with contextlib.suppress(RedisError, OSError):  # Redis away: this process's memory
                value = await self.redis.get(f"{self.prefix}assignment:last:{team}")
                if value is not None:
                    return int(value)
        return self._last.get(team, 0)

    async def _remember(self, team: str, agent: Agent) -> None:
        assert agent.id is not None
        self._last[team] = agent.id
        if self.redis is not None:
            with contextlib.suppress(RedisError, OSError):
                await self.redis.set(f"{self.prefix}assignment:last:{team}", agent.id)

    async def presence_changed(
        self, conversations: Conversations, agent_id: int, presence: str
    ) -> None:
        """An agent went online (room for the queue), away (nothing new for them) or offline
        (their open conversations go back to the queue, for others)."""
        if not self.settings.enabled:
            return
        if presence == "offline":
            for conversation in await self.store.open_of(agent_id):
                with contextlib.suppress(InvalidTransition):  # resolved or moved meanwhile
                    await conversations.transition(
                        conversation, Status.PENDING, "system", reason=OFFLINE
                    )
        await self.assign_waiting(conversations)

    # ---- the queue ----------------------------------------------------------------------

    async def queue(self) -> list[Waiting]:
        """Every pending conversation in order (urgent, high, then the longest waiting), with
        its place in its team's queue and the expected wait."""
        waiting = sorted(await self.store.pending_since(), key=queue_order)
        medians = await self.expected_waits()
        places: dict[str | None, int] = {}
        queue = []
        for conversation, since in waiting:
            places[conversation.team] = position = places.get(conversation.team, 0) + 1
            expected = medians.get(conversation.team)
            queue.append(Waiting(conversation, since, position, expected))
        return queue

    async def expected_waits(self) -> dict[str | None, float]:
        """By team: the median of its last `sample` waits from pending to open (24 hours)."""
        waits: dict[str | None, list[float]] = {}
        for team, seconds in await self.store.recent_waits(utcnow() - WAIT_WINDOW):
            waits.setdefault(team, []).append(seconds)
        return {t: statistics.median(w[-self.settings.sample :]) for t, w in waits.items()}

    async def place(self, conversation: Conversation, default_language: str) -> str | None:
        """What to tell the customer of a pending conversation: their place in the queue and
        the expected wait, in their language; None when it is not waiting."""
        entry = next((w for w in await self.queue() if w.conversation.id == conversation.id), None)
        if entry is None:
            return None
        assert conversation.id is not None
        self._told[conversation.id] = (entry.position, time.monotonic())
        language, default = conversation.language, default_language
        if entry.expected_wait is None:
            return text("queue_place", language, default).format(position=entry.position)
        minutes = max(1, math.ceil(entry.expected_wait / 60))
        line = text("queue_wait", language, default)
        return line.format(position=entry.position, minutes=minutes)

    async def on_handoff(
        self, conversations: Conversations, conversation: Conversation
    ) -> str | None:
        """At a handoff: an agent now if one has room, else the customer's place in the
        queue (None when it is not waiting)."""
        try:
            await self.assign_waiting(conversations)
            current = await self.store.get_conversation(conversation.id or 0)
            if current is None or current.status != Status.PENDING:
                return None
            return await self.place(current, conversations.default_language)
        except Unavailable as e:  # the handoff itself is done: the sweep assigns it later
            log.warning("assignment at handoff of conversation %s: %s", conversation.id, e)
            return None

    async def tell_waiting(
        self, conversations: Conversations, conversation_id: int, written_at: datetime
    ) -> None:
        """A customer who writes while waiting is told their place again (not twice in a
        minute for the same place)."""
        conversation = await self.store.get_conversation(conversation_id)
        if conversation is None or conversation.status != Status.PENDING:
            return
        entry = next((w for w in await self.queue() if w.conversation.id == conversation_id), None)
        if entry is None or written_at <= entry.since:  # the message that asked for a human
            return
        told = self._told.get(conversation_id)
        if told and told[0] == entry.position and time.monotonic() - told[1] < RETELL_AFTER:
            return
        line = await self.place(conversation, conversations.default_language)
        if line:
            await conversations.post(conversation, Reply(text=line, sender=Sender.SYSTEM))

    # ---- running ------------------------------------------------------------------------

    async def watch(self, conversations: Conversations) -> None:
        """Rounds on the events that may allow one, and every `settings.every` seconds."""
        listener = asyncio.create_task(self._listen(conversations))
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.every)
                self._wake.clear()
                try:
                    await self.assign_waiting(conversations)
                except Unavailable as e:  # the database is away: the next round
                    log.warning("assignment: %s", e)
                except Exception:
                    log.exception("assignment round failed")
        finally:
            await cancel(listener)

    async def _listen(self, conversations: Conversations) -> None:
        while True:
            # this process's events only: the process that made a change starts the round
            feed = self.bus.subscribe(local_only=True)
            try:
                async for event in feed:
                    await self._on(conversations, event)
            except SubscriberLagged:  # events missed: a round catches up on what they were
                self._wake.set()
            finally:
                await feed.aclose()

    async def _on(self, conversations: Conversations, event: Event) -> None:
        data = event.data
        if event.type == "conversation.status_changed" and (
            data.get("to") == Status.PENDING or data.get("from") == Status.OPEN
        ):
            self._wake.set()
        elif event.type == "message.created" and data.get("sender") == Sender.CONTACT:
            try:
                written = datetime.fromisoformat(data["created_at"])
                await self.tell_waiting(conversations, event.conversation_id, written)
            except Exception:  # a side note to the customer; never stops the rounds
                log.exception("queue place not told in conversation %s", event.conversation_id)
