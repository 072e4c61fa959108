"""The agents' inbox at /admin in a real browser, next to a customer in the chat widget.

The contract's test ids (DESIGN.md section 4): login-email / login-password / login-submit,
conversation-item[data-status][data-conversation-id], message[data-sender], reply-input,
reply-send, action-take / action-resolve / action-snooze / action-handback.
"""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from tests.test_web_ui.conftest import (
    ADMIN,
    ADMIN_PASSWORD,
    EMAIL,
    PASSWORD,
    open_page,
    screenshot,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A PNG of one colour (a photo of a receipt, as far as the inbox can tell)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def api_auth(server: str, email: str = ADMIN, password: str = ADMIN_PASSWORD) -> dict[str, str]:
    r = httpx.post(f"{server}/api/v1/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return {"authorization": f"Bearer {r.json()['access_token']}"}


def log_in(page: Page, server: str, email: str = ADMIN, password: str = ADMIN_PASSWORD) -> None:
    from playwright.sync_api import expect

    page.goto(f"{server}/admin")
    page.get_by_test_id("login-email").fill(email)
    page.get_by_test_id("login-password").fill(password)
    page.get_by_test_id("login-submit").click()
    expect(page.locator("#live")).to_have_text(re.compile("Live|实时"))  # events socket up


def open_widget(page: Page, server: str) -> None:
    page.goto(f"{server}/")
    page.get_by_test_id("kefu-launcher").click()
    page.wait_for_function(
        "() => window.kefuWidget.socket && window.kefuWidget.socket.readyState === 1"
    )


def test_customer_and_agent_at_the_same_time(server: str, browser: Browser, tmp_path: Path) -> None:
    """The customer asks for a human in the widget; the conversation appears live in the
    agent's pending list; the agent takes it and replies; the customer sees the reply, also one
    sent while the widget's socket was cut; an image the customer sends shows in the inbox."""
    from playwright.sync_api import expect

    errors: list[str] = []
    httpx.post(
        f"{server}/api/v1/canned",
        json={"short_code": "thanks", "text": "Thank you for waiting!"},
        headers=api_auth(server),
    ).raise_for_status()
    agent = open_page(
        browser, errors, viewport={"width": 1400, "height": 860}, permissions=["notifications"]
    )
    # The agent's tab is in the background: new pending conversations notify the desktop.
    agent.add_init_script(
        """Object.defineProperty(document, 'hidden', {get: () => true});
           window.__notified = [];
           window.Notification = class { constructor(title, options) {
             window.__notified.push([title, options.body]); } };
           window.Notification.permission = 'granted';"""
    )
    customer = open_page(browser, errors)
    log_in(agent, server)
    pending = agent.locator("[data-testid=conversation-item][data-status=pending]")
    expect(agent.get_by_role("tab", name=re.compile("Pending"))).to_have_attribute(
        "aria-selected", "true"
    )
    expect(pending).to_have_count(0)

    # The customer talks to the bot, then presses "Talk to a human".
    open_widget(customer, server)
    customer.get_by_test_id("kefu-input").fill("where is my order 12345?")
    customer.get_by_test_id("kefu-send").click()
    bot = customer.locator("[data-testid=kefu-message][data-sender=bot]")
    expect(bot.first).to_be_visible()
    customer.get_by_test_id("kefu-input").fill("hello")
    customer.get_by_test_id("kefu-send").click()
    expect(customer.get_by_role("button", name="Talk to a human").last).to_be_visible()
    customer.get_by_role("button", name="Talk to a human").last.click()

    # Live, without a reload: the pending list has it, with an unread badge and the tab count.
    expect(pending).to_have_count(1)
    item = pending.first
    expect(item).to_have_attribute("data-conversation-id", re.compile(r"^\d+$"))
    expect(item).to_contain_text("The customer asked for a person")
    expect(item.locator(".badge")).to_have_text(re.compile(r"^[1-9]\d*$"))  # unread
    expect(agent.get_by_role("tab", name=re.compile("Pending"))).to_contain_text("1")
    expect(agent.locator("#toasts")).to_contain_text("New conversation waiting")
    notified = agent.evaluate("() => window.__notified")
    assert [title for title, _ in notified] == ["Kefu Hub"]
    assert notified[0][1].startswith("New conversation waiting: ")

    # The conversation: history with what the bot understood, and the handoff note.
    item.click()
    expect(agent).to_have_url(re.compile(r"/admin#/inbox/\d+$"))
    history = agent.get_by_test_id("message")
    expect(agent.locator("[data-testid=message][data-sender=contact]").first).to_contain_text(
        "where is my order 12345?"
    )
    expect(history.first.locator(".nlu")).to_contain_text(re.compile(r"Intent: \w+ · confidence"))
    expect(agent.locator("[data-testid=message][data-sender=bot]").first).to_be_visible()
    note = agent.get_by_role("region", name="Handoff note")
    expect(note).to_contain_text("The customer asked for a person")
    expect(note).to_contain_text("human")
    expect(agent.get_by_test_id("suggestions")).to_be_visible()
    assert_every_control_is_named(agent)
    expect(item).not_to_have_class(re.compile("unread"))

    # Take it: open and the agent's; it leaves the pending tab.
    agent.get_by_test_id("action-take").click()
    expect(agent.get_by_test_id("conversation-status")).to_have_text("Open")
    expect(pending).to_have_count(0)
    expect(agent.get_by_test_id("action-take")).to_have_count(0)

    # A canned response through /shortcut, sent with Enter; the customer sees it.
    reply = agent.get_by_test_id("reply-input")
    reply.fill("/tha")
    expect(agent.get_by_test_id("canned-option")).to_have_count(1)
    reply.press("Enter")
    expect(reply).to_have_value("Thank you for waiting!")
    reply.fill("Hi, this is Lin. Let me check your order.")
    agent.get_by_test_id("reply-send").click()
    mine = agent.locator("[data-testid=message][data-sender=agent]:not(.private)")
    expect(mine).to_have_count(1)
    from_agent = customer.locator("[data-testid=kefu-message][data-sender=agent]")
    expect(from_agent).to_have_count(1)
    expect(from_agent).to_contain_text("Hi, this is Lin")

    # A private note stays in the inbox.
    agent.get_by_label("Private note").check()
    reply.fill("VIP customer, be quick")
    reply.press("Enter")
    expect(agent.locator("[data-testid=message].private")).to_contain_text("VIP customer")

    # The customer writes; it arrives live in the open conversation.
    customer.get_by_test_id("kefu-input").fill("thanks, waiting")
    customer.get_by_test_id("kefu-send").click()
    expect(agent.locator("[data-testid=message][data-sender=contact]").last).to_have_text(
        re.compile("thanks, waiting")
    )

    # The widget's socket is cut; the agent replies meanwhile; after the reconnect the
    # customer has it once.
    customer.evaluate(
        """() => { window.__RealWebSocket = window.WebSocket;
                   window.WebSocket = function () { throw new Error('offline'); };
                   window.kefuWidget.socket.close(); }"""
    )
    agent.get_by_label("Private note").uncheck()
    reply.fill("Your parcel left the warehouse today.")
    agent.get_by_test_id("reply-send").click()
    expect(mine).to_have_count(2)
    customer.evaluate("() => { window.WebSocket = window.__RealWebSocket; }")
    expect(from_agent).to_have_count(2)
    expect(from_agent.last).to_contain_text("parcel left the warehouse")
    assert "VIP customer" not in customer.locator("body").inner_text()

    # The customer sends an image; the agent sees it in the conversation.
    receipt = tmp_path / "receipt.png"
    receipt.write_bytes(png(160, 90, (94, 129, 172)))
    customer.get_by_test_id("kefu-file").set_input_files(str(receipt))
    image = agent.locator("[data-testid=message][data-sender=contact] img")
    expect(image).to_have_count(1)
    expect(image).to_have_attribute("src", re.compile(r"/media/.+receipt\.png$"))
    agent.wait_for_function(
        "() => document.querySelector('[data-sender=contact] img').naturalWidth === 160"
    )
    expect(mine.first).not_to_contain_text("sending")  # the widget got it: sent
    agent.get_by_role("tab", name=re.compile("Mine")).click()
    expect(agent.locator("[data-testid=conversation-item][data-status=open]")).to_have_count(1)
    screenshot(agent, "inbox.png")

    # Labels; snooze; resolve; hand back to the bot.
    agent.get_by_label("Add a label").fill("vip")
    agent.get_by_label("Add a label").press("Enter")
    expect(agent.locator(".labels .label-chip")).to_have_text(["vip×"])
    agent.get_by_test_id("action-snooze").click()
    expect(agent.get_by_test_id("conversation-status")).to_have_text("Snoozed")
    agent.get_by_test_id("action-resolve").click()
    expect(agent.get_by_test_id("conversation-status")).to_have_text("Resolved")
    agent.get_by_role("tab", name=re.compile("Resolved")).click()
    resolved = agent.locator("[data-testid=conversation-item][data-status=resolved]")
    expect(resolved).to_have_count(1)
    expect(resolved).to_contain_text("vip")
    agent.get_by_label("Label", exact=True).select_option("vip")
    expect(resolved).to_have_count(1)
    agent.get_by_test_id("action-handback").click()
    expect(agent.get_by_test_id("conversation-status")).to_have_text("Bot")
    expect(resolved).to_have_count(0)
    assert not errors, errors


def test_login_roles_language_and_keyboard(server: str, browser: Browser) -> None:
    """A wrong password is said; an agent doesn't get the admin-only page; the tabs move with
    the arrow keys; the language switch turns the inbox into Chinese and is remembered."""
    from playwright.sync_api import expect

    errors: list[str] = []
    page = open_page(browser, errors)
    page.goto(f"{server}/admin")
    page.get_by_test_id("login-email").fill(EMAIL)
    page.get_by_test_id("login-password").fill("wrong password")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password")
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-password").press("Enter")
    expect(page.get_by_role("navigation")).to_be_visible()
    expect(page.get_by_role("link", name="Inbox")).to_be_visible()
    expect(page.get_by_role("link", name="Agents & teams")).to_have_count(0)

    page.get_by_role("tab", name=re.compile("Pending")).focus()
    page.keyboard.press("ArrowRight")
    mine = page.get_by_role("tab", name=re.compile("Mine"))
    expect(mine).to_be_focused()
    expect(mine).to_have_attribute("aria-selected", "true")

    page.get_by_label("Language").select_option("zh")
    expect(page.get_by_role("tab", name=re.compile("待接入"))).to_be_visible()
    expect(page.get_by_role("link", name="收件箱")).to_be_visible()
    assert_every_control_is_named(page)
    page.reload()
    expect(page.get_by_role("tab", name=re.compile("待接入"))).to_be_visible()
    me = httpx.get(f"{server}/api/v1/me", headers=api_auth(server, EMAIL, PASSWORD)).json()
    assert me["language"] == "zh"
    page.get_by_role("button", name="退出登录").click()
    expect(page.get_by_test_id("login-submit")).to_have_text("登录")
    assert not errors, errors


UNNAMED = """() => [...document.querySelectorAll('button, input, select, textarea, a[href]')]
  .filter(el => el.offsetParent !== null)
  .filter(el => !(el.getAttribute('aria-label') || (el.labels && el.labels.length)
                  || el.textContent.trim() || el.getAttribute('title')))
  .map(el => el.outerHTML.slice(0, 120))"""


def assert_every_control_is_named(page: Page) -> None:
    """What a screen reader needs: every visible control has a name (label, aria-label or
    text)."""
    assert page.evaluate(UNNAMED) == [], page.url


def test_admin_pages(server: str, browser: Browser) -> None:
    """Agents and teams, channels, the bot (flows, intents, knowledge, no errors, retrain) and
    the try-it chat against the current bot."""
    from playwright.sync_api import expect

    errors: list[str] = []
    page = open_page(browser, errors, viewport={"width": 1300, "height": 900})
    log_in(page, server)

    page.get_by_role("link", name="Agents & teams").click()
    agents = page.get_by_test_id("agents-table")
    expect(agents).to_contain_text(EMAIL)
    assert_every_control_is_named(page)
    new = page.get_by_role("form", name="New agent")
    new.get_by_label("Email").fill("mei@example.com")
    new.get_by_label("Name").fill("Mei")
    new.get_by_label("Password").fill("mei-password")
    new.get_by_label("Role").select_option("designer")
    new.get_by_label("Teams").fill("billing, 售后")
    new.get_by_role("button", name="Create").click()
    row = agents.locator("tr[data-agent='mei@example.com']")
    expect(row).to_be_visible()
    expect(row.get_by_label("Teams (mei@example.com)")).to_have_value("billing, 售后")
    row.get_by_label("Capacity (mei@example.com)").fill("3")
    row.get_by_role("button", name="Save").click()
    expect(page.locator("#toasts")).to_contain_text("Saved")
    expect(page.get_by_test_id("teams-table")).to_contain_text("售后")
    mei = httpx.get(f"{server}/api/v1/agents", headers=api_auth(server)).json()["items"]
    assert [(a["role"], a["capacity"]) for a in mei if a["email"] == "mei@example.com"] == [
        ("designer", 3)
    ]

    page.get_by_role("link", name="Channels").click()
    web = page.get_by_test_id("channels-table").locator("tr[data-channel=web]")
    expect(web).to_contain_text("OK")
    assert_every_control_is_named(page)

    page.get_by_role("link", name="Bot").click()
    expect(page.get_by_test_id("bot-errors")).to_contain_text("No problems")
    expect(page.get_by_test_id("flows-table")).to_contain_text("greet")
    expect(page.get_by_test_id("intents-table")).to_contain_text("human")
    expect(page.get_by_test_id("knowledge-table").locator("tbody tr").first).to_be_visible()
    assert_every_control_is_named(page)
    page.get_by_test_id("bot-retrain").click()
    expect(page.locator("#toasts")).to_contain_text("Bot reloaded")

    page.get_by_role("link", name="Try it").click()
    page.get_by_test_id("try-input").fill("hello")
    page.get_by_test_id("try-input").press("Enter")
    answer = page.locator(".try [data-testid=message][data-sender=bot]")
    expect(answer.first).to_contain_text("Kefu Shop")
    expect(page.locator(".try [data-sender=contact] .nlu")).to_contain_text("Intent: greet")
    page.get_by_role("button", name="Talk to a human").first.click()
    expect(page.locator(".try")).to_contain_text("Pending")
    assert not errors, errors


def test_one_customer_across_channels_shows_their_other_contact_and_earlier_messages(
    server: str, browser: Browser
) -> None:
    """Two contacts an admin merged: the conversation shows the other contact in the panel and
    the other conversation's messages above its own, marked with their channel."""
    from playwright.sync_api import expect

    auth = api_auth(server)
    for sender, text in (("ui-early", "my parcel is late"), ("ui-late", "/human")):
        r = httpx.post(f"{server}/webhooks/rest/webhook", json={"sender": sender, "message": text})
        assert r.status_code == 200, r.text
    found = httpx.get(f"{server}/api/v1/contacts", params={"q": "ui-"}, headers=auth).json()
    ids = {c["external_id"]: c["id"] for c in found["items"]}
    merge = f"{server}/api/v1/contacts/{ids['ui-late']}/merge"
    assert httpx.post(merge, json={"with": ids["ui-early"]}, headers=auth).status_code == 200
    listed = httpx.get(f"{server}/api/v1/conversations", params={"q": "ui-late"}, headers=auth)
    [late] = [c for c in listed.json()["items"] if c["contact"]["external_id"] == "ui-late"]

    errors: list[str] = []
    page = open_page(browser, errors)
    log_in(page, server)
    item = f"[data-testid=conversation-item][data-conversation-id='{late['id']}']"
    page.locator(item).click()
    earlier = page.get_by_test_id("earlier-message").filter(has_text="my parcel is late")
    expect(earlier).to_contain_text("rest #")
    expect(page.get_by_test_id("person-contacts")).to_contain_text("rest · ui-early")
    own = page.locator("[data-testid=message][data-sender=contact]")
    expect(own).to_have_count(1)  # the conversation's own messages stay apart
    assert errors == []
