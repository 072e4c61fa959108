"""Business hours and first-response SLAs (hub/features/hours/hours.py, hub/features/hours/sla.py): the calendar on its own
(weekends, holidays, 调休 working days, time zones, a DST change), configuration errors at
load, and through the real API with an injected clock: a handoff outside hours tells the
customer when humans are back, an SLA breach reaches an agent's events socket once, and the
report counts first response time in business hours."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from flows import FlowEngine
from hub.cli import main as kefu
from hub.features.hours.hours import AFTER_HOURS, Calendar, Hours, when_back
from hub.ops.hours_settings import HoursSettings, Schedule
from hub.ops.settings import Settings, SettingsError, load_settings
from hub.store.models import AuditLog
from nlu import IntentClassifier
from tests.conftest import SHOP, client_for, create_agent, login
from tests.test_hub.test_admin_api import conversation_id
from tests.test_hub.test_api import customer_says

SHANGHAI, BERLIN = ZoneInfo("Asia/Shanghai"), ZoneInfo("Europe/Berlin")
V1 = "/api/v1"
HOURS: dict[str, Any] = {
    "default": {
        "timezone": "Asia/Shanghai",
        "zone_label": {"zh": "北京时间", "en": "Beijing time"},
        "weekly": {"mon-fri": "09:00-18:00", "sat": ["10:00-12:00", "13:00-14:00"]},
        "holidays": ["2026-12-31..2027-01-01"],
        "workdays": ["2027-01-03"],  # a Sunday worked (调休)
        "sla": {"first_response": 30},
    },
    "teams": {"night": {"weekly": {"mon-sun": "22:00-06:00"}, "sla": {"first_response": 60}}},
}


def shanghai(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


def hours(config: dict[str, Any] = HOURS) -> Hours:
    return Hours(HoursSettings.model_validate(config))


# ---- the calendar ----------------------------------------------------------------------


def test_a_friday_evening_handoff_is_due_monday_morning() -> None:
    h = hours()
    friday = shanghai(2026, 11, 27, 17, 59)  # one business minute left on Friday
    warn, due = h.sla(None, friday) or pytest.fail("no SLA")
    # Saturday has hours: 10:00-12:00 counts, so 29 minutes are left at Saturday 10:00
    assert due == shanghai(2026, 11, 28, 10, 29)
    assert warn == shanghai(2026, 11, 28, 10, 23)  # 80% of 30 minutes: 24
    # Saturday 13:59 with one minute left: Sunday closed, due Monday 09:29
    assert h.sla(None, shanghai(2026, 11, 28, 13, 59)) == (
        shanghai(2026, 11, 30, 9, 23),
        shanghai(2026, 11, 30, 9, 29),
    )
    calendar = h.calendar(None)
    assert calendar is not None
    assert calendar.seconds_between(friday, shanghai(2026, 11, 30, 9, 15)) == (1 + 180 + 15) * 60


def test_holidays_are_skipped_and_extra_workdays_worked() -> None:
    h = hours()
    # Wednesday 30 December 17:50: 10 minutes left; 31 Dec and 1 Jan are holidays, Saturday
    # 2 Jan has its hours, Sunday 3 Jan is worked with Monday's hours
    assert h.sla(None, shanghai(2026, 12, 30, 17, 50))[1] == shanghai(2027, 1, 2, 10, 20)  # type: ignore[index]
    calendar = h.calendar(None)
    assert calendar is not None
    assert not calendar.is_open(shanghai(2026, 12, 31, 10, 0))
    assert calendar.is_open(shanghai(2027, 1, 3, 9, 0))  # a Sunday, worked
    assert not calendar.is_open(shanghai(2027, 1, 10, 9, 0))  # an ordinary Sunday
    assert calendar.next_open(shanghai(2026, 12, 30, 18, 0)) == shanghai(2027, 1, 2, 10, 0)


def test_time_zones_and_overnight_ranges() -> None:
    calendar = hours().calendar(None)
    assert calendar is not None
    # 01:30 UTC is 09:30 in Shanghai: open; 10:30 UTC is 18:30: closed
    assert calendar.is_open(datetime(2026, 11, 27, 1, 30, tzinfo=UTC))
    assert not calendar.is_open(datetime(2026, 11, 27, 10, 30, tzinfo=UTC))
    night = hours().calendar("night")
    assert night is not None and night.zone == SHANGHAI  # the default's time zone
    assert night.is_open(shanghai(2026, 11, 27, 23, 0))
    assert night.is_open(shanghai(2026, 11, 28, 2, 0))
    assert not night.is_open(shanghai(2026, 11, 28, 12, 0))
    # 05:30 with 60 minutes: 30 before 06:00, 30 after 22:00 the same day
    assert hours().sla("night", shanghai(2026, 11, 28, 5, 30))[1] == shanghai(2026, 11, 28, 22, 30)  # type: ignore[index]
    # a team not listed follows the default; no hours at all: always open, no SLA
    h = hours()
    assert h.calendar("care") is h.calendar(None)
    none = Hours()
    assert none.closed("care") is None and none.sla("care", shanghai(2026, 1, 1)) is None
    assert not none.has_sla and h.has_sla  # the SLA watch reads nothing without targets
    start = shanghai(2026, 11, 27, 17, 0)
    assert none.business_seconds(None, start, start + timedelta(days=2)) == 2 * 86400


def test_business_time_across_a_dst_change() -> None:
    berlin = Calendar.of(Schedule(timezone="Europe/Berlin", weekly={"mon-fri": "09:00-18:00"}))
    # Friday 27 March 2026 17:00 CET (16:00 UTC); clocks go forward on Sunday 29 March
    friday = datetime(2026, 3, 27, 17, 0, tzinfo=BERLIN)
    due = berlin.add(friday, 120 * 60)
    assert due == datetime(2026, 3, 30, 10, 0, tzinfo=BERLIN)
    assert due is not None and due.astimezone(UTC) == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)
    assert berlin.seconds_between(friday, due) == 7200
    assert berlin.label(friday, "en", "en") == "UTC+1"
    assert berlin.label(due, "en", "en") == "UTC+2"


def test_when_humans_are_back_in_words() -> None:
    now = shanghai(2026, 11, 27, 19, 0)  # a Friday
    cases = [
        (shanghai(2026, 11, 27, 20, 0), "today at 20:00", "今天 20:00"),
        (shanghai(2026, 11, 28, 10, 0), "tomorrow at 10:00", "明天 10:00"),
        (shanghai(2026, 11, 30, 9, 0), "on Monday at 09:00", "周一 09:00"),
        (shanghai(2026, 12, 8, 9, 0), "on Tuesday 8 December at 09:00", "12月8日（周二）09:00"),
    ]
    for back, en, zh in cases:
        assert when_back(back, now, SHANGHAI, "en") == en
        assert when_back(back, now, SHANGHAI, "zh") == zh


def write_config(tmp_path: Path, hours_yaml: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(f"bot:\n  path: {SHOP}\n  hours:\n{hours_yaml}", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("hours_yaml", "where", "why"),
    [
        ("    default: {timezone: Mars/Base}\n", "bot.hours.default.timezone", "Mars/Base"),
        (
            "    default: {timezone: UTC, weekly: {mon-fri: '9-18'}}\n",
            "bot.hours.default.weekly",
            "mon-fri: '9-18' is not a range of times",
        ),
        (
            "    default: {timezone: UTC, weekly: {mon: [09:00-12:00, 11:00-13:00]}}\n",
            "bot.hours.default.weekly",
            "overlap",
        ),
        (
            "    default: {timezone: UTC, weekly: {mon-fri: 09:00-18:00, fri: 10:00-12:00}}\n",
            "bot.hours.default.weekly",
            "fri is given twice",
        ),
        ("    default: {timezone: UTC, weekly: {someday: 09:00-18:00}}\n", "weekly", "someday"),
        (
            "    default: {timezone: UTC, holidays: ['2026-02-30']}\n",
            "bot.hours.default.holidays",
            "is not a date",
        ),
        ("    default: {timezone: UTC, holidays: [2026-13-01]}\n", "config.yaml", "month"),
        (
            "    teams: {care: {weekly: {mon: 09:00-18:00}}}\n",
            "bot.hours",
            "teams.care: `timezone` is needed",
        ),
        ("    default: {sla: {first_response: 0}}\n", "first_response", "greater than 0"),
    ],
)
def test_invalid_hours_are_reported_with_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], hours_yaml: str, where: str, why: str
) -> None:
    path = write_config(tmp_path, hours_yaml)
    with pytest.raises(SettingsError) as e:
        load_settings(path)
    assert where in str(e.value) and why in str(e.value), str(e.value)
    assert str(path) in str(e.value)
    # `kefu check` says the same and fails
    assert kefu(["check", "--config", str(path)]) == 2
    assert why in capsys.readouterr().err


def test_valid_hours_load_from_config_yaml(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        "    default:\n"
        "      timezone: Asia/Shanghai\n"
        "      weekly: {mon-fri: '09:00-18:00', sat: closed}\n"
        "      holidays: [2026-10-01..2026-10-07, 2027-01-01]\n"
        "      sla: {first_response: 30, warn_at: 0.5}\n",
    )
    calendar = Hours(load_settings(path).bot.hours).calendar("any team")
    assert calendar is not None and calendar.sla is not None
    assert len(calendar.holidays) == 8 and calendar.sla.warn_at == 0.5
    assert not calendar.is_open(shanghai(2026, 10, 5, 10, 0))


# ---- through the API -------------------------------------------------------------------

Api = tuple[TestClient, dict[str, str], Any]


@pytest.fixture
def api(
    database_url: str, tmp_path: Path, classifier: IntentClassifier, flows: FlowEngine
) -> Iterator[Api]:
    """The demo bot with business hours, on SQLite and PostgreSQL; an admin logged in."""
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path,
        secret_key="test-secret-key-that-is-long-enough-for-hs256",
        bot={"path": SHOP, "language": "en", "reload": False, "hours": HOURS},
    )
    create_agent(settings, role="admin")
    with client_for(settings, classifier, flows) as client:
        yield client, login(client), client.app.state.hub  # type: ignore[attr-defined]


def conversation(client: TestClient, auth: dict[str, str], sender: str) -> dict[str, Any]:
    r = client.get(f"{V1}/conversations/{conversation_id(client, auth, sender)}", headers=auth)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_a_handoff_outside_hours_says_when_humans_are_back(api: Api) -> None:
    client, admin, hub = api
    hub.hours.clock = lambda: shanghai(2026, 11, 28, 19, 0)  # Saturday evening
    replies = customer_says(client, "bob", "/human")
    said = replies[-1]["text"]
    assert "back on Monday at 09:00 (Beijing time)" in said, said
    assert "Leave your message here" in said and "email address" in said
    bob = conversation(client, admin, "bob")
    assert bob["status"] == "pending" and AFTER_HOURS in bob["labels"]

    replies = customer_says(client, "lan", "转人工")
    said = replies[-1]["text"]
    assert "将于周一 09:00（北京时间）回来" in said, said
    assert "邮箱" in said
    assert AFTER_HOURS in conversation(client, admin, "lan")["labels"]

    # a customer who writes from an email address isn't asked for one
    said = customer_says(client, "amy@example.com", "/human")[-1]["text"]
    assert "Monday at 09:00" in said and "email address" not in said


def test_a_handoff_inside_hours_gets_the_usual_notice(api: Api) -> None:
    client, admin, hub = api
    hub.hours.clock = lambda: shanghai(2026, 11, 30, 10, 0)  # Monday morning
    said = customer_says(client, "bob", "/human")[-1]["text"]
    assert said == "I'm passing you to a human colleague. Someone will be with you shortly."
    bob = conversation(client, admin, "bob")
    assert bob["status"] == "pending" and AFTER_HOURS not in bob["labels"]


def test_sla_warning_and_breach_reach_an_agents_socket_once(api: Api) -> None:
    client, admin, hub = api
    token = admin["authorization"].split()[1]
    customer_says(client, "bob", "/human")
    bob = conversation(client, admin, "bob")
    [handoff] = client.get(
        f"{V1}/audit", params={"action": "status", "conversation_id": bob["id"]}, headers=admin
    ).json()["items"]
    started = datetime.fromisoformat(handoff["created_at"])
    warn, due = hub.hours.sla(None, started)
    assert bob["sla_due_at"] == due.isoformat()

    def check_at(when: datetime) -> list[Any]:
        hub.hours.clock = lambda: when
        return list(client.portal.call(hub.sla.check))

    with client.websocket_connect(f"/api/v1/events?token={token}") as events:
        assert check_at(warn - timedelta(seconds=1)) == []  # not yet
        assert len(check_at(warn + timedelta(seconds=1))) == 1
        warning = events.receive_json()
        assert warning["type"] == "conversation.sla_warning"
        assert warning["conversation_id"] == bob["id"]
        assert warning["data"]["due_at"] == due.isoformat()
        assert check_at(warn + timedelta(seconds=2)) == []  # sent once
        assert len(check_at(due + timedelta(seconds=1))) == 1
        breach = events.receive_json()
        assert breach["type"] == "conversation.sla_breached"
        assert breach["conversation_id"] == bob["id"]
        assert check_at(due + timedelta(hours=5)) == []  # sent once
        # the next event on the socket is the note, not another SLA event
        r = client.post(
            f"{V1}/conversations/{bob['id']}/messages",
            json={"text": "looking", "private": True},
            headers=admin,
        )
        assert r.status_code == 201, r.text
        assert events.receive_json()["type"] == "message.created"
    # recorded in the audit log, and an answered conversation has no deadline any more
    actions = [
        row["action"]
        for row in client.get(
            f"{V1}/audit", params={"conversation_id": bob["id"]}, headers=admin
        ).json()["items"]
    ]
    assert actions.count("sla.warning") == 1 and actions.count("sla.breached") == 1
    r = client.post(f"{V1}/conversations/{bob['id']}/messages", json={"text": "Hi"}, headers=admin)
    assert r.status_code == 201, r.text
    assert conversation(client, admin, "bob")["sla_due_at"] is None


def test_the_report_counts_first_response_in_business_hours(api: Api) -> None:
    client, admin, hub = api
    customer_says(client, "bob", "/human")
    bob = conversation_id(client, admin, "bob")
    created, handed = shanghai(2026, 11, 27, 17, 0), shanghai(2026, 11, 27, 17, 30)
    answered = shanghai(2026, 11, 30, 9, 15)

    async def backdate() -> None:
        await hub.store.update_conversation(bob, created_at=created, first_response_at=answered)
        await hub.db.run(
            lambda s: s.execute(
                update(AuditLog).where(AuditLog.conversation_id == bob).values(created_at=handed)  # type: ignore[arg-type]
            )
        )

    client.portal.call(backdate)
    r = client.get(
        f"{V1}/reports/summary",
        params={"since": "2026-11-27T00:00:00+08:00", "until": "2026-11-28T00:00:00+08:00"},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    wall = (answered - handed).total_seconds()
    assert body["first_response_seconds"] == {"median": wall, "p90": wall, "count": 1}
    # 30 minutes on Friday, Saturday's 3 hours, 15 minutes on Monday
    business = (30 + 180 + 15) * 60.0
    assert body["first_response_business_seconds"] == {
        "median": business,
        "p90": business,
        "count": 1,
    }
