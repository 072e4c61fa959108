"""GET /metrics: Prometheus text that moves as customers write and agents answer."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from flows import FlowEngine
from hub.messages import Delivery, Sender
from hub.testing import TestBot
from nlu import IntentClassifier
from tests.conftest import client_for, make_settings, migrated_sqlite

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(client: TestClient) -> Samples:
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    return parse(r.text)


def test_metrics_move_with_a_customer_message_and_an_agent_reply(
    client: TestClient, auth: dict[str, str]
) -> None:
    before = scrape(client)
    assert value(before, "kefu_messages_total", channel="rest", direction="in") == 0
    assert value(before, "kefu_conversations", status="bot") == 0

    r = client.post("/webhooks/rest/webhook", json={"sender": "m1", "message": "/human"})
    assert r.status_code == 200
    inline = len(r.json())  # the handoff notice, in the webhook's answer
    assert inline >= 1
    conversation = client.get("/api/v1/conversations", headers=auth).json()["items"][0]["id"]
    r = client.post(
        f"/api/v1/conversations/{conversation}/messages", json={"text": "Lin here"}, headers=auth
    )
    assert r.status_code == 201
    client.get("/no/such/page/12345")

    # The REST channel has no callback_url: the agent's reply fails, in the outbox's time.
    deadline = time.monotonic() + 10
    while True:
        after = scrape(client)
        if value(after, "kefu_delivery_failures_total", channel="rest") or (
            time.monotonic() > deadline
        ):
            break
        time.sleep(0.05)

    assert value(after, "kefu_messages_total", channel="rest", direction="in") == 1
    assert value(after, "kefu_messages_total", channel="rest", direction="out") == inline
    assert value(after, "kefu_delivery_failures_total", channel="rest") == 1
    assert value(after, "kefu_handoffs_total", channel="rest", reason="customer_request") == 1
    assert value(after, "kefu_pipeline_seconds_count", channel="rest") == 1
    assert value(after, "kefu_pipeline_seconds_sum", channel="rest") > 0
    statuses = {"bot", "pending", "open", "snoozed", "resolved"}
    assert sum(value(after, "kefu_conversations", status=s) for s in statuses) == 1
    assert value(after, "kefu_conversations", status="bot") == 0
    assert value(after, "kefu_outbox_queued", channel="rest") == 0
    assert ("kefu_outbox_queued", frozenset({("channel", "web")})) in after  # 0, but shown

    webhook = {"method": "POST", "route": "/webhooks/rest/webhook"}
    assert value(after, "kefu_http_requests_total", **webhook, status="200") == 1
    assert value(after, "kefu_http_request_seconds_count", **webhook) == 1
    reply = "/api/v1/conversations/{conversation_id}/messages"
    assert value(after, "kefu_http_requests_total", method="POST", route=reply, status="201") == 1
    assert value(after, "kefu_http_requests_total", method="GET", route="unmatched", status="404")
    routes = {dict(labels).get("route") for _, labels in after}
    assert not any(r and "12345" in r for r in routes)  # raw paths never become labels


async def test_outbox_depth_counts_queued_messages(testbot: TestBot) -> None:
    await testbot.say("hello")
    hub = testbot.hub
    conversation = await hub.store.get_conversation(await testbot.conversation_id())
    assert conversation is not None
    for text in ("one", "two"):  # stored as queued and not handed to the outbox yet
        await hub.store.add_message(conversation, Sender.AGENT, text, delivery=Delivery.QUEUED)
    await hub.metrics.refresh(hub.store, hub.channels)
    samples = parse(hub.metrics.render().decode())
    assert value(samples, "kefu_outbox_queued", channel="test") == 2
    assert value(samples, "kefu_conversations", status="bot") == 1
    assert value(samples, "kefu_messages_total", channel="test", direction="in") == 1
    assert value(samples, "kefu_messages_total", channel="test", direction="out") >= 1


def test_each_app_counts_its_own(
    client: TestClient, tmp_path: Path, classifier: IntentClassifier, flows: FlowEngine
) -> None:
    client.post("/webhooks/rest/webhook", json={"sender": "m3", "message": "hello"})
    settings = make_settings(migrated_sqlite(tmp_path / "other"), tmp_path / "other")
    with client_for(settings, classifier, flows) as other:
        assert value(scrape(other), "kefu_messages_total", channel="rest", direction="in") == 0
    assert value(scrape(client), "kefu_messages_total", channel="rest", direction="in") == 1
