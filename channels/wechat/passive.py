"""The passive reply: the HTTP answer to a customer's request may carry one message.

While a customer's request waits for its answer, it holds a `Window`. The first bot message
`send()` is given for that customer meanwhile is taken by the window and written as the
response (a `PassiveReply`); `send()` returns only once that response has been written, so
the outbox marks the message sent and the customer's next message follows it in order.
"""

from __future__ import annotations

import asyncio

from fastapi.responses import Response
from starlette.types import Receive, Scope, Send

from hub.messages import Outbound

CARRY_TIMEOUT = 30.0  # how long send() waits for a passive reply's response to be written


class Window:
    """A customer's request waiting for its answer, which can carry one message."""

    def __init__(self) -> None:
        self.open = True
        self.message: Outbound | None = None
        self.text = ""
        self.filled = asyncio.Event()
        self.carried: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def take(self, message: Outbound, text: str) -> bool:
        if not self.open or self.message is not None:
            return False
        self.message, self.text = message, text
        self.filled.set()
        return True

    def settle(self, carried: bool) -> None:
        if not self.carried.done():
            self.carried.set_result(carried)


class Windows:
    """The windows open now, by customer (openid), oldest first."""

    def __init__(self) -> None:
        self._by_customer: dict[str, list[Window]] = {}

    def open(self, openid: str) -> Window:
        window = Window()
        self._by_customer.setdefault(openid, []).append(window)
        return window

    def close(self, openid: str, window: Window) -> None:
        window.open = False
        windows = self._by_customer.get(openid, [])
        if window in windows:
            windows.remove(window)
        if not windows:
            self._by_customer.pop(openid, None)

    async def carry(self, message: Outbound, text: str) -> bool:
        """Give the message to the customer's waiting request; True once its response (the
        passive reply) has been written."""
        windows = self._by_customer.get(message.recipient_id, [])
        window = next((w for w in windows if w.take(message, text)), None)
        if window is None:
            return False
        try:
            return await asyncio.wait_for(asyncio.shield(window.carried), CARRY_TIMEOUT)
        except TimeoutError:
            return False


class PassiveReply(Response):
    """The reply XML; its window learns whether it was written (send() waits for that)."""

    media_type = "application/xml"

    def __init__(self, content: str, window: Window) -> None:
        super().__init__(content)
        self.window = window

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        written = False
        try:
            await super().__call__(scope, receive, send)
            written = True
        finally:
            self.window.settle(written)
