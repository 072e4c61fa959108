"""Unrecognized messages become training data: the messages the bot did not understand (the
reports' definition, hub/features/reports/store.py `unrecognized_clause`), the examples designers
label
from them (the `nlu_example` table), training with those examples (`with_labeled`, used by
hub.bot.ensure_classifier) and their export as Rasa NLU YAML (`kefu nlu review`).

The API is hub/features/nlu_review/routes.py; README.md "Unrecognized messages" describes it all."""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import inspect
from sqlalchemy.engine import make_url
from sqlmodel import col, select

from hub.features.reports import unrecognized_texts, window
from hub.ops.settings import Settings
from hub.ports import Classifier, Unavailable
from hub.store.database import Database, is_sqlite
from hub.store.models import NluExample
from nlu.data import Example, TrainingData
from nlu.language import detect_language

log = logging.getLogger(__name__)

SUGGESTIONS = 3  # the classifier's best intents offered for each message
TEST_CHAT = "try-it"  # the admin pages' built-in test chat (hub.inbox.admin_api.TRY_IT)
LABELED_SOURCE = "labeled in the admin pages"  # Example.source of a labeled example


class ConflictingLabel(ValueError):
    """The text is labeled with another intent already."""

    def __init__(self, existing: NluExample) -> None:
        self.existing = existing
        super().__init__(
            f"this text is labeled {existing.intent!r} already (example {existing.id}): "
            "delete that label first to change it"
        )


# ---- what to review ---------------------------------------------------------------------


def skipped_channels(settings: Settings) -> tuple[str, ...]:
    """Left out of the review as out of the reports: the built-in test chat (not customers),
    unless config.yaml has a channel of that name (then the built-in one does not exist)."""
    return (TEST_CHAT,) if all(c.name != TEST_CHAT for c in settings.channels) else ()


def language_of(text: str) -> str | None:
    """ "zh", "en", or None when the text doesn't tell (digits, emoji)."""
    language = detect_language(text)
    return None if language == "und" else language


def example_view(example: NluExample) -> dict[str, Any]:
    return {
        "id": example.id,
        "text": example.text,
        "intent": example.intent,
        "language": example.language,
        "labeled_by": example.labeled_by,
        "created_at": example.created_at.isoformat(),
    }


# ---- labeled examples -------------------------------------------------------------------


class NluReview:
    """The messages to review and the labeled examples, over the hub's database (built once
    by the composition root, hub.app.Hub `nlu_review`)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def review(
        self,
        classifier: Classifier,
        since: datetime,
        until: datetime,
        *,
        limit: int,
        skip_channels: tuple[str, ...] = (),
    ) -> list[dict[str, Any]]:
        """The unrecognized messages of the conversations created in [since, until) that nobody
        labeled yet, most frequent first, each with the classifier's best intents for it."""
        texts = await unrecognized_texts(
            self.db, since, until, skip_channels=skip_channels, top=limit, unlabeled=True
        )
        # a few ms a sentence, more for long texts: off the event loop
        parses = await asyncio.to_thread(lambda: [classifier.parse(t) for t, _, _ in texts])
        return [
            {
                "text": text,
                "count": n,
                "last_at": last.isoformat(),
                "language": None if parse.language == "und" else parse.language,
                "suggested": [
                    {"intent": intent, "confidence": round(float(confidence), 4)}
                    for intent, confidence in parse.ranking[:SUGGESTIONS]
                ],
            }
            for (text, n, last), parse in zip(texts, parses, strict=True)
        ]

    async def examples(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[NluExample]:
        """The labeled examples, newest first; labeled in [since, until) when given."""
        query = select(NluExample).order_by(col(NluExample.id).desc())
        if since is not None:
            query = query.where(col(NluExample.created_at) >= since)
        if until is not None:
            query = query.where(col(NluExample.created_at) < until)
        async with self.db.read() as s:
            return list((await s.exec(query)).all())

    async def label(self, text: str, intent: str, labeled_by: str) -> tuple[NluExample, bool]:
        """Label `text` with `intent`: (the example, True) when created; (the existing one, False)
        when it was labeled so already. Raises ConflictingLabel when it has another intent."""
        async with self.db.transaction() as s:
            same_text = (await s.exec(select(NluExample).where(col(NluExample.text) == text))).all()
            for existing in same_text:
                if existing.intent == intent:
                    return existing, False
            if same_text:
                raise ConflictingLabel(same_text[0])
            example = NluExample(
                text=text, intent=intent, language=language_of(text), labeled_by=labeled_by
            )
            s.add(example)
            await s.flush()
            await s.refresh(example)
            return example, True

    async def unlabel(self, example_id: int) -> NluExample | None:
        """Delete a labeled example; the deleted row, or None when there is none."""
        async with self.db.transaction() as s:
            example = await s.get(NluExample, example_id)
            if example is not None:
                await s.delete(example)
            return example


# ---- training ---------------------------------------------------------------------------


def read_labeled(settings: Settings) -> list[tuple[str, str]]:
    """(text, intent) of every labeled example in the configured database, oldest first.

    Blocking, callable from any thread (training runs in threads and at start-up, before the
    hub's own database connection exists). None when the database, or its `nlu_example`
    table, doesn't exist yet; none, with a warning, when the database can't be reached."""
    url = settings.database_url
    if is_sqlite(url):
        path = make_url(url).database
        if not path or path == ":memory:" or not Path(path).exists():
            return []
    with ThreadPoolExecutor(1, "kefu-labeled") as pool:  # its own event loop, whoever calls
        return pool.submit(asyncio.run, _read_labeled(url)).result()


async def _read_labeled(url: str) -> list[tuple[str, str]]:
    db = Database(url)
    try:
        async with db.read() as s:
            connection = await s.connection()
            table = NluExample.__tablename__
            if not await connection.run_sync(lambda c: inspect(c).has_table(table)):
                return []
            query = select(col(NluExample.text), col(NluExample.intent)).order_by(
                col(NluExample.id)
            )
            return [(str(t), str(i)) for t, i in (await connection.execute(query)).all()]
    except Unavailable as e:
        log.warning("training without the labeled examples: %s", e)
        return []
    finally:
        await db.close()


def with_labeled(data: TrainingData, labeled: Iterable[tuple[str, str]]) -> TrainingData:
    """The bot folder's data plus the labeled examples of the intents it has (the others are
    skipped with a warning: the intent was renamed or removed since they were labeled)."""
    known = set(data.intents)
    seen = {(e.text, e.intent) for e in data.training_examples}
    added: list[Example] = []
    unknown: Counter[str] = Counter()
    for text, intent in labeled:
        text = text.strip()
        if intent not in known:
            unknown[intent] += 1
        elif text and (text, intent) not in seen:
            seen.add((text, intent))
            added.append(Example(text, intent, source=LABELED_SOURCE))
    for intent, n in sorted(unknown.items()):
        log.warning(
            "%d labeled example(s) of intent %r skipped: the bot has no such intent "
            "(add it to the bot's NLU data, or delete them in the admin pages)",
            n,
            intent,
        )
    if not added:
        return data
    return replace(data, training_examples=[*data.training_examples, *added])


def utc(when: datetime) -> datetime:
    """Naive datetimes are UTC (as the reports' window has them)."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


# ---- Rasa YAML --------------------------------------------------------------------------

# YAML line breaks (and what str.splitlines splits on) and characters YAML can't hold
_NOT_ONE_LINE = re.compile(
    "[^\x09\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)
_PLAIN_NAME = re.compile(r"[\w][\w./-]*")


def example_line(text: str) -> str:
    """A text as one line of an `examples: |` block: line breaks and characters YAML can't
    hold become spaces, surrounding spaces go (as Rasa strips them)."""
    return _NOT_ONE_LINE.sub(" ", text).strip()


def _name(intent: str) -> str:
    """An intent name as a YAML scalar: plain when it reads back the same, else quoted."""
    if _PLAIN_NAME.fullmatch(intent) and yaml.safe_load(intent) == intent:
        return intent
    return yaml.safe_dump(intent, default_style='"', width=10_000).strip()


def rasa_yaml(
    labeled: Sequence[tuple[str, str]],
    unlabeled: Sequence[str] | None = None,
    header: Sequence[str] = (),
) -> str:
    """Rasa 3 NLU YAML: the (text, intent) examples grouped by intent (intents sorted, texts
    in the order given); `unlabeled` texts follow as comments, inert until someone moves a
    line under an intent. Comment lines of `header` come first."""
    by_intent: dict[str, list[str]] = {}
    for text, intent in labeled:
        line = example_line(text)
        lines = by_intent.setdefault(intent, [])
        if line and line not in lines:
            lines.append(line)
    out = [f"# {h}" for h in header]
    out += ['version: "3.1"', "nlu:" if any(by_intent.values()) else "nlu: []"]
    for intent in sorted(by_intent):
        if by_intent[intent]:
            out += [f"- intent: {_name(intent)}", "  examples: |"]
            out += [f"    - {line}" for line in by_intent[intent]]
    lines = [line for line in map(example_line, unlabeled or ()) if line]
    if unlabeled is not None:
        out += [
            "",
            "# Not labeled yet: messages the bot did not understand, most frequent first.",
            "# Label them in the admin pages, or move a line (without its '#') under an",
            "# intent's examples above.",
        ]
        out += [f"#    - {line}" for line in lines] or ["# (none)"]
    return "\n".join(out) + "\n"


async def export(
    settings: Settings,
    since: datetime | None,
    until: datetime | None,
    *,
    unlabeled: bool,
    now: datetime,
    limit: int = 1000,
) -> str:
    """`kefu nlu review`: the labeled examples (labeled in [since, until) when given) as Rasa
    NLU YAML; with `unlabeled`, the unrecognized messages nobody labeled of the conversations
    created in the reports' window (default: the last 7 days) as comments. Raises
    hub.features.reports.summary.BadWindow for a window the reports refuse."""
    since = None if since is None else utc(since)
    until = None if until is None else utc(until)
    db = Database(settings.database_url)
    try:
        rows = await NluReview(db).examples(since=since, until=until)
        labeled = [(e.text, e.intent) for e in reversed(rows)]  # oldest first
        header = [
            f"{len(labeled)} example(s) labeled in Kefu Hub's admin pages"
            + (f" since {since.isoformat()}" if since else "")
            + (f" until {until.isoformat()}" if until else "")
            + f", exported {now.isoformat(timespec='seconds')}.",
            "Commit this file into the bot folder's nlu/ to keep them with the bot.",
        ]
        texts: list[str] | None = None
        if unlabeled:
            start, end = window(since, until, now)
            found = await unrecognized_texts(
                db,
                start,
                end,
                skip_channels=skipped_channels(settings),
                top=limit,
                unlabeled=True,
            )
            texts = [text for text, _, _ in found]
            header.append(
                f"Unlabeled: conversations created {start.isoformat(timespec='seconds')} "
                f"to {end.isoformat(timespec='seconds')}."
            )
        return rasa_yaml(labeled, texts, header)
    finally:
        await db.close()
