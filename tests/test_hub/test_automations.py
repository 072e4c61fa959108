"""Automation rules (`automations/*.yml`): checked with every mistake at its place, and run by
a real hub on customers' messages: team, labels, priority, notes, signed webhooks; time
conditions against an injected clock; a broken file on reload keeps the last good rules."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from flows import FlowEngine
from hub.app import create_app
from hub.features.automations.rules import AutomationError, TimeCondition, load_automations
from hub.features.automations.runner import within
from hub.ops.settings import Settings
from nlu import IntentClassifier
from tests.conftest import SHOP, client_for, create_agent, login, make_settings
from tests.test_hub.test_admin_api import conversation_id, wait_for
from tests.test_hub.test_api import customer_says
from tests.test_hub.test_cli import kefu
from tests.test_hub.test_webhooks import SECRET, Receiver, verify

V1 = "/api/v1"
Api = tuple[TestClient, dict[str, str]]
INTENTS = ["returns", "complaint", "greet"]


def bot_with(folder: Path, rules: str | None) -> Path:
    """A copy of the demo bot whose only automation file is `rules` (None: the demo's own)."""
    bot = folder / "bot"
    skip = shutil.ignore_patterns("automations") if rules is not None else None
    shutil.copytree(SHOP, bot, ignore=skip)
    if rules is not None:
        (bot / "automations").mkdir()
        (bot / "automations" / "rules.yml").write_text(rules, encoding="utf-8")
    return bot


def settings_for(
    url: str, folder: Path, bot: Path, allow_hosts: tuple[str, ...] = ("127.0.0.1",)
) -> Settings:
    """The tests' webhook receivers listen on loopback, which an admin must allow-list."""
    webhooks = {"attempts": 3, "backoff": 0.05, "timeout": 2, "allow_hosts": list(allow_hosts)}
    settings = make_settings(url, folder, webhooks=webhooks)
    settings = settings.model_copy(update={"bot": settings.bot.model_copy(update={"path": bot})})
    create_agent(settings, role="admin")
    return settings


@pytest.fixture
def shop_both(
    database_url: str, tmp_path: Path, classifier: IntentClassifier, flows: FlowEngine
) -> Iterator[Api]:
    """The demo bot with its own automations, on SQLite and PostgreSQL."""
    settings = settings_for(database_url, tmp_path, bot_with(tmp_path, None))
    with client_for(settings, classifier, flows) as client:
        yield client, login(client)


def conversation(client: TestClient, auth: dict[str, str], sender: str) -> dict[str, Any]:
    r = client.get(f"{V1}/conversations/{conversation_id(client, auth, sender)}", headers=auth)
    assert r.status_code == 200, r.text
    return dict(r.json())


def labeled(client: TestClient, auth: dict[str, str], sender: str, label: str) -> dict[str, Any]:
    """The conversation once it has `label` (the rules run just after the message)."""
    return dict(
        wait_for(
            lambda: (c := conversation(client, auth, sender))["labels"].count(label) and c,
            f"label {label!r} on {sender}'s conversation",
        )
    )


def audit(client: TestClient, auth: dict[str, str], actor: str) -> list[dict[str, Any]]:
    r = client.get(f"{V1}/audit", params={"actor": actor}, headers=auth)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


# ---- checking ---------------------------------------------------------------------------

MISTAKES = """\
- name: VIP refunds
  on: message.created
  if:
    channel: [rest, wechat]
    intent: [returns, refund]
    text: {contains: urgent, matches: "(unclosed"}
    labels: {has: vip}
    colour: red
    time: {weekdays: [mon, funday], between: "25:00-18:00", timezone: Mars/Base}
  then:
    - assign_team: billing
    - set_priority: extreme
    - explode: now
- name: Greeters
  on: conversation.created
  if: {intent: greet}
  then: [{add_label: hi}]
- name: Greeters
  on: conversation.created
  then: [{add_label: again}]
"""


def test_every_mistake_is_reported_at_its_place(tmp_path: Path) -> None:
    folder = tmp_path / "automations"
    folder.mkdir()
    path = folder / "rules.yml"
    path.write_text(MISTAKES, encoding="utf-8")
    with pytest.raises(AutomationError) as caught:
        load_automations(folder, channels=["rest", "web"], intents=INTENTS)
    vip, greeters = "rule 'VIP refunds'", "rule 'Greeters'"
    assert caught.value.errors == [
        f"{path}:4:21: {vip}: if.channel.1: unknown channel 'wechat' (config.yaml has: rest, web)",
        f"{path}:5:23: {vip}: if.intent.1: intent 'refund' is not in the NLU data "
        "(it has: complaint, greet, returns)",
        f"{path}:6:30: {vip}: if.text.matches: bad regex '(unclosed': "
        "missing ), unterminated subpattern at position 0",
        f"{path}:8:5: {vip}: if.colour: unknown key",
        f"{path}:9:28: {vip}: if.time.weekdays.1: Input should be 'mon', 'tue', 'wed', 'thu', "
        "'fri', 'sat' or 'sun'",
        f"{path}:9:37: {vip}: if.time.between: bad time range '25:00-18:00': hours 00-23 "
        "(24:00 ends a day), minutes 00-59",
        f"{path}:9:61: {vip}: if.time.timezone: unknown timezone 'Mars/Base' "
        "(e.g. Asia/Shanghai, UTC)",
        f"{path}:12:7: {vip}: then.1.set_priority: Input should be 'low', 'normal', 'high' or "
        "'urgent'",
        f"{path}:13:7: {vip}: then.2: an action is one key of: assign_team, add_label, "
        "remove_label, set_priority, set_status, send_message, webhook (got 'explode')",
        f"{path}:16:8: {greeters}: if.intent: `intent` is a condition of message.created rules",
        f"{path}:18:3: duplicate rule name 'Greeters' (first at {path}:14)",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- name: x\n  on: message.created\n  then: []\n", "3:3: rule 'x': then: List should"),
        ("- name: x\n  on: message.sent\n  then: [{add_label: a}]\n", "2:3: rule 'x': on: Input"),
        ("- name: x\n  on: message.created\n  then:\n    - webhook: {url: nope}\n", "4:17:"),
        ("flows: {}\n", "1:1: an automation file is a list of rules"),
        ("- name: x\n  on: [oops\n", "3:1: invalid YAML"),
        (
            "- name: x\n  on: message.created\n  then:\n    - webhook:\n"
            "        url: https://example.com/hook\n        secret: ${KEFU_NOT_SET_ANYWHERE}\n",
            "6:9: rule 'x': then.0.webhook.secret: ${KEFU_NOT_SET_ANYWHERE} is not set",
        ),
        (
            "- name: x\n  on: message.created\n  if: {time: {between: '18:00-18:00'}}\n"
            "  then: [{add_label: a}]\n",
            "3:15: rule 'x': if.time.between: bad time range '18:00-18:00': it starts and ends",
        ),
    ],
)
def test_other_mistakes(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / "a.yml").write_text(text, encoding="utf-8")
    with pytest.raises(AutomationError) as caught:
        load_automations(tmp_path, channels=["web"], intents=INTENTS)
    assert any(e.startswith(f"{tmp_path / 'a.yml'}:{expected}") for e in caught.value.errors), (
        caught.value.errors
    )


def test_kefu_check_reports_automations_with_the_flows(tmp_path: Path) -> None:
    bot = bot_with(
        tmp_path, "- name: x\n  on: message.created\n  if: {channel: pigeon}\n  then: []\n"
    )
    (bot / "flows" / "extra.yml").write_text(
        "flows:\n  ghost:\n    trigger: {intents: [greet]}\n    steps:\n      - jump: x\n"
    )
    out = kefu("check", "--bot", str(bot), tmp=tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    rules = bot / "automations" / "rules.yml"
    known = "(config.yaml has: rest, try-it, web)"
    assert f"{rules}:3:8: rule 'x': if.channel: unknown channel 'pigeon' {known}" in out.stdout
    assert f"{rules}:4:3: rule 'x': then: List should have at least 1 item" in out.stdout
    assert f"{bot}/flows/extra.yml:5:9:" in out.stdout


def test_time_windows() -> None:
    office = TimeCondition(
        weekdays=["mon", "tue", "wed", "thu", "fri"],
        between="09:00-18:00",
        timezone="Asia/Shanghai",
    )
    assert within(office, datetime(2026, 11, 23, 1, 0, tzinfo=UTC))  # Mon 09:00 in Shanghai
    assert not within(office, datetime(2026, 11, 23, 10, 0, tzinfo=UTC))  # Mon 18:00 there
    assert not within(office, datetime(2026, 11, 28, 3, 0, tzinfo=UTC))  # Saturday
    night = TimeCondition(between="22:00-06:00")
    assert within(night, datetime(2026, 11, 23, 23, 30, tzinfo=UTC))
    assert within(night, datetime(2026, 11, 23, 5, 59, tzinfo=UTC))
    assert not within(night, datetime(2026, 11, 23, 6, 0, tzinfo=UTC))


# ---- running ----------------------------------------------------------------------------


def test_demo_rule_routes_an_urgent_chinese_refund(shop_both: Api) -> None:
    client, auth = shop_both
    customer_says(client, "mei", "退款 急")
    actor = "automation:Urgent refunds to the billing team"
    done = {"assign", "labels", "priority", "note"}  # the rule's four actions, all audited
    wait_for(lambda: {row["action"] for row in audit(client, auth, actor)} == done, "the rule")
    seen = conversation(client, auth, "mei")
    assert seen["team"] == "billing" and seen["labels"] == ["refund"]
    assert seen["priority"] == "high"
    messages = client.get(f"{V1}/conversations/{seen['id']}/messages", headers=auth).json()
    notes = [m for m in messages["items"] if m["private"]]
    assert [n["text"] for n in notes] == ["客户催退款，请优先处理。"]

    # events are handled in order: once ann's urgent message was acted on, bob's (before
    # it, not urgent) has been looked at too, and left alone
    customer_says(client, "bob", "I want a refund")
    customer_says(client, "ann", "urgent refund please")
    wait_for(lambda: conversation(client, auth, "ann")["priority"] == "high", "the rule")
    bob = conversation(client, auth, "bob")
    assert bob["labels"] == [] and bob["team"] is None and bob["priority"] is None


TIMED = """\
- name: Office hours
  on: message.created
  if:
    time: {weekdays: [mon, tue, wed, thu, fri], between: "09:00-18:00", timezone: Asia/Shanghai}
  then: [{add_label: office}]
- name: Seen
  on: message.created
  then: [{add_label: seen}]
"""


def test_time_condition_follows_the_clock(
    tmp_path: Path, sqlite_url: str, classifier: IntentClassifier, flows: FlowEngine
) -> None:
    settings = settings_for(sqlite_url, tmp_path, bot_with(tmp_path, TIMED))
    with client_for(settings, classifier, flows) as client:
        auth = login(client)
        automations = client.app.state.hub.automations  # type: ignore[attr-defined]
        automations.clock = lambda: datetime(2026, 11, 28, 3, 0, tzinfo=UTC)  # Sat 11:00
        customer_says(client, "sat", "hello")
        assert labeled(client, auth, "sat", "seen")["labels"] == ["seen"]
        automations.clock = lambda: datetime(2026, 11, 23, 2, 30, tzinfo=UTC)  # Mon 10:30
        customer_says(client, "mon", "hello")
        assert labeled(client, auth, "mon", "seen")["labels"] == ["office", "seen"]


LOOPING = """\
- name: To billing
  on: message.created
  if: {text: {contains: refund}}
  then:
    - assign_team: billing
    - set_status: snoozed            # not allowed from bot: fails, the next action still runs
    - add_label: handled
- name: Reassign
  on: conversation.assigned
  then:
    - assign_team: sales
    - add_label: reassigned
- name: Barrier
  on: message.created
  if: {text: {matches: "^done$"}, labels: {has: handled, lacks: [spam]}, status: [bot]}
  then: [{add_label: barrier}]
"""


def test_no_loops_and_a_failing_action_does_not_stop_the_others(
    tmp_path: Path, sqlite_url: str, classifier: IntentClassifier, flows: FlowEngine
) -> None:
    settings = settings_for(sqlite_url, tmp_path, bot_with(tmp_path, LOOPING))
    with client_for(settings, classifier, flows) as client:
        auth = login(client)
        customer_says(client, "bo", "refund please")
        assert labeled(client, auth, "bo", "handled")["team"] == "billing"
        # events are handled in order: once the barrier is up, the assignment event that
        # "To billing" caused has been seen, and "Reassign" did not run on it
        customer_says(client, "bo", "done")
        seen = labeled(client, auth, "bo", "barrier")
        assert seen["team"] == "billing" and seen["labels"] == ["handled", "barrier"]
        assert seen["status"] == "bot"

        # an agent's assignment is no automation's: "Reassign" runs, once
        cid = seen["id"]
        r = client.post(f"{V1}/conversations/{cid}/assign", json={"team": "care"}, headers=auth)
        assert r.status_code == 200, r.text
        after = labeled(client, auth, "bo", "reassigned")
        assert after["team"] == "sales"
        assigned = [
            row for row in audit(client, auth, "automation:Reassign") if row["action"] == "assign"
        ]
        assert len(assigned) == 1 and assigned[0]["data"]["team"] == "sales"


WEBHOOK = """\
- name: Tell the CRM
  on: message.created
  if: {intent: [returns]}
  then:
    - add_label: refund
    - webhook: {url: "URL", secret: "${KEFU_TEST_AUTOMATION_SECRET}"}
"""


def test_webhook_action_posts_signed_and_retries(
    tmp_path: Path,
    sqlite_url: str,
    classifier: IntentClassifier,
    flows: FlowEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KEFU_TEST_AUTOMATION_SECRET", SECRET)
    receiver = Receiver()
    receiver.script = [503]  # the first attempt fails: retried
    try:
        bot = bot_with(tmp_path, WEBHOOK.replace("URL", receiver.url))
        settings = settings_for(sqlite_url, tmp_path, bot)
        with client_for(settings, classifier, flows) as client:
            auth = login(client)
            customer_says(client, "li", "我要退款")
            wait_for(lambda: len(receiver.requests) >= 2, "the webhook's second attempt")
            (first, _), (headers, body) = receiver.requests[:2]
            assert verify(SECRET, headers, body)
            assert first["X-Kefu-Delivery"] == headers["X-Kefu-Delivery"]
            assert headers["X-Kefu-Event"] == "message.created"
            payload = json.loads(body)
            assert payload["automation"] == "Tell the CRM"
            assert payload["data"]["text"] == "我要退款"
            assert payload["conversation"]["labels"] == ["refund"]
            assert payload["conversation_id"] == conversation_id(client, auth, "li")
            rows = wait_for(
                lambda: [
                    r
                    for r in audit(client, auth, "automation:Tell the CRM")
                    if r["action"] == "webhook"
                ],
                "the webhook's audit row",
            )
            assert rows[0]["data"]["outcome"] == "sent" and rows[0]["data"]["status"] == 200
    finally:
        receiver.close()


def test_webhook_action_to_the_hubs_own_network_is_refused(
    tmp_path: Path,
    sqlite_url: str,
    classifier: IntentClassifier,
    flows: FlowEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rule's URL follows the webhooks' address rules: loopback without an allow-list entry
    is refused before connecting, once (no retries), and the audit row says why."""
    monkeypatch.setenv("KEFU_TEST_AUTOMATION_SECRET", SECRET)
    receiver = Receiver()
    try:
        bot = bot_with(tmp_path, WEBHOOK.replace("URL", receiver.url))
        settings = settings_for(sqlite_url, tmp_path, bot, allow_hosts=())
        with client_for(settings, classifier, flows) as client:
            auth = login(client)
            customer_says(client, "li", "我要退款")
            rows = wait_for(
                lambda: [
                    r
                    for r in audit(client, auth, "automation:Tell the CRM")
                    if r["action"] == "webhook"
                ],
                "the webhook's audit row",
            )
            outcome = rows[0]["data"]["outcome"]
            assert outcome.startswith("refused:") and "loopback" in outcome
            assert receiver.requests == []
    finally:
        receiver.close()


GOOD = """\
- name: Greeted
  on: message.created
  if: {text: {contains: hello}}
  then: [{add_label: greeted}]
"""
BROKEN = """\
- name: Greeted again
  on: message.created
  if: {text: {matches: "hello("}}
  then: [{add_label: greeted-again}]
"""


def test_reload_with_a_broken_file_keeps_the_last_good_rules(
    tmp_path: Path, sqlite_url: str, classifier: IntentClassifier, flows: FlowEngine
) -> None:
    bot = bot_with(tmp_path, GOOD)
    settings = settings_for(sqlite_url, tmp_path, bot)
    rules = bot / "automations" / "rules.yml"
    with client_for(settings, classifier, flows) as client:
        auth = login(client)
        listed = [
            {"name": "Greeted", "on": "message.created", "file": "automations/rules.yml", "line": 1}
        ]
        assert client.get(f"{V1}/bot", headers=auth).json()["automations"] == listed

        rules.write_text(BROKEN, encoding="utf-8")
        r = client.post(f"{V1}/bot/reload", json={}, headers=auth)
        error = f"{rules}:3:15: rule 'Greeted again': if.text.matches: bad regex 'hello('"
        assert r.status_code == 200 and r.json()["ok"] is False
        assert [e[: len(error)] for e in r.json()["errors"]] == [error]
        bot_now = client.get(f"{V1}/bot", headers=auth).json()
        assert bot_now["automations"] == listed  # the last good rules serve
        assert bot_now["served_errors"] == r.json()["errors"]
        assert any(e.startswith(error) for e in bot_now["errors"])
        customer_says(client, "jo", "hello there")
        assert labeled(client, auth, "jo", "greeted")["labels"] == ["greeted"]

        rules.write_text(BROKEN.replace("hello(", "hello"), encoding="utf-8")
        r = client.post(f"{V1}/bot/reload", json={}, headers=auth)
        assert r.json() == {**r.json(), "ok": True, "errors": []}
        assert [a["name"] for a in client.get(f"{V1}/bot", headers=auth).json()["automations"]] == [
            "Greeted again"
        ]
        customer_says(client, "kim", "hello")
        assert labeled(client, auth, "kim", "greeted-again")["labels"] == ["greeted-again"]


def test_a_hub_does_not_start_with_invalid_rules(
    tmp_path: Path, sqlite_url: str, classifier: IntentClassifier, flows: FlowEngine
) -> None:
    bot = bot_with(tmp_path, BROKEN)
    with pytest.raises(AutomationError) as caught:
        create_app(settings_for(sqlite_url, tmp_path, bot), classifier=classifier, flows=flows)
    assert caught.value.errors[0].startswith(f"{bot / 'automations' / 'rules.yml'}:3:15: ")
