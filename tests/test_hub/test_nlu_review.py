"""Unrecognized messages become training data: customers say things the demo bot doesn't
understand, a designer sees them (with the classifier's suggestions), labels them through the
API, and after a retrain the bot understands them; `kefu nlu review` exports the labels as
Rasa YAML that reads back the same. On SQLite and PostgreSQL where the database matters."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from flows import FlowEngine
from hub.features.nlu_review.review import rasa_yaml, read_labeled, with_labeled
from hub.messages import utcnow
from nlu import IntentClassifier, TrainingData
from tests.conftest import (
    SHOP,
    client_for,
    create_agent,
    login,
    make_settings,
    migrated_sqlite,
)
from tests.test_hub.test_api import customer_says
from tests.test_hub.test_cli import kefu

V1 = "/api/v1"
REVIEW, EXAMPLES = f"{V1}/nlu/review", f"{V1}/nlu/examples"
LIFE, PHYSICS, FISH = (
    "what is the meaning of life",
    "tell me about quantum physics",
    "the parcel smells like fish",
)


class Api:
    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.admin = login(client)
        self.designer = login(client, "zhao@example.com")
        self.agent = login(client, "wang@example.com")

    def review(self, **params: Any) -> list[dict[str, Any]]:
        r = self.client.get(REVIEW, params=params, headers=self.designer)
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    def label(self, text: str, intent: str, status: int = 201) -> dict[str, Any]:
        r = self.client.post(EXAMPLES, json={"text": text, "intent": intent}, headers=self.designer)
        assert r.status_code == status, r.text
        body: dict[str, Any] = r.json()
        return body

    def parse(self, text: str) -> dict[str, Any]:
        r = self.client.post(f"{V1}/nlu/parse", json={"text": text}, headers=self.designer)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body


@contextlib.contextmanager
def _api(settings: Any, classifier: IntentClassifier, flows: FlowEngine) -> Iterator[Api]:
    create_agent(settings, role="admin")
    create_agent(settings, "zhao@example.com", role="designer")
    create_agent(settings, "wang@example.com", role="agent")
    with client_for(settings, classifier, flows) as client:
        yield Api(client)


@pytest.fixture
def api_both(
    database_url: str, tmp_path: Path, classifier: IntentClassifier, flows: FlowEngine
) -> Iterator[Api]:
    """The demo bot with an admin (lin), a designer (zhao) and an agent (wang), both backends."""
    with _api(make_settings(database_url, tmp_path), classifier, flows) as api:
        yield api


@pytest.fixture
def api(settings: Any, classifier: IntentClassifier, flows: FlowEngine) -> Iterator[Api]:
    """The same on SQLite only (for the slow tests: training)."""
    with _api(settings, classifier, flows) as api:
        yield api


def history(api: Api) -> None:
    """Two customers ask the meaning of life, one about physics (both unrecognized); greetings,
    order questions and a button press are understood or don't count."""
    c = api.client
    customer_says(c, "alice", "hello")
    customer_says(c, "alice", LIFE)
    customer_says(c, "bob", LIFE)
    customer_says(c, "bob", "/human")
    customer_says(c, "carol", "where is my order")
    customer_says(c, "dave", PHYSICS)


def test_review_lists_unrecognized_messages_most_frequent_first(api_both: Api) -> None:
    history(api_both)
    items = api_both.review()
    assert [(i["text"], i["count"]) for i in items] == [(LIFE, 2), (PHYSICS, 1)]
    life = items[0]
    assert life["language"] == "en"
    assert utcnow() - timedelta(minutes=5) < datetime.fromisoformat(life["last_at"]) <= utcnow()
    suggested = life["suggested"]
    assert len(suggested) == 3
    assert suggested[0]["intent"] == "out_of_scope"  # what the classifier makes of it
    confidences = [s["confidence"] for s in suggested]
    assert confidences == sorted(confidences, reverse=True) and 0 < confidences[0] <= 1

    # the same as the reports' "unrecognized" (one definition, one query)
    report = api_both.client.get(f"{V1}/reports/summary", headers=api_both.admin).json()
    assert [(u["text"], u["count"]) for u in report["unrecognized"]] == [(LIFE, 2), (PHYSICS, 1)]

    assert api_both.review(limit=1) == items[:1]
    week_ago = (utcnow() - timedelta(days=8)).isoformat()
    assert api_both.review(until=week_ago) == []  # conversations created in the window
    bad = api_both.client.get(REVIEW, params={"since": "yesterday"}, headers=api_both.designer)
    assert bad.status_code == 422
    backwards = api_both.client.get(
        REVIEW, params={"since": utcnow().isoformat(), "until": week_ago}, headers=api_both.admin
    )
    assert backwards.status_code == 422 and "must be after" in backwards.text
    assert api_both.client.get(REVIEW, headers=api_both.agent).status_code == 403


def test_labeling_takes_a_message_off_the_review(api_both: Api) -> None:
    history(api_both)
    created = api_both.label(LIFE, "out_of_scope")
    assert created["text"] == LIFE and created["intent"] == "out_of_scope"
    assert created["language"] == "en" and created["labeled_by"].startswith("agent:")
    assert [i["text"] for i in api_both.review()] == [PHYSICS]

    again = api_both.label(LIFE, "out_of_scope", status=200)  # no duplicate
    assert again == created
    conflict = api_both.label(LIFE, "faq", status=409)
    assert "out_of_scope" in conflict["detail"]

    chinese = api_both.label('纸箱湿透了: "怎么办" #急', "complaint")
    assert chinese["language"] == "zh"
    listed = api_both.client.get(EXAMPLES, headers=api_both.admin).json()["items"]
    assert [e["id"] for e in listed] == [chinese["id"], created["id"]]  # newest first

    audit = api_both.client.get(
        f"{V1}/audit", params={"action": "nlu.example.created"}, headers=api_both.admin
    ).json()["items"]
    assert {a["data"]["example_id"] for a in audit} == {created["id"], chinese["id"]}

    r = api_both.client.delete(f"{EXAMPLES}/{created['id']}", headers=api_both.designer)
    assert r.status_code == 204
    assert [i["text"] for i in api_both.review()] == [LIFE, PHYSICS]  # back for review
    r = api_both.client.delete(f"{EXAMPLES}/{created['id']}", headers=api_both.designer)
    assert r.status_code == 404
    audit = api_both.client.get(
        f"{V1}/audit", params={"action": "nlu.example.deleted"}, headers=api_both.admin
    ).json()["items"]
    assert [a["data"]["example_id"] for a in audit] == [created["id"]]


def test_erasing_a_contact_deletes_the_examples_labeled_from_their_words(api_both: Api) -> None:
    """A customer's words copied into training data are theirs too (PIPL, GDPR erasure)."""
    client = api_both.client
    customer_says(client, "erase-me", "my parcel 8812 smells like fish")
    customer_says(client, "keep-me", "what is the meaning of life")
    mine = api_both.label("my parcel 8812 smells like fish", "complaint")
    kept = api_both.label("what is the meaning of life", "out_of_scope")
    contacts = client.get(f"{V1}/contacts", params={"q": "erase-me"}, headers=api_both.admin)
    [contact] = contacts.json()["items"]
    r = client.delete(f"{V1}/contacts/{contact['id']}", headers=api_both.admin)
    assert r.status_code == 200, r.text
    assert r.json()["erased"]["nlu_examples"] == 1
    listed = client.get(EXAMPLES, headers=api_both.admin).json()["items"]
    assert [e["id"] for e in listed] == [kept["id"]] and mine["id"] != kept["id"]


def test_bad_labels_are_refused_with_the_reason(api: Api) -> None:
    unknown = api.label(FISH, "smells", status=422)["detail"]
    assert "'smells' is not one of the bot's intents" in unknown
    assert "check_order" in unknown and "complaint" in unknown  # it names the known ones
    for body in (
        {"text": "", "intent": "faq"},
        {"text": "   ", "intent": "faq"},
        {"text": "x" * 4001, "intent": "faq"},
        {"text": "hi", "intent": ""},
        {"text": "hi"},
    ):
        r = api.client.post(EXAMPLES, json=body, headers=api.designer)
        assert r.status_code == 422, (body, r.text)
    assert api.label("x" * 4000, "faq")["text"] == "x" * 4000
    r = api.client.post(EXAMPLES, json={"text": FISH, "intent": "faq"}, headers=api.agent)
    assert r.status_code == 403
    assert api.client.delete(f"{EXAMPLES}/0", headers=api.designer).status_code == 422


def test_a_labeled_message_is_understood_after_retraining(api: Api) -> None:
    """Before: the bot doesn't understand it (the fallback answers); labeled, retrained through
    the admin pages' "Reload and retrain": understood, by the API and in a conversation."""
    assert api.parse(FISH)["intent"]["name"] is None
    replies = customer_says(api.client, "erin", FISH)
    assert [i["text"] for i in api.review()] == [FISH]
    assert "sorry to hear" not in replies[0]["text"], replies

    api.label(FISH, "complaint")
    r = api.client.post(f"{V1}/bot/reload", json={"force_train": True}, headers=api.designer)
    assert r.status_code == 200 and r.json()["ok"] and r.json()["trained"], r.text

    assert api.parse(FISH)["intent"]["name"] == "complaint"
    replies = customer_says(api.client, "frank", FISH)
    assert "sorry to hear that" in replies[0]["text"], replies  # the complaint flow


def test_training_skips_labels_of_intents_the_bot_no_longer_has(
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = TrainingData.load(SHOP / "nlu")
    with caplog.at_level(logging.WARNING):
        more = with_labeled(
            data,
            [(FISH, "complaint"), (" the gift card ", "gift_cards"), (FISH, "complaint")],
        )
    assert more.examples == [*data.examples, (FISH, "complaint")]
    assert "intent 'gift_cards' skipped: the bot has no such intent" in caplog.text
    assert more.fingerprint() != data.fingerprint()  # a saved model is trained again


def test_training_reads_no_labels_from_a_database_not_there_yet(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'none.db'}", tmp_path)
    assert read_labeled(settings) == [] and not (tmp_path / "none.db").exists()
    empty = tmp_path / "empty.db"
    empty.touch()  # a database without the table (not migrated yet)
    assert read_labeled(make_settings(f"sqlite+aiosqlite:///{empty}", tmp_path)) == []


TRICKY = [
    ("我的快递到哪了", "check_order"),
    ('price: 15 # "express" isn\'t cheap', "faq"),
    ("- starts with a dash: yes", "faq"),
    ("two\nlines\u2028and more", "faq"),
    ("[12345](order_id) looks like markup", "check_order"),
]


def test_review_yaml_reads_back_the_same_texts() -> None:
    text = rasa_yaml(TRICKY, ["在吗 #1", "  spaces: around  "], ["a header"])
    loaded = yaml.safe_load(text)
    assert loaded["version"] == "3.1"
    blocks = {item["intent"]: item["examples"].splitlines() for item in loaded["nlu"]}
    assert blocks == {
        "check_order": ["- 我的快递到哪了", "- [12345](order_id) looks like markup"],
        "faq": [
            '- price: 15 # "express" isn\'t cheap',
            "- - starts with a dash: yes",
            "- two lines and more",  # an example is one line
        ],
    }
    assert "#    - 在吗 #1\n#    - spaces: around\n" in text  # unlabeled: inert comments
    # the bot's own loader reads it (the markup is an entity, as a designer would write it)
    read = TrainingData.from_yaml(text).examples
    assert ('price: 15 # "express" isn\'t cheap', "faq") in read and len(read) == 5
    assert yaml.safe_load(rasa_yaml([])) == {"version": "3.1", "nlu": []}


def test_kefu_nlu_review_exports_the_labels(
    tmp_path: Path, classifier: IntentClassifier, flows: FlowEngine
) -> None:
    """As a designer: label in the admin pages, export with `kefu nlu review` (the config's
    database) into the bot folder; `kefu train` uses the labels too."""
    settings = make_settings(migrated_sqlite(tmp_path), tmp_path / "data")  # kefu()'s database
    labels = [*TRICKY[:3], (FISH, "complaint")]
    with _api(settings, classifier, flows) as api:
        customer_says(api.client, "gina", FISH)
        customer_says(api.client, "gina", PHYSICS)
        for text, intent in labels:
            api.label(text, intent)
    config = tmp_path / "config.yaml"
    config.write_text(f"bot:\n  path: {SHOP}\n", encoding="utf-8")

    out = kefu("nlu", "review", tmp=tmp_path, KEFU_CONFIG=str(config))
    assert out.returncode == 0, out.stderr
    assert yaml.safe_load(out.stdout)["nlu"] == [
        {"intent": "check_order", "examples": "- 我的快递到哪了\n"},
        {"intent": "complaint", "examples": f"- {FISH}\n"},
        {
            "intent": "faq",
            "examples": '- price: 15 # "express" isn\'t cheap\n- - starts with a dash: yes\n',
        },
    ]
    assert PHYSICS not in out.stdout  # not labeled: only with --unlabeled

    bot_file = tmp_path / "nlu" / "labeled.yml"
    bot_file.parent.mkdir()
    out = kefu(
        "nlu",
        "review",
        "--unlabeled",
        "--output",
        str(bot_file),
        tmp=tmp_path,
        KEFU_CONFIG=str(config),
    )
    assert out.returncode == 0, out.stderr
    written = bot_file.read_text(encoding="utf-8")
    assert f"#    - {PHYSICS}\n" in written and f"#    - {FISH}" not in written
    assert sorted(TrainingData.load(bot_file).examples) == sorted(labels)

    later = (utcnow() + timedelta(hours=1)).isoformat()
    out = kefu("nlu", "review", "--since", later, tmp=tmp_path, KEFU_CONFIG=str(config))
    assert out.returncode == 0 and yaml.safe_load(out.stdout)["nlu"] == [], out.stderr
    out = kefu("nlu", "review", "--since", "soon", tmp=tmp_path, KEFU_CONFIG=str(config))
    assert out.returncode == 2 and "ISO 8601" in out.stderr

    out = kefu("train", tmp=tmp_path, KEFU_CONFIG=str(config))
    assert out.returncode == 0 and out.stdout.startswith("trained"), out.stdout + out.stderr
    model = IntentClassifier.load(tmp_path / "data" / "models" / "nlu")
    assert model.parse(FISH).intent == "complaint"
