"""A local HTTP server speaking the part of the Telegram Bot API the hub's aiogram client uses,
so the channel is tested over real HTTP (aiogram's own AiohttpSession), not with mocks.

    with running_fake(TOKEN) as api:          # api.base is the channel's `api_base`
        api.add_file("file-1", b"...", "photos/file_1.jpg")
        api.fail("sendMessage", 429, "Too Many Requests: retry after 2", retry_after=2)
        api.slow("sendMessage", 8.0)          # the next call answers after 8 s
        api.push_update({...})                # what the next getUpdates returns (polling)
        api.texts_to(chat_id)                 # what the hub sent, in order

Methods: getMe, sendMessage, sendPhoto, sendDocument, answerCallbackQuery, getFile,
deleteWebhook, getUpdates (long polling), and file downloads at `/file/bot<token>/<path>`.
Every call is recorded (method, decoded parameters, time, the status answered).
"""

from __future__ import annotations

import contextlib
import email.parser
import email.policy
import json
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

BOT_USERNAME = "kefu_shop_bot"
JSON_FIELDS = ("reply_markup", "reply_parameters", "allowed_updates")


def numeric_id(recipient: str | int) -> int:
    """A Telegram chat id for a test's customer name: digits stand for themselves, any other
    name gets a stable positive number (the conformance kit names customers "cust-1")."""
    text = str(recipient)
    if text.lstrip("-").isdigit():
        return int(text)
    return zlib.crc32(text.encode()) & 0x7FFFFFFF or 1


def bot_id(token: str) -> int:
    return int(token.split(":", 1)[0])


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float  # time.monotonic() when it arrived
    status: int = 200  # what the fake answered


@dataclass
class Failure:
    status: int
    description: str
    retry_after: int | None
    times: int
    after: int  # calls of the method answered normally before this failure starts


@dataclass
class FakeTelegram:
    token: str
    base: str = ""
    calls: list[Call] = field(default_factory=list)
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # file_id -> (data, path)
    failures: dict[str, list[Failure]] = field(default_factory=dict)
    delays: dict[str, list[float]] = field(default_factory=dict)  # method -> next calls' delays
    updates: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Condition = field(default_factory=threading.Condition)
    closed: bool = False
    _next_message_id: int = 1000

    # ---- what a test sets up ------------------------------------------------------------

    def add_file(self, file_id: str, data: bytes, path: str) -> None:
        with self.lock:
            self.files[file_id] = (data, path)

    def fail(
        self,
        method: str,
        status: int,
        description: str,
        retry_after: int | None = None,
        times: int = 1,
        after: int = 0,
    ) -> None:
        """Answer `times` calls of `method` with this error (Telegram's shape), once `after`
        more calls have been answered normally."""
        with self.lock:
            self.failures.setdefault(method, []).append(
                Failure(status, description, retry_after, times, after)
            )

    def slow(self, method: str, seconds: float, times: int = 1) -> None:
        """Answer the next `times` calls of `method` after `seconds` (a slow platform)."""
        with self.lock:
            self.delays.setdefault(method, []).extend([seconds] * times)

    def delay(self, method: str) -> float:
        with self.lock:
            queued = self.delays.get(method)
            return queued.pop(0) if queued else 0.0

    def push_update(self, update: dict[str, Any]) -> None:
        """Queue an update for getUpdates (polling mode)."""
        with self.lock:
            self.updates.append(update)
            self.lock.notify_all()

    # ---- what a test reads --------------------------------------------------------------

    def calls_of(self, method: str, ok_only: bool = True) -> list[Call]:
        with self.lock:
            return [
                c for c in self.calls if c.method == method and (c.status == 200 or not ok_only)
            ]

    def sent_to(self, recipient: str | int) -> list[dict[str, Any]]:
        """Parameters of every message delivered to the chat, in order."""
        chat = numeric_id(recipient)
        methods = ("sendMessage", "sendPhoto", "sendDocument")
        with self.lock:
            return [
                c.params
                for c in self.calls
                if c.method in methods and c.status == 200 and int(c.params["chat_id"]) == chat
            ]

    def texts_to(self, recipient: str | int) -> list[str]:
        return [p.get("text") or p.get("caption") or "" for p in self.sent_to(recipient)]

    # ---- the API ------------------------------------------------------------------------

    def bot_user(self) -> dict[str, Any]:
        return {
            "id": bot_id(self.token),
            "is_bot": True,
            "first_name": "Kefu Shop",
            "username": BOT_USERNAME,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def answer(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON body) for one Bot API call."""
        with self.lock:
            queued = self.failures.get(method)
            if queued and queued[0].after > 0:
                queued[0].after -= 1
            elif queued:
                failure = queued[0]
                failure.times -= 1
                if failure.times <= 0:
                    queued.pop(0)
                body: dict[str, Any] = {
                    "ok": False,
                    "error_code": failure.status,
                    "description": failure.description,
                }
                if failure.retry_after is not None:
                    body["parameters"] = {"retry_after": failure.retry_after}
                return failure.status, body
        handler = self.handlers().get(method)
        if handler is None:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        return 200, {"ok": True, "result": handler(params)}

    def handlers(self) -> dict[str, Callable[[dict[str, Any]], Any]]:
        return {
            "getMe": lambda p: self.bot_user(),
            "sendMessage": self.sent_message,
            "sendPhoto": self.sent_message,
            "sendDocument": self.sent_message,
            "answerCallbackQuery": lambda p: True,
            "deleteWebhook": lambda p: True,
            "getFile": self.get_file,
            "getUpdates": self.get_updates,
        }

    def sent_message(self, params: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self._next_message_id += 1
            message_id = self._next_message_id
        chat_id = int(params["chat_id"])
        chat: dict[str, Any] = {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"}
        if chat_id < 0:
            chat["title"] = "Test group"
        message = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": chat,
            "from": self.bot_user(),
        }
        if "text" in params:
            message["text"] = params["text"]
        if "caption" in params:
            message["caption"] = params["caption"]
        if "reply_markup" in params:
            message["reply_markup"] = params["reply_markup"]
        return message

    def get_file(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = params["file_id"]
        with self.lock:
            data, path = self.files[file_id]
        return {
            "file_id": file_id,
            "file_unique_id": f"u-{file_id}"[:32],
            "file_size": len(data),
            "file_path": path,
        }

    def get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """Long polling: wait up to `timeout` seconds for an update at or after `offset`."""
        offset = int(params.get("offset", 0))
        deadline = time.monotonic() + min(float(params.get("timeout", 0)), 5.0)
        with self.lock:
            while True:
                ready = [u for u in self.updates if u["update_id"] >= offset]
                left = deadline - time.monotonic()
                if ready or self.closed or left <= 0:
                    return ready
                self.lock.wait(left)

    def file(self, path: str) -> bytes | None:
        with self.lock:
            return next((data for data, p in self.files.values() if p == path), None)

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.lock.notify_all()


def parse_params(content_type: str, body: bytes) -> dict[str, Any]:
    """aiogram posts form fields (urlencoded, or multipart when it uploads a file); JSON
    values such as reply_markup arrive as JSON text."""
    if content_type.startswith("multipart/form-data"):
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"content-type: {content_type}\r\n\r\n".encode() + body
        )
        params: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            params[str(name)] = payload.decode() if isinstance(payload, bytes) else payload
    elif content_type.startswith("application/json"):
        params = json.loads(body or b"{}")
    else:
        params = dict(parse_qsl(body.decode(), keep_blank_values=True))
    for key in JSON_FIELDS:
        if isinstance(params.get(key), str):
            params[key] = json.loads(params[key])
    return params


def _handler(api: FakeTelegram) -> type[BaseHTTPRequestHandler]:
    api_prefix = f"/bot{api.token}/"
    file_prefix = f"/file/bot{api.token}/"

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            if not self.path.startswith(api_prefix):
                self.reply(401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
                return
            method = self.path[len(api_prefix) :].split("?", 1)[0]
            params = parse_params(self.headers.get("content-type", ""), body)
            call = Call(method, params, time.monotonic(), status=0)  # 0: not answered yet
            with api.lock:
                api.calls.append(call)
            time.sleep(api.delay(method))
            status, answer = api.answer(method, params)
            call.status = status
            self.reply(status, answer)

        def do_GET(self) -> None:
            data = None
            if self.path.startswith(file_prefix):
                data = api.file(self.path[len(file_prefix) :])
            if data is None:
                self.send_response(404)
                self.send_header("content-length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("content-type", "application/octet-stream")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def reply(self, status: int, body: dict[str, Any]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a long poll whose client went away (the hub stopped polling): nothing to say


@contextlib.contextmanager
def running_fake(token: str) -> Iterator[FakeTelegram]:
    api = FakeTelegram(token)
    server = _Server(("127.0.0.1", 0), _handler(api))
    api.base = f"http://127.0.0.1:{server.server_address[1]}"
    # a short poll interval: shutdown() waits for serve_forever to look up
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield api
    finally:
        api.close()
        server.shutdown()
        server.server_close()
        thread.join(5)
