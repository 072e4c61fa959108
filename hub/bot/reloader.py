"""The bot reloaded while the hub runs: flows, NLU data (retraining when it changed), actions,
automation rules and the `bot:` settings, swapped in whole when every file is valid."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from hub.bot.files import current_files, flow_engine, make_fallback, read_bot, train_classifier
from hub.core.fallback import Fallback
from hub.features.automations.rules import AutomationError, LoadedRule, load_bot_automations
from hub.messages import utcnow
from hub.ops.settings import Settings, SettingsError, load_settings
from hub.ports import Classifier, FlowRunner
from hub.yaml_places import by_place
from nlu import NluDataError

log = logging.getLogger(__name__)


class Served(Protocol):
    """What the reloader swaps a new bot into (hub.app.Hub)."""

    @property
    def settings(self) -> Settings: ...

    def serve_bot(
        self,
        settings: Settings,
        classifier: Classifier,
        flows: FlowRunner,
        fallback: Fallback | None = None,
        rules: Sequence[LoadedRule] | None = None,
    ) -> None: ...


class BotReloader:
    """Reloads the bot while the hub runs. Invalid files leave the last good bot serving;
    their errors are logged and shown by /readyz."""

    def __init__(self, hub: Served) -> None:
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
        engine = flow_engine(settings, files)
        self.hub.serve_bot(settings, classifier, engine, make_fallback(settings, files), rules)
        self.errors = []
        self.loaded_at = utcnow()
        self.reloads += 1
        log.info("bot reloaded from %s", settings.bot.path)
        return []

    def intents_now(self) -> list[str]:
        """The intents of the bot folder's NLU data as it is now (not necessarily served yet);
        none while it has errors. Blocking."""
        files = current_files(self.hub.settings)
        return files.data.intents if files.data is not None else []

    def status(self) -> dict[str, Any]:
        return {
            "path": str(self.hub.settings.bot.path),
            "loaded_at": self.loaded_at.isoformat(),
            "reloads": self.reloads,
            "errors": self.errors,
        }
