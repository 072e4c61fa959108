"""JSON logs: one object a line, with the request's id (echoed in the response) and the
conversation's; `kefu run` writes uvicorn's access log the same way."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from hub.app import create_app
from hub.ops.logs import handler
from hub.ops.settings import Settings
from hub.ports import FlowResult, TurnContext
from nlu import IntentClassifier
from tests.flow_doubles import RunOnly

ROOT = Path(__file__).resolve().parents[2]


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """Everything logged at INFO and above during the test, as kefu run's JSON handler writes."""
    stream = io.StringIO()
    out = handler("json", stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(out)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(out)
        root.setLevel(level)


def test_json_lines_carry_the_fields_and_the_traceback(json_logs: io.StringIO) -> None:
    log = logging.getLogger("kefu.test")
    log.info("order %s shipped", "12345678", extra={"order_id": "12345678"})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("it failed")
    first, second = lines(json_logs)[-2:]
    assert first["message"] == "order 12345678 shipped"
    assert first["level"] == "INFO" and first["logger"] == "kefu.test"
    assert first["order_id"] == "12345678"
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$", first["time"])
    assert first.get("request_id") is None and "exc_info" not in first
    assert second["level"] == "ERROR"
    assert "ValueError: boom" in second["exc_info"] and "Traceback" in second["exc_info"]


def test_text_format_is_the_default() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("kefu.test.text")
    logger.addHandler(handler(stream=stream))
    logger.propagate = False
    try:
        logger.warning("plain")
    finally:
        logger.propagate = True
    assert stream.getvalue().rstrip().endswith("WARNING kefu.test.text: plain")


def test_a_line_break_in_a_message_does_not_start_a_line() -> None:
    """What a client sends (a path, an email) can't forge a line of the text log."""
    stream = io.StringIO()
    logger = logging.getLogger("kefu.test.forging")
    logger.addHandler(handler(stream=stream))
    logger.propagate = False
    forged = "x\n2026-01-01 00:00:00,000 INFO hub.inbox.routes: login ok for admin\r\x1b[2K"
    try:
        logger.warning("login failed for %s", forged)
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("with a traceback\u2028still one line")
    finally:
        logger.propagate = True
    out = stream.getvalue().splitlines()
    assert out[0].endswith(
        "login failed for x\\n2026-01-01 00:00:00,000 INFO hub.inbox.routes:"
        " login ok for admin\\r\\x1b[2K"
    )
    assert not any(line.startswith("2026-01-01") for line in out)
    assert out[1].endswith("ERROR kefu.test.forging: with a traceback\\u2028still one line")
    assert out[2] == "Traceback (most recent call last):"  # the traceback keeps its lines


def test_a_login_email_with_a_line_break_is_refused_and_forges_no_line(
    settings: Settings, classifier: IntentClassifier
) -> None:
    stream = io.StringIO()
    out = handler(stream=stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(out)
    root.setLevel(logging.INFO)
    forged = "x@example.com\n2026-01-01 00:00:00,000 WARNING hub: admin logged in"
    try:
        with TestClient(create_app(settings, classifier=classifier)) as client:
            body = {"email": forged, "password": "wrong"}
            r = client.post("/api/v1/auth/login", json=body)
            assert r.status_code == 422 and "control characters" in r.text
            body = {"email": "x\u2028@example.com", "password": "wrong"}
            assert client.post("/api/v1/auth/login", json=body).status_code == 422
    finally:
        root.removeHandler(out)
        root.setLevel(level)
    assert not any(line.startswith("2026-01-01") for line in stream.getvalue().splitlines())


def test_secrets_are_masked_in_json_lines(json_logs: io.StringIO) -> None:
    logging.getLogger("kefu.test").info("reach me at 13812345678", extra={"phone": "13812345678"})
    line = lines(json_logs)[-1]
    assert "12345678" not in json.dumps(line)


class FailingFlows(RunOnly):
    async def run(self, state: dict[str, Any], context: TurnContext) -> FlowResult:
        raise RuntimeError("the order service is down")


def test_the_request_id_in_the_response_is_the_one_in_the_logs(
    settings: Settings, classifier: IntentClassifier, json_logs: io.StringIO
) -> None:
    app = create_app(settings, classifier=classifier, flows=FailingFlows())
    with TestClient(app) as client:
        given = {"X-Request-ID": "req-42"}
        body = {"sender": "u1", "message": "where is my order"}
        r = client.post("/webhooks/rest/webhook", json=body, headers=given)
        assert r.status_code == 200 and r.headers["x-request-id"] == "req-42"
        r2 = client.post("/webhooks/rest/webhook", json={"sender": "u2", "message": "hello"})
        generated = r2.headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", generated)
        unsafe = client.get("/healthz", headers={"X-Request-ID": "a b\nforged"})
        assert re.fullmatch(r"[0-9a-f]{32}", unsafe.headers["x-request-id"])

    failures = [line for line in lines(json_logs) if line["message"].startswith("flow failed")]
    assert [f["request_id"] for f in failures] == ["req-42", generated]
    first = failures[0]
    assert first["logger"] == "hub.core.pipeline" and first["level"] == "ERROR"
    assert first["message"] == f"flow failed in conversation {first['conversation_id']}"
    assert "RuntimeError: the order service is down" in first["exc_info"]
    assert failures[1]["conversation_id"] != first["conversation_id"]


def test_inbox_routes_name_their_conversation(
    settings: Settings, classifier: IntentClassifier, json_logs: io.StringIO
) -> None:
    app = create_app(settings, classifier=classifier, flows=FailingFlows())

    @app.get("/api/v1/conversations/{conversation_id}/probe")
    async def probe(conversation_id: int) -> dict[str, str]:
        logging.getLogger("kefu.test").info("looked at it")
        return {}

    with TestClient(app) as client:
        assert client.get("/api/v1/conversations/17/probe").status_code == 200
    line = next(line for line in lines(json_logs) if line["message"] == "looked at it")
    assert line["conversation_id"] == 17 and line["request_id"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_kefu_run_writes_json_lines_access_log_included(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "KEFU_LOG_FORMAT": "json",
        "KEFU_DATA_DIR": str(tmp_path / "data"),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'kefu.db'}",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "hub", "run", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                r = httpx.get(
                    f"http://127.0.0.1:{port}/healthz", headers={"X-Request-ID": "probe-1"}
                )
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, "did not start"
                time.sleep(0.2)
        assert r.headers["x-request-id"] == "probe-1"
        # a client's own X-Forwarded-For is not believed (no trusted_proxies), even from
        # 127.0.0.1, which uvicorn alone would trust
        forged = {"X-Request-ID": "forged-1", "X-Forwarded-For": "203.0.113.7"}
        httpx.get(f"http://127.0.0.1:{port}/healthz", headers=forged)
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert server.returncode in (0, -signal.SIGTERM), stderr  # uvicorn re-raises the signal
    logged = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    access = [line for line in logged if line["logger"] == "uvicorn.access"]
    assert any(a["request_id"] == "probe-1" and "/healthz" in a["message"] for a in access)
    [forged_line] = [a["message"] for a in access if a["request_id"] == "forged-1"]
    assert forged_line.startswith("127.0.0.1:") and "203.0.113.7" not in forged_line
    messages = [line["message"] for line in logged]
    assert "Application shutdown complete." in messages
