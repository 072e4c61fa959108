"""A customer's hostile file, opened by an agent in the inbox, runs no script on the hub's
origin (P10): `/media` answers with images or downloads, sandboxed, never pages.

The customer uploads `GIF89a<html><script>` as image/gif named evil.html through the widget's
upload (the issue's attack) and sends it as "invoice.pdf"; other channels hand the hub an SVG
with script and an HTML page they call image/png. The agent opens the conversation in Chromium,
clicks every attachment and also opens every /media URL directly. The hostile script would
retitle the page, copy the agent's token into localStorage and send it to the hub: none of it
may happen."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
import time
from collections.abc import Coroutine, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

import httpx
import pytest
import uvicorn

from flows import FlowEngine
from hub.app import Hub, create_app
from hub.messages import Attachment, Inbound, Kind
from hub.ops.settings import Settings
from nlu import IntentClassifier
from tests.conftest import create_agent
from tests.test_web_ui.conftest import ADMIN, ADMIN_PASSWORD, free_port, open_page
from tests.test_web_ui.test_inbox import log_in, png

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Download, Page

TOKEN = "kefu.admin.token"
STEAL = (
    "document.title = 'pwned';"
    f"localStorage.setItem('pwned', String(localStorage.getItem('{TOKEN}')));"
    "fetch('/pwned?token=' + localStorage.getItem('" + TOKEN + "'));"
)
GIF_HTML = f"GIF89a<html><body><script>{STEAL}</script>invoice</body></html>".encode()
SVG = (
    f'<svg xmlns="http://www.w3.org/2000/svg" onload="{STEAL}">'
    f"<script>{STEAL}</script><circle r='9'/></svg>"
).encode()
HTML = f"<!doctype html><html><script>{STEAL}</script></html>".encode()


class Running(NamedTuple):
    base: str
    hub: Hub
    loop: asyncio.AbstractEventLoop

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        """Await on the hub's own event loop (its database, its channels)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=20)


@pytest.fixture
def running(
    settings: Settings, classifier: IntentClassifier, flows: FlowEngine
) -> Iterator[Running]:
    """The hub served by uvicorn (as conftest's `server`), with its Hub and event loop at hand,
    so a test can store what other channels would. Set up before `browser` (whose Playwright
    holds the thread's event loop)."""
    create_agent(settings, ADMIN, ADMIN_PASSWORD, role="admin")
    app = create_app(settings, classifier=classifier, flows=flows)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the hub did not start")
        time.sleep(0.05)
    try:
        hub: Hub = app.state.hub
        yield Running(f"http://127.0.0.1:{port}", hub, server.servers[0].get_loop())
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def upload_as_customer(base: str, data: bytes, name: str, mime_type: str) -> str:
    """The widget's upload, as a first-time visitor's browser (or a script) sends it."""
    visitor = "v-" + secrets.token_hex(8)
    got = httpx.post(
        f"{base}/channels/web/upload",
        params={"visitor": visitor, "name": name},
        content=data,
        headers={"content-type": mime_type},
    )
    assert got.status_code == 201, got.text
    url: str = got.json()["url"]
    return url


def test_an_agent_opening_hostile_attachments_runs_no_script(
    running: Running, browser: Browser
) -> None:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect

    base, hub = running.base, running.hub
    gif = upload_as_customer(base, GIF_HTML, "evil.html", "image/gif")
    svg = running.run(hub.save_media(SVG, name="chart.svg", mime_type="image/svg+xml"))
    html = running.run(hub.save_media(HTML, name="photo.png", mime_type="image/png"))
    visitor = "v-" + secrets.token_hex(8)
    attachments = (
        Attachment(kind=Kind.FILE, url=gif, name="invoice.pdf", mime_type="application/pdf"),
        Attachment(kind=Kind.IMAGE, url=gif, name="cat.gif", mime_type="image/gif"),
        Attachment(kind=Kind.FILE, url=svg, name="chart.svg", mime_type="image/svg+xml"),
        Attachment(kind=Kind.IMAGE, url=html, name="photo.png", mime_type="image/png"),
    )
    inbound = Inbound(
        channel="web", sender_id=visitor, text="here is my invoice", attachments=attachments
    )
    running.run(hub.receive(inbound))
    conversation = running.run(hub.current_conversation("web", visitor))

    errors: list[str] = []
    agent = open_page(browser, errors)
    context = agent.context
    requested: list[str] = []
    context.on("request", lambda r: requested.append(r.url))
    log_in(agent, base)
    token = agent.evaluate(f"() => localStorage.getItem('{TOKEN}')")
    assert token
    agent.goto(f"{base}/admin#/inbox/{conversation}")
    message = agent.locator("[data-testid=message][data-sender=contact]").filter(
        has_text="here is my invoice"
    )
    links = message.locator("a")
    expect(links).to_have_count(4)

    # Every download, whichever tab it starts from; what each action did, checked at the end.
    downloads: list[Download] = []
    happened: list[tuple[str, str]] = []

    def watch(page: Page) -> None:
        page.on("download", lambda download: downloads.append(download))

    watch(agent)
    context.on("page", watch)

    def downloaded(action: str) -> None:
        deadline = time.monotonic() + 5
        while not downloads and time.monotonic() < deadline:
            agent.wait_for_timeout(100)
        names = ", ".join(d.suggested_filename for d in downloads)
        happened.append((action, f"downloaded {names}" if names else "no download"))
        downloads.clear()

    # The file links download what the customer sent; nothing opens as a page.
    links.filter(has_text="invoice.pdf").click()
    downloaded("click invoice.pdf")
    links.filter(has_text="chart.svg").click()
    downloaded("click chart.svg")
    # The GIF "image" opens in a tab as an image (broken, it is mostly HTML), not as a page.
    with context.expect_page() as opened:
        links.nth(1).click()
    tab = opened.value
    tab.wait_for_load_state()
    happened.append(("click cat.gif", tab.evaluate("() => document.contentType")))
    # The HTML a channel called image/png: the hub serves it as a download even in a tab.
    links.nth(3).click()
    downloaded("click photo.png")
    # Typed into the address bar (or linked from anywhere): the same.
    page = context.new_page()
    for url in (svg, html):
        with contextlib.suppress(PlaywrightError):  # "Download is starting"
            page.goto(base + url)
        downloaded(f"open {url.rsplit('/', 1)[1]}")
    page.goto(base + gif)
    happened.append(("open evil.html", page.evaluate("() => document.contentType")))
    # A real photo opened on its own still shows, under the same sandbox.
    photo = running.run(hub.save_media(png(40, 30, (200, 80, 60)), name="photo.png"))
    page.goto(base + photo)
    page.wait_for_function("() => document.images.length && document.images[0].complete")
    width = page.evaluate("() => document.images[0].naturalWidth")
    happened.append(("open a real photo", f"{page.evaluate('() => document.contentType')} {width}"))
    agent.wait_for_timeout(300)  # time for a script, had one run, to call home

    # No script of the customer's ran on the hub's origin: the agent's token is untouched and
    # went nowhere.
    agent.bring_to_front()
    stolen = [url for url in requested if "/pwned" in url]
    assert not stolen, stolen
    assert agent.evaluate("() => localStorage.getItem('pwned')") is None
    assert agent.evaluate(f"() => localStorage.getItem('{TOKEN}')") == token
    assert "pwned" not in [p.title() for p in context.pages]
    assert happened == [
        ("click invoice.pdf", "downloaded evil.html"),
        ("click chart.svg", "downloaded chart.svg"),
        ("click cat.gif", "image/gif"),
        ("click photo.png", "downloaded photo.png"),
        ("open chart.svg", "downloaded chart.svg"),
        ("open photo.png", "downloaded photo.png"),
        ("open evil.html", "image/gif"),
        ("open a real photo", "image/png 40"),
    ]
    assert not errors, errors
