"""Testing a bot against a whole hub in memory: `TestBot` (testbot.py), one customer talking
to the pipeline through the in-memory channel, and the conversation-test runner behind
`kefu test` (convtest.py).

This package is also a pytest plugin (the `pytest11` entry point names it): a bot folder's own
tests get the `testbot` fixture, a bot for the folder in $KEFU_CONFIG / ./config.yaml.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from hub.testing.testbot import TestBot

__all__ = ["TestBot"]

try:
    import pytest
except ImportError:  # pragma: no cover - the plugin part needs pytest
    pass
else:

    @pytest.fixture
    async def testbot() -> AsyncIterator[TestBot]:
        """A customer of a hub serving the bot of $KEFU_CONFIG / ./config.yaml."""
        from hub.ops.settings import load_settings

        async with TestBot.running(load_settings()) as bot:
            yield bot
