"""Logging: plain text (the default) or JSON lines (`log_format: json`, `KEFU_LOG_FORMAT=json`),
each record with the request's id and the conversation's when known.

`configure_logging` puts one handler on the root logger; uvicorn's own loggers (its access log
too) propagate to it when uvicorn runs with `log_config=None`, as `kefu run` does. The ids come
from context variables: `RequestId` (ASGI middleware) sets the request's, from the client's
`X-Request-ID` header or a new one, echoed in the response; the pipeline and the inbox routes
set the conversation's."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.ops.redact import pii_filter

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
conversation_id: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "conversation_id", default=None
)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# line breaks and other control characters: in a text log line they are written escaped, so
# that what a client sent (a login's email, a path) can't start a line of its own
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def escape_controls(text: str) -> str:
    """`text` with control characters written as escapes: a line break as `\\n`."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class TextFormatter(logging.Formatter):
    """TEXT_FORMAT, one line per record (control characters escaped); a traceback, when
    there is one, follows on its own lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape_controls(super().formatMessage(record))


class ContextFilter(logging.Filter):
    """Stamps each record with the current request and conversation ids."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id.get()
        if getattr(record, "conversation_id", None) is None:
            record.conversation_id = conversation_id.get()
        return True


_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's copy of the message with terminal colours
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, conversation_id,
    exc_info (the traceback, when there is one) and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and value is not None:
                line[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:  # hub.ops.redact may have masked it
            line["exc_info"] = record.exc_text
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def handler(log_format: str = "text", stream: Any = None) -> logging.Handler:
    """A stream handler (stderr by default) in `log_format`, stamping the ids and masking
    secrets and personal data (hub.ops.redact) in every record, its `extra` fields too."""
    out = logging.StreamHandler(stream if stream is not None else sys.stderr)
    out.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter(TEXT_FORMAT))
    out.addFilter(ContextFilter())
    out.addFilter(pii_filter())
    return out


def configure_logging(log_format: str = "text", level: int = logging.INFO) -> None:
    """The root logger writes through one `handler(log_format)` (replacing any before)."""
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler(log_format))
    root.setLevel(level)


_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestId:
    """ASGI middleware: the request's id (the client's `X-Request-ID` when it is a sane token,
    else a new one) in the `request_id` context variable and the response's header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        ident = given if _VALID_ID.match(given) else uuid.uuid4().hex
        token = request_id.set(ident)

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", ident.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            request_id.reset(token)
