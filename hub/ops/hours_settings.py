"""config.yaml `bot.hours`, read and checked: business hours and first-response SLAs per team
(the format is in hub/features/hours/hours.py's docstring, which computes with them)."""

from __future__ import annotations

import itertools
import re
from datetime import date, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


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
