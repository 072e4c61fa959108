"""The embeddable chat widget in a real browser (DESIGN.md section 4, the test ids contract):
the demo shop page, the launcher, a message and the bot's buttons, a button press, and a cut
socket: the widget reconnects, resumes, resends what was unsent, and shows nothing twice.

Needs Python Playwright and a Chromium (Debian's /usr/bin/chromium, or $KEFU_CHROMIUM); skips
without them (fails under CI).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from hub.ops.settings import LimitSettings, Rate, Settings
from tests.test_web_ui.conftest import EMAIL, PASSWORD, open_page, screenshot

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

DIGITS = re.compile(r"^\d+$")
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
    b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\x00\x05\x00\x01\xff"
    b"\x89\x99=\x1d\x00\x00\x00\x00IEND\xaeB`\x82"
)


def messages(page: Page) -> list[tuple[str, str, str | None]]:
    """Every message shown: (sender, text, message id). A pressed button shows at once and
    gets no ack (its id is "postback" until a resume brings it back)."""
    return page.locator("[data-testid=kefu-message]").evaluate_all(
        """nodes => nodes.map(n => [n.dataset.sender,
            Array.from(n.querySelectorAll('.bubble')).map(b => b.textContent).join(' '),
            n.dataset.id || (n.dataset.postback ? 'postback' : null)])"""
    )


def assert_no_duplicates(shown: list[tuple[str, str, str | None]]) -> None:
    ids = [m[2] for m in shown if m[2] != "postback"]
    assert None not in ids, shown  # everything acknowledged
    assert len(ids) == len(set(ids)), shown


def wait_connected(page: Page) -> None:
    page.wait_for_function(
        "() => window.kefuWidget.socket && window.kefuWidget.socket.readyState === 1"
    )
    page.locator(".status").wait_for(state="hidden")


def test_widget_chat_buttons_and_resume_after_a_cut_socket(page: Page, server: str) -> None:
    from playwright.sync_api import expect

    r = httpx.get(f"{server}/widget.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/javascript")

    page.goto(f"{server}/")
    expect(page.locator("h1")).to_contain_text("Kefu Shop")
    launcher = page.get_by_test_id("kefu-launcher")
    expect(launcher).to_have_attribute("aria-label", "Open chat")
    launcher.click()
    expect(page.get_by_test_id("kefu-input")).to_be_visible()
    wait_connected(page)

    # A message: shown at once, acknowledged, and the bot answers with buttons.
    page.get_by_test_id("kefu-input").fill("hello")
    page.get_by_test_id("kefu-send").click()
    mine = page.locator("[data-testid=kefu-message][data-sender=contact]")
    expect(mine).to_have_count(1)
    expect(mine.first).to_have_attribute("data-id", DIGITS)
    bot = page.locator("[data-testid=kefu-message][data-sender=bot]")
    expect(bot.first).to_contain_text("Kefu Shop")
    buttons = bot.first.get_by_test_id("kefu-button")
    assert buttons.count() >= 2
    screenshot(page, "widget.png")

    # A button: the customer asks for a human and is told so.
    bot.first.get_by_role("button", name="Talk to a human").click()
    system = page.locator("[data-testid=kefu-message][data-sender=system]")
    expect(system.first).to_be_visible()

    # Cut the socket, and keep it down while a message is typed and an agent answers.
    page.evaluate(
        """() => { window.__RealWebSocket = window.WebSocket;
                   window.WebSocket = function () { throw new Error('offline'); };
                   window.kefuWidget.socket.close(); }"""
    )
    expect(page.locator(".status")).to_be_visible()
    page.get_by_test_id("kefu-input").fill("are you there?")
    page.get_by_test_id("kefu-input").press("Enter")  # Enter sends
    pending = page.locator("[data-testid=kefu-message][data-sender=contact].pending")
    expect(pending).to_have_count(1)

    with httpx.Client(base_url=server, timeout=10) as api:
        token = api.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
        auth = {"authorization": f"Bearer {token.json()['access_token']}"}
        listed = api.get("/api/v1/conversations", params={"status": "pending"}, headers=auth)
        (conversation,) = listed.json()["items"]
        sent = api.post(
            f"/api/v1/conversations/{conversation['id']}/messages",
            json={"text": "Hi, this is Lin from the team"},
            headers=auth,
        )
        assert sent.status_code == 201, sent.text

    # Back online: the agent's reply arrives with resume, the unsent message goes out once.
    page.evaluate("() => { window.WebSocket = window.__RealWebSocket; }")
    wait_connected(page)
    agent = page.locator("[data-testid=kefu-message][data-sender=agent]")
    expect(agent).to_have_count(1)
    expect(agent).to_contain_text("Hi, this is Lin from the team")
    expect(pending).to_have_count(0)

    # Another cut, then one more message on the new socket: still nothing twice.
    page.evaluate("() => window.kefuWidget.socket.close()")
    wait_connected(page)
    page.get_by_test_id("kefu-input").fill("thanks")
    page.get_by_test_id("kefu-send").click()
    expect(mine).to_have_count(4)
    expect(mine.last).to_have_attribute("data-id", DIGITS)
    shown = messages(page)
    assert_no_duplicates(shown)
    assert [t for s, t, _ in shown if s == "contact"] == [
        "hello",
        "Talk to a human",
        "are you there?",
        "thanks",
    ]
    assert [s for s, _, _ in shown].count("agent") == 1

    # A reload shows the same conversation from history, once, in order.
    page.reload()
    launcher = page.get_by_test_id("kefu-launcher")
    expect(page.locator("[data-testid=kefu-message]")).to_have_count(len(shown))
    reloaded = messages(page)
    assert_no_duplicates(reloaded)
    assert [(s, t) for s, t, _ in reloaded] == [(s, t) for s, t, _ in shown]

    # The launcher closes the panel; a new agent message shows an unread count.
    if page.get_by_test_id("kefu-input").is_visible():
        launcher.click()
    expect(page.get_by_test_id("kefu-input")).to_be_hidden()
    with httpx.Client(base_url=server, timeout=10) as api:
        token = api.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
        auth = {"authorization": f"Bearer {token.json()['access_token']}"}
        api.post(
            f"/api/v1/conversations/{conversation['id']}/messages",
            json={"text": "<b>still here</b>"},
            headers=auth,
        )
    expect(page.get_by_test_id("kefu-unread")).to_have_text("1")
    launcher.click()
    expect(page.get_by_test_id("kefu-unread")).to_be_hidden()
    expect(agent.last).to_contain_text("<b>still here</b>")  # text, never markup


def test_widget_on_a_phone_in_chinese(server: str, browser: Browser) -> None:
    """Under 480 px the open panel fills the screen; zh UI strings follow navigator.language;
    the keyboard alone opens it, sends with Enter, and closes it with Escape."""
    from playwright.sync_api import expect

    errors: list[str] = []
    page = open_page(
        browser,
        errors,
        locale="zh-CN",
        viewport={"width": 375, "height": 700},
        has_touch=True,
        reduced_motion="reduce",
    )
    page.goto(f"{server}/")
    launcher = page.get_by_test_id("kefu-launcher")
    expect(launcher).to_have_attribute("aria-label", "打开在线客服")
    launcher.focus()
    page.keyboard.press("Enter")
    field = page.get_by_test_id("kefu-input")
    expect(field).to_be_focused()
    expect(field).to_have_attribute("placeholder", "输入消息…")
    expect(page.get_by_test_id("kefu-send")).to_have_text("发送")
    box = page.locator(".panel").bounding_box()
    assert box is not None
    assert (box["x"], box["y"], box["width"], box["height"]) == (0, 0, 375, 700)
    assert page.locator("[role=log]").get_attribute("aria-live") == "polite"
    wait_connected(page)
    field.fill("你好")
    page.keyboard.press("Enter")
    expect(page.locator("[data-testid=kefu-message][data-sender=bot]").first).to_be_visible()
    page.keyboard.press("Escape")
    expect(field).to_be_hidden()
    expect(launcher).to_be_focused()
    assert not errors, errors


def test_widget_sends_an_image_the_agent_sees(page: Page, server: str, tmp_path: Path) -> None:
    """The paperclip's file input uploads a PNG; it shows in the customer's own bubble, and the
    agent's API has it as an attachment. A file of another type gets an error line instead."""
    from playwright.sync_api import expect

    png = tmp_path / "cat.png"
    png.write_bytes(PNG)
    page.goto(f"{server}/")
    page.get_by_test_id("kefu-launcher").click()
    wait_connected(page)
    attach = page.get_by_test_id("kefu-attach")
    expect(attach).to_be_visible()
    assert attach.get_attribute("aria-label")

    page.get_by_test_id("kefu-file").set_input_files(
        files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hi"}]
    )
    expect(page.locator(".err")).to_be_visible()

    page.get_by_test_id("kefu-file").set_input_files(str(png))
    mine = page.locator("[data-testid=kefu-message][data-sender=contact]")
    expect(mine).to_have_count(1)
    expect(mine.first).to_have_attribute("data-id", DIGITS)
    image = mine.first.locator("img")
    expect(image).to_have_attribute("src", re.compile(r"/media/.+cat\.png$"))
    page.wait_for_function(
        "() => window.kefuWidget.root.querySelector('[data-sender=contact] img').naturalWidth === 1"
    )
    expect(page.locator(".err")).to_be_hidden()

    with httpx.Client(base_url=server, timeout=10) as api:
        token = api.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
        auth = {"authorization": f"Bearer {token.json()['access_token']}"}
        (conversation,) = api.get("/api/v1/conversations", headers=auth).json()["items"]
        stored = api.get(f"/api/v1/conversations/{conversation['id']}/messages", headers=auth)
        (attachment,) = [a for m in stored.json()["items"] for a in m["attachments"]]
    assert attachment["kind"] == "image" and attachment["url"].endswith("cat.png")


@pytest.fixture
def shop(server: str) -> Iterator[str]:
    """Another site's page with the widget on it: another origin (localhost, another port),
    on loopback too, as Chromium lets no public page reach a private address."""
    html = f'<!doctype html><h1>Another shop</h1><script src="{server}/widget.js"></script>'

    class ShopPage(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = html.encode()
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    site = ThreadingHTTPServer(("127.0.0.1", 0), ShopPage)
    thread = threading.Thread(target=site.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{site.server_address[1]}/"
    finally:
        site.shutdown()
        site.server_close()
        thread.join(5)


def test_widget_on_another_sites_page_uploads_and_keeps_its_visitor(
    page: Page, shop: str, tmp_path: Path
) -> None:
    """The widget on a page of another origin: the upload passes the browser's CORS check,
    and a reload resumes the same conversation (the visitor id and its token are kept)."""
    from playwright.sync_api import expect

    png = tmp_path / "cat.png"
    png.write_bytes(PNG)
    page.goto(shop)
    page.get_by_test_id("kefu-launcher").click()
    wait_connected(page)
    token = page.evaluate(
        "() => localStorage.getItem(Object.keys(localStorage).find(k => k.endsWith(':token')))"
    )
    assert token and len(token) >= 32

    page.get_by_test_id("kefu-file").set_input_files(str(png))
    mine = page.locator("[data-testid=kefu-message][data-sender=contact]")
    expect(mine).to_have_count(1)
    expect(mine.first).to_have_attribute("data-id", DIGITS)
    expect(mine.first.locator("img")).to_have_attribute("src", re.compile(r"/media/.+cat\.png$"))
    expect(page.locator(".err")).to_be_hidden()

    visitor = page.evaluate("() => window.kefuWidget.visitor")
    page.reload()
    wait_connected(page)
    assert page.evaluate("() => window.kefuWidget.visitor") == visitor
    expect(page.locator("[data-testid=kefu-message][data-sender=contact] img")).to_have_count(1)


@pytest.fixture
def tight_limits(settings: Settings) -> Settings:
    """Two messages in 3 seconds per visitor (request it before `page` and `server`)."""
    settings.limits = LimitSettings(widget_messages=Rate(count=2, seconds=3))
    return settings


def test_widget_sends_a_refused_message_again_after_the_wait(
    tight_limits: Settings, page: Page, server: str
) -> None:
    """Over the visitor's message limit, the widget says so, keeps the message pending and
    sends it again when told; it is stored and shown once."""
    from playwright.sync_api import expect

    page.goto(f"{server}/")
    page.get_by_test_id("kefu-launcher").click()
    wait_connected(page)
    for text in ("one", "two", "three"):
        page.get_by_test_id("kefu-input").fill(text)
        page.get_by_test_id("kefu-input").press("Enter")
    expect(page.locator(".err")).to_contain_text("Too many messages")
    pending = page.locator("[data-testid=kefu-message][data-sender=contact].pending")
    expect(pending).to_have_count(1)
    expect(pending).to_contain_text("three")

    expect(pending).to_have_count(0, timeout=8000)  # sent again after the wait, and acked
    expect(page.locator(".err")).to_be_hidden(timeout=8000)
    shown = messages(page)
    assert [t for s, t, _ in shown if s == "contact"] == ["one", "two", "three"]
    assert_no_duplicates(shown)
