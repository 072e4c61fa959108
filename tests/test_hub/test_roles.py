"""Who may do what: every route under /api/v1 with each role, by JWT and by API token (a
route without a decision in ROUTES fails here), and which conversations an agent with teams
sees (the others are 404, missing from lists, counts and the events socket)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from flows import FlowEngine
from hub.ops.settings import Settings
from nlu import IntentClassifier
from tests.conftest import client_for, create_agent, login
from tests.test_hub.test_admin_api import conversation_id, wait_for
from tests.test_hub.test_api import customer_says

V1 = "/api/v1"
ROLES = ("admin", "agent", "designer")
EMAILS = {"admin": "lin@example.com", "agent": "wang@example.com", "designer": "zhao@example.com"}
OK, DENIED, ALLOWED = "2xx", 403, "allowed"  # ALLOWED: past the role check (any 2xx/4xx)


@dataclass(frozen=True)
class Rule:
    """What each role gets from a route, and a request that succeeds for a role allowed."""

    admin: str | int = OK
    agent: str | int = OK
    designer: str | int = OK
    body: Any = None
    query: dict[str, Any] = field(default_factory=dict)


ADMIN = {"agent": DENIED, "designer": DENIED}
# Others' admin routes: admins get past the role check (their ids here don't exist).
ADMIN_ELSEWHERE = {"admin": ALLOWED, **ADMIN}
INBOX_WRITE = {"designer": DENIED}  # designers read conversations, agents change them

ROUTES: dict[tuple[str, str], Rule] = {
    ("POST", "/auth/login"): Rule(body={"email": EMAILS["admin"], "password": "s3cret-pass"}),
    ("POST", "/auth/logout"): Rule(),  # revokes the credential used (a new one is made after)
    ("GET", "/me"): Rule(),
    ("PATCH", "/me"): Rule(body={"presence": "online"}),
    ("GET", "/conversations"): Rule(query={"status": "pending"}),
    ("GET", "/conversations/counts"): Rule(),
    ("GET", "/labels"): Rule(),
    ("GET", "/conversations/{conversation_id}"): Rule(),
    ("GET", "/conversations/{conversation_id}/messages"): Rule(),
    ("POST", "/conversations/{conversation_id}/messages"): Rule(
        **INBOX_WRITE, body={"text": "Hello"}
    ),
    ("POST", "/conversations/{conversation_id}/assign"): Rule(**INBOX_WRITE, body={"team": "care"}),
    ("POST", "/conversations/{conversation_id}/status"): Rule(
        **INBOX_WRITE, body={"status": "resolved"}
    ),
    ("PUT", "/conversations/{conversation_id}/labels"): Rule(**INBOX_WRITE, body={"labels": ["x"]}),
    ("GET", "/conversations/{conversation_id}/suggestions"): Rule(),
    ("WS", "/events"): Rule(),
    ("POST", "/nlu/parse"): Rule(body={"text": "where is my order"}),
    ("GET", "/knowledge/search"): Rule(query={"q": "refund"}),
    ("GET", "/agents"): Rule(),
    ("POST", "/agents"): Rule(**ADMIN, body={"name": "N", "password": "long-enough"}),
    ("PATCH", "/agents/{agent_id}"): Rule(**ADMIN, body={"capacity": 5}),
    ("GET", "/teams"): Rule(),
    ("POST", "/teams"): Rule(**ADMIN, body={}),
    ("DELETE", "/teams/{name}"): Rule(**ADMIN),
    ("GET", "/canned"): Rule(),
    ("POST", "/canned"): Rule(**ADMIN, body={"text": "Hello!"}),
    ("PATCH", "/canned/{canned_id}"): Rule(**ADMIN, body={"text": "Hi!"}),
    ("DELETE", "/canned/{canned_id}"): Rule(**ADMIN),
    ("GET", "/channels"): Rule(),
    ("GET", "/bot"): Rule(),
    ("POST", "/bot/reload"): Rule(agent=DENIED, body={}),
    ("POST", "/bot/try"): Rule(body={"text": "hi", "session": "roles"}),
    ("POST", "/tokens"): Rule(**ADMIN, body={"role": "agent"}),
    ("GET", "/tokens"): Rule(**ADMIN),
    ("DELETE", "/tokens/{token_id}"): Rule(**ADMIN),
    ("GET", "/audit"): Rule(**ADMIN, query={"action": "status"}),
    ("GET", "/webhooks"): Rule(**ADMIN),
    ("POST", "/webhooks"): Rule(
        **ADMIN, body={"url": "https://example.com/hook", "events": ["webhook.test"]}
    ),
    ("PATCH", "/webhooks/{webhook_id}"): Rule(**ADMIN_ELSEWHERE, body={"active": False}),
    ("DELETE", "/webhooks/{webhook_id}"): Rule(**ADMIN_ELSEWHERE),
    ("GET", "/webhooks/{webhook_id}/deliveries"): Rule(**ADMIN_ELSEWHERE),
    ("POST", "/webhooks/{webhook_id}/test"): Rule(**ADMIN_ELSEWHERE),
    ("GET", "/contacts"): Rule(**ADMIN),
    ("GET", "/contacts/{contact_id}/export"): Rule(**ADMIN_ELSEWHERE),
    ("DELETE", "/contacts/{contact_id}"): Rule(**ADMIN_ELSEWHERE),
    ("POST", "/contacts/{contact_id}/merge"): Rule(**ADMIN_ELSEWHERE, body={"with": 1}),
    ("POST", "/contacts/{contact_id}/unmerge"): Rule(**ADMIN_ELSEWHERE),
    ("GET", "/conversations/{conversation_id}/history"): Rule(),
    ("GET", "/reports/summary"): Rule(**ADMIN),  # every team's figures and customers' words
    ("GET", "/nlu/review"): Rule(agent=DENIED),  # designers and admins improve the bot
    ("GET", "/nlu/examples"): Rule(agent=DENIED),
    ("POST", "/nlu/examples"): Rule(agent=DENIED, body={"intent": "greet"}),
    ("DELETE", "/nlu/examples/{example_id}"): Rule(agent=DENIED),
    ("GET", "/queue"): Rule(),
}
# What an API token gets differently from a login of the same role.
TOKEN_RULES = {("PATCH", "/me"): DENIED}  # a token has no settings of its own
# POSTs that change nothing (so write no audit row): logging in, parsing a text.
NOT_ACTIONS = {("POST", "/auth/login"), ("POST", "/nlu/parse")}


def api_routes(client: TestClient) -> set[tuple[str, str]]:
    """Every (method, path) under /api/v1 the app serves; WS for a WebSocket."""
    found = set()
    for route in iter_route_contexts(client.app.routes):  # type: ignore[attr-defined]
        path = route.path or ""
        if path.startswith(V1):
            for method in route.methods or {"WS"}:
                if method != "HEAD":
                    found.add((method, path.removeprefix(V1)))
    return found


class Things:
    """A fresh object for each path parameter, made through the API as the admin, so that
    every call (deletes included) finds what it needs."""

    def __init__(self, client: TestClient, admin: dict[str, str]) -> None:
        self.client, self.admin = client, admin
        self.n = itertools.count()

    def conversation_id(self) -> int:
        sender = f"roles-{next(self.n)}"
        customer_says(self.client, sender, "/human")
        return conversation_id(self.client, self.admin, sender)

    def _created(self, path: str, body: dict[str, Any], key: str = "id") -> Any:
        r = self.client.post(V1 + path, json=body, headers=self.admin)
        assert r.status_code == 201, r.text
        return r.json()[key]

    def agent_id(self) -> int:
        n = next(self.n)
        body = {"email": f"made{n}@example.com", "name": "Made", "password": "long-enough"}
        return int(self._created("/agents", body))

    def name(self) -> str:
        return str(self._created("/teams", {"name": f"team{next(self.n)}"}, "name"))

    def canned_id(self) -> int:
        return int(self._created("/canned", {"short_code": f"c{next(self.n)}", "text": "Hi"}))

    def token_id(self) -> int:
        return int(self._created("/tokens", {"name": "t", "role": "agent"}))

    def webhook_id(self) -> int:
        return 999_999

    def contact_id(self) -> int:
        return 999_999

    def example_id(self) -> int:
        body = {"text": f"hi {next(self.n)}", "intent": "greet"}
        return int(self._created("/nlu/examples", body))

    def fill(self, path: str) -> str:
        while "{" in path:
            name = path[path.index("{") + 1 : path.index("}")]
            path = path.replace("{" + name + "}", str(getattr(self, name)()), 1)
        return path

    def fresh_body(self, method: str, path: str, body: Any) -> Any:
        """Bodies that must differ on every call (unique emails, names, short codes)."""
        n = next(self.n)
        extra: dict[str, Any] = {
            ("POST", "/agents"): {"email": f"new{n}@example.com"},
            ("POST", "/teams"): {"name": f"new{n}"},
            ("POST", "/canned"): {"short_code": f"new{n}"},
            ("POST", "/tokens"): {"name": f"integration {n}"},
            ("POST", "/nlu/examples"): {"text": f"hello there {n}"},
        }.get((method, path), {})
        return {**body, **extra} if isinstance(body, dict) else body


def newest_audit_id(client: TestClient, admin: dict[str, str]) -> int:
    items = client.get(f"{V1}/audit", params={"limit": 1}, headers=admin).json()["items"]
    return int(items[0]["id"]) if items else 0


@pytest.fixture
def roles_api(
    settings: Settings, classifier: IntentClassifier, flows: FlowEngine
) -> Iterator[tuple[TestClient, dict[str, int]]]:
    """The app with an admin, an agent and a designer (no teams: they see everything)."""
    ids = {role: create_agent(settings, EMAILS[role], role=role) for role in ROLES}
    with client_for(settings, classifier, flows) as client:
        yield client, ids


def test_every_api_route_has_a_decision(roles_api: tuple[TestClient, dict[str, int]]) -> None:
    client, _ = roles_api
    served = api_routes(client)
    assert served - ROUTES.keys() == set(), "add these routes to ROUTES with who may use them"
    assert ROUTES.keys() - served == set(), "these routes are gone: remove them from ROUTES"


def check(expected: str | int, status: int) -> bool:
    if expected == OK:
        return 200 <= status < 300
    if expected == ALLOWED:
        return status < 500 and status not in (401, 403)
    return status == expected


@pytest.mark.parametrize("credential", ["jwt", "api token"])
def test_each_role_on_each_route(
    roles_api: tuple[TestClient, dict[str, int]], credential: str
) -> None:
    """Each role on each route gets what ROUTES says; each action allowed is audited with
    who did it (`agent:<id>` or `token:<id>`)."""
    client, ids = roles_api
    admin = login(client)
    things = Things(client, admin)

    def credentials(role: str) -> tuple[dict[str, str], str]:
        if credential == "jwt":
            return login(client, EMAILS[role]), f"agent:{ids[role]}"
        r = client.post(f"{V1}/tokens", json={"name": role, "role": role}, headers=admin)
        return {"authorization": f"Bearer {r.json()['token']}"}, f"token:{r.json()['id']}"

    for role in ROLES:
        auth, who = credentials(role)
        for (method, path), rule in sorted(ROUTES.items()):
            expected = getattr(rule, role)
            if credential != "jwt":
                expected = TOKEN_RULES.get((method, path), expected)
            url = V1 + things.fill(path)
            if method == "WS":
                with client.websocket_connect(f"{url}?token={auth['authorization'][7:]}"):
                    pass  # accepted (a refused socket raises)
                continue
            body = things.fresh_body(method, path, rule.body)
            before = newest_audit_id(client, admin)
            r = client.request(method, url, json=body, params=rule.query, headers=auth)
            assert check(expected, r.status_code), (role, method, url, r.status_code, r.text)
            if r.status_code == 403:
                assert "needs role" in r.text or "API token" in r.text, r.text
            if method != "GET" and (method, path) not in NOT_ACTIONS and r.is_success:
                rows = client.get(
                    f"{V1}/audit", params={"actor": who, "limit": 5}, headers=admin
                ).json()["items"]
                assert rows and rows[0]["id"] > before, (role, method, path, "not audited")
            if path == "/auth/logout":  # that credential is revoked: the next routes need one
                assert client.get(f"{V1}/me", headers=auth).status_code == 401
                auth, who = credentials(role)


# ---- which conversations an agent with teams sees ---------------------------------------


@pytest.fixture
def teams_api(
    settings: Settings, classifier: IntentClassifier, flows: FlowEngine
) -> Iterator[tuple[TestClient, dict[str, Any]]]:
    """Conversations of team care, team sales, no team, and one of sales assigned to wang
    (an agent of care); agents and designers with and without teams."""
    create_agent(settings, role="admin")
    wang = create_agent(settings, "wang@example.com", role="agent", teams=["care"])
    create_agent(settings, "free@example.com", role="agent")
    create_agent(settings, "zhu@example.com", role="designer", teams=["care", "vip"])
    create_agent(settings, "zhao@example.com", role="designer")
    with client_for(settings, classifier, flows) as client:
        admin = login(client)
        ids: dict[str, Any] = {"wang": wang}
        for name, team in (("care", "care"), ("sales", "sales"), ("none", None), ("his", "sales")):
            customer_says(client, f"vis-{name}", "/human")
            ids[name] = conversation_id(client, admin, f"vis-{name}")
            if team:
                body: dict[str, Any] = {"team": team}
                if name == "his":
                    body["agent_id"] = wang
                r = client.post(f"{V1}/conversations/{ids[name]}/assign", json=body, headers=admin)
                assert r.status_code == 200, r.text
        yield client, ids


def listed(client: TestClient, auth: dict[str, str], **params: Any) -> set[int]:
    r = client.get(f"{V1}/conversations", params={"q": "vis-", **params}, headers=auth)
    assert r.status_code == 200, r.text
    return {int(i["id"]) for i in r.json()["items"]}


def counted(client: TestClient, auth: dict[str, str]) -> int:
    counts = client.get(f"{V1}/conversations/counts", headers=auth).json()
    return sum(n for status, n in counts.items() if status != "mine")


def test_an_agent_with_teams_sees_their_teams_no_team_and_their_own(
    teams_api: tuple[TestClient, dict[str, Any]],
) -> None:
    client, ids = teams_api
    everything = {ids["care"], ids["sales"], ids["none"], ids["his"]}
    wang = login(client, "wang@example.com")
    assert listed(client, wang) == {ids["care"], ids["none"], ids["his"]}
    assert listed(client, wang, team="sales") == {ids["his"]}
    assert listed(client, wang, assignee="me") == {ids["his"]}
    assert counted(client, wang) == 3
    # a designer with teams reads as an agent of those teams would
    assert listed(client, login(client, "zhu@example.com")) == {ids["care"], ids["none"]}
    for everyone in ("lin@example.com", "free@example.com", "zhao@example.com"):
        assert listed(client, login(client, everyone)) == everything, everyone
        assert counted(client, login(client, everyone)) == 4
    assert client.get(f"{V1}/conversations/{ids['his']}", headers=wang).status_code == 200


def test_another_teams_conversation_is_404_for_reads_and_writes(
    teams_api: tuple[TestClient, dict[str, Any]],
) -> None:
    client, ids = teams_api
    wang = login(client, "wang@example.com")
    hidden, missing = ids["sales"], 999_999
    calls: list[tuple[str, str, Any]] = [
        ("GET", "", None),
        ("GET", "/messages", None),
        ("GET", "/suggestions", None),
        ("POST", "/messages", {"text": "hi"}),
        ("POST", "/messages", {"text": "note", "private": True}),
        ("POST", "/assign", {"team": "care"}),
        ("POST", "/status", {"status": "resolved"}),
        ("PUT", "/labels", {"labels": ["x"]}),
    ]
    for method, tail, body in calls:
        r = client.request(method, f"{V1}/conversations/{hidden}{tail}", json=body, headers=wang)
        assert r.status_code == 404, (method, tail, r.text)
        # the same answer as for an id that doesn't exist: nothing tells them apart
        other = client.request(
            method, f"{V1}/conversations/{missing}{tail}", json=body, headers=wang
        )
        assert other.json()["detail"] == r.json()["detail"].replace(str(hidden), str(missing))
    view = client.get(f"{V1}/conversations/{hidden}", headers=login(client)).json()
    assert view["status"] == "pending" and view["labels"] == [] and view["team"] == "sales"
    # moved to their team, it is theirs to see
    client.post(f"{V1}/conversations/{hidden}/assign", json={"team": "care"}, headers=login(client))
    assert client.get(f"{V1}/conversations/{hidden}", headers=wang).status_code == 200


def test_labels_are_those_of_conversations_the_agent_sees(
    teams_api: tuple[TestClient, dict[str, Any]],
) -> None:
    client, ids = teams_api
    admin = login(client)
    for name in ("care", "sales", "none", "his"):
        r = client.put(
            f"{V1}/conversations/{ids[name]}/labels",
            json={"labels": [f"{name}-label", "shared"]},
            headers=admin,
        )
        assert r.status_code == 200, r.text

    def labels(email: str) -> list[str]:
        r = client.get(f"{V1}/labels", headers=login(client, email))
        assert r.status_code == 200, r.text
        return list(r.json()["items"])

    # sales' own label is not shown to an agent of care (it names another team's work)
    expected = ["care-label", "his-label", "none-label", "shared"]
    assert labels("wang@example.com") == expected
    assert labels("zhu@example.com") == ["care-label", "none-label", "shared"]
    everything = ["care-label", "his-label", "none-label", "sales-label", "shared"]
    for everyone in ("lin@example.com", "free@example.com", "zhao@example.com"):
        assert labels(everyone) == everything, everyone


def test_events_socket_sends_an_agent_only_what_they_may_see(
    teams_api: tuple[TestClient, dict[str, Any]],
) -> None:
    client, ids = teams_api
    admin = login(client)
    token = login(client, "wang@example.com")["authorization"].split()[1]
    free_token = login(client, "free@example.com")["authorization"].split()[1]

    def label(name: str, labels: list[str]) -> None:
        r = client.put(
            f"{V1}/conversations/{ids[name]}/labels", json={"labels": labels}, headers=admin
        )
        assert r.status_code == 200, r.text

    with (
        client.websocket_connect(f"{V1}/events?token={token}") as events,
        client.websocket_connect(f"{V1}/events?token={free_token}") as free_events,
    ):
        label("sales", ["secret"])
        label("care", ["seen"])
        seen: list[dict[str, Any]] = []

        def until(socket: Any, cid: int) -> Callable[[], bool]:
            return lambda: (
                (seen.append(e := socket.receive_json()) or True) and (e["conversation_id"] == cid)
            )

        wait_for(until(events, ids["care"]), "event of care")
        assert all(e["conversation_id"] != ids["sales"] for e in seen), seen
        seen.clear()
        wait_for(until(free_events, ids["care"]), "event of care for an agent without teams")
        assert any(e["conversation_id"] == ids["sales"] for e in seen), seen
