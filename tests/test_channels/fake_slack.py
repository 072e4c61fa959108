"""A local server speaking the part of Slack the hub uses: the Web API methods (auth.test,
chat.postMessage, users.info, apps.connections.open), private file downloads and the Socket
Mode WebSocket. It records every call and can answer the next calls of a method with an
error (429 with Retry-After, an error name such as not_in_channel, a 5xx, a delay).

It runs aiohttp on its own thread and event loop, so the hub under test (in TestClient's
loop) talks to it over real HTTP, as it would to slack.com.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

BOT_TOKEN = "xoxb-fake-bot-token"
APP_TOKEN = "xapp-fake-app-token"
# The identity bolt-python's own tests give auth.test (tests/mock_web_api_server), so the
# vectors' "self" events (bot BZYBOTHED, user W23456789) are ours here too.
IDENTITY = {
    "ok": True,
    "url": "https://subarachnoid.slack.com/",
    "team": "Subarachnoid Workspace",
    "user": "bot",
    "team_id": "T111",
    "user_id": "W23456789",
    "bot_id": "BZYBOTHED",
}


@dataclass
class Call:
    method: str  # "chat.postMessage", "users.info", "files", ...
    args: dict[str, Any]
    token: str | None
    at: float  # time.monotonic() when it arrived


@dataclass
class Answer:
    """How to answer one call instead of the usual success."""

    status: int = 200
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    text: str | None = None  # a non-JSON body (an HTML error page)
    content_type: str = "text/html"  # of `text`: "application/json" for JSON that isn't


def ratelimited(retry_after: int = 1) -> Answer:
    return Answer(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)})


def error(name: str) -> Answer:
    return Answer(200, {"ok": False, "error": name})


def server_error(status: int = 503) -> Answer:
    return Answer(status, text="<html><body>Service Unavailable</body></html>")


def slow(seconds: float) -> Answer:
    return Answer(delay=seconds)


class FakeSlack:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.acks: list[dict[str, Any]] = []  # Socket Mode envelope acknowledgements
        self.files: dict[str, tuple[bytes, str]] = {}  # path -> (data, content type)
        self.users: dict[str, dict[str, Any]] = {}
        self._answers: dict[str, list[Answer]] = {}
        self._sockets: list[web.WebSocketResponse] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.root = ""  # http://127.0.0.1:<port>

    # ---- what tests read and arrange -----------------------------------------------------

    @property
    def base(self) -> str:
        """The channel's api_base."""
        return f"{self.root}/api/"

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def posts(self, channel: str | None = None) -> list[dict[str, Any]]:
        """chat.postMessage arguments that succeeded, optionally to one channel."""
        return [
            c.args
            for c in self.calls_to("chat.postMessage")
            if c.args.get("_ok") and (channel is None or c.args.get("channel") == channel)
        ]

    def texts_to(self, recipient: str) -> list[str]:
        """Texts posted to a channel (a DM channel is the customer here)."""
        return [str(p.get("text")) for p in self.posts(recipient)]

    def answer_next(self, method: str, *answers: Answer) -> None:
        """The next calls of `method` get these answers, in order, then success again."""
        with self._lock:
            self._answers.setdefault(method, []).extend(answers)

    def add_file(self, name: str, data: bytes, content_type: str = "image/png") -> str:
        """A private file only the bot token may fetch; returns its url_private."""
        path = f"/files-pri/T111-F{len(self.files)}/{name}"
        self.files[path] = (data, content_type)
        return self.root + path

    def add_user(self, user_id: str, display_name: str, real_name: str = "") -> None:
        self.users[user_id] = {
            "id": user_id,
            "name": display_name.lower().replace(" ", "."),
            "real_name": real_name or display_name,
            "profile": {"display_name": display_name},
        }

    @property
    def socket_connected(self) -> bool:
        return any(not ws.closed for ws in self._sockets)

    def push(self, payload: dict[str, Any], envelope_id: str, kind: str = "events_api") -> None:
        """Send one Socket Mode envelope to every connected client."""
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": False,
            "retry_attempt": 0,
            "retry_reason": "",
        }

        async def send() -> None:
            for ws in self._sockets:
                if not ws.closed:
                    await ws.send_str(json.dumps(envelope))

        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(send(), self._loop).result(5)

    # ---- the server ------------------------------------------------------------------------

    def _next_answer(self, method: str) -> Answer | None:
        with self._lock:
            queue = self._answers.get(method)
            return queue.pop(0) if queue else None

    def _record(self, method: str, args: dict[str, Any], request: web.Request) -> Call:
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
        call = Call(method, args, token, time.monotonic())
        with self._lock:
            self.calls.append(call)
        return call

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                args.update(await request.json())
            else:
                args.update(await request.post())
        call = self._record(method, args, request)
        answer = self._next_answer(method)
        if answer is not None:
            await asyncio.sleep(answer.delay)
            if answer.text is not None:
                return web.Response(
                    status=answer.status, text=answer.text, content_type=answer.content_type
                )
            if answer.body is not None:
                return web.json_response(answer.body, status=answer.status, headers=answer.headers)
        expected = APP_TOKEN if method == "apps.connections.open" else BOT_TOKEN
        if call.token != expected:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        call.args["_ok"] = True
        return web.json_response(self._success(method, args))

    def _success(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return IDENTITY
        if method == "chat.postMessage":
            ts = f"{time.time():.6f}"
            return {"ok": True, "channel": args.get("channel"), "ts": ts, "message": {"ts": ts}}
        if method == "users.info":
            user = self.users.get(str(args.get("user")))
            return {"ok": True, "user": user} if user else {"ok": False, "error": "user_not_found"}
        if method == "apps.connections.open":
            return {"ok": True, "url": self.root.replace("http://", "ws://") + "/socket"}
        return {"ok": False, "error": "unknown_method"}

    async def _file(self, request: web.Request) -> web.StreamResponse:
        call = self._record("files", {"path": request.path}, request)
        found = self.files.get(request.path)
        if call.token != BOT_TOKEN:
            # Slack answers a login page, not an error status, to a request without the token
            return web.Response(text="<html>Sign in to Slack</html>", content_type="text/html")
        if found is None:
            return web.Response(status=404)
        data, content_type = found
        return web.Response(body=data, content_type=content_type)

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_str(json.dumps({"type": "hello", "num_connections": 1}))
        async for message in ws:
            if message.type == WSMsgType.TEXT:
                with self._lock:
                    self.acks.append(json.loads(message.data))
        return ws

    @contextlib.contextmanager
    def running(self) -> Iterator[FakeSlack]:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/files-pri/{path:.*}", self._file)
        app.router.add_get("/socket", self._socket)
        runner = web.AppRunner(app)
        loop = asyncio.new_event_loop()
        self._loop = loop
        started = threading.Event()

        async def start() -> None:
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.root = f"http://127.0.0.1:{port}"
            started.set()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(start())
            loop.run_forever()
            loop.run_until_complete(self._shutdown(runner))
            loop.close()

        thread = threading.Thread(target=serve, name="fake-slack", daemon=True)
        thread.start()
        assert started.wait(10), "the fake Slack server did not start"
        try:
            yield self
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)

    async def _shutdown(self, runner: web.AppRunner) -> None:
        for ws in self._sockets:
            await ws.close()
        await runner.cleanup()
        await asyncio.sleep(0.05)  # closed transports finish closing before the loop does


@contextlib.contextmanager
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack().running() as fake:
        yield fake
