"""Acknowledge a platform only once the message is stored.

A platform delivers a message again only when our answer says it failed (or never came). So a
webhook answers "got it" once the message is in the database, not before (the hub may be unable
to store it: its database down) and not after the bot's turn (which may take longer than the
platform waits). The work runs in a task of its own; `Receiver.receive(..., on_stored=
mark_stored)` inside it tells the webhook waiting for it.

    task, stored = acknowledge.start(handle(update))
    if await acknowledge.until_stored(task, stored, wait=2.5):  # raises Unavailable: 503
        ...
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine
from typing import Any, TypeVar

from hub.ports import Unavailable

T = TypeVar("T")

# Set in the work's task: done once its message is stored, or failed with why it was not
_STORED: contextvars.ContextVar[asyncio.Future[None] | None] = contextvars.ContextVar(
    "kefu_stored", default=None
)


def start(work: Coroutine[Any, Any, T]) -> tuple[asyncio.Task[T], asyncio.Future[None]]:
    """Run `work` in a task; the future is done once its message is stored."""
    stored: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    stored.add_done_callback(_retrieved)
    context = contextvars.copy_context()
    context.run(_STORED.set, stored)
    return asyncio.create_task(work, context=context), stored


async def until_stored(task: asyncio.Task[Any], stored: asyncio.Future[None], wait: float) -> bool:
    """Wait for the message to be stored (True), for the work to end without storing one or
    for `wait` seconds (False). Raises Unavailable when the hub could not store it: the webhook
    answers 503 and the platform delivers it again."""
    if not stored.done():
        await asyncio.wait({stored, task}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
    if stored.done() and not stored.cancelled():
        error = stored.exception()
        if error is not None:
            raise error
        return True
    if task.done() and not task.cancelled() and isinstance(task.exception(), Unavailable):
        raise task.exception()  # type: ignore[misc]
    return False


async def mark_stored(message_id: int) -> None:
    """`on_stored` for `Receiver.receive`: the webhook waiting for this work may answer."""
    stored = _STORED.get()
    if stored is not None and not stored.done():
        stored.set_result(None)


def mark_failed(error: BaseException) -> bool:
    """For work that catches its own errors: tell the waiting webhook its message could not be
    stored. False when no webhook waits for it any more (the caller logs it then)."""
    stored = _STORED.get()
    if stored is None or stored.done():
        return False
    stored.set_exception(error)
    return True


def _retrieved(future: asyncio.Future[None]) -> None:
    """An error nobody waited for any more is the work's to log, not asyncio's."""
    if not future.cancelled():
        future.exception()
