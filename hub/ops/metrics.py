"""Prometheus metrics at `GET /metrics`: one `Metrics` per app (its own registry, so many hubs
can live in one process), counted by tiny calls where things happen, and the gauges that
describe the store (outbox depth, conversations by status) read from it at scrape time.

Label values come from bounded sets only: configured channel names, statuses, handoff reasons,
route templates (never raw paths) and HTTP status codes."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlmodel import col, func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.messages import Delivery, Status
from hub.store import ConversationFilter, Store
from hub.store import Message as StoredMessage

CONTENT_TYPE = CONTENT_TYPE_LATEST
# a bot turn is milliseconds (NLU) to seconds (a slow action); HTTP requests likewise
SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.messages = Counter(
            "kefu_messages",
            "Messages by channel: in = stored from customers, out = delivered to the channel "
            "(sent by the outbox, or inline in a webhook's answer)",
            ["channel", "direction"],
            registry=r,
        )
        self.turn_seconds = Histogram(
            "kefu_pipeline_seconds",
            "From a customer's message received to the bot's replies stored",
            ["channel"],
            buckets=SECONDS,
            registry=r,
        )
        self.turns_in_progress = Gauge(
            "kefu_pipeline_turns_in_progress", "Messages being handled now", registry=r
        )
        self.delivery_failures = Counter(
            "kefu_delivery_failures", "Outgoing messages that failed", ["channel"], registry=r
        )
        self.handoffs = Counter(
            "kefu_handoffs",
            "Conversations the bot handed to humans",
            ["channel", "reason"],
            registry=r,
        )
        self.outbox_queued = Gauge(
            "kefu_outbox_queued", "Outgoing messages queued, not yet sent", ["channel"], registry=r
        )
        self.conversations = Gauge(
            "kefu_conversations", "Conversations by status", ["status"], registry=r
        )
        self.http_requests = Counter(
            "kefu_http_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_seconds = Histogram(
            "kefu_http_request_seconds",
            "HTTP request duration by method and route template",
            ["method", "route"],
            buckets=SECONDS,
            registry=r,
        )

    # ---- what the pipeline and the outbox call ------------------------------------------

    def message_in(self, channel: str) -> None:
        self.messages.labels(channel, "in").inc()

    def message_out(self, channel: str, count: int = 1) -> None:
        if count:
            self.messages.labels(channel, "out").inc(count)

    def turn_took(self, channel: str, seconds: float) -> None:
        self.turn_seconds.labels(channel).observe(seconds)

    def delivery_failed(self, channel: str) -> None:
        self.delivery_failures.labels(channel).inc()

    def handoff(self, channel: str, reason: str) -> None:
        self.handoffs.labels(channel, reason).inc()

    # ---- scrape ---------------------------------------------------------------------------

    async def refresh(self, store: Store, channels: Iterable[str]) -> None:
        """Read the store's gauges: every status and configured channel shows, 0 included."""
        by_status, _ = await store.status_counts(ConversationFilter())
        for status in Status:
            self.conversations.labels(status.value).set(by_status.get(status.value, 0))
        queued = {channel: 0 for channel in channels}
        query = (
            select(StoredMessage.channel, func.count(col(StoredMessage.id)))
            .where(StoredMessage.delivery == Delivery.QUEUED)
            .group_by(col(StoredMessage.channel))
        )
        async with store.db.read() as s:
            queued.update({str(channel): int(n) for channel, n in (await s.exec(query)).all()})
        for channel, n in queued.items():
            self.outbox_queued.labels(channel).set(n)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class HttpMetrics:
    """ASGI middleware counting and timing HTTP requests by route template (`/api/v1/
    conversations/{conversation_id}`), so label values stay few; unrouted paths (404s) are
    `unmatched`. WebSockets are long-lived and not timed."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = _template(scope.get("route"))
            method = scope["method"]
            self.metrics.http_requests.labels(method, route, str(status)).inc()
            self.metrics.http_seconds.labels(method, route).observe(time.perf_counter() - started)


def _template(route: Any) -> str:
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else "unmatched"
