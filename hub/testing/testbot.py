"""An in-memory test bot that drives the whole pipeline, like Errbot's test backend.

async with TestBot.running(settings) as bot:
    replies = await bot.say("hello")        # what the customer receives
    assert await bot.status() == "bot"
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from channels.memory import MemoryChannel
from channels.registry import register
from hub.messages import Inbound, Outbound, Status
from hub.ops.settings import ChannelConfig, Settings
from hub.ports import Classifier, FlowRunner

register("memory", MemoryChannel)


class TestBot:
    """One customer talking to the hub through the in-memory channel `test`."""

    __test__ = False  # not a pytest test class
    CHANNEL = "test"

    def __init__(self, hub: Any, sender_id: str = "tester") -> None:
        self.hub = hub
        self.sender_id = sender_id
        self._serial = 0

    @classmethod
    @contextlib.asynccontextmanager
    async def running(
        cls,
        settings: Settings,
        classifier: Classifier | None = None,
        flows: FlowRunner | None = None,
        sender_id: str = "tester",
    ) -> AsyncIterator[TestBot]:
        """A started hub with the `test` channel; SQLite in a temporary folder unless the
        settings name another database (already migrated or not: it is migrated here)."""
        from hub.app import Hub
        from hub.bot import load_flow_engine, train_classifier
        from hub.store import migrate

        with tempfile.TemporaryDirectory(prefix="kefu-testbot-") as tmp:
            update: dict[str, Any] = {
                "channels": [*settings.channels, ChannelConfig(name=cls.CHANNEL, type="memory")]
            }
            if settings.database_url == Settings.model_fields["database_url"].default:
                update["database_url"] = f"sqlite+aiosqlite:///{Path(tmp) / 'kefu.db'}"
                update["data_dir"] = Path(tmp)
            settings = settings.model_copy(update=update)
            hub = Hub(
                settings,
                classifier if classifier is not None else train_classifier(settings),
                flows if flows is not None else load_flow_engine(settings),
            )
            await migrate(hub.db)
            await hub.start()
            try:
                yield cls(hub, sender_id)
            finally:
                await hub.stop()

    @property
    def channel(self) -> MemoryChannel:
        channel = self.hub.channels[self.CHANNEL]
        assert isinstance(channel, MemoryChannel)
        return channel

    def customer(self, sender_id: str) -> TestBot:
        """Another customer on the same hub."""
        return TestBot(self.hub, sender_id)

    async def say(self, text: str, message_id: str | None = None) -> list[Outbound]:
        """Send a message as the customer; returns everything the customer received for it."""
        return await self._send(
            Inbound(
                channel=self.CHANNEL,
                sender_id=self.sender_id,
                text=text,
                channel_message_id=message_id,
            )
        )

    async def press(self, payload: str, title: str | None = None) -> list[Outbound]:
        """Press a button (its payload, e.g. "/human")."""
        return await self._send(
            Inbound(
                channel=self.CHANNEL,
                sender_id=self.sender_id,
                text=title or payload,
                postback=payload,
            )
        )

    async def _send(self, inbound: Inbound) -> list[Outbound]:
        before = len(self.channel.sent_to(self.sender_id))
        await self.hub.receive(inbound)
        await self.hub.outbox.drain()
        return self.channel.sent_to(self.sender_id)[before:]

    async def received(self) -> list[Outbound]:
        """Everything delivered to this customer so far (after the outbox drained)."""
        await self.hub.outbox.drain()
        return self.channel.sent_to(self.sender_id)

    async def conversation_id(self) -> int:
        cid = await self.hub.current_conversation(self.CHANNEL, self.sender_id)
        assert cid is not None, "the customer has not written yet"
        return int(cid)

    async def status(self) -> Status:
        conversation = await self.hub.store.get_conversation(await self.conversation_id())
        return Status(conversation.status)
