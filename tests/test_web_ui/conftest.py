"""What the browser tests share: the hub served by uvicorn on a free port, and Debian's
Chromium driven by Playwright (`executable_path`). Without Playwright or a Chromium the tests
skip, and fail under CI (tests.conftest.need)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import uvicorn

from flows import FlowEngine
from hub.app import create_app
from hub.ops.settings import Settings
from nlu import IntentClassifier
from tests.conftest import create_agent, need

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = os.environ.get("KEFU_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
EMAIL, PASSWORD = "widget-agent@example.com", "widget-pass"
ADMIN, ADMIN_PASSWORD = "lin@example.com", "admin-pass-1"
DOCS = Path(__file__).resolve().parents[2] / "docs"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(settings: Settings, classifier: IntentClassifier, flows: FlowEngine) -> Iterator[str]:
    """The hub, served by uvicorn in a thread on a free port, with an agent and an admin."""
    create_agent(settings, EMAIL, PASSWORD, role="agent")
    create_agent(settings, ADMIN, ADMIN_PASSWORD, role="admin")
    app = create_app(settings, classifier=classifier, flows=flows)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the hub did not start")
        time.sleep(0.05)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def browser() -> Iterator[Browser]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        need("Python Playwright", str(e))
    if not Path(CHROMIUM).exists():
        need("Chromium", f"{CHROMIUM} not found")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page: Page, name: str, **options: object) -> None:
    """The README's picture docs/`name` of the page as it is now, written only when
    KEFU_SCREENSHOTS=1: otherwise a test run leaves the tracked screenshots as they are."""
    if os.environ.get("KEFU_SCREENSHOTS") == "1":
        page.screenshot(path=str(DOCS / name), **options)  # type: ignore[arg-type]


def open_page(browser: Browser, errors: list[str], **context: object) -> Page:
    """A page in a context of its own (its own storage, as another person's browser), whose
    script errors are collected into `errors`."""
    options: dict[str, object] = {"locale": "en-US", "viewport": {"width": 1100, "height": 760}}
    page = browser.new_context(**{**options, **context}).new_page()  # type: ignore[arg-type]
    page.set_default_timeout(8000)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page


@pytest.fixture
def page(server: str, browser: Browser) -> Iterator[Page]:
    errors: list[str] = []
    yield open_page(browser, errors)
    assert not errors, errors
