"""Outgoing webhooks: the hub's events POSTed, signed, to the URLs admins subscribe.

A worker listens on the bus; for each event that an active subscription wants it stores one
`pending` delivery per subscription (so a restart loses nothing), then sends it:

    POST <url>   {"id", "type", "conversation_id", "data", "created_at"}
    X-Kefu-Event: message.created          X-Kefu-Delivery: 42 (the same on every retry)
    X-Kefu-Timestamp: 1733650000            X-Kefu-Signature: sha256=<hex>

The signature is HMAC-SHA256, keyed with the subscription's secret, of `<timestamp>.<body>`.
A 2xx answer is success; a timeout, a connection error, 408, 429 or 5xx is retried with
exponential backoff (429's and 503's Retry-After honoured) until `webhooks.attempts` were made,
then the delivery is `failed`; any other answer (3xx, 4xx) fails it at once. Delivery is at
least once: a receiver dedupes by X-Kefu-Delivery.

Where a delivery may go is hub/ops/netguard.py's: the URL is checked again before each attempt and
every address its host resolves to when connecting (loopback, private, link-local and cloud
metadata addresses are refused unless `webhooks.allow_hosts` lists them); a refusal fails the
delivery at once. Redirects are not followed, and nothing of an answer but its status is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from hub.core.bus import follow
from hub.core.conversations import Conversations, Feature
from hub.features.webhooks.store import FAILED, PENDING, SENT, WebhookStore
from hub.messages import Event, utcnow
from hub.ops.netguard import Guard, GuardedTransport, Refused, Resolver
from hub.ops.settings import WebhookSettings
from hub.ports import Bus, Subscription, Unavailable
from hub.store.models import Webhook, WebhookDelivery

log = logging.getLogger(__name__)

# "message.created", "message.*" (every message event) or "*" (every event)
EVENT_PATTERN = re.compile(r"^(\*|[a-z][a-z_]*\.(\*|[a-z][a-z_]*))$")
TEST_EVENT = "webhook.test"
INTERNAL = ("bus.", "channel.relay")  # the bus's own signals between processes, never sent
NAMED_ONLY = frozenset({"conversation.typing"})  # many and brief: only when named, not by *


def matches(patterns: list[str], event_type: str) -> bool:
    """Whether a subscription to `patterns` wants events of `event_type`."""
    if event_type in NAMED_ONLY:
        return event_type in patterns
    return any(
        p == "*" or p == event_type or (p.endswith(".*") and event_type.startswith(p[:-1]))
        for p in patterns
    )


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Kefu-Signature header: `sha256=` and the hex HMAC of `<timestamp>.<body>`."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to."""

    ok: bool
    retryable: bool = False
    error: str | None = None
    status: int | None = None
    retry_after: float | None = None


class WebhookSender(Feature):
    POLL_SECONDS = 5.0  # how often to look for due deliveries (others' too) when idle
    CACHE_SECONDS = 5.0  # subscriptions are reread this often (another process may change them)
    BATCH = 20

    def __init__(
        self,
        store: WebhookStore,
        bus: Bus,
        settings: WebhookSettings,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self.store, self.bus, self.settings = store, bus, settings
        # where deliveries may go; its resolver is the system's unless given (tests give one)
        self.guard = Guard(settings.allow_hosts, resolver)
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._subscription: Subscription | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self._cache: tuple[float, list[Webhook]] | None = None

    # ---- life cycle ---------------------------------------------------------------------

    async def start(self, conversations: Conversations | None = None) -> None:
        """Listen for events and send what is due, pending deliveries of before a restart too."""
        self._client = httpx.AsyncClient(
            timeout=self.settings.timeout,
            follow_redirects=False,  # a redirect could lead anywhere: it fails the delivery
            transport=self._transport or GuardedTransport(self.guard),
            trust_env=False,  # no proxy from the environment: it would resolve names itself
            headers={"user-agent": "KefuHub-Webhooks/1"},
        )
        self._subscription = self.bus.subscribe(local_only=True)
        self._tasks = [
            asyncio.create_task(follow(self.bus, self._subscription, self.record, "webhooks")),
            asyncio.create_task(self._send_due()),
        ]

    async def stop(self) -> None:
        """Stop; a delivery cut off mid-attempt is sent again after the next start."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._subscription is not None:
            await self._subscription.aclose()
        if self._client is not None:
            await self._client.aclose()

    def changed(self) -> None:
        """Subscriptions changed: read them again for the next event."""
        self._cache = None

    # ---- recording ----------------------------------------------------------------------

    async def _subscriptions(self) -> list[Webhook]:
        now = time.monotonic()
        if self._cache is None or now - self._cache[0] > self.CACHE_SECONDS:
            self._cache = (now, await self.store.all(active_only=True))
        return self._cache[1]

    async def record(self, event: Event) -> list[WebhookDelivery]:
        """Store a pending delivery of `event` for each subscription that wants it."""
        if event.type.startswith(INTERNAL):
            return []
        ids = [w.id for w in await self._subscriptions() if w.id and matches(w.events, event.type)]
        if not ids:
            return []
        payload = self.payload(event.type, event.conversation_id, event.data)
        deliveries = await self.store.record(ids, event.type, event.conversation_id, payload)
        self._wake.set()
        return deliveries

    @staticmethod
    def payload(kind: str, conversation_id: int | None, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": f"evt_{uuid.uuid4().hex}",
            "type": kind,
            "conversation_id": conversation_id,
            "data": json.loads(json.dumps(data, default=str)),  # JSON, whatever it held
            "created_at": utcnow().isoformat(),
        }

    async def send_test(self, webhook: Webhook) -> WebhookDelivery | None:
        """Record a `webhook.test` event for `webhook` and make its first attempt now (a
        failure is retried like any other)."""
        assert webhook.id is not None
        data = {"webhook_id": webhook.id, "message": "a test event from Kefu Hub"}
        payload = self.payload(TEST_EVENT, None, data)
        [delivery] = await self.store.record(
            [webhook.id], TEST_EVENT, None, payload, due=self._lease_end()
        )
        assert delivery.id is not None
        return await self._attempt(delivery.id)

    # ---- sending ------------------------------------------------------------------------

    def _lease_end(self) -> datetime:
        """Until when a claimed delivery is ours: longer than any one attempt takes."""
        return utcnow() + timedelta(seconds=self.settings.timeout + 60)

    async def _send_due(self) -> None:
        while True:
            self._wake.clear()
            try:
                claimed = await self.store.claim_due(utcnow(), self._lease_end(), self.BATCH)
                if claimed:
                    await asyncio.gather(*(self._attempt(i) for i in claimed))
                    continue
                due = await self.store.next_due()
            except Unavailable as e:  # the database is away: try again later
                log.warning("webhooks: sending paused: %s", e)
                due = None
            except Exception:
                log.exception("webhooks: sending failed")
                due = None
            wait = self.POLL_SECONDS
            if due is not None:
                wait = min(wait, max(0.0, (due - utcnow()).total_seconds()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def _attempt(self, delivery_id: int) -> WebhookDelivery | None:
        """One attempt at a claimed delivery; stores and returns its outcome."""
        delivery = await self.store.get_delivery(delivery_id)
        if delivery is None or delivery.status != PENDING:
            return delivery
        webhook = await self.store.get(delivery.webhook_id)
        if webhook is None:
            return None
        if not webhook.active and delivery.event != TEST_EVENT:
            error = "the webhook was deactivated"
            return await self.store.attempted(delivery_id, FAILED, error, None)
        outcome = await self._post(webhook, delivery)
        made = delivery.attempts + 1
        if outcome.ok:
            return await self.store.attempted(delivery_id, SENT, None, outcome.status)
        if outcome.retryable and made < self.settings.attempts:
            delay = min(self.settings.backoff * 2 ** (made - 1), self.settings.backoff_max)
            if outcome.retry_after is not None:
                delay = min(max(delay, outcome.retry_after), self.settings.backoff_max)
            log.warning(
                "webhooks: delivery %s to %s: %s; retry in %.1fs",
                delivery_id,
                webhook.url,
                outcome.error,
                delay,
            )
            due = utcnow() + timedelta(seconds=delay)
            retry = await self.store.attempted(
                delivery_id, PENDING, outcome.error, outcome.status, due
            )
            self._wake.set()  # the sending loop may be asleep for longer than the delay
            return retry
        log.error("webhooks: delivery %s to %s failed: %s", delivery_id, webhook.url, outcome.error)
        return await self.store.attempted(delivery_id, FAILED, outcome.error, outcome.status)

    async def _post(self, webhook: Webhook, delivery: WebhookDelivery) -> Outcome:
        assert self._client is not None
        body = encode(delivery.payload)
        timestamp = str(int(time.time()))
        headers = {
            "content-type": "application/json",
            "x-kefu-event": delivery.event,
            "x-kefu-delivery": str(delivery.id),
            "x-kefu-timestamp": timestamp,
            "x-kefu-signature": sign(webhook.secret, timestamp, body),
        }
        try:
            url = self.guard.check_url(webhook.url)  # stored before the rules, or since changed
            async with self._client.stream("POST", url, content=body, headers=headers) as response:
                pass  # only the status counts: nothing of the answer is read or kept
        except Refused as e:  # an address webhooks may not target: final
            return Outcome(False, False, f"refused: {e}")
        except httpx.TimeoutException:
            return Outcome(False, True, f"no answer in {self.settings.timeout:g} s")
        except httpx.RemoteProtocolError as e:  # its message may quote what answered: not kept
            return Outcome(False, True, f"{type(e).__name__}: no valid HTTP answer")
        except httpx.HTTPError as e:
            return Outcome(False, True, f"{type(e).__name__}: {e}" if str(e) else type(e).__name__)
        except Exception as e:  # an unexpected failure: retried, then failed
            log.exception("webhooks: posting to %s raised", webhook.url)
            return Outcome(False, True, f"{type(e).__name__}: {e}")
        code = response.status_code
        if 200 <= code < 300:
            return Outcome(True, status=code)
        error = f"HTTP {code}"
        if 300 <= code < 400:
            error += " (a redirect: webhooks don't follow redirects; subscribe the final URL)"
        retryable = code in (408, 429) or code >= 500
        return Outcome(False, retryable, error, code, _retry_after(response.headers))


def _retry_after(headers: httpx.Headers) -> float | None:
    """Retry-After in seconds (its HTTP-date form is ignored: backoff applies)."""
    value = headers.get("retry-after", "").strip()
    return float(value) if value.isdigit() else None
