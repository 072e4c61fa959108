"""WeChat's messages and events as the hub takes them (an `Inbound`), and which of them are
the customer speaking."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hub.messages import Inbound, Kind

MEDIA_KINDS = {
    "image": Kind.IMAGE,
    "voice": Kind.AUDIO,
    "video": Kind.VIDEO,
    "shortvideo": Kind.VIDEO,
}
GREETING_EVENTS = frozenset({"subscribe", "subscribe_scan", "subscribe_scan_product", "scan"})


@dataclass(frozen=True)
class Incoming:
    """One WeChat message or event as the hub takes it."""

    inbound: Inbound
    # False: not the customer speaking (unsubscribe, a menu link opened, a location report,
    # notifications to the account): nothing to answer
    conversational: bool
    media_id: str | None = None  # a file to fetch through the API before it reaches the hub


def channel_message_id(message: Any) -> str:
    """The MsgId; events have none, and WeChat's retries of one keep its sender, CreateTime
    and Event."""
    fields = message._data  # the XML's elements as wechatpy read them
    msg_id = fields.get("MsgId")
    if fields.get("MsgType") != "event" and isinstance(msg_id, str) and msg_id:
        return msg_id
    what = fields.get("Event") or fields.get("MsgType")
    return f"{message.source}:{fields.get('CreateTime')}:{what}"


def normalize(message: Any, channel: str, greeting: str | None) -> Incoming:
    """A parsed WeChat message as an Inbound. Raises ValueError on unreadable numbers."""
    new = functools.partial(
        Inbound,
        channel=channel,
        sender_id=message.source,
        channel_message_id=channel_message_id(message),
    )
    kind = message.type
    if kind == "text":
        return Incoming(new(text=message.content or ""), True)
    if kind in MEDIA_KINDS:
        media = {
            "media_id": message.media_id,
            "pic_url": getattr(message, "image", None),  # each kind has some of these
            "format": getattr(message, "format", None),
            "thumb_media_id": getattr(message, "thumb_media_id", None),
        }
        media = {k: v for k, v in media.items() if v}
        text = (message.recognition or "") if kind == "voice" else ""  # speech recognition
        inbound = new(kind=MEDIA_KINDS[kind], text=text, payload={"media": media})
        return Incoming(inbound, True, media_id=message.media_id or None)
    if kind == "location":
        try:
            lat, lng = float(message.location_x), float(message.location_y)
        except TypeError as e:  # Location_X or Location_Y missing, or not a plain value
            raise ValueError(f"a location without its coordinates: {e}") from e
        if not (math.isfinite(lat) and math.isfinite(lng)):  # NaN can't be stored as JSON
            raise ValueError(f"a location at {lat}, {lng}")
        place = {"latitude": lat, "longitude": lng, "label": message.label, "scale": message.scale}
        text = message.label or f"{lat}, {lng}"
        return Incoming(new(kind=Kind.LOCATION, text=text, payload={"location": place}), True)
    if kind == "link":
        link = {"title": message.title, "description": message.description, "url": message.url}
        text = "\n".join(v for v in (message.title, message.url) if v)
        return Incoming(new(text=text, payload={"link": link}), True)
    if kind == "event":
        return normalize_event(message, new, greeting)
    raw_type = str(message._data.get("MsgType"))
    # a kind of message this channel doesn't know (wechatpy says "unknown"): kept, text-less
    conversational = raw_type != "event" and not raw_type.startswith("device_")
    return Incoming(
        new(kind=Kind.EVENT if not conversational else Kind.TEXT, payload={"msg_type": raw_type}),
        conversational,
    )


def normalize_event(message: Any, new: Callable[..., Inbound], greeting: str | None) -> Incoming:
    """A follow or QR-code scan greets (the `greeting` payload); a menu click is a postback
    when its key is a payload ("/human") and text otherwise; the rest is not conversation."""
    event = message.event  # lowercased by wechatpy; subscribe + qrscene_ is subscribe_scan
    details: dict[str, Any] = {"type": event}
    key = message._data.get("EventKey")
    if isinstance(key, str) and key:
        details["key"] = key
    if event in ("subscribe_scan", "scan"):
        details.update(scene=message.scene_id, ticket=message.ticket)
    if event == "location":
        place = {
            "latitude": message.latitude,
            "longitude": message.longitude,
            "precision": message.precision,
        }
        return Incoming(
            new(kind=Kind.LOCATION, payload={"event": details, "location": place}), False
        )
    if event in GREETING_EVENTS and greeting:
        return Incoming(new(kind=Kind.EVENT, postback=greeting, payload={"event": details}), True)
    if event == "click" and isinstance(key, str) and key:
        payload = key if key.startswith("/") else None
        inbound = new(
            kind=Kind.EVENT,
            text="" if payload else key,
            postback=payload,
            payload={"event": details},
        )
        return Incoming(inbound, True)
    return Incoming(new(kind=Kind.EVENT, payload={"event": details}), False)
