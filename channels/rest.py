"""Rasa-compatible REST channel: a drop-in for Rasa's `RestInput`, so existing clients and
test tools work (README.md "Talk to the demo bot").

    POST /webhooks/rest/webhook  {"sender": "u1", "message": "hi", "metadata": {...}}
    -> 200 [{"recipient_id": "u1", "text": "...", "buttons": [...]}, ...]

The bot's replies come back in the response. Agents' messages can't ride on a response, so
they are POSTed to `callback_url` (Rasa's CallbackInput shape) when one is configured, and
fail visibly otherwise. `metadata.message_id`, when given, makes redeliveries idempotent.

Each sender may send `limits.rest_messages` messages (config.yaml; 20 in 10 s by default):
beyond that the answer is 429 `{"detail": ...}` with Retry-After, and the message is not
stored. There is no limit per client address (many customers share one NAT, and a partner's
server sends for all its users). A body nested too deep or with numbers JSON can't carry
(5,000 digits, 1e999) is a 422.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from channels.base import Capabilities, Channel, DeliveryError
from hub.messages import Inbound, Kind, Outbound


class RestOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    callback_url: str | None = None  # where agents' messages are POSTed
    timeout: float = 10.0


class RestMessage(BaseModel):
    sender: str = Field(min_length=1, max_length=255)
    message: str = Field(max_length=10_000)
    metadata: dict[str, Any] | None = None

    @field_validator("metadata")
    @classmethod
    def _finite(cls, metadata: dict[str, Any] | None) -> dict[str, Any] | None:
        """Infinity and NaN can't be stored as JSON (PostgreSQL refuses them)."""
        stack: list[Any] = [metadata]
        while stack:
            value = stack.pop()
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError("numbers must be finite (no Infinity, NaN or 1e999)")
            if isinstance(value, dict):
                stack.extend(value.values())
            elif isinstance(value, list):
                stack.extend(value)
        return metadata


def rasa_messages(recipient_id: str, message: Outbound) -> list[dict[str, Any]]:
    """One stored message as Rasa's CollectingOutputChannel renders it."""
    out: list[dict[str, Any]] = []
    if message.text or message.buttons:
        item: dict[str, Any] = {"recipient_id": recipient_id, "text": message.text}
        if message.buttons:
            item["buttons"] = [b.model_dump() for b in message.buttons]
        out.append(item)
    out += [
        {"recipient_id": recipient_id, "image": a.url}
        for a in message.attachments
        if a.kind == Kind.IMAGE
    ]
    return out


class RestChannel(Channel[RestOptions]):
    type: ClassVar[str] = "rest"
    capabilities: ClassVar[Capabilities] = Capabilities(
        buttons=True, images=True, inline_replies=True
    )
    Options = RestOptions

    def router(self) -> APIRouter:
        router = APIRouter(tags=[f"channel {self.name}"])
        path = "/webhooks/rest/webhook" if self.name == "rest" else f"/webhooks/{self.name}/webhook"

        @router.get(path.rsplit("/", 1)[0] + "/")
        async def health() -> dict[str, str]:
            return {"status": "ok"}  # Rasa answers this on GET /webhooks/rest/

        @router.post(path, response_model=None)
        async def webhook(request: Request) -> list[dict[str, Any]] | JSONResponse:
            # Like Rasa, the body is JSON whatever the Content-Type says (`curl -d` works).
            try:
                body = RestMessage.model_validate_json(await request.body())
            except ValidationError as e:
                detail = [{k: err[k] for k in ("loc", "msg", "type")} for err in e.errors()]
                return JSONResponse({"detail": detail}, status_code=422)
            wait = await self.receiver.limited("rest_messages", f"{self.name}:{body.sender}")
            if wait is not None:  # nothing is stored; the client sends it again later
                seconds = max(1, math.ceil(wait))
                return JSONResponse(
                    {"detail": f"too many messages from this sender: retry in {seconds} s"},
                    status_code=429,
                    headers={"Retry-After": str(seconds)},
                )
            metadata = body.metadata or {}
            message_id = metadata.get("message_id")
            inbound = Inbound(
                channel=self.name,
                sender_id=body.sender,
                # ids are the client's own: one sender's id 1 is not another's
                channel_message_id=f"{body.sender}:{message_id}"
                if message_id is not None
                else None,
                text=body.message,
                payload={"metadata": metadata} if metadata else {},
            )
            replies = await self.receiver.receive(inbound)
            return [item for reply in replies for item in rasa_messages(body.sender, reply)]

        return router

    async def send(self, message: Outbound) -> None:
        url = self.options.callback_url
        if not url:
            raise DeliveryError(
                f"channel {self.name!r} (rest) has no callback_url: the client only receives "
                "the bot's replies in the webhook response",
                retryable=False,
            )
        try:
            async with httpx.AsyncClient(timeout=self.options.timeout) as client:
                response = await client.post(url, json=rasa_messages(message.recipient_id, message))
        except httpx.HTTPError as e:
            raise DeliveryError(f"callback {url}: {type(e).__name__}: {e}") from e
        if response.status_code >= 400:
            raise DeliveryError(
                f"callback {url} answered {response.status_code}",
                retryable=response.status_code >= 500 or response.status_code == 429,
            )
