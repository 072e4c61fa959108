"""The bot folder read and checked, and what is built from it: the NLU classifier (trained
only when its data or settings changed), the flow engine and the fallback chain."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flows import FlowEngine, FlowError, LoadedFlow, load_flows
from flows.actions import ActionError, ActionRunner, load_actions
from flows.checks import check_references
from hub.core.fallback import Fallback, entry_text
from hub.core.texts import text as hub_text
from hub.features.nlu_review.review import read_labeled, with_labeled
from hub.ops.settings import BotSettings, Settings, SettingsError
from hub.ports import HubWords
from hub.yaml_places import by_place
from knowledge import KnowledgeBase, KnowledgeError
from nlu import IntentClassifier, NluDataError, TrainingData
from nlu.classifier import training_key
from nlu.language import detect_language
from nlu.persistence import MODEL_FILE
from nlu.vectors import StaticVectors, VectorsError

log = logging.getLogger(__name__)

# what the flow engine borrows from the core: its sentences, cancel words, knowledge answers
HUB_WORDS = HubWords(text=hub_text, entry_text=entry_text)


def model_dir(settings: Settings) -> Path:
    return settings.data_dir / "models" / "nlu"


def train_classifier(settings: Settings, force: bool = False) -> IntentClassifier:
    """The bot's classifier: the saved one when it was trained on the same data with the same
    settings, else trained and saved (so `kefu run` trains only when something changed)."""
    return ensure_classifier(settings, force)[0]


def ensure_classifier(settings: Settings, force: bool = False) -> tuple[IntentClassifier, bool]:
    """`train_classifier`, also telling whether it trained (True) or loaded the saved model."""
    data = TrainingData.load(settings.bot.path / "nlu")
    # with what designers labeled (hub.features.nlu_review)
    data = with_labeled(data, read_labeled(settings))
    options: dict[str, Any] = {
        "threshold": settings.bot.nlu_threshold,
        "target_false_reject": settings.bot.nlu_false_reject,
        "ambiguity_margin": settings.bot.nlu_ambiguity_margin,
    }
    vectors = None
    if settings.bot.nlu_vectors is not None:
        try:
            vectors = StaticVectors.load(settings.bot.nlu_vectors)
        except VectorsError as e:
            raise SettingsError(f"bot.nlu_vectors: {e} (build it with `make vectors`)") from e
    key = training_key(data, **options, vectors=vectors.digest if vectors else None)
    path = model_dir(settings)
    if not force and (path / MODEL_FILE).exists():
        try:
            saved = IntentClassifier.load(path, vectors=vectors)
            if saved.metadata.get("training_key") == key:
                return saved, False
            log.info("training NLU: the data or the NLU settings changed")
        except Exception as e:  # an old or damaged model is simply trained again
            log.warning("retraining: the saved model at %s can't be used (%s)", path, e)
    classifier = IntentClassifier.train(data, **options, vectors=vectors)
    classifier.save(path)
    return classifier, True


def model_stamp(settings: Settings) -> int | None:
    """When the saved model was last written (None: there is none)."""
    path = model_dir(settings) / MODEL_FILE
    return path.stat().st_mtime_ns if path.exists() else None


@dataclass
class BotFiles:
    """A bot folder read and checked: what loaded, and every problem as `path:line:col: what`."""

    data: TrainingData | None
    flows: dict[str, LoadedFlow]
    actions: ActionRunner | None
    errors: list[str]
    knowledge: KnowledgeBase = field(default_factory=KnowledgeBase.empty)

    def clarify_options(self, handoff_intents: list[str]) -> dict[str, dict[str, str]]:
        """What the fallback may offer as "did you mean": each intent that starts a flow, by
        its shortest example in each language (without digits, which are someone's order)."""
        if self.data is None:
            return {}
        wanted = {
            intent
            for loaded in self.flows.values()
            for intent in loaded.flow.trigger.intents
            if intent not in handoff_intents
        }
        options: dict[str, dict[str, str]] = {}
        for example in sorted(self.data.training_examples, key=lambda e: len(e.text)):
            if example.intent not in wanted or any(c.isdigit() for c in example.text):
                continue
            language = detect_language(example.text, "en")
            options.setdefault(example.intent, {}).setdefault(language, example.text)
        return options


def read_bot(settings: Settings) -> BotFiles:
    """NLU data, flows and actions of the bot folder, checked against each other."""
    bot = settings.bot
    errors: list[str] = []
    data: TrainingData | None = None
    try:
        data = TrainingData.load(bot.path / "nlu")
    except NluDataError as e:
        errors += e.errors
    try:
        flows = load_flows(bot.path / "flows")
    except FlowError as e:
        errors += e.errors
        flows = e.flows
    actions: ActionRunner | None = None
    try:
        actions = load_actions(bot.path, bot.action_endpoint, bot.action_timeout)
    except ActionError as e:
        where = "bot.action_endpoint" if bot.action_endpoint else f"{bot.path / 'actions.py'}:1:1"
        errors.append(f"{where}: {e}")
    names = actions.names() if actions is not None else set()
    errors += check_references(flows, data.intents if data else None, names)
    try:
        knowledge = KnowledgeBase.load(
            bot.path / "knowledge", synonyms=data.synonyms if data else None
        )
    except KnowledgeError as e:
        errors += e.errors
        knowledge = KnowledgeBase.empty()
    return BotFiles(data, flows, actions, by_place(errors), knowledge)


def current_files(settings: Settings) -> BotFiles:
    """The bot folder as it is now (read again only when a file changed). Blocking."""
    bot = settings.bot
    return _read_bot_cached(bot.model_dump_json(), _stamp(bot.path))


def _stamp(folder: Path) -> tuple[tuple[str, int], ...]:
    """Every file of the bot folder with its modification time: changes when one changes."""
    if not folder.is_dir():
        return ()
    return tuple(sorted((str(p), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()))


@functools.lru_cache(maxsize=8)
def _read_bot_cached(bot: str, stamp: tuple[tuple[str, int], ...]) -> BotFiles:
    """read_bot, once per bot folder state: tests build many hubs of one bot."""
    return read_bot(Settings.model_construct(bot=BotSettings.model_validate_json(bot)))


def make_fallback(settings: Settings, files: BotFiles | None = None) -> Fallback:
    """The fallback chain of `bot.fallback`, with the bot's knowledge and intents (read from
    the bot folder unless `files` are given)."""
    bot = settings.bot
    if files is None:
        files = current_files(settings)
    return Fallback(
        bot.fallback.handoff_after,
        bot.language,
        knowledge=files.knowledge,
        clarify_options=files.clarify_options(bot.handoff_intents),
        use_knowledge=bot.fallback.knowledge,
        use_clarify=bot.fallback.clarify,
    )


def flow_engine(settings: Settings, files: BotFiles) -> FlowEngine:
    """The flow engine of checked bot files."""
    return FlowEngine(
        files.flows,
        settings.bot.language,
        files.actions,
        knowledge=files.knowledge,
        words=HUB_WORDS,
    )


def load_flow_engine(settings: Settings) -> FlowEngine:
    """The bot's flow engine; raises FlowError listing every problem of the bot's files."""
    files = read_bot(settings)
    if files.errors:
        raise FlowError(files.errors, files.flows)
    return flow_engine(settings, files)
