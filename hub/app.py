"""The composition root: the only place where implementations are chosen and wired together.

`Hub` is the core (hub.core.receiver.Core, the `Receiver` every channel talks to) built with
the configured channels and features; `create_app` puts it behind FastAPI with the channels'
endpoints, the inbox API and every feature's routes. Nothing here runs a message: it
assembles."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any

from fastapi import Depends, FastAPI, Request, WebSocket
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import HTTPConnection

import admin
from channels.base import Channel as ChannelType
from channels.base import ChannelConfigError
from channels.memory import MemoryChannel
from channels.registry import build_channels
from hub.bot import BotReloader, load_flow_engine, make_fallback, train_classifier
from hub.bot import routes as bot_routes
from hub.core.fallback import Fallback
from hub.core.pipeline import Bot
from hub.core.receiver import TRY_IT, Core, Infrastructure
from hub.core.status import InvalidTransition
from hub.features.access import login as login_routes
from hub.features.access import routes as access_routes
from hub.features.access.lockout import login_guard
from hub.features.agents import routes as agent_routes
from hub.features.automations.rules import LoadedRule, load_bot_automations
from hub.features.automations.runner import Automations
from hub.features.canned import routes as canned_routes
from hub.features.csat.survey import Csat
from hub.features.hours.hours import Hours
from hub.features.hours.sla import SlaWatch
from hub.features.nlu_review import routes as nlu_review_routes
from hub.features.nlu_review.review import NluReview
from hub.features.people import routes as people_routes
from hub.features.people.customers import Customers
from hub.features.personal_data import routes as personal_data_routes
from hub.features.personal_data.records import PersonalData
from hub.features.personal_data.store import PersonalDataStore
from hub.features.reports import routes as report_routes
from hub.features.reports.summary import Reports
from hub.features.routing import routes as queue_routes
from hub.features.routing.assignment import Routing
from hub.features.webhooks import routes as webhook_routes
from hub.features.webhooks.sender import WebhookSender
from hub.features.webhooks.store import WebhookStore
from hub.inbox import channels as channel_routes
from hub.inbox import events, routes
from hub.inbox import health as health_routes
from hub.inbox import knowledge as knowledge_routes
from hub.inbox import media as media_routes
from hub.inbox import nlu as nlu_routes
from hub.ops.limits import BodySizeLimit
from hub.ops.logs import RequestId
from hub.ops.logs import conversation_id as conversation_in_logs
from hub.ops.metrics import HttpMetrics
from hub.ops.proxies import ProxyHeadersMiddleware
from hub.ops.redact import install as mask_logs
from hub.ops.settings import Settings, SettingsError
from hub.ops.tasks import cancel
from hub.ports import Classifier, FlowRunner, Receiver, Unavailable
from hub.store import CursorError
from hub.store.database import unreachable

log = logging.getLogger(__name__)

# every router of the API, in the order they are matched (after the channels' own)
ROUTES = (
    login_routes,
    routes,  # the inbox: conversations, messages
    events,
    nlu_routes,
    knowledge_routes,
    agent_routes,
    canned_routes,
    channel_routes,
    bot_routes,
    webhook_routes,
    people_routes,
    personal_data_routes,
    access_routes,
    report_routes,
    nlu_review_routes,
    queue_routes,
    admin,
    media_routes,
    health_routes,
)

RETRY_AFTER_SECONDS = 5  # what a 503 for an unreachable database asks clients to wait


def make_channels(settings: Settings, receiver: Receiver) -> dict[str, ChannelType]:
    """The enabled channels of config.yaml, and the admin pages' try-it chat."""
    try:
        channels = build_channels(
            ((c.name, c.type, c.options) for c in settings.enabled_channels), receiver
        )
    except ChannelConfigError as e:
        raise SettingsError(str(e)) from e
    if all(c.name != TRY_IT for c in settings.channels):
        channels[TRY_IT] = MemoryChannel(TRY_IT, {}, receiver)
    return channels


def serving(
    settings: Settings, classifier: Classifier, flows: FlowRunner, fallback: Fallback | None
) -> Bot:
    """The bot of `settings` as the pipeline serves it."""
    return Bot(
        classifier,
        flows,
        fallback if fallback is not None else make_fallback(settings),
        frozenset(settings.bot.handoff_intents),
        settings.bot.language,
        settings.bot.interrupt_confidence,
    )


class Hub(Core):
    """The running hub: the core with the configured channels and features. Each feature is
    also an attribute, for its routes (hub.inbox.deps.part) and for tests."""

    def __init__(
        self,
        settings: Settings,
        classifier: Classifier,
        flows: FlowRunner,
        fallback: Fallback | None = None,
    ) -> None:
        base = Infrastructure.connect(settings)
        redis, prefix = base.redis, settings.redis_prefix
        # auto-assignment and the queue (`assignment:`); off: agents take conversations
        self.routing = Routing(base.store, base.bus, settings.assignment, redis, prefix)
        self.hours = Hours(settings.bot.hours)  # business hours and SLAs (bot.hours)
        self.sla = SlaWatch(self.hours, base.store, base.bus, redis, prefix)
        self.csat = Csat(
            base.store,
            enabled=settings.csat.enabled,
            answer_within=timedelta(hours=settings.csat.answer_within_hours),
        )
        self.webhooks = WebhookSender(WebhookStore(base.db), base.bus, settings.webhooks)
        self.personal_data = PersonalData(
            PersonalDataStore(base.db), base.store, base.media, base.bus, settings.retention_days
        )
        # the bot's automation rules (automations/*.yml) on this process's events
        self.automations = Automations(
            base.store,
            base.bus,
            settings.webhooks,
            load_bot_automations(settings, getattr(classifier, "intents", None)),
        )
        self.customers = Customers(base.store)  # the person beside a conversation in the inbox
        self.logins = login_guard(redis, prefix)  # failed logins, per email and IP
        self.reports = Reports(base.db)
        self.nlu_review = NluReview(base.db)  # unrecognized messages, labeled examples
        super().__init__(
            settings,
            serving(settings, classifier, flows, fallback),
            base,
            channels=lambda receiver: make_channels(settings, receiver),
            # their hooks run in this order: at a handoff, routing adds the queue's place to
            # the notice, which hours replaces outside business hours
            features=[
                self.customers,
                self.csat,
                self.routing,
                self.hours,
                self.sla,
                self.webhooks,
                self.automations,
                self.personal_data,
            ],
        )
        self.reloader = BotReloader(self)
        self._watch: list[asyncio.Task[None]] = []

    def serve_bot(
        self,
        settings: Settings,
        classifier: Classifier,
        flows: FlowRunner,
        fallback: Fallback | None = None,
        rules: Sequence[LoadedRule] | None = None,
    ) -> None:
        """Serve this bot from the next message on (the hot reload's swap), and its
        automation rules when given."""
        self.use_bot(settings, serving(settings, classifier, flows, fallback))
        if rules is not None:
            self.automations.use(rules)

    async def start(self) -> None:
        await super().start()
        if self.settings.bot.reload:  # the bot folder watched: reloaded when a file changes
            self._watch.append(asyncio.create_task(self.reloader.watch()))

    async def stop(self) -> None:
        for task in self._watch:
            await cancel(task)
        await super().stop()


def create_app(
    settings: Settings,
    classifier: Classifier | None = None,
    flows: FlowRunner | None = None,
) -> FastAPI:
    """The ASGI app. Pass `classifier`/`flows` to reuse ones already loaded (tests, chat)."""
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
    channels = [c for c in hub.channels.values() if isinstance(c, ChannelType)]
    # a channel's own larger bodies (the widget's uploads) have their own limit
    larger = {p: n for c in channels for p, n in c.body_limits().items()}
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, paths=larger)
    app.add_middleware(HttpMetrics, metrics=hub.metrics)
    app.add_middleware(RequestId)  # outermost: every response has the id, a 413's too
    if settings.trusted_proxies:  # the client address from their X-Forwarded-For only
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    for channel in channels:
        router = channel.router()
        if router is not None:
            app.include_router(router)
    for module in ROUTES:
        app.include_router(module.router)
    _handle_errors(app)

    return app


def _handle_errors(app: FastAPI) -> None:
    """How the API answers what the core raises: 409 for a refused status change, 422 for bad
    input, 503 for an unreachable database, 400 for a bad cursor."""

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


async def _conversation_in_path(connection: HTTPConnection) -> None:
    """Every log line of a request about one conversation names it (hub.ops.logs)."""
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
