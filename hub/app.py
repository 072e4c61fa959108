"""The composition root: the only place where implementations are chosen and wired together.

`Hub` holds the running parts and is the `Receiver` every channel talks to; `create_app`
puts it behind FastAPI with the channels' endpoints and the inbox API."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request, WebSocket
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import HTTPConnection

from channels.base import ChannelConfigError
from channels.memory import MemoryChannel
from channels.registry import build_channels
from flows import FlowEngine, FlowError, LoadedFlow, load_flows
from flows.actions import ActionError, ActionRunner, load_actions
from flows.checks import check_references
from hub import cluster
from hub.automations import Automations
from hub.automations_config import AutomationError, LoadedRule, load_bot_automations
from hub.bus import RELAY, InProcessBus, SubscriberLagged
from hub.conversations import Conversations, message_view
from hub.csat import Csat
from hub.fallback import Fallback
from hub.hours import Hours
from hub.limits import BodySizeLimit
from hub.lockout import login_guard
from hub.logs import RequestId
from hub.logs import conversation_id as conversation_in_logs
from hub.media import MediaStore
from hub.messages import Delivery, Event, Inbound, Outbound, Status, utcnow
from hub.metrics import CONTENT_TYPE, HttpMetrics, Metrics
from hub.nlu_review import read_labeled, with_labeled
from hub.outbox import Outbox
from hub.personal_data import PersonalData
from hub.pipeline import Pipeline
from hub.ports import Classifier, FlowRunner, KnowledgeSearch, Unavailable
from hub.proxies import ProxyHeadersMiddleware
from hub.ratelimit import PublicLimits, rate_limiter
from hub.redact import install as mask_logs
from hub.routing import Routing
from hub.senders import SenderTokens
from hub.settings import BotSettings, Settings, SettingsError, load_settings
from hub.sla import SlaWatch
from hub.status import InvalidTransition
from hub.store import CursorError, Database, Store
from hub.store.database import unreachable
from hub.store.personal import PersonalDataStore
from hub.store.webhooks import WebhookStore
from hub.webhooks import WebhookSender
from hub.yaml_places import by_place
from knowledge import KnowledgeBase, KnowledgeError
from nlu import IntentClassifier, NluDataError, TrainingData
from nlu.classifier import training_key
from nlu.language import detect_language
from nlu.persistence import MODEL_FILE
from nlu.vectors import StaticVectors, VectorsError

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5  # what a 503 for an unreachable database asks clients to wait


def model_dir(settings: Settings) -> Path:
    return settings.data_dir / "models" / "nlu"


def train_classifier(settings: Settings, force: bool = False) -> IntentClassifier:
    """The bot's classifier: the saved one when it was trained on the same data with the same
    settings, else trained and saved (so `kefu run` trains only when something changed)."""
    return ensure_classifier(settings, force)[0]


def ensure_classifier(settings: Settings, force: bool = False) -> tuple[IntentClassifier, bool]:
    """`train_classifier`, also telling whether it trained (True) or loaded the saved model."""
    data = TrainingData.load(settings.bot.path / "nlu")
    data = with_labeled(data, read_labeled(settings))  # what designers labeled (hub.nlu_review)
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


def make_fallback(settings: Settings, files: BotFiles | None = None) -> Fallback:
    """The fallback chain of `bot.fallback`, with the bot's knowledge and intents (read from
    the bot folder unless `files` are given)."""
    bot = settings.bot
    if files is None:
        files = _read_bot_cached(bot.model_dump_json(), _stamp(bot.path))
    return Fallback(
        bot.fallback.handoff_after,
        bot.language,
        knowledge=files.knowledge,
        clarify_options=files.clarify_options(bot.handoff_intents),
        use_knowledge=bot.fallback.knowledge,
        use_clarify=bot.fallback.clarify,
    )


def _stamp(folder: Path) -> tuple[tuple[str, int], ...]:
    """Every file of the bot folder with its modification time: changes when one changes."""
    if not folder.is_dir():
        return ()
    return tuple(sorted((str(p), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()))


@functools.lru_cache(maxsize=8)
def _read_bot_cached(bot: str, stamp: tuple[tuple[str, int], ...]) -> BotFiles:
    """read_bot, once per bot folder state: tests build many hubs of one bot."""
    return read_bot(Settings.model_construct(bot=BotSettings.model_validate_json(bot)))


def load_flow_engine(settings: Settings) -> FlowEngine:
    """The bot's flow engine; raises FlowError listing every problem of the bot's files."""
    files = read_bot(settings)
    if files.errors:
        raise FlowError(files.errors, files.flows)
    return FlowEngine(
        files.flows,
        settings.bot.language,
        files.actions,
        interrupt_confidence=settings.bot.interrupt_confidence,
        knowledge=files.knowledge,
    )


class BotReloader:
    """Reloads the bot while the hub runs: flows, NLU data (retraining when it changed),
    actions and the `bot:` settings. Invalid files leave the last good bot serving; their
    errors are logged and shown by /readyz."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.errors: list[str] = []
        self.loaded_at = utcnow()
        self.reloads = 0
        config = hub.settings.config_path
        self._config_mtime = config.stat().st_mtime if config and config.exists() else None

    async def watch(self) -> None:
        import watchfiles

        paths = [self.hub.settings.bot.path]
        config = self.hub.settings.config_path
        if config is not None and config.exists():
            paths.append(config)
        async for _ in watchfiles.awatch(*paths, debounce=300, step=100):
            await self.reload()

    async def reload(self) -> list[str]:
        """Load everything again; swap it in when valid. Returns the errors (empty: done)."""
        current = self.hub.settings
        try:
            settings = current
            config = current.config_path
            if (
                config is not None
                and config.exists()
                and config.stat().st_mtime != self._config_mtime
            ):
                # the config file changed: its `bot:` section applies (other sections need a
                # restart); otherwise the settings stay as started (with any overrides)
                settings = current.model_copy(update={"bot": load_settings(config).bot})
            files = await asyncio.to_thread(read_bot, settings)
            errors = files.errors
            rules: list[LoadedRule] = []
            try:  # automations/*.yml: with the rest of the bot, or not at all
                intents = files.data.intents if files.data else None
                rules = await asyncio.to_thread(load_bot_automations, settings, intents)
            except AutomationError as e:
                errors = by_place([*errors, *e.errors])
            classifier = None
            if not errors:
                classifier = await asyncio.to_thread(train_classifier, settings)
        except (SettingsError, NluDataError) as e:
            errors = str(e).splitlines()
        if errors or classifier is None:
            self.errors = errors
            log.error("bot not reloaded, the last good one keeps serving:\n%s", "\n".join(errors))
            return errors
        engine = FlowEngine(
            files.flows,
            settings.bot.language,
            files.actions,
            interrupt_confidence=settings.bot.interrupt_confidence,
            knowledge=files.knowledge,
        )
        self.hub.use_bot(settings, classifier, engine, make_fallback(settings, files))
        self.hub.automations.use(rules)
        self.errors = []
        self.loaded_at = utcnow()
        self.reloads += 1
        log.info("bot reloaded from %s", settings.bot.path)
        return []

    def status(self) -> dict[str, Any]:
        return {
            "path": str(self.hub.settings.bot.path),
            "loaded_at": self.loaded_at.isoformat(),
            "reloads": self.reloads,
            "errors": self.errors,
        }


class Hub:
    """The running hub: store, bus, channels, outbox and the pipeline."""

    def __init__(
        self,
        settings: Settings,
        classifier: Classifier,
        flows: FlowRunner,
        fallback: Fallback | None = None,
    ) -> None:
        self.settings = settings
        self.db = Database(settings.database_url)
        self.store = Store(self.db)
        # Several processes share the work through Redis when it is configured (hub.cluster).
        self.redis = cluster.connect(settings.redis_url) if settings.redis_url else None
        prefix = settings.redis_prefix
        self.bus = cluster.RedisBus(self.redis, prefix) if self.redis else InProcessBus()
        try:
            self.channels = build_channels(
                ((c.name, c.type, c.options) for c in settings.enabled_channels), self
            )
        except ChannelConfigError as e:
            raise SettingsError(str(e)) from e
        if all(c.name != "try-it" for c in settings.channels):  # the admin pages' try-it chat
            self.channels["try-it"] = MemoryChannel("try-it", {}, self)
        self.metrics = Metrics()
        self.outbox = Outbox(self.store, self.bus, self.channels, metrics=self.metrics)
        self.conversations = Conversations(
            self.store, self.bus, self.outbox, self.channels, settings.bot.language
        )
        self.classifier = classifier
        self.media = MediaStore(settings.data_dir / "media", settings.media_max_bytes)
        self.webhooks = WebhookSender(WebhookStore(self.db), self.bus, settings.webhooks)
        self.personal_data = PersonalData(
            PersonalDataStore(self.db), self.store, self.media, self.bus
        )
        self.reloader = BotReloader(self)
        # the bot's automation rules (automations/*.yml) on this process's events
        self.automations = Automations(
            self.conversations,
            settings.webhooks,
            load_bot_automations(settings, getattr(classifier, "intents", None)),
        )
        # auto-assignment and the queue (`assignment:`); off: agents take conversations
        self.routing = Routing(
            self.store, self.conversations, self.bus, settings.assignment, self.redis, prefix
        )
        if settings.assignment.enabled:
            self.conversations.queue_notice = self.routing.on_handoff
        self.hours = Hours(settings.bot.hours)  # business hours and SLAs (bot.hours)
        self.conversations.hours = self.hours
        self.sla = SlaWatch(self.hours, self.store, self.bus, self.redis, prefix)
        self.csat = Csat(
            self.store,
            self.conversations,
            enabled=settings.csat.enabled,
            answer_within=timedelta(hours=settings.csat.answer_within_hours),
        )
        self.conversations.after_resolve = self.csat.ask
        self.pipeline = Pipeline(
            store=self.store,
            conversations=self.conversations,
            channels=self.channels,
            classifier=classifier,
            flows=flows,
            fallback=fallback if fallback is not None else make_fallback(settings),
            handoff_intents=settings.bot.handoff_intents,
            default_language=settings.bot.language,
            metrics=self.metrics,
            csat=self.csat,
        )
        self.logins = login_guard(self.redis, prefix)  # failed logins, per email and IP
        # `limits:` on the public endpoints; tokens proving the widget's visitor ids
        self.limits = PublicLimits(settings.limits, rate_limiter(self.redis, prefix))
        self.senders = SenderTokens(settings.jwt_secret)
        self.claims: cluster.RedisClaims | None = None
        if self.redis is not None:
            self.pipeline.locks = cluster.RedisLocks(self.redis, prefix)
            self.outbox.claims = self.claims = cluster.RedisClaims(self.redis, prefix)
            self.outbox.pacer = cluster.RedisPacer(self.redis, prefix)
        self._tasks: list[asyncio.Task[None]] = []
        self.turns: set[asyncio.Future[list[Outbound]]] = set()  # messages being handled
        self.metrics.turns_in_progress.set_function(lambda: len(self.turns))
        self.channel_errors: dict[str, str] = {}  # channels that could not start, and why

    def use_bot(
        self,
        settings: Settings,
        classifier: Classifier,
        flows: FlowRunner,
        fallback: Fallback | None = None,
    ) -> None:
        """Serve this bot from the next message on (the hot reload's swap)."""
        self.settings = settings
        self.classifier = classifier
        pipeline = self.pipeline
        pipeline.classifier, pipeline.flows = classifier, flows
        pipeline.fallback = fallback if fallback is not None else make_fallback(settings)
        pipeline.handoff_intents = frozenset(settings.bot.handoff_intents)
        pipeline.default_language = settings.bot.language
        self.conversations.default_language = settings.bot.language
        self.hours.configure(settings.bot.hours)

    @property
    def knowledge(self) -> KnowledgeSearch | None:
        """The bot's articles and FAQs (searched by the fallback and for agents)."""
        return self.pipeline.fallback.base

    # ---- the Receiver port (what channels call) ----------------------------------------

    async def receive(
        self, inbound: Inbound, on_stored: Callable[[int], Awaitable[None]] | None = None
    ) -> list[Outbound]:
        # Each message is handled in a task of its own, which stop() waits for and which a
        # caller cancelled (a socket closed, a poller stopped) does not cut in half.
        started = time.perf_counter()
        turn = asyncio.ensure_future(self.pipeline.receive(inbound, on_stored))
        self.turns.add(turn)
        turn.add_done_callback(self.turns.discard)
        replies = await asyncio.shield(turn)
        self.metrics.turn_took(inbound.channel, time.perf_counter() - started)
        return replies

    async def history(self, channel: str, sender_id: str, after_id: int) -> list[Outbound]:
        conversation = await self.store.contact_conversation(channel, sender_id)
        if conversation is None or conversation.id is None:
            return []
        messages = await self.store.messages(conversation.id, after_id, 1000, private=False)
        return [await self.conversations.outbound(m, sender_id) for m in messages]

    async def current_conversation(self, channel: str, sender_id: str) -> int | None:
        conversation = await self.store.contact_conversation(channel, sender_id)
        return conversation.id if conversation else None

    async def publish(self, event: Event) -> None:
        await self.bus.publish(event)

    async def relay(self, channel: str, data: dict[str, Any]) -> None:
        if self.redis is None:
            await self.channels[channel].on_relay(data)
        else:
            relayed = Event(type=RELAY, conversation_id=0, data={"channel": channel, **data})
            await self.bus.publish(relayed)

    async def _relay_events(self) -> None:
        """Hand events relayed by any process (this one too) to this process's channels."""
        while True:
            feed = self.bus.subscribe()
            try:
                async for event in feed:
                    if event.type != RELAY:
                        continue  # the agents' events: not for channels
                    channel = self.channels.get(event.data.get("channel", ""))
                    if channel is not None:
                        try:
                            await channel.on_relay(event.data)
                        except Exception:
                            log.exception("channel %s: relayed data not handled", channel.name)
            except SubscriberLagged:
                log.warning("channel relay fell behind or Redis reconnected; resubscribing")
            finally:
                await feed.aclose()

    async def _recover_turns(self, every: float | None, after: float) -> None:
        """Take the turns that a stopped or killed process left pending: once at start (one
        process), or every `every` seconds (several: another one may die)."""
        while True:
            with contextlib.suppress(Unavailable):  # the database is away: the next round
                before = utcnow() - timedelta(seconds=after)
                for message, contact in await self.store.unfinished_turns(before):
                    await self.pipeline.recover(message, contact)
                if every is None:
                    return
            await asyncio.sleep(every if every is not None else 5.0)

    async def _sweep_outbox(self, every: float = 5.0, after: float = 30.0) -> None:
        """Send what another process stored and left queued when it died (its claims lapsed)."""
        assert self.claims is not None
        while True:
            with contextlib.suppress(Unavailable):  # the database is away: the next sweep
                before = utcnow() - timedelta(seconds=after)
                queued = {m.id: m for m in await self.store.undelivered(before=before) if m.id}
                for message_id in await self.claims.sweepable(queued):
                    log.info("outbox: sending message %s another process left queued", message_id)
                    self.outbox.enqueue(await self.conversations.outbound(queued[message_id]))
            await asyncio.sleep(every)

    async def edit(self, channel: str, channel_message_id: str, text: str) -> bool:
        message = await self.store.update_inbound(channel, channel_message_id, text=text)
        if message is not None:
            await self.bus.publish(
                Event(
                    type="message.updated",
                    conversation_id=message.conversation_id,
                    data=message_view(message),
                )
            )
        return message is not None

    async def delete(self, channel: str, channel_message_id: str) -> bool:
        message = await self.store.update_inbound(channel, channel_message_id, deleted=True)
        if message is not None:
            await self.bus.publish(
                Event(
                    type="message.deleted",
                    conversation_id=message.conversation_id,
                    data={"id": message.id},
                )
            )
        return message is not None

    async def save_media(
        self, data: bytes, *, name: str | None = None, mime_type: str | None = None
    ) -> str:
        return await asyncio.to_thread(self.media.save, data, name, mime_type)

    async def conversation_of(self, channel: str, channel_message_id: str) -> int | None:
        return await self.store.conversation_of(channel, channel_message_id)

    async def load_state(self, channel: str, key: str) -> dict[str, Any] | None:
        return await self.store.load_state(channel, key)

    async def save_state(self, channel: str, key: str, value: dict[str, Any]) -> None:
        await self.store.save_state(channel, key, value)

    def sender_token(self, channel: str, sender_id: str) -> str:
        return self.senders.token(channel, sender_id)

    async def limited(self, rule: str, key: str) -> float | None:
        return await self.limits.limited(rule, key)

    def cap(self, rule: str) -> int | None:
        return self.limits.cap(rule)

    async def delivery_failed(self, message_id: int, error: str) -> bool:
        message = await self.store.get_message(message_id)
        if message is None or message.direction != "out":
            return False
        self.metrics.delivery_failed(message.channel)
        await self.outbox.record(message_id, message.conversation_id, Delivery.FAILED, error)
        return True

    # ---- life cycle ---------------------------------------------------------------------

    async def start(self) -> None:
        for name, channel in self.channels.items():
            try:
                await channel.start()
            except ChannelConfigError as e:
                # One half-configured channel doesn't take the others down; /readyz shows it.
                log.error("channel %s not started: %s", name, e)
                self.channel_errors[name] = str(e)
        if self.claims is not None:
            assert isinstance(self.bus, cluster.RedisBus)
            await self.bus.start()
            self._tasks.append(asyncio.create_task(self._relay_events()))
            self._tasks.append(asyncio.create_task(self.claims.keep()))
            self._tasks.append(asyncio.create_task(self._sweep_outbox()))
            self._tasks.append(asyncio.create_task(self._recover_turns(every=5.0, after=10.0)))
        else:
            resent = await self.conversations.resend_queued()
            if resent:
                log.info("outbox: %d queued messages from before the restart sent again", resent)
            self._tasks.append(asyncio.create_task(self._recover_turns(every=None, after=0.0)))
        self._tasks.append(asyncio.create_task(self._wake_snoozed()))
        if self.settings.assignment.enabled:
            self._tasks.append(asyncio.create_task(self.routing.watch()))
        self._tasks.append(asyncio.create_task(self.sla.run()))  # first-response SLA events
        await self.webhooks.start()
        await self.automations.start()
        if self.settings.retention_days is not None:
            keep = self.personal_data.keep_for(self.settings.retention_days)
            self._tasks.append(asyncio.create_task(keep))
        if self.settings.bot.reload:
            self._tasks.append(asyncio.create_task(self.reloader.watch()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.finish_turns(self.settings.shutdown_grace)
        for channel in self.channels.values():
            await channel.stop()
        flows = self.pipeline.flows
        if isinstance(flows, FlowEngine):
            await flows.aclose()
        await self.outbox.close()
        await self.webhooks.stop()
        await self.automations.stop()
        if isinstance(self.bus, cluster.RedisBus):
            await self.bus.stop()
        if self.redis is not None:
            await self.redis.aclose()
        await self.db.close()

    async def finish_turns(self, grace: float) -> None:
        """Let the messages being handled finish and their replies go out, for up to `grace`
        seconds in all; a reply still queued then stays so in the store, and the next start
        sends it."""
        if not self.turns:
            return
        deadline = time.monotonic() + grace
        log.info("stopping: finishing %d message(s) being handled", len(self.turns))
        _, late = await asyncio.wait(set(self.turns), timeout=grace)
        for turn in late:
            turn.cancel()
        if late:
            log.warning("stopping: %d message(s) cut off after %.1f s", len(late), grace)
            await asyncio.wait(late)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.outbox.drain(), max(0.0, deadline - time.monotonic()))

    async def _wake_snoozed(self, every: float = 30.0) -> None:
        while True:
            with contextlib.suppress(Unavailable):  # the database is away: next time
                for conversation in await self.store.due_snoozes(utcnow()):
                    with contextlib.suppress(InvalidTransition):
                        await self.conversations.transition(
                            conversation, Status.OPEN, "system", reason="snooze ended"
                        )
            await asyncio.sleep(every)

    async def ready(self) -> dict[str, Any]:
        """What /readyz reports: each dependency ok or the error."""
        checks: dict[str, Any] = {"model": "ok" if self.classifier is not None else "missing"}
        try:
            await self.db.ping()
            checks["database"] = "ok"
        except Exception as e:
            checks["database"] = f"{type(e).__name__}: {e}"
        if self.redis is not None:
            try:
                await self.redis.ping()
                checks["redis"] = "ok"
                if isinstance(self.bus, cluster.RedisBus) and not self.bus.connected.is_set():
                    checks["redis"] = "reconnecting: the event stream is not read yet"
            except Exception as e:
                checks["redis"] = f"{type(e).__name__}: {e}"
        return checks


def create_app(
    settings: Settings,
    classifier: Classifier | None = None,
    flows: FlowRunner | None = None,
) -> FastAPI:
    """The ASGI app. Pass `classifier`/`flows` to reuse ones already loaded (tests, chat)."""
    import admin
    from hub.inbox import admin_api, canned, events, nlu, people, routes  # they import hub.app
    from hub.inbox import contacts as contact_routes
    from hub.inbox import knowledge as knowledge_routes
    from hub.inbox import nlu_review as nlu_review_routes
    from hub.inbox import queue as queue_routes
    from hub.inbox import reports as report_routes
    from hub.inbox import security as security_routes
    from hub.inbox import webhooks as webhook_routes

    mask_logs(settings)  # secrets and personal data never reach the logs
    hub = Hub(
        settings,
        classifier if classifier is not None else train_classifier(settings),
        flows if flows is not None else load_flow_engine(settings),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await hub.start()
        try:
            yield
        finally:
            await hub.stop()

    app = FastAPI(
        title="Kefu Hub",
        version="0.1.0",
        lifespan=lifespan,
        dependencies=[Depends(_conversation_in_path)],
    )
    app.state.hub = hub
    # a channel's own larger bodies (the widget's uploads) have their own limit
    larger = {p: n for c in hub.channels.values() for p, n in c.body_limits().items()}
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, paths=larger)
    app.add_middleware(HttpMetrics, metrics=hub.metrics)
    app.add_middleware(RequestId)  # outermost: every response has the id, a 413's too
    if settings.trusted_proxies:  # the client address from their X-Forwarded-For only
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    for channel in hub.channels.values():
        router = channel.router()
        if router is not None:
            app.include_router(router)
    app.include_router(routes.router)
    app.include_router(events.router)
    app.include_router(nlu.router)
    app.include_router(knowledge_routes.router)
    app.include_router(people.router)
    app.include_router(canned.router)
    app.include_router(admin_api.router)
    app.include_router(webhook_routes.router)
    app.include_router(contact_routes.router)
    app.include_router(security_routes.router)
    app.include_router(report_routes.router)
    app.include_router(nlu_review_routes.router)
    app.include_router(queue_routes.router)
    app.include_router(admin.router)

    @app.exception_handler(InvalidTransition)
    async def _conflict(request: Request, exc: InvalidTransition) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler echoes the input, which fails to encode when it holds a lone
        # surrogate ("\ud800" in JSON); replace those rather than answer 500.
        content = _without_surrogates(jsonable_encoder({"detail": exc.errors()}))
        return JSONResponse(content, status_code=422)

    @app.exception_handler(Unavailable)
    @app.exception_handler(SQLAlchemyError)
    async def _unavailable(connection: HTTPConnection, exc: Exception) -> Response | None:
        """The database is unreachable: 503 with Retry-After, so a platform redelivers and a
        client retries (nothing was stored); a socket is closed with 1013 (try again later).
        One log line, no traceback."""
        if not isinstance(exc, Unavailable) and not unreachable(exc):
            raise exc  # another database error: a bug, answered 500 with its traceback
        cause = exc.__cause__ if isinstance(exc, Unavailable) and exc.__cause__ else exc
        log.warning("%s: %s: %s", connection.url.path, type(cause).__name__, cause)
        if isinstance(connection, WebSocket):
            with contextlib.suppress(Exception):  # the client may have gone already
                await connection.close(code=1013, reason="database unavailable, retry later")
            return None
        return JSONResponse(
            {"detail": "database unavailable, retry later"},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    @app.exception_handler(CursorError)
    async def _bad_cursor(request: Request, exc: CursorError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.get("/media/{key:path}", tags=["media"])
    async def media(key: str) -> Response:
        """A file a customer sent (the link in the message; the key is unguessable), served
        as an image or a download, never as a page (hub/media.py)."""
        return hub.media.response(key)

    # HEAD answers the same headers (one operation in the API schema: the GET)
    app.add_api_route("/media/{key:path}", media, methods=["HEAD"], include_in_schema=False)

    @app.get("/metrics", tags=["ops"])
    async def metrics() -> Response:
        """Prometheus metrics (the README's Operations section lists them)."""
        await hub.metrics.refresh(hub.store, hub.channels)
        return Response(hub.metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> JSONResponse:
        checks = await hub.ready()
        ok = all(v == "ok" for v in checks.values())
        # The bot's state is detail, not readiness: with invalid files the last good bot serves.
        channels = {
            name: hub.channel_errors.get(name) or channel.problem() or "ok"
            for name, channel in hub.channels.items()
        }
        body = {"ready": ok, **checks, "bot": hub.reloader.status(), "channels": channels}
        return JSONResponse(body, status_code=200 if ok else 503)

    return app


async def _conversation_in_path(connection: HTTPConnection) -> None:
    """Every log line of a request about one conversation names it (hub.logs)."""
    value = str(connection.path_params.get("conversation_id", ""))
    if value.isdigit():
        conversation_in_logs.set(int(value))


def _without_surrogates(value: Any) -> Any:
    """``value`` with every lone surrogate in its strings replaced by U+FFFD."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, list):
        return [_without_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    return value
