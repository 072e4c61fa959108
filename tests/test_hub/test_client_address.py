"""The client address the login limits count: the connecting address, or what a proxy of
`trusted_proxies` forwarded; anyone else's X-Forwarded-For is ignored."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient

from flows import FlowEngine
from hub.app import create_app
from hub.ops.settings import Settings
from nlu import IntentClassifier
from tests.conftest import create_agent, login

V1 = "/api/v1"
_emails = itertools.count()


@contextmanager
def app_from(
    settings: Settings, classifier: IntentClassifier, flows: FlowEngine, address: str
) -> Iterator[TestClient]:
    """The app, its requests coming from `address`."""
    create_agent(settings, role="admin")
    app = create_app(settings, classifier=classifier, flows=flows)
    with TestClient(app, client=(address, 40000)) as client:
        yield client


def fail_login(client: TestClient, forwarded: str, email: str | None = None) -> Any:
    """A failed login (for a new email each time: no email lockout gets in the way)."""
    body = {"email": email or f"nobody{next(_emails)}@example.com", "password": "wrong"}
    return client.post(f"{V1}/auth/login", json=body, headers={"x-forwarded-for": forwarded})


def locked_by(client: TestClient, forwarded: str) -> str:
    """The address the hub names in the audit row of a lockout (5 failures for one email)."""
    for _ in range(5):
        assert fail_login(client, forwarded, "wang@example.com").status_code == 401
    rows = client.get(
        f"{V1}/audit", params={"action": "login.locked"}, headers=login(client)
    ).json()["items"]
    return str(rows[0]["actor"])


def test_forwarded_for_from_an_unknown_client_is_ignored(
    settings: Settings, classifier: IntentClassifier, flows: FlowEngine
) -> None:
    with app_from(settings, classifier, flows, "192.0.2.50") as client:
        assert locked_by(client, "203.0.113.9") == "ip:192.0.2.50"
        # a new forged address on every try doesn't lift the per-address limit (20 a minute)
        statuses = [fail_login(client, f"198.51.100.{i}").status_code for i in range(14)]
        assert set(statuses) == {401}
        r = fail_login(client, "198.51.100.99")
        assert r.status_code == 429 and r.headers["retry-after"]


def test_even_from_localhost_without_trusted_proxies(
    settings: Settings, classifier: IntentClassifier, flows: FlowEngine
) -> None:
    """(uvicorn alone believes 127.0.0.1; the hub believes no one unless told.)"""
    with app_from(settings, classifier, flows, "127.0.0.1") as client:
        assert locked_by(client, "203.0.113.9") == "ip:127.0.0.1"


def test_a_trusted_proxy_names_the_client(
    settings: Settings, classifier: IntentClassifier, flows: FlowEngine
) -> None:
    proxied = settings.model_copy(update={"trusted_proxies": ["10.0.0.0/24"]})
    with app_from(proxied, classifier, flows, "10.0.0.7") as client:
        # the right-most address the proxy did not add itself: what the client put before it
        # (a forged "6.6.6.6") is not believed
        assert locked_by(client, "6.6.6.6, 198.51.100.1") == "ip:198.51.100.1"
        for _ in range(15):
            assert fail_login(client, f"{_}.1.1.1, 198.51.100.1").status_code == 401
        assert fail_login(client, "198.51.100.1").status_code == 429  # 21st from this client
        assert fail_login(client, "198.51.100.2").status_code == 401  # another client
        # through two trusted proxies (10.0.0.3 appended by the first)
        assert fail_login(client, "198.51.100.2, 10.0.0.3").status_code == 401


def test_an_untrusted_peer_of_a_trusted_network_config(
    settings: Settings, classifier: IntentClassifier, flows: FlowEngine
) -> None:
    proxied = settings.model_copy(update={"trusted_proxies": ["10.0.0.0/24"]})
    with app_from(proxied, classifier, flows, "192.0.2.8") as client:
        assert locked_by(client, "198.51.100.1") == "ip:192.0.2.8"
