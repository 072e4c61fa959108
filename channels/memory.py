"""An in-memory channel: what the test bot and `kefu chat` talk through. It keeps every
message it is asked to send, so a test reads exactly what a customer would have received."""

from __future__ import annotations

from typing import ClassVar

from channels.base import Capabilities, Channel, NoOptions
from hub.messages import Outbound


class MemoryChannel(Channel[NoOptions]):
    type: ClassVar[str] = "memory"
    capabilities: ClassVar[Capabilities] = Capabilities(buttons=True, images=True)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.sent: list[Outbound] = []

    async def send(self, message: Outbound) -> None:
        self.sent.append(message)

    def sent_to(self, recipient_id: str) -> list[Outbound]:
        return [m for m in self.sent if m.recipient_id == recipient_id]
