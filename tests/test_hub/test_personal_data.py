"""Personal data (PIPL, GDPR): a contact found, exported and erased with their files; the
retention period deleting old resolved conversations. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from flows import FlowEngine
from hub.messages import Attachment, Inbound, Kind, utcnow
from hub.ops.settings import Settings, SettingsError, load_settings
from hub.store import AuditLog, Database
from nlu import IntentClassifier
from tests.conftest import client_for, create_agent, login, make_settings
from tests.test_hub.test_admin_api import conversation_id, wait_for
from tests.test_hub.test_api import customer_says

V1 = "/api/v1"


@pytest.fixture
def settings_both(database_url: str, tmp_path: Path) -> Settings:
    # a webhook test subscribes a loopback URL, which needs the admin's allow-list
    settings = make_settings(database_url, tmp_path, webhooks={"allow_hosts": ["127.0.0.1"]})
    create_agent(settings, role="admin")
    create_agent(settings, email="wang@example.com", role="agent")
    return settings


@pytest.fixture
def both(
    settings_both: Settings, classifier: IntentClassifier, flows: FlowEngine
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    with client_for(settings_both, classifier, flows) as client:
        yield client, login(client)


def send_file(client: TestClient, sender: str, text: str, data: bytes) -> str:
    """A customer message on the REST channel with a file attached; returns the file's URL."""
    hub: Any = client.app.state.hub  # type: ignore[attr-defined]

    async def send() -> str:
        url: str = await hub.save_media(data, name="receipt 收据.png", mime_type="image/png")
        attachment = Attachment(kind=Kind.IMAGE, url=url, name="receipt 收据.png")
        inbound = Inbound(channel="rest", sender_id=sender, text=text, attachments=(attachment,))
        await hub.receive(inbound)
        return url

    return str(client.portal.call(send))  # type: ignore[union-attr]


def audit_rows(settings: Settings, action: str | None = None) -> list[AuditLog]:
    async def read() -> list[AuditLog]:
        db = Database(settings.database_url)
        try:
            async with db.read() as s:
                query = select(AuditLog).order_by(AuditLog.id)  # type: ignore[arg-type]
                if action:
                    query = query.where(AuditLog.action == action)
                return list((await s.exec(query)).all())
        finally:
            await db.close()

    return asyncio.run(read())


def find(client: TestClient, auth: dict[str, str], q: str) -> list[dict[str, Any]]:
    r = client.get(f"{V1}/contacts", params={"q": q}, headers=auth)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def test_a_contact_is_found_exported_and_erased(
    both: tuple[TestClient, dict[str, str]], settings_both: Settings
) -> None:
    client, auth = both
    url = send_file(client, "ann-ci", "my receipt, order 8812", b"\x89PNG ann's receipt")
    customer_says(client, "ann-ci", "/human")
    cid = conversation_id(client, auth, "ann-ci")
    client.post(f"{V1}/conversations/{cid}/messages", json={"text": "Looking now"}, headers=auth)
    kept_url = send_file(client, "bob-ci", "bob's own file", b"\x89PNG bob")
    bob_cid = conversation_id(client, auth, "bob-ci")
    path = settings_both.data_dir / "media" / url.removeprefix("/media/")
    assert path.is_file() and client.get(url).status_code == 200

    [ann] = find(client, auth, "ann-ci")
    assert ann["external_id"] == "ann-ci" and ann["channel"] == "rest"
    assert ann["conversations"] == 1
    assert find(client, auth, str(ann["id"]))[0]["id"] == ann["id"]
    assert len(find(client, auth, "-ci")) == 2 and find(client, auth, "nobody") == []

    r = client.get(f"{V1}/contacts/{ann['id']}/export", headers=auth)
    assert r.status_code == 200, r.text
    assert "attachment" in r.headers["content-disposition"]
    export = r.json()
    assert export["contact"]["external_id"] == "ann-ci" and export["exported_at"]
    [conversation] = export["conversations"]
    assert conversation["id"] == cid and conversation["status"] == "open"
    texts = [m["text"] for m in conversation["messages"]]
    assert "my receipt, order 8812" in texts and "Looking now" in texts and "/human" in texts
    [with_file] = [m for m in conversation["messages"] if m["attachments"]]
    assert with_file["attachments"][0]["url"] == url
    assert export["files"] == [
        {
            "message_id": with_file["id"],
            "url": f"http://testserver{url}",
            "size": len(b"\x89PNG ann's receipt"),
        }
    ]
    assert "status" in {a["action"] for a in export["audit"]}
    assert all(a["conversation_id"] == cid for a in export["audit"])
    assert "bob's own file" not in r.text

    r = client.delete(f"{V1}/contacts/{ann['id']}", headers=auth)
    assert r.status_code == 200, r.text
    counts = r.json()["erased"]
    assert counts["conversations"] == 1 and counts["contacts"] == 1 and counts["files"] == 1
    assert counts["messages"] == len(texts)

    assert not path.exists() and client.get(url).status_code == 404
    assert client.get(f"{V1}/conversations/{cid}", headers=auth).status_code == 404
    assert client.get(f"{V1}/contacts/{ann['id']}/export", headers=auth).status_code == 404
    assert client.delete(f"{V1}/contacts/{ann['id']}", headers=auth).status_code == 404
    assert find(client, auth, "ann-ci") == []
    # the other customer's conversation and file are untouched
    assert client.get(kept_url).status_code == 200
    bob_messages = client.get(f"{V1}/conversations/{bob_cid}/messages", headers=auth).json()
    assert any(m["text"] == "bob's own file" for m in bob_messages["items"])

    [erased] = audit_rows(settings_both, "contact.erased")
    assert erased.actor.startswith("agent:") and erased.conversation_id is None
    assert erased.data == {"contact_id": ann["id"], **counts}
    rows = audit_rows(settings_both)
    assert all(row.conversation_id != cid for row in rows)
    kept = [r for r in rows if r.action == "status" and r.conversation_id is None]
    assert kept, "the audit rows of the erased conversation stay, without it"
    assert not any("ann-ci" in str(row.data) or "8812" in str(row.data) for row in rows)


def test_erasure_takes_the_webhook_deliveries_with_it(
    both: tuple[TestClient, dict[str, str]],
) -> None:
    client, auth = both
    body = {"url": "http://127.0.0.1:9/never", "events": ["message.created"], "active": True}
    hook = client.post(f"{V1}/webhooks", json=body, headers=auth).json()["id"]
    customer_says(client, "cy-wh", "my address is 1 Main St")
    [cy] = find(client, auth, "cy-wh")

    def rows() -> list[dict[str, Any]]:
        r = client.get(f"{V1}/webhooks/{hook}/deliveries", headers=auth)
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    wait_for(lambda: len(rows()) >= 2, "recorded deliveries")
    assert client.delete(f"{V1}/contacts/{cy['id']}", headers=auth).status_code == 200
    assert "1 Main St" not in str(rows())


def test_contact_routes_are_for_admins(both: tuple[TestClient, dict[str, str]]) -> None:
    client, _ = both
    wang = login(client, "wang@example.com")
    for method, path in (
        ("GET", "/contacts"),
        ("GET", "/contacts/1/export"),
        ("DELETE", "/contacts/1"),
    ):
        assert client.request(method, V1 + path, headers=wang).status_code == 403
        assert client.request(method, V1 + path).status_code == 401


def test_retention_deletes_old_resolved_conversations(
    settings_both: Settings, classifier: IntentClassifier, flows: FlowEngine
) -> None:
    settings = settings_both
    with client_for(settings, classifier, flows) as client:
        auth = login(client)
        url = send_file(client, "old-rt", "an old question", b"old file")
        old = conversation_id(client, auth, "old-rt")
        customer_says(client, "new-rt", "a recent question")
        recent = conversation_id(client, auth, "new-rt")
        customer_says(client, "open-rt", "/human")
        still_open = conversation_id(client, auth, "open-rt")
        for cid in (old, recent):
            r = client.post(
                f"{V1}/conversations/{cid}/status", json={"status": "resolved"}, headers=auth
            )
            assert r.status_code == 200, r.text
        hub: Any = client.app.state.hub  # type: ignore[attr-defined]
        long_ago = utcnow() - timedelta(days=3)

        async def backdate() -> None:
            await hub.store.update_conversation(old, resolved_at=long_ago)
            await hub.store.update_conversation(still_open, created_at=long_ago)

        client.portal.call(backdate)  # type: ignore[union-attr]
        [old_contact] = find(client, auth, "old-rt")

    # The contact of the old conversation must be older than the period to go with it.
    async def age_contact() -> None:
        from hub.store import Contact

        db = Database(settings.database_url)
        try:
            async with db.transaction() as s:
                contact = await s.get(Contact, old_contact["id"])
                assert contact is not None
                contact.created_at = long_ago
                s.add(contact)
        finally:
            await db.close()

    asyncio.run(age_contact())
    settings = settings.model_copy(update={"retention_days": 2})
    with client_for(settings, classifier, flows) as client:  # the pass runs at start
        auth = login(client)

        def gone() -> bool:
            r = client.get(f"{V1}/conversations/{old}", headers=auth)
            return r.status_code == 404

        wait_for(gone, "the old conversation deleted")
        assert client.get(url).status_code == 404
        for cid in (recent, still_open):
            assert client.get(f"{V1}/conversations/{cid}", headers=auth).status_code == 200
        assert find(client, auth, "old-rt") == []  # left with no conversation
        assert len(find(client, auth, "new-rt")) == 1
    [applied] = audit_rows(settings, "retention.applied")
    assert applied.actor == "system" and applied.conversation_id is None
    assert applied.data["retention_days"] == 2
    assert applied.data["conversations"] == 1 and applied.data["contacts"] == 1
    assert applied.data["files"] == 1 and applied.data["messages"] >= 2


def test_retention_days_is_validated(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("retention_days: 30\n")
    assert load_settings(config).retention_days == 30
    assert Settings().retention_days is None  # keep forever
    for value in ("0", "-1", "soon"):
        config.write_text(f"retention_days: {value}\n")
        with pytest.raises(SettingsError, match="retention_days"):
            load_settings(config)
