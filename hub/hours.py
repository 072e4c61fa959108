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

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hub.messages import utcnow
from hub.texts import text

AFTER_HOURS = "after-hours"  # the label of a conversation handed over outside business hours
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SEARCH_DAYS = 400  # how far ahead the calendar looks for opening hours
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _minutes(hours: str, minutes: str) -> int | None:
    h, m = int(hours), int(minutes)
    if m > 59 or h > 24 or (h == 24 and m):
        return None
    return h * 60 + m


def parse_range(value: str) -> tuple[int, int]:
    """`HH:MM-HH:MM` as minutes from the day's midnight; an end at or before the start is on
    the next day (overnight)."""
    m = _RANGE.match(value)
    start = _minutes(m.group(1), m.group(2)) if m else None
    end = _minutes(m.group(3), m.group(4)) if m else None
    if m is None or start is None or end is None or start == 1440:
        raise ValueError(f"{value!r} is not a range of times like '09:00-18:00'")
    if start == end:
        raise ValueError(f"{value!r} is empty: the start and the end are the same")
    return start, end if end > start else end + 1440


def parse_days(key: str) -> list[int]:
    """`mon`, `mon-fri` (wrapping: `fri-mon`) or `sat,sun` as weekday numbers (Monday 0)."""
    days: list[int] = []
    for part in key.lower().split(","):
        ends = [p.strip() for p in part.split("-")]
        if len(ends) > 2 or any(e not in DAYS for e in ends):
            raise ValueError(f"{key!r} is not a day or days like mon, mon-fri or sat,sun")
        first, last = DAYS.index(ends[0]), DAYS.index(ends[-1])
        days += [(first + i) % 7 for i in range((last - first) % 7 + 1)]
    return days


def parse_weekly(weekly: dict[str, str | list[str]]) -> tuple[tuple[tuple[int, int], ...], ...]:
    """Each weekday's ranges (Monday first), sorted; raises ValueError saying which key."""
    week: list[list[tuple[int, int]] | None] = [None] * 7
    for key, value in weekly.items():
        ranges = [value] if isinstance(value, str) else list(value)
        if ranges in (["closed"], ["-"]):
            ranges = []
        try:
            parsed = sorted(parse_range(r) for r in ranges)
        except ValueError as e:
            raise ValueError(f"{key}: {e}") from None
        for (_, end), (start, _) in itertools.pairwise(parsed):
            if start < end:
                raise ValueError(f"{key}: the ranges {ranges} overlap")
        for day in parse_days(key):
            if week[day] is not None:
                raise ValueError(f"{DAYS[day]} is given twice (in {key!r})")
            week[day] = parsed
    if not any(week):
        raise ValueError("no opening hours on any day (leave `weekly` out for always open)")
    return tuple(tuple(day or ()) for day in week)


def parse_dates(values: list[date | str]) -> frozenset[date]:
    """Dates (`2026-10-01`) and inclusive ranges (`2026-10-01..2026-10-07`)."""
    found: set[date] = set()
    for value in values:
        if isinstance(value, date):
            found.add(value)
            continue
        try:
            first, _, last = value.partition("..")
            start = date.fromisoformat(first.strip())
            end = date.fromisoformat(last.strip()) if last else start
        except ValueError:
            why = f"{value!r} is not a date (2026-10-01) or dates (first..last)"
            raise ValueError(why) from None
        if not start <= end <= start + timedelta(days=366):
            raise ValueError(f"{value!r}: the last date must be 0 to 366 days after the first")
        found.update(start + timedelta(days=i) for i in range((end - start).days + 1))
    return frozenset(found)


class SlaSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    first_response: int = Field(gt=0, le=60 * 24 * 60)  # business minutes after the handoff
    warn_at: float = Field(default=0.8, gt=0.0, lt=1.0)  # share of it when agents are warned


class Schedule(BaseModel):
    """One team's hours (or the default's); see the module's docstring."""

    model_config = ConfigDict(extra="forbid")

    timezone: str | None = None
    zone_label: str | dict[str, str] | None = None
    weekly: dict[str, str | list[str]] | None = None
    holidays: list[date | str] = []
    workdays: list[date | str] = []
    sla: SlaSettings | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                ZoneInfo(v)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"unknown time zone {v!r} (an IANA name such as Asia/Shanghai)"
                ) from None
        return v

    @field_validator("weekly")
    @classmethod
    def _valid_weekly(
        cls, v: dict[str, str | list[str]] | None
    ) -> dict[str, str | list[str]] | None:
        if v is not None:
            parse_weekly(v)
        return v

    @field_validator("holidays", "workdays")
    @classmethod
    def _valid_dates(cls, v: list[date | str]) -> list[date | str]:
        parse_dates(v)
        return v

    def over(self, default: Schedule | None) -> Schedule:
        """This schedule with the keys it leaves unset taken from `default`."""
        if default is None:
            return self
        return default.model_copy(update={k: getattr(self, k) for k in self.model_fields_set})


class HoursSettings(BaseModel):
    """config.yaml `bot.hours`: a default schedule and teams' own."""

    model_config = ConfigDict(extra="forbid")

    default: Schedule | None = None
    teams: dict[str, Schedule] = {}

    @model_validator(mode="after")
    def _zones_given(self) -> HoursSettings:
        # teams complete with the default's keys: a copy of these settings needs no default
        self.teams = {t: s.over(self.default) for t, s in self.teams.items()}
        named = {"default": self.default} if self.default else {}
        named |= {f"teams.{t}": s for t, s in self.teams.items()}
        for where, schedule in named.items():
            if schedule.timezone is None and (schedule.weekly or schedule.holidays):
                raise ValueError(f"{where}: `timezone` is needed with opening hours or holidays")
        return self


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


class Hours:
    """The hub's business hours, now: which calendar a team follows, whether it is open, SLA
    deadlines. `clock` gives the current time (tests pass a fixed one)."""

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
