"""Fixtures for the channel tests: an app built from custom settings (channels, body limit)
with a logged-in agent, and a real local HTTP server standing in for a REST client's callback."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from flows import FlowEngine
from nlu import IntentClassifier
from tests.conftest import client_for, create_agent, login, make_settings, migrated_sqlite

MakeHub = Callable[..., tuple[TestClient, dict[str, str]]]


@pytest.fixture
def make_hub(
    sqlite_url: str, tmp_path: Path, classifier: IntentClassifier, flows: FlowEngine
) -> Iterator[MakeHub]:
    """make_hub(**settings) -> (started client, agent auth headers); once per test."""
    with contextlib.ExitStack() as stack:

        def make(**extra: Any) -> tuple[TestClient, dict[str, str]]:
            settings = make_settings(sqlite_url, tmp_path, **extra)
            create_agent(settings, role="admin")
            client = stack.enter_context(client_for(settings, classifier, flows))
            return client, login(client)

        yield make


@pytest.fixture(scope="module")
def shared_hub(
    tmp_path_factory: pytest.TempPathFactory, classifier: IntentClassifier, flows: FlowEngine
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """One started app (default channels) for a module's tests that only compare before and
    after, so each doesn't pay for a database, an agent and a login."""
    tmp = tmp_path_factory.mktemp("shared-hub")
    url = migrated_sqlite(tmp)
    settings = make_settings(url, tmp)
    create_agent(settings, role="admin")
    with client_for(settings, classifier, flows) as client:
        yield client, login(client)


@dataclass
class Callback:
    """What the callback server received; `answers` are the statuses it gives, in order
    (200 once they run out)."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self) -> list[Any]:
        with self.lock:
            return [r["json"] for r in self.received]


@pytest.fixture
def callback() -> Iterator[Callback]:
    box: list[Callback] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            cb = box[0]
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            with cb.lock:
                status = cb.answers.pop(0) if cb.answers else 200
                cb.received.append(
                    {
                        "path": self.path,
                        "content_type": self.headers.get("content-type"),
                        "json": json.loads(body),
                        "status": status,
                    }
                )
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box.append(Callback(url=f"http://127.0.0.1:{server.server_address[1]}/bot"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
