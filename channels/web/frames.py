"""The web widget's JSON frames (README.md "The chat widget"): the client's frames parsed
and checked, the server's message frame, and the site-signed visitor identity (see channel.py)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from channels.common import problems
from hub.messages import Outbound, Verified

MAX_MESSAGE_ID = 2**31 - 1  # message ids are INTEGER columns (PostgreSQL's int4)
VISITOR = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


class _Frame(BaseModel):
    model_config = ConfigDict(extra="ignore")


class AttachmentFrame(_Frame):
    url: str = Field(pattern=r"^/media/[^\s\"'<>\\]+$", max_length=500)
    name: str | None = Field(default=None, max_length=200)
    mime_type: str | None = Field(default=None, max_length=100)
    kind: Literal["image", "file"] = "file"


class MessageFrame(_Frame):
    type: Literal["message"]
    client_id: str | None = Field(default=None, max_length=64)
    text: str = Field(default="", max_length=4000)
    attachments: list[AttachmentFrame] = Field(default_factory=list, max_length=5)

    @model_validator(mode="after")
    def _not_empty(self) -> MessageFrame:
        if not self.text and not self.attachments:
            raise ValueError("a message needs text or an attachment")
        return self


class PostbackFrame(_Frame):
    type: Literal["postback"]
    payload: str = Field(min_length=1, max_length=1000)
    title: str | None = Field(default=None, max_length=200)


class ResumeFrame(_Frame):
    type: Literal["resume"]
    after: int | str | None = None


class TypingFrame(_Frame):
    type: Literal["typing"]
    on: bool = True


class IdentifyFrame(_Frame):
    """Who the visitor is, as the site's server signed it (see channel.py)."""

    type: Literal["identify"]
    email: str | None = Field(default=None, max_length=255)
    hash: str | None = Field(default=None, max_length=128)
    phone: str | None = Field(default=None, max_length=32)
    phone_hash: str | None = Field(default=None, max_length=128)


Frame = MessageFrame | PostbackFrame | ResumeFrame | TypingFrame | IdentifyFrame
ClientFrame = Annotated[Frame, Field(discriminator="type")]
_frames: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)


def parse_frame(raw: str, max_bytes: int) -> Frame | str:
    """The client's frame, or what is wrong with it (never an exception: a frame nested
    20,000 deep or with a 5,000-digit number is answered like any other bad frame)."""
    if len(raw) > max_bytes or len(raw.encode("utf-8", "surrogatepass")) > max_bytes:
        return "frame too large"
    try:
        data = json.loads(raw)
    except RecursionError:
        return "frames are JSON objects nested at most a few hundred deep"
    except json.JSONDecodeError:
        return "frames are JSON objects"
    except ValueError:  # an integer of over 4300 digits (Python's int-to-str limit)
        return "frames are JSON objects whose numbers have at most 4300 digits"
    try:
        return _frames.validate_python(data)
    except ValidationError as e:
        return f"invalid frame: {problems(e, skip=1, whole='type')}"  # skip the union's tag
    except RecursionError:
        return "frames are JSON objects nested at most a few hundred deep"


def signed(secret: str, value: str, signature: str | None) -> bool:
    """Whether `signature` is the hex HMAC-SHA256 of `value` (as sent) under `secret`."""
    expected = hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()
    return signature is not None and hmac.compare_digest(expected, signature.strip().lower())


def verified_identity(secret: str | None, frame: IdentifyFrame) -> Verified | str:
    """The identity the site signed, or why it is refused."""
    if not frame.email and not frame.phone:
        return "identify: give email and hash, or phone and phone_hash"
    if secret is None:
        return "identify: this channel has no identity_secret, so it takes no identities"
    if frame.email and not signed(secret, frame.email, frame.hash):
        return "identify: hash is not the HMAC-SHA256 of email with the channel's secret"
    if frame.phone and not signed(secret, frame.phone, frame.phone_hash):
        return "identify: phone_hash is not the HMAC-SHA256 of phone with the channel's secret"
    return Verified(email=frame.email, phone=frame.phone)


def message_frame(message: Outbound) -> dict[str, Any]:
    return {
        "type": "message",
        "id": str(message.message_id),
        "sender": message.sender.value,
        "text": message.text,
        "buttons": [b.model_dump() for b in message.buttons],
        "attachments": [a.model_dump(mode="json") for a in message.attachments],
        "created_at": message.created_at.isoformat(),
    }
