"""Auto-assignment and the queue (hub/features/routing/assignment.py), through the real API on SQLite and
PostgreSQL: round robin among online agents of a team with room, the queue and what its
customers are told, reassignment when an agent goes offline, and rounds that run at once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from flows import FlowEngine
from hub.messages import Status
from hub.ops.settings import Settings
from hub.testing import TestBot
from nlu import IntentClassifier
from tests.conftest import client_for, create_agent, login, make_settings
from tests.test_hub.test_admin_api import conversation_id, wait_for
from tests.test_hub.test_api import customer_says

V1 = "/api/v1"
ON = {"enabled": True, "every": 3600}  # rounds only on events: no sweep hides a missed one
COMPLAINT = "/complaint"  # the demo bot's complaint flow hands over to team `care`, high


@dataclass
class Desk:
    client: TestClient
    admin: dict[str, str]  # the admin's headers (offline: never given conversations)
    ids: dict[str, int]  # agent name -> id
    auth: dict[str, dict[str, str]]  # agent name -> headers

    def presence(self, name: str, presence: str) -> None:
        r = self.client.patch(f"{V1}/me", json={"presence": presence}, headers=self.auth[name])
        assert r.status_code == 200, r.text

    def conversation(self, sender: str) -> dict[str, Any]:
        cid = conversation_id(self.client, self.admin, sender)
        r = self.client.get(f"{V1}/conversations/{cid}", headers=self.admin)
        assert r.status_code == 200, r.text
        return dict(r.json())

    def assignee(self, sender: str) -> int | None:
        item = self.conversation(sender)
        if item["status"] != "open":
            return None
        assignee = item["assignee"]
        return int(assignee["id"]) if isinstance(assignee, dict) else assignee

    def resolve(self, sender: str, name: str) -> None:
        cid = conversation_id(self.client, self.admin, sender)
        r = self.client.post(
            f"{V1}/conversations/{cid}/status", json={"status": "resolved"}, headers=self.auth[name]
        )
        assert r.status_code == 200, r.text

    def queue(self) -> list[dict[str, Any]]:
        r = self.client.get(f"{V1}/queue", headers=self.auth["a"])
        assert r.status_code == 200, r.text
        return list(r.json()["items"])

    def system_texts(self, sender: str) -> list[str]:
        cid = conversation_id(self.client, self.admin, sender)
        r = self.client.get(f"{V1}/conversations/{cid}/messages", headers=self.admin)
        return [m["text"] for m in r.json()["items"] if m["sender"] == "system"]


def open_desk(
    settings: Settings, classifier: IntentClassifier, flows: FlowEngine
) -> Iterator[Desk]:
    """Agents a and b in team care with room for one conversation each, and an admin."""
    ids = {
        "a": create_agent(settings, "a@example.com", role="agent", teams=["care"], capacity=1),
        "b": create_agent(settings, "b@example.com", role="agent", teams=["care"], capacity=1),
        "admin": create_agent(settings, "lin@example.com", role="admin"),
    }
    with client_for(settings, classifier, flows) as client:
        auth = {name: login(client, f"{name}@example.com") for name in ("a", "b")}
        yield Desk(client, login(client), ids, auth)


@pytest.fixture
def desk(
    database_url: str, tmp_path: Path, classifier: IntentClassifier, flows: FlowEngine
) -> Iterator[Desk]:
    yield from open_desk(make_settings(database_url, tmp_path, assignment=ON), classifier, flows)


def test_round_robin_then_a_queue_that_moves_when_an_agent_resolves(desk: Desk) -> None:
    desk.presence("a", "online")
    desk.presence("b", "online")
    customer_says(desk.client, "c1", COMPLAINT)
    customer_says(desk.client, "c2", COMPLAINT)
    assert desk.assignee("c1") == desk.ids["a"]
    assert desk.assignee("c2") == desk.ids["b"]  # round robin, and a is full anyway

    customer_says(desk.client, "c3", "你好")  # a Chinese customer
    replies = customer_says(desk.client, "c3", COMPLAINT)
    assert "您目前排在第 1 位" in replies[-1]["text"]
    assert "预计等待约 1 分钟" in replies[-1]["text"]  # c1 and c2 waited under a minute
    assert desk.conversation("c3")["status"] == "pending"
    replies = customer_says(desk.client, "c4", COMPLAINT)
    assert "You are number 2 in the queue" in replies[-1]["text"]
    [first, second] = desk.queue()
    assert (first["position"], first["team"], first["priority"]) == (1, "care", "high")
    assert second["position"] == 2 and second["expected_wait_seconds"] is not None

    desk.resolve("c1", "a")  # room for the first in the queue
    wait_for(lambda: desk.assignee("c3") == desk.ids["a"], "c3 assigned to a")
    assert desk.conversation("c4")["status"] == "pending"

    customer_says(desk.client, "c4", "still there?")  # writes while waiting: one place up
    wait_for(
        lambda: any("number 1 in the queue" in t for t in desk.system_texts("c4")),
        "c4 told its new place",
    )


def test_an_agent_going_offline_hands_their_conversations_on(desk: Desk) -> None:
    desk.presence("a", "online")
    desk.presence("b", "online")
    for sender in ("c1", "c2", "c3"):
        customer_says(desk.client, sender, COMPLAINT)
    assert [desk.assignee(s) for s in ("c1", "c2", "c3")] == [desk.ids["a"], desk.ids["b"], None]

    desk.presence("b", "offline")  # c2 back to the queue, ahead of c3 (it waited longer)
    assert desk.conversation("c2")["status"] == "pending"
    c2, c3 = (conversation_id(desk.client, desk.admin, s) for s in ("c2", "c3"))
    assert [(i["conversation_id"], i["position"]) for i in desk.queue()] == [(c2, 1), (c3, 2)]
    audit = desk.client.get(
        f"{V1}/audit", params={"action": "status", "conversation_id": c2}, headers=desk.admin
    ).json()["items"]
    assert audit[0]["actor"] == "system"
    assert audit[0]["data"]["reason"] == "agent went offline"

    desk.resolve("c1", "a")
    wait_for(lambda: desk.assignee("c2") == desk.ids["a"], "c2 assigned to the online agent")
    assert desk.conversation("c3")["status"] == "pending"  # b is offline: nothing for b


def test_away_and_offline_agents_get_nothing(desk: Desk) -> None:
    desk.presence("a", "away")  # b stays offline, as created
    replies = customer_says(desk.client, "c1", COMPLAINT)
    assert replies[-1]["text"].endswith("You are number 1 in the queue.")  # no figures yet
    assert desk.conversation("c1")["status"] == "pending"
    customer_says(desk.client, "c2", "/human")  # no team: any online agent, and none is
    assert desk.conversation("c2")["status"] == "pending"

    desk.presence("b", "online")  # coming online takes the first in line
    assert desk.assignee("c1") == desk.ids["b"]
    assert desk.conversation("c2")["status"] == "pending"


def test_round_robin_takes_turns_while_both_have_room(desk: Desk) -> None:
    for name in ("a", "b"):
        r = desk.client.patch(
            f"{V1}/agents/{desk.ids[name]}", json={"capacity": 5}, headers=desk.admin
        )
        assert r.status_code == 200, r.text
        desk.presence(name, "online")
    senders = ["c1", "c2", "c3", "c4"]
    for sender in senders:
        customer_says(desk.client, sender, COMPLAINT)
    a, b = desk.ids["a"], desk.ids["b"]
    assert [desk.assignee(s) for s in senders] == [a, b, a, b]


def test_higher_priority_goes_first(desk: Desk) -> None:
    customer_says(desk.client, "c1", "/human")  # no team, no priority, nobody online
    customer_says(desk.client, "c2", COMPLAINT)  # later, but high priority
    c1, c2 = (conversation_id(desk.client, desk.admin, s) for s in ("c1", "c2"))
    assert [i["conversation_id"] for i in desk.queue()] == [c2, c1]

    desk.presence("b", "online")  # room for one: the complaint
    assert desk.assignee("c2") == desk.ids["b"]
    assert desk.conversation("c1")["status"] == "pending"


def test_disabled_assignment_assigns_nothing(
    settings: Settings, classifier: IntentClassifier, flows: FlowEngine
) -> None:
    assert settings.assignment.enabled is False  # the default
    for desk in open_desk(settings, classifier, flows):
        desk.presence("a", "online")
        replies = customer_says(desk.client, "c1", COMPLAINT)
        assert "queue" not in replies[-1]["text"]
        desk.presence("b", "online")
        assert desk.conversation("c1")["status"] == "pending"
        r = desk.client.get(f"{V1}/queue", headers=desk.auth["a"])
        assert r.json()["enabled"] is False
        assert [i["position"] for i in r.json()["items"]] == [1]  # still shown in order


def test_the_queue_shows_an_agent_only_what_they_may_see(desk: Desk) -> None:
    customer_says(desk.client, "c1", COMPLAINT)  # team care, nobody online
    create_agent(
        desk.client.app.state.hub.settings,  # type: ignore[attr-defined]
        "zhou@example.com",
        role="agent",
        teams=["logistics"],
    )
    other = login(desk.client, "zhou@example.com")
    assert desk.client.get(f"{V1}/queue", headers=other).json()["items"] == []
    assert len(desk.queue()) == 1
    assert desk.client.get(f"{V1}/queue").status_code == 401


# ---- rounds at once ---------------------------------------------------------------------


async def test_rounds_at_once_never_assign_twice_nor_past_capacity(
    database_url: str, tmp_path: Path, classifier: IntentClassifier, flows: FlowEngine
) -> None:
    """Two rounds at once in one hub (SQLite); on PostgreSQL also two hubs over one database,
    as two processes would be."""
    settings = make_settings(database_url, tmp_path, assignment=ON)
    async with TestBot.running(settings, classifier, flows) as bot:
        hubs = [bot.hub]
        store = bot.hub.store
        agents = [
            await store.create_agent(f"{n}@example.com", n, "x", "agent", ["care"], capacity=2)
            for n in ("p", "q")
        ]
        for n in range(7):
            await bot.customer(f"c{n}").press(COMPLAINT)  # nobody online: all wait
        async with TestBot.running(settings, classifier, flows) as other:
            if "postgresql" in database_url:
                hubs.append(other.hub)
            for agent in agents:
                assert agent.id is not None
                await store.update_agent(agent.id, presence="online")
            rounds = [h.routing.assign_waiting(h.conversations) for h in hubs for _ in range(3)]
            assigned = [c for done in await asyncio.gather(*rounds) for c in done]

    assert len(assigned) == 4  # two agents, room for two each
    assert len({c.id for c in assigned}) == 4  # none twice
    counts = await open_counts(settings)
    assert sorted(counts.values()) == [2, 2]


async def open_counts(settings: Settings) -> dict[int, int]:
    from hub.store import Database, Store

    db = Database(settings.database_url)
    try:
        counts = await Store(db).open_counts()
        pending = await Store(db).pending_since()
        assert len(pending) == 3 and all(c.status == Status.PENDING for c, _ in pending)
        return counts
    finally:
        await db.close()
