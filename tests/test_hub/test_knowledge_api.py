"""Knowledge for agents over the inbox API, and the demo bot answering from its articles
through the REST channel."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from flows import FlowEngine
from hub.store import CannedResponse, Database
from nlu import IntentClassifier
from tests.conftest import client_for, create_agent, login, make_settings


@pytest.fixture
def api(
    sqlite_url: str, tmp_path: Path, classifier: IntentClassifier, flows: FlowEngine
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = make_settings(sqlite_url, tmp_path)
    create_agent(settings, role="agent")

    async def canned() -> None:
        db = Database(sqlite_url)
        async with db.transaction() as s:
            s.add(CannedResponse(short_code="invoice", text="Your invoice is on its way by email."))
            s.add(CannedResponse(short_code="hello", text="Hello! How can I help you today?"))
        await db.close()

    asyncio.run(canned())
    with client_for(settings, classifier, flows) as client:
        yield client, login(client)


def ask(client: TestClient, sender: str, text: str) -> list[dict[str, Any]]:
    r = client.post("/webhooks/rest/webhook", json={"sender": sender, "message": text})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_search_finds_the_entry_in_either_language(api: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = api
    zh = client.get("/api/v1/knowledge/search", params={"q": "顺丰加急多少钱"}, headers=auth)
    en = client.get(
        "/api/v1/knowledge/search",
        params={"q": "how much is SF express", "language": "en"},
        headers=auth,
    )
    assert zh.status_code == 200 and en.status_code == 200
    assert zh.json()["items"][0]["id"] == "express-fee"
    top = en.json()["items"][0]
    assert top["id"] == "express-fee" and "15 yuan" in top["summary"]


def test_search_needs_a_query_and_a_login(api: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = api
    assert client.get("/api/v1/knowledge/search", params={"q": "x"}).status_code == 401
    missing = client.get("/api/v1/knowledge/search", headers=auth)
    assert missing.status_code == 422 and "q" in missing.text
    assert (
        client.get("/api/v1/knowledge/search", params={"q": "  "}, headers=auth).status_code == 422
    )


def test_suggestions_for_a_conversation(api: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = api
    ask(client, "ann", "I need an invoice for my order, can you email it?")
    items = client.get("/api/v1/conversations", headers=auth).json()["items"]
    [conversation] = [c for c in items if c["contact"]["external_id"] == "ann"]

    r = client.get(f"/api/v1/conversations/{conversation['id']}/suggestions", headers=auth)

    assert r.status_code == 200, r.text
    body = r.json()
    assert body["articles"][0]["id"] == "invoice-request"
    assert body["canned"][0]["short_code"] == "invoice"
    assert client.get("/api/v1/conversations/999999/suggestions", headers=auth).status_code == 404


def test_the_bot_answers_from_the_articles_and_asks_if_it_helped(
    api: tuple[TestClient, dict[str, str]],
) -> None:
    client, _ = api
    [answer] = ask(client, "bob", "how do I reset my password")
    assert answer["text"].startswith('On the login page tap "Forgot password"')
    assert [b["payload"] for b in answer["buttons"]] == [
        '/kb_helpful{"entry": "reset-password"}',
        '/kb_unhelpful{"entry": "reset-password"}',
    ]
    [thanks] = ask(client, "bob", '/kb_helpful{"entry": "reset-password"}')
    assert thanks["text"].startswith("Glad I could help")
