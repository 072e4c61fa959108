"""Outgoing webhooks, against a real HTTP server as the receiver: signed JSON events, retries
with backoff, failures shown in the API, and pending deliveries sent after a restart. The
receiver listens on 127.0.0.1, which these tests' settings allow-list (webhooks.allow_hosts);
what is refused without it is tests/test_hub/test_webhook_ssrf.py's."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from flows import FlowEngine
from hub.ops.settings import Settings
from nlu import IntentClassifier
from tests.conftest import ROOT, client_for, create_agent, login, make_settings
from tests.test_hub.test_admin_api import wait_for
from tests.test_hub.test_api import customer_says

V1 = "/api/v1"
SECRET = "a-receiver-secret-of-some-length"


def readme_verify() -> Callable[..., bool]:
    """The receiver's check exactly as the README shows it (so the README stays right)."""
    readme = (ROOT / "README.md").read_text("utf-8")
    section = readme.split("## Outgoing webhooks", 1)[1].split("\n## ", 1)[0]
    snippet = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(snippet, namespace)
    check: Callable[..., bool] = namespace["verify"]
    return check


verify = readme_verify()


class Receiver:
    """A local HTTP server that records each POST and answers from a script: each entry is a
    status code, or (status, seconds to wait first); then `default`."""

    def __init__(self) -> None:
        self.requests: list[tuple[Any, bytes]] = []
        self.script: list[int | tuple[int, float]] = []
        self.default = 200
        self.headers: dict[str, str] = {}  # sent with every answer
        self.body = b"receiver says no"  # the body of a non-2xx answer
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((self.headers, body))
                answer = receiver.script.pop(0) if receiver.script else receiver.default
                status, delay = answer if isinstance(answer, tuple) else (answer, 0.0)
                time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                for name, value in receiver.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else receiver.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/kefu"

    def events(self, kind: str) -> list[tuple[Any, dict[str, Any]]]:
        return [(h, json.loads(b)) for h, b in list(self.requests) if h["X-Kefu-Event"] == kind]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def fast_settings(url: str, folder: Path, **webhooks: Any) -> Settings:
    """Quick retries, and the local receivers allow-listed."""
    options = {
        "attempts": 3,
        "backoff": 0.05,
        "timeout": 1.0,
        "allow_hosts": ["127.0.0.1"],
        **webhooks,
    }
    return make_settings(url, folder, webhooks=options)


Api = tuple[TestClient, dict[str, str]]


@pytest.fixture
def api(
    sqlite_url: str, tmp_path: Path, classifier: IntentClassifier, flows: FlowEngine
) -> Iterator[Api]:
    settings = fast_settings(sqlite_url, tmp_path)
    create_agent(settings, role="admin")
    create_agent(settings, email="wang@example.com", role="agent")
    with client_for(settings, classifier, flows) as client:
        yield client, login(client)


@pytest.fixture
def api_both(
    database_url: str, tmp_path: Path, classifier: IntentClassifier, flows: FlowEngine
) -> Iterator[Api]:
    """The app on SQLite and on PostgreSQL (the claims on due deliveries are SQL of their own)."""
    settings = fast_settings(database_url, tmp_path)
    create_agent(settings, role="admin")
    with client_for(settings, classifier, flows) as client:
        yield client, login(client)


def subscribe(client: TestClient, auth: dict[str, str], url: str, events: list[str]) -> int:
    body = {"url": url, "events": events, "secret": SECRET}
    r = client.post(f"{V1}/webhooks", json=body, headers=auth)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def deliveries(client: TestClient, auth: dict[str, str], hook: int, **params: Any) -> Any:
    r = client.get(f"{V1}/webhooks/{hook}/deliveries", params=params, headers=auth)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_events_arrive_signed_with_the_documented_payload(api: Api, receiver: Receiver) -> None:
    client, auth = api
    hook = subscribe(client, auth, receiver.url, ["message.created"])
    customer_says(client, "ann", "hello")

    arrived = wait_for(lambda: len(receiver.events("message.created")) >= 2, "two messages")
    assert arrived
    for headers, body in list(receiver.requests):
        assert verify(SECRET, headers, body), headers
        assert not verify("another-secret-of-some-length", headers, body)
        assert not verify(SECRET, headers, body.replace(b"message.created", b"message.deleted"))
        assert headers["Content-Type"] == "application/json"
    assert {h["X-Kefu-Event"] for h, _ in receiver.requests} == {"message.created"}  # subscribed
    # sent concurrently: they may arrive in either order (the payload's created_at tells)
    received = receiver.events("message.created")[:2]
    (headers, first), (_, second) = sorted(received, key=lambda r: r[1]["created_at"])
    assert set(first) == {"id", "type", "conversation_id", "data", "created_at"}
    assert first["type"] == "message.created" and first["id"].startswith("evt_")
    assert first["data"]["text"] == "hello" and first["data"]["sender"] == "contact"
    assert second["data"]["sender"] == "bot" and second["id"] != first["id"]
    assert first["conversation_id"] == second["conversation_id"] > 0

    rows = wait_for(
        lambda: (
            (d := deliveries(client, auth, hook)) and all(r["status"] == "sent" for r in d) and d
        ),
        "sent deliveries",
    )
    assert len(rows) == 2 and all(r["attempts"] == 1 and r["response_status"] == 200 for r in rows)
    assert str(rows[-1]["id"]) == headers["X-Kefu-Delivery"]
    assert rows[-1]["payload"] == first and rows[-1]["next_attempt_at"] is None


def test_a_receiver_failing_twice_gets_it_on_the_third_attempt(
    api_both: Api, receiver: Receiver
) -> None:
    client, auth = api_both
    hook = subscribe(client, auth, receiver.url, ["conversation.status_changed"])
    receiver.script = [(200, 1.5), 503]  # a timeout (1 s), then a 503, then 200
    customer_says(client, "bob", "/human")

    wait_for(lambda: len(receiver.requests) >= 3, "three attempts")
    time.sleep(0.2)
    attempts = receiver.events("conversation.status_changed")
    assert len(attempts) == 3
    assert len({h["X-Kefu-Delivery"] for h, _ in attempts}) == 1  # one delivery, retried
    assert len({body["id"] for _, body in attempts}) == 1
    assert all(verify(SECRET, h, b) for h, b in receiver.requests)
    assert attempts[0][1]["data"]["to"] == "pending"
    [row] = wait_for(
        lambda: (d := deliveries(client, auth, hook)) and d[0]["status"] == "sent" and d,
        "the delivery sent",
    )
    assert row["attempts"] == 3 and row["last_error"] is None and row["response_status"] == 200


def test_failures_are_shown_and_4xx_is_final(api: Api, receiver: Receiver) -> None:
    client, auth = api
    hook = subscribe(client, auth, receiver.url, ["conversation.*"])
    receiver.default = 500
    customer_says(client, "cy", "hello")  # conversation.created

    def failed() -> Any:
        rows = deliveries(client, auth, hook, status="failed")
        return rows and rows

    [row] = wait_for(failed, "a failed delivery")
    assert row["event"] == "conversation.created" and row["attempts"] == 3  # webhooks.attempts
    assert row["last_error"] == "HTTP 500" and row["response_status"] == 500  # not the body
    assert len(receiver.requests) == 3

    receiver.requests.clear()
    receiver.script = [400]
    receiver.default = 200
    customer_says(client, "dee", "hello")
    row = wait_for(lambda: len(d := failed() or []) == 2 and d[0], "a refused delivery")
    assert row["attempts"] == 1 and row["response_status"] == 400  # a 4xx is not retried
    time.sleep(0.3)
    assert len(receiver.requests) == 1

    receiver.script = [429]
    customer_says(client, "eve", "hello")
    wait_for(lambda: len(receiver.requests) == 3, "429 retried")
    assert deliveries(client, auth, hook)[0]["attempts"] == 2


def test_connection_errors_are_retried(api: Api, receiver: Receiver) -> None:
    client, auth = api
    port = receiver.server.server_address[1]
    receiver.close()  # nothing listens there now
    hook = subscribe(client, auth, f"http://127.0.0.1:{port}/gone", ["*"])
    r = client.post(f"{V1}/webhooks/{hook}/test", headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "pending" and r.json()["attempts"] == 1
    assert "ConnectError" in r.json()["last_error"]
    row = wait_for(
        lambda: (d := deliveries(client, auth, hook, status="failed")) and d[0], "given up"
    )
    assert row["attempts"] == 3 and row["event"] == "webhook.test"


def test_a_pending_delivery_is_sent_after_a_restart(
    sqlite_url: str,
    tmp_path: Path,
    classifier: IntentClassifier,
    flows: FlowEngine,
    receiver: Receiver,
) -> None:
    settings = fast_settings(sqlite_url, tmp_path, attempts=20, backoff=0.5, backoff_max=0.5)
    create_agent(settings, role="admin")
    receiver.default = 503  # down for maintenance
    with client_for(settings, classifier, flows) as client:
        auth = login(client)
        hook = subscribe(client, auth, receiver.url, ["conversation.created"])
        customer_says(client, "fay", "hello")
        wait_for(lambda: receiver.requests, "a first attempt")
        [row] = deliveries(client, auth, hook)
        assert row["status"] == "pending" and row["last_error"].startswith("HTTP 503")
    tried = len(receiver.requests)
    receiver.default = 200  # back up, while the hub is stopped

    with client_for(settings, classifier, flows) as client:
        auth = login(client)
        [row] = wait_for(
            lambda: (d := deliveries(client, auth, hook)) and d[0]["status"] == "sent" and d,
            "the delivery sent after the restart",
        )
    assert len(receiver.requests) == tried + 1
    headers, body = receiver.requests[-1]
    assert headers["X-Kefu-Delivery"] == str(row["id"]) and verify(SECRET, headers, body)
    assert json.loads(body)["type"] == "conversation.created"


def test_subscriptions_are_managed_by_admins(api: Api, receiver: Receiver) -> None:
    client, auth = api
    r = client.post(f"{V1}/webhooks", json={"url": receiver.url, "events": ["*"]}, headers=auth)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 30
    assert created["secret_hint"] == "…" + created["secret"][-4:]
    hook = created["id"]
    [listed] = client.get(f"{V1}/webhooks", headers=auth).json()["items"]
    assert "secret" not in listed and listed["events"] == ["*"] and listed["active"] is True

    r = client.patch(
        f"{V1}/webhooks/{hook}",
        json={"events": ["message.created", "message.created"], "active": False},
        headers=auth,
    )
    assert r.status_code == 200 and r.json()["events"] == ["message.created"], r.text
    assert "secret" not in r.json() and r.json()["active"] is False
    customer_says(client, "gus", "hello")  # inactive: nothing recorded
    time.sleep(0.3)
    assert receiver.requests == [] and deliveries(client, auth, hook) == []
    rotated = client.patch(f"{V1}/webhooks/{hook}", json={"secret": SECRET}, headers=auth)
    assert rotated.json()["secret"] == SECRET

    test = client.post(f"{V1}/webhooks/{hook}/test", headers=auth)  # works while inactive
    assert test.status_code == 200 and test.json()["status"] == "sent", test.text
    [(headers, body)] = receiver.requests
    assert headers["X-Kefu-Event"] == "webhook.test" and verify(SECRET, headers, body)
    assert json.loads(body)["conversation_id"] is None

    for body in (
        {"url": "ftp://example.com/x", "events": ["*"]},
        {"url": "example.com/hook", "events": ["*"]},
        {"url": "http://", "events": ["*"]},
        {"url": "javascript:alert(1)", "events": ["*"]},
        {"url": receiver.url, "events": []},
        {"url": receiver.url, "events": ["Message Created"]},
        {"url": receiver.url, "events": ["message"]},
        {"url": receiver.url, "events": ["*"], "secret": "short"},
        {"url": receiver.url, "events": ["*"], "colour": "red"},
    ):
        r = client.post(f"{V1}/webhooks", json=body, headers=auth)
        assert r.status_code == 422, (body, r.text)
    for patch in ({"url": "ftp://x"}, {"url": None}, {"events": []}, {"active": None}):
        r = client.patch(f"{V1}/webhooks/{hook}", json=patch, headers=auth)
        assert r.status_code == 422, (patch, r.text)

    wang = login(client, "wang@example.com")
    for method, path in (
        ("GET", "/webhooks"),
        ("POST", "/webhooks"),
        ("PATCH", f"/webhooks/{hook}"),
        ("DELETE", f"/webhooks/{hook}"),
        ("GET", f"/webhooks/{hook}/deliveries"),
        ("POST", f"/webhooks/{hook}/test"),
    ):
        body = {"url": receiver.url, "events": ["*"]} if method != "GET" else None
        assert client.request(method, V1 + path, json=body, headers=wang).status_code == 403
        assert client.request(method, V1 + path, json=body).status_code == 401

    assert client.delete(f"{V1}/webhooks/{hook}", headers=auth).status_code == 204
    assert client.delete(f"{V1}/webhooks/{hook}", headers=auth).status_code == 404
    assert client.get(f"{V1}/webhooks/{hook}/deliveries", headers=auth).status_code == 404
    assert client.post(f"{V1}/webhooks/{hook}/test", headers=auth).status_code == 404
    assert client.patch(f"{V1}/webhooks/{hook}", json={}, headers=auth).status_code == 404
    assert client.get(f"{V1}/webhooks", headers=auth).json()["items"] == []


def test_event_patterns() -> None:
    from hub.features.webhooks.sender import matches

    assert matches(["*"], "message.created")
    assert matches(["message.*"], "message.delivery")
    assert not matches(["message.*"], "conversation.created")
    assert not matches(["messages.*"], "message.created")
    assert not matches(["*"], "conversation.typing")  # only when named
    assert matches(["conversation.typing"], "conversation.typing")


def test_a_redirect_is_not_followed_and_fails_the_delivery(api: Api, receiver: Receiver) -> None:
    client, auth = api
    target = Receiver()  # where the redirect points: allow-listed too, yet never reached
    try:
        receiver.default = 302
        receiver.headers = {"Location": target.url}
        hook = subscribe(client, auth, receiver.url, ["*"])
        r = client.post(f"{V1}/webhooks/{hook}/test", headers=auth)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["status"] == "failed" and answer["attempts"] == 1  # final, not retried
        assert answer["response_status"] == 302 and "redirect" in answer["last_error"]
        time.sleep(0.3)
        assert len(receiver.requests) == 1 and target.requests == []
    finally:
        target.close()


def test_the_test_button_shows_the_status_not_the_answer(api: Api, receiver: Receiver) -> None:
    """A test of an arbitrary URL must not read back what answered (a port scanner would)."""
    client, auth = api
    receiver.body = b"SSH-2.0-OpenSSH_9.6 secret-banner root:x:0:0"
    hook = subscribe(client, auth, receiver.url, ["*"])
    for status, state in ((404, "failed"), (500, "pending")):
        receiver.default = status  # (a retry of the 500 meets a 500 too)
        r = client.post(f"{V1}/webhooks/{hook}/test", headers=auth)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["status"] == state and answer["response_status"] == status
        assert answer["last_error"] == f"HTTP {status}"
        assert "secret-banner" not in r.text and "OpenSSH" not in r.text
    listed = client.get(f"{V1}/webhooks/{hook}/deliveries", headers=auth).text
    assert "secret-banner" not in listed


def test_what_answers_a_test_is_not_read_back_even_when_it_is_not_http(api: Api) -> None:
    """A non-HTTP service (here an SSH-like banner) is not quoted in the delivery's error."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = server.accept()
                with conn:
                    conn.recv(65536)
                    conn.sendall(b"SSH-2.0-OpenSSH_9.6 secret-banner\r\nmore\r\n\r\n")

    threading.Thread(target=serve, daemon=True).start()
    client, auth = api
    try:
        url = f"http://127.0.0.1:{server.getsockname()[1]}/"
        hook = subscribe(client, auth, url, ["*"])
        r = client.post(f"{V1}/webhooks/{hook}/test", headers=auth)
        assert r.status_code == 200, r.text
        assert r.json()["last_error"] == "RemoteProtocolError: no valid HTTP answer"
        assert "secret-banner" not in r.text and "SSH" not in r.text
    finally:
        server.close()
