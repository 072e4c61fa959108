"""A local server that speaks the WeChat official account's API, for the channel's tests:
`GET /cgi-bin/token` (counts fetches), `POST /cgi-bin/message/custom/send` (records what each
customer was sent) and `GET /cgi-bin/media/get`. It can be told to fail the next sends with an
errcode (45015, 40001, ...) or an HTTP status (500), and to revoke the current token."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

ERRMSG = {
    40001: "invalid credential, access_token is invalid or not latest",
    42001: "access_token expired",
    45015: "response out of time limit or subscription is canceled",
    -1: "system error",
}


@dataclass
class Sent:
    touser: str
    msgtype: str
    content: str
    raw: bytes  # the body as it came (WeChat wants raw UTF-8, not \\u escapes)


@dataclass
class FakeWeChat:
    app_id: str
    app_secret: str
    expires_in: int = 7200
    base: str = ""
    token_fetches: int = 0
    sent: list[Sent] = field(default_factory=list)
    media: dict[str, tuple[bytes, str, str]] = field(default_factory=dict)  # data, type, name
    media_delay: float = 0.0  # seconds media/get takes
    media_fetches: int = 0
    failures: list[int] = field(default_factory=list)  # next sends' errcodes or HTTP statuses
    lock: threading.Lock = field(default_factory=threading.Lock)
    _valid: set[str] = field(default_factory=set)

    def texts_to(self, recipient: str) -> list[str]:
        with self.lock:
            return [s.content for s in self.sent if s.touser == recipient]

    def fail_next(self, *outcomes: int) -> None:
        """The next sends answer these: an errcode, or an HTTP status (500-599)."""
        with self.lock:
            self.failures.extend(outcomes)

    def revoke_token(self) -> None:
        """Every token issued so far stops working (another server fetched a new one)."""
        with self.lock:
            self._valid.clear()

    def add_media(self, media_id: str, data: bytes, mime_type: str, name: str) -> None:
        with self.lock:
            self.media[media_id] = (data, mime_type, name)

    # ---- the endpoints (called from the server's threads) --------------------------------

    def token(self, query: dict[str, str]) -> tuple[int, Any]:
        if query.get("grant_type") != "client_credential":
            return 200, {"errcode": 40002, "errmsg": "invalid grant_type"}
        if query.get("appid") != self.app_id:
            return 200, {"errcode": 40013, "errmsg": "invalid appid"}
        if query.get("secret") != self.app_secret:
            return 200, {"errcode": 40125, "errmsg": "invalid appsecret"}
        with self.lock:
            self.token_fetches += 1
            token = f"TOKEN-{self.token_fetches}"
            self._valid.add(token)
        return 200, {"access_token": token, "expires_in": self.expires_in}

    def custom_send(self, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        with self.lock:
            if query.get("access_token") not in self._valid:
                return 200, {"errcode": 40001, "errmsg": ERRMSG[40001]}
            if self.failures:
                outcome = self.failures.pop(0)
                if 500 <= outcome < 600:  # an HTTP status
                    return outcome, {"errcode": -1, "errmsg": "server error"}
                if outcome in (40001, 42001):
                    self._valid.clear()
                return 200, {"errcode": outcome, "errmsg": ERRMSG.get(outcome, "error")}
            message = json.loads(body)
            content = message["text"]["content"] if message.get("msgtype") == "text" else ""
            self.sent.append(Sent(message["touser"], message["msgtype"], content, body))
        return 200, {"errcode": 0, "errmsg": "ok"}

    def media_get(self, query: dict[str, str]) -> tuple[int, Any]:
        time.sleep(self.media_delay)
        with self.lock:
            self.media_fetches += 1
            if query.get("access_token") not in self._valid:
                return 200, {"errcode": 40001, "errmsg": ERRMSG[40001]}
            found = self.media.get(query.get("media_id", ""))
        if found is None:
            return 200, {"errcode": 40007, "errmsg": "invalid media_id"}
        return 200, found


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # socketserver's 5 resets concurrent connections
    daemon_threads = True


@contextmanager
def running(app_id: str, app_secret: str, **options: Any) -> Iterator[FakeWeChat]:
    fake = FakeWeChat(app_id=app_id, app_secret=app_secret, **options)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/cgi-bin/token":
                self.answer(*fake.token(query))
            elif url.path == "/cgi-bin/media/get":
                self.answer(*fake.media_get(query))
            else:
                self.answer(404, {"errcode": 404, "errmsg": "not found"})

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            if url.path == "/cgi-bin/message/custom/send":
                self.answer(*fake.custom_send(query, body))
            else:
                self.answer(404, {"errcode": 404, "errmsg": "not found"})

        def answer(self, status: int, content: Any) -> None:
            if isinstance(content, tuple):  # a file: data, content type, name
                data, mime_type, name = content
                headers = {
                    "content-type": mime_type,
                    "content-disposition": f'attachment; filename="{name}"',
                }
            else:
                data = json.dumps(content, ensure_ascii=False).encode()
                headers = {"content-type": "application/json; encoding=utf-8"}
            self.send_response(status)
            for name, value in {**headers, "content-length": str(len(data))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    fake.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
