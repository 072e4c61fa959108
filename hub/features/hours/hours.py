"""Business hours and first-response SLAs, per team (config.yaml `bot.hours`).

A team's calendar is its time zone, its weekly opening hours, holidays (closed all day) and
extra working days (调休: a weekend day worked with a regular working day's hours). Outside
them, a handoff tells the customer when humans are back; the SLA clock runs only inside them.

```yaml
bot:
  hours:
    default:                                  # conversations without a team, teams not listed
      timezone: Asia/Shanghai                 # IANA name
      zone_label: {zh: 北京时间, en: Beijing time}   # default: UTC+8
      weekly: {mon-fri: "09:00-18:00", sat: ["10:00-12:00", "13:00-15:00"]}
      holidays: [2026-10-01..2026-10-07]      # dates, or first..last
      workdays: [2026-09-27]                  # worked with the first weekday's hours that has any
      sla: {first_response: 30, warn_at: 0.8} # business minutes; warn at 80% of it
    teams:
      logistics: {weekly: {mon-sun: "08:00-22:00"}}   # unset keys come from default
```

No `bot.hours` (or no `weekly`): always open. No `sla`: no SLA events. A range ending at or
before its start ends the next day (`22:00-06:00`); `24:00` is midnight at the end of the day.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hub.core.conversations import Conversations, Feature
from hub.core.texts import text
from hub.messages import Handoff, utcnow
from hub.ops.hours_settings import (
    HoursSettings,
    Schedule,
    SlaSettings,
    parse_dates,
    parse_weekly,
)
from hub.ops.settings import Settings
from hub.store import Conversation

AFTER_HOURS = "after-hours"  # the label of a conversation handed over outside business hours
SEARCH_DAYS = 400  # how far ahead the calendar looks for opening hours
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class Calendar:
    """A schedule ready for computing: opening intervals in UTC, business time between
    instants, deadlines in business time."""

    zone: ZoneInfo
    week: tuple[tuple[tuple[int, int], ...], ...] | None  # None: always open
    holidays: frozenset[date]
    workdays: frozenset[date]
    zone_label: str | dict[str, str] | None
    sla: SlaSettings | None

    @classmethod
    def of(cls, schedule: Schedule) -> Calendar:
        return cls(
            ZoneInfo(schedule.timezone or "UTC"),
            parse_weekly(schedule.weekly) if schedule.weekly else None,
            parse_dates(schedule.holidays),
            parse_dates(schedule.workdays),
            schedule.zone_label,
            schedule.sla,
        )

    def ranges(self, day: date) -> tuple[tuple[int, int], ...]:
        assert self.week is not None
        if day in self.holidays:
            return ()
        if day in self.workdays:
            return next((r for r in self.week[:5] if r), next(r for r in self.week if r))
        return self.week[day.weekday()]

    def _utc(self, day: date, minute: int) -> datetime:
        local = datetime.combine(day, time()) + timedelta(minutes=minute)
        return local.replace(tzinfo=self.zone).astimezone(UTC)

    def intervals(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Opening intervals [open, close) in UTC that end after `start`, in order, merged
        where they touch (an overnight range running into the next day's)."""
        if self.week is None:
            yield start, datetime.max.replace(tzinfo=UTC)
            return
        day = start.astimezone(self.zone).date() - timedelta(days=1)  # yesterday's overnight
        current: tuple[datetime, datetime] | None = None
        for i in range(SEARCH_DAYS):
            for first, last in self.ranges(day + timedelta(days=i)):
                opens, closes = (
                    self._utc(day + timedelta(days=i), first),
                    self._utc(day + timedelta(days=i), last),
                )
                if closes <= opens:
                    continue  # squeezed out by a clock change
                if current is not None and opens <= current[1]:
                    current = (current[0], max(current[1], closes))
                    continue
                if current is not None and current[1] > start:
                    yield current
                current = (opens, closes)
        if current is not None and current[1] > start:
            yield current

    def is_open(self, at: datetime) -> bool:
        return any(opens <= at for opens, _ in self._first(at))

    def next_open(self, at: datetime) -> datetime | None:
        """`at` when open, else when the next opening starts (None: not within a year)."""
        return next((max(opens, at) for opens, _ in self._first(at)), None)

    def _first(self, at: datetime) -> list[tuple[datetime, datetime]]:
        return next(([i] for i in self.intervals(at)), [])

    def add(self, start: datetime, seconds: float) -> datetime | None:
        """The instant `seconds` of business time after `start` (None: not within a year)."""
        left = seconds
        for opens, closes in self.intervals(start):
            opens = max(opens, start)
            span = (closes - opens).total_seconds()
            if left <= span:
                return opens + timedelta(seconds=left)
            left -= span
        return None

    def seconds_between(self, start: datetime, end: datetime) -> float:
        """Business seconds in [start, end)."""
        total = 0.0
        for opens, closes in self.intervals(start):
            if opens >= end:
                break
            total += (min(closes, end) - max(opens, start)).total_seconds()
        return max(total, 0.0)

    def label(self, at: datetime, language: str | None, default_language: str) -> str:
        """How the customer is told the time zone: `zone_label`, else `UTC+8`."""
        if isinstance(self.zone_label, str):
            return self.zone_label
        if self.zone_label:
            for lang in (language, default_language, "en"):
                if lang and lang in self.zone_label:
                    return self.zone_label[lang]
            return next(iter(self.zone_label.values()))
        offset = at.astimezone(self.zone).utcoffset() or timedelta()
        minutes = int(offset.total_seconds() // 60)
        sign, minutes = ("+" if minutes >= 0 else "-"), abs(minutes)
        return f"UTC{sign}{minutes // 60}" + (f":{minutes % 60:02d}" if minutes % 60 else "")


WEEKDAYS = {
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    "zh": ("周一", "周二", "周三", "周四", "周五", "周六", "周日"),
}
MONTHS_EN = (
    "January February March April May June July August September October November December"
).split()


def when_back(back: datetime, now: datetime, zone: ZoneInfo, language: str) -> str:
    """`tomorrow at 09:00`, `on Monday at 09:00`, `明天 09:00`, `10月8日（周四）09:00`: in the
    team's local time, relative to the team's today."""
    local, today = back.astimezone(zone), now.astimezone(zone).date()
    days, clock = (local.date() - today).days, local.strftime("%H:%M")
    zh = language == "zh"
    weekday = WEEKDAYS["zh" if zh else "en"][local.weekday()]
    if days <= 0:
        return f"今天 {clock}" if zh else f"today at {clock}"
    if days == 1:
        return f"明天 {clock}" if zh else f"tomorrow at {clock}"
    if days < 7:
        return f"{weekday} {clock}" if zh else f"on {weekday} at {clock}"
    if zh:
        return f"{local.month}月{local.day}日（{weekday}）{clock}"
    return f"on {weekday} {local.day} {MONTHS_EN[local.month - 1]} at {clock}"


@dataclass(frozen=True)
class Closed:
    """Humans are away: when they are back, by the team's calendar."""

    now: datetime
    back: datetime | None
    calendar: Calendar

    def notice(
        self,
        language: str | None,
        default_language: str,
        email: str | None = None,
        external_id: str = "",
    ) -> str:
        """What the customer is told at the handoff; asks for an email address unless the
        contact has one (or writes from one)."""
        lang = language if language in WEEKDAYS else default_language
        lang = lang if lang in WEEKDAYS else "en"
        if self.back is None:
            said = text("after_hours_later", lang, default_language)
        else:
            when = when_back(self.back, self.now, self.calendar.zone, lang)
            zone = self.calendar.label(self.back, lang, default_language)
            said = text("after_hours", lang, default_language).format(when=when, zone=zone)
        if not email and not _EMAIL.match(external_id):
            said += text("after_hours_email", lang, default_language)
        return said


class Hours(Feature):
    """The hub's business hours, now: which calendar a team follows, whether it is open, SLA
    deadlines. `clock` gives the current time (tests pass a fixed one). As a feature: a
    handoff outside the team's hours is labeled, and the customer told when humans are back."""

    def __init__(
        self, settings: HoursSettings | None = None, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.clock = clock
        self.configure(settings or HoursSettings())

    def configure(self, settings: HoursSettings) -> None:
        """Follow `settings` from now on (the bot's hot reload)."""
        default = settings.default
        self.default = Calendar.of(default) if default else None
        self.teams = {t: Calendar.of(s.over(default)) for t, s in settings.teams.items()}

    def use_bot(self, settings: Settings) -> None:
        self.configure(settings.bot.hours)

    async def handoff_fields(self, conversation: Conversation, handoff: Handoff) -> dict[str, Any]:
        """Outside business hours the conversation waits for the morning, labeled."""
        if self.closed(handoff.team or conversation.team) is None:
            return {}
        return {"labels": with_label(conversation.labels)}

    async def handoff_notice(
        self, conversations: Conversations, conversation: Conversation, notice: str
    ) -> str:
        """Outside business hours: when humans are back, in the customer's language, instead
        of "someone is coming"; asks for an email address for a reply by email unless the
        contact has one."""
        closed = self.closed(conversation.team)
        if closed is None:
            return notice
        contact = await conversations.store.get_contact(conversation.contact_id)
        email, external_id = (contact.email, contact.external_id) if contact else (None, "")
        language, default = conversation.language, conversations.default_language
        return closed.notice(language, default, email, external_id)

    @property
    def has_sla(self) -> bool:
        """Whether any team (or the default) has a first-response target."""
        return any(c.sla for c in [self.default, *self.teams.values()] if c is not None)

    def calendar(self, team: str | None) -> Calendar | None:
        """The team's calendar, else the default's; None when no hours are configured."""
        return self.teams.get(team or "", self.default)

    def closed(self, team: str | None) -> Closed | None:
        """None while the team is open (or has no hours), else when it is back."""
        calendar, now = self.calendar(team), self.clock()
        if calendar is None or calendar.is_open(now):
            return None
        return Closed(now, calendar.next_open(now), calendar)

    def sla(self, team: str | None, start: datetime) -> tuple[datetime, datetime] | None:
        """(warn at, due at) of a first response to a handoff at `start`; None: no SLA."""
        calendar = self.calendar(team)
        if calendar is None or calendar.sla is None:
            return None
        target = calendar.sla.first_response * 60.0
        due = calendar.add(start, target)
        warn = calendar.add(start, target * calendar.sla.warn_at)
        return (warn, due) if warn is not None and due is not None else None

    def business_seconds(self, team: str | None, start: datetime, end: datetime) -> float:
        """Seconds of the team's business time in [start, end) (wall time without hours)."""
        calendar = self.calendar(team)
        if calendar is None:
            return max(0.0, (end - start).total_seconds())
        return calendar.seconds_between(start, end)


def with_label(labels: list[str], label: str = AFTER_HOURS) -> list[str]:
    return labels if label in labels else [*labels, label]
