"""The dashboard (admins) and the unrecognized messages page (admins and designers) at /admin,
in a real browser, over a small history made through the hub's real channels and API."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import httpx

from tests.test_web_ui.conftest import open_page, screenshot
from tests.test_web_ui.test_inbox import (
    api_auth,
    assert_every_control_is_named,
    log_in,
    open_widget,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ZONE = "Asia/Shanghai"  # the browser's zone: the page sends its dates with +08:00
QUOTED = 'is "Mr. Whiskers, Jr." a good name for a cat?'  # comma and quotes: CSV quotes it
NOT_UNDERSTOOD = "what is the meaning of life"
FORMULA = "=1+1 is two, right?"  # a spreadsheet would run it: the CSV keeps it text


def customer_says(server: str, sender: str, text: str) -> list[dict[str, Any]]:
    r = httpx.post(f"{server}/webhooks/rest/webhook", json={"sender": sender, "message": text})
    assert r.status_code == 200, r.text
    replies: list[dict[str, Any]] = r.json()
    return replies


def conversation_of(server: str, admin: dict[str, str], sender: str) -> int:
    r = httpx.get(f"{server}/api/v1/conversations", params={"q": sender}, headers=admin)
    [item] = [i for i in r.json()["items"] if i["contact"]["external_id"] == sender]
    return int(item["id"])


def make_history(server: str, admin: dict[str, str]) -> None:
    """Customers on the REST channel and one in the widget's channel: greetings, order questions
    (English and Chinese), one who asks for a human whom the admin answers and resolves, and
    messages the bot does not understand (one of them twice, so the bot hands over)."""
    for sender, texts in [
        ("alice", ["hello", NOT_UNDERSTOOD]),
        ("bob", ["where is my order", "/human"]),
        ("carol", [NOT_UNDERSTOOD, "tell me about quantum physics"]),
        ("dong", ["你好", "我的快递到哪了"]),
        ("emma", ["how much is express shipping?"]),
        ("fang", ["我想退货"]),
        ("gary", [QUOTED]),
        ("hank", [FORMULA]),
    ]:
        for text in texts:
            customer_says(server, sender, text)
    bob = conversation_of(server, admin, "bob")
    for path, body in [
        ("messages", {"text": "Hi, Lin here. Your parcel is on its way."}),
        ("status", {"status": "resolved"}),
    ]:
        r = httpx.post(f"{server}/api/v1/conversations/{bob}/{path}", json=body, headers=admin)
        assert r.status_code in (200, 201), r.text


def local_window(days: int) -> tuple[str, str]:
    """The window the page asks for: `days` local calendar days up to today, in ZONE."""
    today = datetime.now(ZoneInfo(ZONE)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (today - timedelta(days=days - 1)).isoformat(), (today + timedelta(days=1)).isoformat()


def percent(rate: float | None) -> str:
    """As the page writes a rate (Intl percent, at most one decimal)."""
    if rate is None:
        return "—"
    return f"{rate * 100:.1f}".removesuffix(".0") + "%"


def figure(page: Page, name: str) -> tuple[str, str]:
    item = page.get_by_test_id(f"figure-{name}")
    return item.locator(".big").inner_text(), item.get_attribute("data-value") or ""


def downloaded_csv(page: Page, button: str) -> list[list[str]]:
    with page.expect_download() as info:
        page.get_by_test_id(button).click()
    data = Path(info.value.path()).read_bytes()
    assert data.startswith(b"\xef\xbb\xbf"), data[:10]  # the BOM: Excel reads UTF-8
    assert info.value.suggested_filename.endswith(".csv")
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_dashboard_shows_the_report(server: str, browser: Browser) -> None:
    """The headline figures are the API's for the same local dates; the charts are drawn; an
    empty range shows zeros; each table downloads as a CSV whose rows are the report's."""
    from playwright.sync_api import expect

    admin = api_auth(server)
    make_history(server, admin)
    errors: list[str] = []
    visitor = open_page(browser, errors)  # and a visitor in the chat widget
    open_widget(visitor, server)
    visitor.get_by_test_id("kefu-input").fill("what are your opening hours")
    visitor.get_by_test_id("kefu-send").click()
    expect(visitor.locator("[data-testid=kefu-message][data-sender=bot]").first).to_be_visible()
    page = open_page(
        browser,
        errors,
        viewport={"width": 1400, "height": 1000},
        timezone_id=ZONE,
        accept_downloads=True,
    )
    log_in(page, server)
    with page.expect_request(re.compile(r"/api/v1/reports/summary\?")) as asked:
        page.get_by_role("link", name="Dashboard").click()
    since, until = local_window(7)
    params = parse_qs(urlparse(asked.value.url).query)
    assert (params["since"], params["until"]) == ([since], [until])  # local days, +08:00
    r = httpx.get(
        f"{server}/api/v1/reports/summary", params={"since": since, "until": until}, headers=admin
    )
    report = r.json()
    assert report["conversations"] == 9 and report["escalation"]["count"] >= 2, report
    assert set(report["channels"]) == {"rest", "web"}

    expect(page.get_by_test_id("figure-conversations").locator(".big")).to_have_text("9")
    assert figure(page, "messages-in") == (str(report["messages"]["in"]),) * 2
    assert figure(page, "messages-out") == (str(report["messages"]["out"]),) * 2
    shown, value = figure(page, "containment")
    assert shown == percent(report["containment_rate"])
    assert float(value) == report["containment_rate"]
    shown, value = figure(page, "escalation")
    assert shown == percent(report["escalation"]["rate"])
    for name, key in [
        ("first-response", "first_response_seconds"),
        ("resolution", "resolution_seconds"),
    ]:
        shown, value = figure(page, name)
        assert float(value) == report[key]["median"], name
        assert re.fullmatch(r"\d+[smhd]( \d+[smhd])?", shown), shown
        p90 = page.get_by_test_id(f"figure-{name}").locator("small")
        expect(p90).to_contain_text(f"{report[key]['count']} measured")
    assert figure(page, "csat")[0] == (
        "—" if report["csat"]["average"] is None else f"{report['csat']['average']:.1f} / 5"
    )

    page.reload()  # the address keeps the page
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.get_by_test_id("figure-conversations").locator(".big")).to_have_text("9")

    # The charts are drawn: canvases of a real size with painted pixels, named for readers.
    for chart in ["reasons", "channels", "intents"]:
        canvas = page.get_by_test_id(f"chart-{chart}").locator("canvas")
        box = canvas.bounding_box()
        assert box and box["width"] > 100 and box["height"] > 100, chart
        painted = canvas.evaluate(
            """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                      let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }"""
        )
        assert painted > 500, chart
    reasons = page.get_by_test_id("chart-reasons").locator("canvas")
    expect(reasons).to_have_attribute("aria-label", re.compile("The customer asked for a person 1"))
    flows = page.locator("[data-testid^=chart-flow-]")
    expect(flows.first).to_be_visible()
    assert flows.count() == min(6, len(report["flows"]))
    rows = page.get_by_test_id("table-unrecognized").locator("tbody tr")
    expect(rows).to_have_count(len(report["unrecognized"]))
    expect(rows.first).to_contain_text(NOT_UNDERSTOOD)  # twice: the most frequent
    assert_every_control_is_named(page)
    screenshot(page, "dashboard.png", full_page=True)

    # CSV: rows are the report's, quoted where needed, Chinese intact.
    table = downloaded_csv(page, "export-unrecognized")
    assert table[0] == ["Text", "Times", "Last seen"]
    assert table[1:] == [
        [("'" if u["text"].startswith("=") else "") + u["text"], str(u["count"]), u["last_at"]]
        for u in report["unrecognized"]
    ]
    assert [QUOTED, "1"] in [row[:2] for row in table]
    assert ["'" + FORMULA, "1"] in [row[:2] for row in table]
    intents = downloaded_csv(page, "export-intents")
    assert intents[0] == ["Intent", "Messages", "Conversations", "Escalated"]
    assert intents[1:] == [
        [name, str(i["messages"]), str(i["conversations"]), str(i["escalated"])]
        for name, i in report["intents"].items()
    ]
    channels = downloaded_csv(page, "export-channels")
    assert [row[:2] for row in channels[1:]] == [
        [name, str(c["conversations"])] for name, c in report["channels"].items()
    ]
    steps = downloaded_csv(page, "export-flow-steps")
    expected = [
        [flow, s["step"], s["loc"], str(s["conversations"])]
        for flow, f in report["flows"].items()
        for s in f["steps"]
    ]
    assert [row for row in steps[1:] if row[2]] == expected

    # A range with nothing in it: zeros, and the tables say so.
    page.get_by_test_id("range-since").fill("2020-01-01")
    expect(page.get_by_role("alert")).to_have_text("Choose at most 366 days.")  # not asked
    with page.expect_response(
        re.compile(r"/reports/summary\?since=2020-01-01T00%3A00%3A00%2B08%3A00")
    ):
        page.get_by_test_id("range-until").fill("2020-01-31")
    expect(page.get_by_test_id("figure-conversations").locator(".big")).to_have_text("0")
    assert figure(page, "messages-in")[0] == "0"
    assert figure(page, "containment")[0] == "—"
    expect(page.get_by_test_id("table-intents")).to_contain_text("Nothing in this range")
    assert downloaded_csv(page, "export-unrecognized") == [["Text", "Times", "Last seen"]]

    # An end before the start is refused in the page; a preset brings the week back.
    page.get_by_test_id("range-until").fill("2019-12-01")
    expect(page.get_by_role("alert")).to_have_text("Choose a start date on or before the end date.")
    page.get_by_test_id("range-7").click()
    expect(page.get_by_test_id("figure-conversations").locator(".big")).to_have_text("9")
    expect(page.get_by_role("alert")).to_be_hidden()

    # In Chinese: the words change, the numbers don't.
    page.get_by_label("Language").select_option("zh")
    page.get_by_role("link", name="数据看板").click()
    expect(page.get_by_role("heading", name="数据看板")).to_be_visible()
    expect(page.get_by_test_id("figure-conversations").locator(".big")).to_have_text("9")
    assert not errors, errors


def test_unrecognized_messages_get_labeled(server: str, browser: Browser) -> None:
    """A designer labels a message the bot did not understand with an intent; it leaves the
    list to label for the labeled examples; deleting the example brings it back. Designers
    don't get the dashboard."""
    from playwright.sync_api import expect

    admin = api_auth(server)
    # The page's API (GET /api/v1/nlu/review) is part of this hub: missing, it is a failure.
    review = httpx.get(f"{server}/api/v1/nlu/review", headers=admin)
    assert review.status_code == 200, (review.status_code, review.text[:300])
    make_history(server, admin)
    r = httpx.post(
        f"{server}/api/v1/agents",
        json={
            "email": "mei@example.com",
            "name": "Mei",
            "password": "mei-password",
            "role": "designer",
            "teams": [],
            "capacity": 5,
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    errors: list[str] = []
    page = open_page(browser, errors, viewport={"width": 1300, "height": 900})
    log_in(page, server, "mei@example.com", "mei-password")
    expect(page.get_by_role("link", name="Dashboard")).to_have_count(0)
    page.get_by_role("link", name="Unrecognized").click()
    expect(page.get_by_role("heading", name="Unrecognized messages")).to_be_visible()
    expect(page.get_by_test_id("review-hint")).to_contain_text("Reload and retrain")

    row = page.locator(f"[data-testid=review-row][data-text='{NOT_UNDERSTOOD}']")
    expect(row).to_be_visible()
    expect(row.locator("td").first).to_have_text("2")  # alice and carol
    assert_every_control_is_named(page)
    row.get_by_label(f"Intent for “{NOT_UNDERSTOOD}”").select_option("out_of_scope")
    row.get_by_role("button", name=f"Label: {NOT_UNDERSTOOD}").click()
    expect(page.locator("#toasts")).to_contain_text("Labeled as out_of_scope")
    expect(row).to_have_count(0)
    example = page.locator(f"[data-testid=example-row][data-text='{NOT_UNDERSTOOD}']")
    expect(example).to_have_attribute("data-intent", "out_of_scope")
    examples = httpx.get(f"{server}/api/v1/nlu/examples", headers=admin).json()["items"]
    assert [(e["text"], e["intent"]) for e in examples] == [(NOT_UNDERSTOOD, "out_of_scope")]

    example.get_by_role("button", name=f"Delete: {NOT_UNDERSTOOD}").click()
    expect(example).to_have_count(0)
    expect(row).to_be_visible()
    assert httpx.get(f"{server}/api/v1/nlu/examples", headers=admin).json()["items"] == []
    assert not errors, errors
