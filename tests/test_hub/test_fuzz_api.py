"""The HTTP API fuzzed from its own OpenAPI schema (schemathesis): every operation, with valid
and invalid parameters and bodies, as an admin, on SQLite. Bad input is answered 4xx, never 5xx
(DESIGN.md section 4). Bounded and reproducible; tests/fuzzing.py says how to run it longer."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from fastapi.testclient import TestClient
from schemathesis.checks import not_a_server_error

from flows import FlowEngine
from hub.app import create_app
from hub.core.auth import issue_token
from nlu import IntentClassifier
from tests.conftest import client_for, create_agent, login, make_settings, migrated_sqlite
from tests.fuzzing import fuzz


def _openapi() -> dict[str, Any]:
    """The app's schema, as /openapi.json serves it (routes only: nothing is started)."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(f"sqlite+aiosqlite:///{tmp}/unused.db", Path(tmp))
        app = create_app(settings, classifier=object(), flows=object())  # type: ignore[arg-type]
        return app.openapi()


everything = schemathesis.openapi.from_dict(_openapi())
# Operations that hash a password (argon2, ~0.1 s by design) or train the NLU get fewer examples.
SLOW = r"^/api/v1/(auth/login|me|agents|agents/\{agent_id\}|bot/reload)$"
schema = everything.exclude(path_regex=SLOW)
slow_schema = everything.include(path_regex=SLOW)

# What requests.Request takes of schemathesis's transport arguments (it adds no others we need).
REQUEST_FIELDS = ("method", "url", "headers", "files", "data", "params", "cookies", "json")


@pytest.fixture(scope="module")
def fuzz_hub(
    tmp_path_factory: pytest.TempPathFactory, classifier: IntentClassifier, flows: FlowEngine
) -> Iterator[tuple[TestClient, dict[str, str], int]]:
    """One started app for the whole run, with an admin and something to find: a
    conversation (on the try-it channel), a canned response and a team."""
    tmp = tmp_path_factory.mktemp("fuzz-api")
    settings = make_settings(migrated_sqlite(tmp), tmp)
    admin = create_agent(settings, role="admin")
    with client_for(settings, classifier, flows) as client:
        auth = login(client)
        client.post("/api/v1/bot/try", json={"text": "hi", "session": "fuzz"}, headers=auth)
        client.post("/api/v1/canned", json={"short_code": "hi", "text": "Hello!"}, headers=auth)
        client.post("/api/v1/teams", json={"name": "support"}, headers=auth)
        yield client, auth, admin


def keep_admin(client: TestClient, admin: int, auth: dict[str, str]) -> None:
    """The fuzzer may demote or deactivate our admin (PATCH /agents/{id}) or revoke its token
    (a new password, POST /auth/logout): undo it, with a new token, so every example runs
    with the same rights."""
    hub = client.app.state.hub  # type: ignore[attr-defined]

    async def restore() -> None:
        agent = await hub.store.update_agent(admin, role="admin", active=True)
        token = issue_token(admin, "admin", hub.settings.jwt_secret(), version=agent.token_version)
        auth["authorization"] = f"Bearer {token}"

    client.portal.call(restore)  # type: ignore[union-attr]


def send(client: TestClient, case: schemathesis.Case, auth: dict[str, str]) -> Any:
    """The case's request, encoded as requests would (JSON, forms, multipart), sent through
    the started app's TestClient (its event loop holds the hub's database)."""
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=auth)
    request = requests.Request(**{k: kwargs[k] for k in REQUEST_FIELDS if k in kwargs}).prepare()
    body = request.body.encode() if isinstance(request.body, str) else request.body
    assert request.method is not None and request.url is not None
    return client.request(
        request.method, request.url, headers=dict(request.headers), content=body or b""
    )


def check(case: schemathesis.Case, fuzz_hub: tuple[TestClient, dict[str, str], int]) -> None:
    client, auth, admin = fuzz_hub
    keep_admin(client, admin, auth)
    response = send(client, case, auth)
    # Only this check: the responses' schema is not followed for errors the handlers raise
    # themselves ({"detail": "text"} where FastAPI documents 422 as a list of errors).
    case.validate_response(response, checks=[not_a_server_error])


@schema.parametrize()
@fuzz(25)
def test_no_input_makes_a_server_error(
    case: schemathesis.Case, fuzz_hub: tuple[TestClient, dict[str, str], int]
) -> None:
    check(case, fuzz_hub)


@slow_schema.parametrize()
@fuzz(8)
def test_no_input_makes_a_server_error_in_slow_operations(
    case: schemathesis.Case, fuzz_hub: tuple[TestClient, dict[str, str], int]
) -> None:
    check(case, fuzz_hub)


def test_the_schema_lists_the_inbox_and_channel_operations() -> None:
    paths = _openapi()["paths"]
    for path in ("/api/v1/conversations", "/webhooks/rest/webhook", "/channels/web/upload"):
        assert path in paths, sorted(paths)
