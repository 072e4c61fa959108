"""The summary report (`GET /api/v1/reports/summary`): how the bot and the team did over the
conversations created in a window. hub/features/reports/store.py reads the rows (GROUP BY in the
database); the figures are computed here, in plain Python, the same on every backend.

Definitions (README.md "Reports" says the same for managers):

- A conversation is in the window when it was created in [since, until); every figure is about
  those conversations (their messages, handovers and events, whenever they happened). The
  built-in `try-it` channel (the admin pages' test chat) is left out.
- Human involvement: a status change to `pending` or `open` (audit action `status`), or a
  public agent message (private notes don't count).
- Contained: the bot said something and no human was ever involved. `containment_rate` =
  contained / conversations.
- Escalated: a human was involved. `escalation.rate` = escalated / conversations;
  `escalation.reasons` counts the reason of each conversation's first handover (the bot's:
  `customer_request`, `flow`, `fallback`, `flow_failure`, `knowledge_unhelpful`; an agent's:
  `assigned`, `agent replied`, `agent`). A conversation with neither a bot message nor a human
  (an automated mail only) is neither contained nor escalated.
- First response time: the first agent reply (`first_response_at`) minus the first handover
  (the first status change to `pending`, or straight to `open` when an agent took it from the
  bot), else minus `created_at`; never negative. Resolution time: `resolved_at` minus
  `created_at`, for conversations resolved now. Wall-clock seconds;
  `first_response_business_seconds` counts only the team's business hours
  (hub/features/hours/hours.py; all
  the time when `bot.hours` sets none).
- Median and p90 by linear interpolation between the closest ranks (numpy's default, Excel's
  PERCENTILE.INC): the median of 60 and 120 is 90.
- Unrecognized: customer messages the bot answered (it had the conversation) without a flow or
  a knowledge article, when the NLU found no intent or the answer was the fallback's; button
  presses and `/intent` payloads never count. `unrecognized` lists the most frequent texts
  (exact text), newest first on ties; `fallbacks` counts them all.
- Flows: a conversation entered a flow when the flow said something to it; a step counts the
  conversations it spoke to (steps that say nothing, `set` or `if`, are not listed);
  `fell_back`: conversations with an unrecognized message after entering the flow;
  `handed_off`: conversations whose first handover came after entering it.
- Rates are null when there are no conversations; times are null when there is nothing to
  measure.
- CSAT: the customers' ratings (1-5, hub/features/csat/survey.py) of the conversations in the
window, one per
  conversation (the latest answer): `average` (2 decimals, null without ratings), `count`, and
  `distribution` (how many of each score); also per channel.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from hub.features.reports.store import ConversationFacts, ReportRows, report_rows
from hub.messages import Sender, Status
from hub.store.database import Database

DEFAULT_DAYS = 7
MAX_DAYS = 366
TOP_UNRECOGNIZED = 20

# what the API says of `since` and `until`
WHEN = (
    "ISO 8601 date and time, e.g. 2025-03-01T00:00:00+08:00 (without a zone: UTC); "
    "the window is [since, until)"
)

# seconds of a team's business time between two instants
# (hub.features.hours.hours.Hours.business_seconds)
BusinessTime = Callable[[str | None, datetime, datetime], float]


class BadWindow(ValueError):
    """A window the report refuses (answered 422 with this message)."""


def window(
    since: datetime | None, until: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """[since, until) in UTC: naive datetimes are UTC; until defaults to now, since to seven
    days before until. Raises BadWindow when until is not after since or the window is longer
    than MAX_DAYS."""
    until = _utc(until) if until is not None else now
    since = _utc(since) if since is not None else until - timedelta(days=DEFAULT_DAYS)
    if until <= since:
        raise BadWindow(f"until ({until.isoformat()}) must be after since ({since.isoformat()})")
    if until - since > timedelta(days=MAX_DAYS):
        raise BadWindow(f"the window is {(until - since).days} days long: at most {MAX_DAYS} days")
    return since, until


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile (0-100) by linear interpolation between the closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def durations(seconds: Sequence[float]) -> dict[str, Any]:
    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 1)

    return {
        "median": rounded(percentile(seconds, 50)),
        "p90": rounded(percentile(seconds, 90)),
        "count": len(seconds),
    }


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


class _Facts:
    """Per-conversation conclusions drawn from the rows."""

    def __init__(self, rows: ReportRows, business: BusinessTime | None = None) -> None:
        self.rows = rows
        self.business = business
        self.in_out: dict[int, Counter[str]] = defaultdict(Counter)
        self.bot_spoke: set[int] = set()
        agent_wrote: set[int] = set()
        for conversation_id, direction, sender, n in rows.messages:
            self.in_out[conversation_id]["in" if direction == "in" else "out"] += n
            if sender == Sender.BOT:
                self.bot_spoke.add(conversation_id)
            elif sender == Sender.AGENT:
                agent_wrote.add(conversation_id)
        self.escalated = set(rows.handovers) | agent_wrote
        self.contained = self.bot_spoke - self.escalated
        self.scores = dict(rows.csat)

    def reason(self, conversation_id: int) -> str:
        if conversation_id in self.rows.handovers:
            return self.rows.handovers[conversation_id][1] or "unknown"
        return "agent_message"  # an agent wrote with no status change recorded

    def first_response(self, c: ConversationFacts) -> float | None:
        if c.first_response_at is None:
            return None
        handover = self.rows.handovers.get(c.id)
        start = handover[0] if handover else c.created_at
        return max(0.0, (c.first_response_at - start).total_seconds())

    def first_business(self, c: ConversationFacts) -> float | None:
        """The first response time counted in the team's business hours (hub.features.hours)."""
        if c.first_response_at is None:
            return None
        handover = self.rows.handovers.get(c.id)
        start = handover[0] if handover else c.created_at
        if self.business is None:
            return max(0.0, (c.first_response_at - start).total_seconds())
        return self.business(c.team, start, c.first_response_at)

    @staticmethod
    def resolution(c: ConversationFacts) -> float | None:
        if c.status != Status.RESOLVED or c.resolved_at is None:
            return None
        return max(0.0, (c.resolved_at - c.created_at).total_seconds())

    def core(self, conversations: Iterable[ConversationFacts]) -> dict[str, Any]:
        """The figures shown for all conversations and for each channel."""
        chosen = list(conversations)
        ids = {c.id for c in chosen}
        messages: Counter[str] = Counter()
        for c in chosen:
            messages.update(self.in_out.get(c.id, Counter()))
        escalated = ids & self.escalated
        reasons = Counter(self.reason(i) for i in escalated)
        first = [s for c in chosen if (s := self.first_response(c)) is not None]
        first_business = [s for c in chosen if (s := self.first_business(c)) is not None]
        resolved = [s for c in chosen if (s := self.resolution(c)) is not None]
        return {
            "conversations": len(chosen),
            "messages": {"in": messages["in"], "out": messages["out"]},
            "containment_rate": rate(len(ids & self.contained), len(chosen)),
            "escalation": {
                "rate": rate(len(escalated), len(chosen)),
                "count": len(escalated),
                "reasons": dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
            },
            "first_response_seconds": durations(first),
            "resolution_seconds": durations(resolved),
            "first_response_business_seconds": durations(first_business),
            "csat": csat([self.scores[i] for i in sorted(ids & self.scores.keys())]),
        }


def summarize(
    rows: ReportRows, since: datetime, until: datetime, business: BusinessTime | None = None
) -> dict[str, Any]:
    """The report's JSON from the rows read for [since, until)."""
    facts = _Facts(rows, business)
    by_channel: dict[str, list[ConversationFacts]] = defaultdict(list)
    for c in rows.conversations:
        by_channel[c.channel].append(c)
    fallback_messages = sum(n for _, n, _ in rows.fallbacks)
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        **facts.core(rows.conversations),
        "fallbacks": {"messages": fallback_messages, "conversations": len(rows.fallbacks)},
        "knowledge": {
            "answered": rows.knowledge.get("knowledge.answered", 0),
            "helpful": rows.knowledge.get("knowledge.helpful", 0),
            "unhelpful": rows.knowledge.get("knowledge.unhelpful", 0),
        },
        "channels": {name: facts.core(by_channel[name]) for name in sorted(by_channel)},
        "intents": intents(rows, facts.escalated),
        "flows": flows(rows, facts),
        "unrecognized": [
            {"text": text, "count": n, "last_at": when.isoformat()}
            for text, n, when in rows.unrecognized
        ],
    }


def csat(scores: Sequence[int]) -> dict[str, Any]:
    """Satisfaction ratings: their average, count and how many of each score (1-5)."""
    return {
        "average": round(sum(scores) / len(scores), 2) if scores else None,
        "count": len(scores),
        "distribution": {str(n): list(scores).count(n) for n in range(1, 6)},
    }


def intents(rows: ReportRows, escalated: set[int]) -> dict[str, dict[str, int]]:
    """Per intent of customer messages: messages, their conversations, and how many of
    those conversations were escalated; most messages first."""
    messages: Counter[str] = Counter()
    conversations: dict[str, set[int]] = defaultdict(set)
    for intent, conversation_id, n in rows.intents:
        messages[intent] += n
        conversations[intent].add(conversation_id)
    return {
        intent: {
            "messages": messages[intent],
            "conversations": len(conversations[intent]),
            "escalated": len(conversations[intent] & escalated),
        }
        for intent in sorted(messages, key=lambda i: (-messages[i], i))
    }


def _loc_key(loc: str) -> tuple[int, ...]:
    """Steps in the order the flow file has them: `steps.2.then.0` before `steps.2.else.0`."""
    order = {"steps": 0, "then": 0, "else": 1}
    return tuple(int(p) if p.isdigit() else order.get(p, 2) for p in loc.split("."))


def flows(rows: ReportRows, facts: _Facts) -> dict[str, dict[str, Any]]:
    """Per flow: conversations that entered it, per step, fell back and handed off after."""
    last_fallback = {c: when for c, _, when in rows.fallbacks}
    entered: dict[str, dict[int, datetime]] = defaultdict(dict)
    for flow, conversation_id, when in rows.flow_entries:
        entered[flow][conversation_id] = when
    steps: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    for flow, loc, step, n in rows.flow_steps:
        steps[flow].append((loc, step, n))
    report: dict[str, dict[str, Any]] = {}
    for flow in sorted(entered, key=lambda f: (-len(entered[f]), f)):
        who = entered[flow]
        fell_back = sum(1 for c, at in who.items() if c in last_fallback and last_fallback[c] > at)
        handed_off = sum(
            1 for c, at in who.items() if c in rows.handovers and rows.handovers[c][0] >= at
        )
        report[flow] = {
            "conversations": len(who),
            "steps": [
                {"step": step, "loc": loc, "conversations": n}
                for loc, step, n in sorted(steps[flow], key=lambda s: _loc_key(s[0]))
            ],
            "fell_back": fell_back,
            "handed_off": handed_off,
        }
    return report


class Reports:
    """The reports over the hub's database (built once by the composition root, hub.app.Hub
    `reports`)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def summary(
        self,
        since: datetime,
        until: datetime,
        *,
        skip_channels: tuple[str, ...] = (),
        business: BusinessTime | None = None,
    ) -> dict[str, Any]:
        """The report over the conversations created in [since, until) (see `window`)."""
        rows = await report_rows(
            self.db, since, until, skip_channels=skip_channels, top=TOP_UNRECOGNIZED
        )
        return summarize(rows, since, until, business)
