"""The summary report (`GET /api/v1/reports/summary`): a small history made through the real API
(customers talking to the demo bot, one asking for a human whom an agent answers, one the bot
gives up on, one on the web widget), then the figures a manager would check; on SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from flows import FlowEngine
from hub.features.reports.summary import BadWindow, percentile, window
from hub.store import Conversation
from nlu import IntentClassifier
from tests.conftest import client_for, create_agent, login, make_settings
from tests.test_hub.test_admin_api import conversation_id
from tests.test_hub.test_api import customer_says

V1 = "/api/v1"
SUMMARY = f"{V1}/reports/summary"
Api = tuple[TestClient, dict[str, str]]


@pytest.fixture
def both(
    database_url: str, tmp_path: Path, classifier: IntentClassifier, flows: FlowEngine
) -> Iterator[Api]:
    """The demo bot on SQLite and on PostgreSQL, with an admin (lin) and an agent (wang)."""
    settings = make_settings(database_url, tmp_path)
    create_agent(settings, role="admin")
    create_agent(settings, email="wang@example.com", role="agent")
    with client_for(settings, classifier, flows) as client:
        yield client, login(client)


def hub_of(client: TestClient) -> Any:
    return client.app.state.hub  # type: ignore[attr-defined]


def stored(client: TestClient, cid: int) -> Conversation:
    conversation = client.portal.call(hub_of(client).store.get_conversation, cid)  # type: ignore[union-attr]
    assert isinstance(conversation, Conversation)
    return conversation


def backdate(client: TestClient, cid: int, **fields: datetime) -> None:
    async def change() -> None:
        await hub_of(client).store.update_conversation(cid, **fields)

    client.portal.call(change)  # type: ignore[union-attr]


def report(client: TestClient, auth: dict[str, str], **params: str) -> dict[str, Any]:
    r = client.get(SUMMARY, params=params, headers=auth)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def make_history(client: TestClient, admin: dict[str, str]) -> dict[str, int]:
    """alice: greeted, then not understood (the bot alone); bob: order status, then asks for a
    human, whom lin answers 90 s after the handover and resolves an hour after the start, and
    rates 4 when asked (hub/features/csat/survey.py); carol: not understood twice, so the bot hands over; a web visitor: opening hours."""
    customer_says(client, "alice", "hello")
    customer_says(client, "alice", "what is the meaning of life")
    customer_says(client, "bob", "where is my order")
    customer_says(client, "bob", "/human")
    bob = conversation_id(client, admin, "bob")
    r = client.post(f"{V1}/conversations/{bob}/messages", json={"text": "Lin here"}, headers=admin)
    assert r.status_code == 201, r.text
    r = client.post(f"{V1}/conversations/{bob}/status", json={"status": "resolved"}, headers=admin)
    assert r.status_code == 200, r.text
    customer_says(client, "bob", '/csat{"score": 4}')  # the rating question's button 4
    customer_says(client, "carol", "what is the meaning of life")
    replies = customer_says(client, "carol", "tell me about quantum physics")
    assert "human" in replies[-1]["text"], replies  # the second fallback in a row hands over
    with client.websocket_connect("/channels/web/ws?visitor=v1") as ws:
        assert ws.receive_json()["type"] == "hello"
        ws.send_json({"type": "message", "client_id": "c-1", "text": "what are your opening hours"})
        assert ws.receive_json()["type"] == "ack"
        assert ws.receive_json()["sender"] == "bot"
    # the admin pages' test chat is not a customer: left out of reports
    r = client.post(f"{V1}/bot/try", json={"text": "hello", "session": "s1"}, headers=admin)
    assert r.status_code == 200, r.text

    # exact durations: bob created 60 s before his handover, answered 90 s after it, resolved
    # 3600 s after he started
    [handover] = client.get(
        f"{V1}/audit", params={"action": "status", "conversation_id": bob}, headers=admin
    ).json()["items"][-1:]
    assert handover["data"]["target"] == "pending"
    handed = datetime.fromisoformat(handover["created_at"])
    created = handed - timedelta(seconds=60)
    backdate(
        client,
        bob,
        created_at=created,
        first_response_at=handed + timedelta(seconds=90),
        resolved_at=created + timedelta(seconds=3600),
    )
    return {"bob": bob, "carol": conversation_id(client, admin, "carol")}


def test_the_summary_shows_what_happened(both: Api) -> None:
    client, admin = both
    ids = make_history(client, admin)
    body = report(client, admin)

    assert body["conversations"] == 4  # alice, bob, carol, the web visitor; not try-it
    # in: 2 + 3 + 2 + 1; out: alice 2 bot, bob 1 bot + handover notice + lin's reply + the
    # rating question + thanks, carol 1 bot + handover notice, web 1 bot
    assert body["messages"] == {"in": 8, "out": 10}
    assert body["containment_rate"] == 0.5  # alice and the web visitor
    assert body["escalation"] == {
        "rate": 0.5,
        "count": 2,
        "reasons": {"customer_request": 1, "fallback": 1},
    }
    assert body["first_response_seconds"] == {"median": 90.0, "p90": 90.0, "count": 1}
    # no business hours configured (bot.hours): business time is all the time
    assert body["first_response_business_seconds"] == body["first_response_seconds"]
    assert body["resolution_seconds"] == {"median": 3600.0, "p90": 3600.0, "count": 1}
    distribution = {"1": 0, "2": 0, "3": 0, "4": 1, "5": 0}
    assert body["csat"] == {"average": 4.0, "count": 1, "distribution": distribution}
    assert body["fallbacks"] == {"messages": 3, "conversations": 2}

    rest, web = body["channels"]["rest"], body["channels"]["web"]
    assert set(body["channels"]) == {"rest", "web"}
    assert rest["conversations"] == 3 and rest["messages"] == {"in": 7, "out": 9}
    assert rest["csat"] == body["csat"]
    assert rest["containment_rate"] == 0.3333 and rest["escalation"]["count"] == 2
    assert rest["first_response_seconds"]["median"] == 90.0
    assert web["conversations"] == 1 and web["containment_rate"] == 1.0
    assert web["escalation"] == {"rate": 0.0, "count": 0, "reasons": {}}
    assert web["resolution_seconds"] == {"median": None, "p90": None, "count": 0}
    assert web["csat"]["average"] is None and web["csat"]["count"] == 0

    intents = body["intents"]
    assert intents["check_order"] == {"messages": 1, "conversations": 1, "escalated": 1}
    assert intents["human"] == {"messages": 1, "conversations": 1, "escalated": 1}
    assert intents["greet"] == {"messages": 1, "conversations": 1, "escalated": 0}
    assert intents["opening_hours"] == {"messages": 1, "conversations": 1, "escalated": 0}
    assert intents["csat"] == {"messages": 1, "conversations": 1, "escalated": 1}  # bob's rating
    assert set(intents) == {"check_order", "human", "greet", "opening_hours", "csat"}

    flows = body["flows"]
    assert flows["order_status"] == {
        "conversations": 1,
        "steps": [{"step": "ask order_id", "loc": "steps.0", "conversations": 1}],
        "fell_back": 0,
        "handed_off": 1,  # bob asked for a human after it started
    }
    assert flows["greet"]["conversations"] == 1
    assert flows["greet"]["fell_back"] == 1  # alice wasn't understood after the greeting
    assert flows["greet"]["handed_off"] == 0
    assert flows["opening_hours"]["steps"] == [
        {"step": "say", "loc": "steps.0", "conversations": 1}
    ]

    texts = [(u["text"], u["count"]) for u in body["unrecognized"]]
    assert texts == [("what is the meaning of life", 2), ("tell me about quantum physics", 1)]

    # the window is [since, until) over created_at: bob alone, then nobody
    created = stored(client, ids["bob"]).created_at
    just_bob = report(
        client, admin, since=created.isoformat(), until=(created + timedelta(seconds=1)).isoformat()
    )
    assert just_bob["conversations"] == 1 and just_bob["resolution_seconds"]["count"] == 1
    assert just_bob["escalation"]["reasons"] == {"customer_request": 1}
    before = report(
        client, admin, since=(created - timedelta(days=1)).isoformat(), until=created.isoformat()
    )
    assert before["conversations"] == 0


def test_an_empty_window_has_zeros_and_null_rates(both: Api) -> None:
    client, admin = both
    customer_says(client, "alice", "hello")
    body = report(client, admin, since="2020-01-01T00:00:00", until="2020-01-08T00:00:00")
    # naive datetimes are UTC
    assert body["since"] == "2020-01-01T00:00:00+00:00"
    assert body["until"] == "2020-01-08T00:00:00+00:00"
    assert body["conversations"] == 0
    assert body["messages"] == {"in": 0, "out": 0}
    assert body["containment_rate"] is None
    assert body["escalation"] == {"rate": None, "count": 0, "reasons": {}}
    assert body["first_response_seconds"] == {"median": None, "p90": None, "count": 0}
    assert body["resolution_seconds"] == {"median": None, "p90": None, "count": 0}
    none = {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0}
    assert body["csat"] == {"average": None, "count": 0, "distribution": none}
    assert body["channels"] == {} and body["intents"] == {} and body["flows"] == {}
    assert body["unrecognized"] == []
    # the default window is the last 7 days, and has alice
    default = report(client, admin)
    since, until = (
        datetime.fromisoformat(default["since"]),
        datetime.fromisoformat(default["until"]),
    )
    assert until - since == timedelta(days=7)
    assert default["conversations"] == 1 and default["containment_rate"] == 1.0
    # a zone is honoured: 08:00 in Beijing is midnight UTC
    zoned = report(client, admin, since="2020-01-01T08:00:00+08:00", until="2020-01-02T00:00:00Z")
    assert zoned["since"] == "2020-01-01T00:00:00+00:00"


def test_bad_windows_are_422_and_agents_403(both: Api) -> None:
    client, admin = both
    bad = [
        ({"since": "2025-01-02T00:00:00Z", "until": "2025-01-01T00:00:00Z"}, "must be after"),
        ({"since": "2025-01-01T00:00:00Z", "until": "2025-01-01T00:00:00Z"}, "must be after"),
        ({"since": "2024-01-01T00:00:00Z", "until": "2025-01-03T00:00:00Z"}, "at most 366 days"),
        ({"since": "yesterday"}, "datetime"),
    ]
    for params, why in bad:
        r = client.get(SUMMARY, params=params, headers=admin)
        assert r.status_code == 422, (params, r.text)
        assert why in r.text, (params, r.text)
    # 366 days exactly is allowed
    r = client.get(
        SUMMARY,
        params={"since": "2024-01-01T00:00:00Z", "until": "2024-12-31T00:00:00Z"},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    r = client.get(SUMMARY, headers=login(client, "wang@example.com"))
    assert r.status_code == 403 and "needs role admin" in r.text
    assert client.get(SUMMARY).status_code == 401


def test_percentiles_interpolate_between_ranks() -> None:
    assert percentile([], 50) is None
    assert percentile([60], 90) == 60
    assert percentile([120, 60], 50) == 90
    assert percentile([float(n) for n in range(1, 11)], 90) == pytest.approx(9.1)
    assert percentile([1.0, 2.0, 3.0], 50) == 2.0


def test_window_defaults_and_limits() -> None:
    now = datetime(2025, 3, 10, 12, tzinfo=UTC)
    assert window(None, None, now) == (now - timedelta(days=7), now)
    until = datetime(2025, 3, 1)
    assert window(None, until, now) == (
        datetime(2025, 2, 22, tzinfo=UTC),
        datetime(2025, 3, 1, tzinfo=UTC),
    )
    with pytest.raises(BadWindow, match="must be after"):
        window(now, now - timedelta(seconds=1), now)
    with pytest.raises(BadWindow, match="366"):
        window(now - timedelta(days=367), None, now)
