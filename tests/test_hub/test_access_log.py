"""Access logs carry no credentials and no customer ids: the values of sensitive query
parameters (WeChat's signature, timestamp, nonce, echostr and openid; the widget's visitor and
token; tokens, hashes, emails and phones) are masked in uvicorn's access lines and its
WebSocket lines, the path and the other parameters still readable (hub/ops/redact.py)."""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from flows import FlowEngine
from hub.app import create_app
from hub.ops.logs import handler
from hub.ops.redact import mask_query, redact
from nlu import IntentClassifier
from tests.conftest import make_settings
from tests.test_channels import kit_wechat
from tests.test_channels.kit_wechat import TOKEN, signed, text_xml

# uvicorn's own access line (protocols/http/h11_impl.py and httptools_impl.py), and the line
# its WebSocket protocols write to uvicorn.error when a socket is accepted
ACCESS_LINE = '%s - "%s %s HTTP/%s" %d'
WEBSOCKET_LINE = '%s - "WebSocket %s" [accepted]'
VISITOR, VISITOR_TOKEN = "v-4f1c9a77", "tok-93e2d0aa51"
OPENID = "oyORnuP8q7ou2gfYjqLzSIWZf0rs"
WECHAT_QUERY = (
    "signature=16120ec1b8dbb870f510d87ce6bc2463eae6ca1a&timestamp=1409735669&nonce=1320562132"
    f"&openid={OPENID}&encrypt_type=aes&msg_signature=5d197aaffba7e9b25a30732f161a50dee96bd5fa"
)
WECHAT_VALUES = [
    "16120ec1b8dbb870f510d87ce6bc2463eae6ca1a",
    "1409735669",
    "1320562132",
    OPENID,
    "5d197aaffba7e9b25a30732f161a50dee96bd5fa",
]


def uvicorn_record(name: str, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, logging.INFO, "h11_impl.py", 477, msg, args, None)


def written(log_format: str, record: logging.LogRecord) -> str:
    """What the hub's log handler (kefu run's) writes for the record."""
    stream = io.StringIO()
    handler(log_format, stream).handle(record)
    return stream.getvalue()


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_the_widgets_visitor_and_token_are_masked_in_the_access_line(log_format: str) -> None:
    path = f"/channels/web/ws?visitor={VISITOR}&token={VISITOR_TOKEN}&lang=zh"
    record = uvicorn_record(
        "uvicorn.access", ACCESS_LINE, "127.0.0.1:52000", "GET", path, "1.1", 101
    )

    line = written(log_format, record)

    assert VISITOR not in line and VISITOR_TOKEN not in line
    message = json.loads(line)["message"] if log_format == "json" else line
    assert '"GET /channels/web/ws?visitor=***&token=***&lang=zh HTTP/1.1" 101' in message


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_wechats_signature_parameters_are_masked_in_the_access_line(log_format: str) -> None:
    path = f"/channels/wechat/shop?{WECHAT_QUERY}"
    record = uvicorn_record(
        "uvicorn.access", ACCESS_LINE, "101.226.1.1:4000", "POST", path, "1.1", 200
    )

    line = written(log_format, record)

    assert not [value for value in WECHAT_VALUES if value in line], line
    assert (
        "POST /channels/wechat/shop?signature=***&timestamp=***&nonce=***&openid=***"
        "&encrypt_type=aes&msg_signature=*** HTTP/1.1" in line
    )


def test_uvicorns_own_formatters_still_format_the_masked_lines() -> None:
    """Served by plain `uvicorn` with its default logging (not `kefu run`), the access line is
    still written, masked: its formatter unpacks the record's arguments, which the masking keeps
    (masked one by one) instead of dropping them."""
    from uvicorn.logging import AccessFormatter, DefaultFormatter

    from hub.ops.redact import pii_filter

    path = f"/channels/web/ws?visitor={VISITOR}&token={VISITOR_TOKEN}"
    access = uvicorn_record(
        "uvicorn.access", ACCESS_LINE, "127.0.0.1:52000", "GET", path, "1.1", 101
    )
    accepted = uvicorn_record("uvicorn.error", WEBSOCKET_LINE, "127.0.0.1:52000", path)
    for record in (access, accepted):
        pii_filter().filter(record)  # what the record factory does to every record
    access_line = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s')
    line = access_line.format(access)
    assert line == (
        '127.0.0.1:52000 - "GET /channels/web/ws?visitor=***&token=*** HTTP/1.1" 101'
        " Switching Protocols"
    )
    line = DefaultFormatter("%(message)s").format(accepted)
    assert line == '127.0.0.1:52000 - "WebSocket /channels/web/ws?visitor=***&token=***" [accepted]'


def test_the_websocket_accepted_line_is_masked_too() -> None:
    path = f"/channels/web/ws?visitor={VISITOR}&token={VISITOR_TOKEN}"
    record = uvicorn_record("uvicorn.error", WEBSOCKET_LINE, "127.0.0.1:52000", path)

    line = written("text", record)

    assert VISITOR not in line and VISITOR_TOKEN not in line
    assert '"WebSocket /channels/web/ws?visitor=***&token=***" [accepted]' in line


@pytest.mark.parametrize(
    "name",
    [
        *("signature", "msg_signature", "timestamp", "nonce", "echostr", "openid", "token"),
        *("visitor", "hash", "phone_hash", "email", "phone", "access_token", "secret"),
        *("corpsecret", "api_key", "Token", "refresh_token", "code", "password"),
    ],
)
def test_each_sensitive_parameter_is_masked(name: str) -> None:
    assert mask_query(f"GET /p?lang=zh&{name}=s3nsitive-v4lue HTTP/1.1") == (
        f"GET /p?lang=zh&{name}=*** HTTP/1.1"
    )


@pytest.mark.parametrize(
    "text",
    [
        "GET /api/v1/conversations?status=open&channel=web&cursor=abc&q=refund HTTP/1.1",
        "GET /channels/web/ws HTTP/1.1",
        "GET /media/ab12/photo.png HTTP/1.1",
        "a message that says key=value and token = x",
        "GET /p?encrypt_type=aes&limit=20 HTTP/1.1",
    ],
)
def test_the_path_and_other_parameters_stay_readable(text: str) -> None:
    assert redact(text) == text


def test_a_percent_encoded_or_bracketed_name_is_still_masked() -> None:
    assert mask_query("/p?visitor%5B%5D=v1&e%6Dail=a%40b.c") == "/p?visitor%5B%5D=***&e%6Dail=***"


# ---- end to end: a hub served by uvicorn on a loopback port --------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(
    tmp_path: Path, sqlite_url: str, classifier: IntentClassifier, flows: FlowEngine
) -> Iterator[tuple[str, io.StringIO]]:
    """The hub with a web and a WeChat channel, served by uvicorn as `kefu run` serves it
    (log_config=None: its loggers go through the hub's handler); what it logs, as JSON."""
    channels = [
        {"name": "web", "type": "web"},
        {"name": "shop", "type": "wechat", **kit_wechat.options("http://127.0.0.1:9", aes=False)},
    ]
    settings = make_settings(sqlite_url, tmp_path, channels=channels)
    app = create_app(settings, classifier=classifier, flows=flows)
    stream = io.StringIO()
    out = handler("json", stream)
    root = logging.getLogger()
    root.addHandler(out)
    # as under `kefu run`: uvicorn's loggers write through the root's handler only (a server
    # started earlier in this process with uvicorn's default logging gave them their own
    # handlers and stopped them propagating)
    saved = {}
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        saved[name] = (logger.handlers[:], logger.propagate)
        logger.handlers, logger.propagate = [], True
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, log_level="info", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    try:
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the hub did not start"
            time.sleep(0.05)
        yield f"127.0.0.1:{port}", stream
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        root.removeHandler(out)
        for name, (handlers, propagate) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers, logger.propagate = handlers, propagate


def test_a_served_hub_logs_no_visitor_token_or_wechat_signature(
    served: tuple[str, io.StringIO], caplog: pytest.LogCaptureFixture
) -> None:
    from websockets.sync.client import connect

    where, stream = served
    with connect(f"ws://{where}/channels/web/ws?visitor={VISITOR}&token={VISITOR_TOKEN}") as ws:
        hello = json.loads(ws.recv(timeout=10))
    stamp = str(int(time.time()))
    echo = {"timestamp": stamp, "nonce": "8675309", "echostr": "echo-5d1e77"}
    echo["signature"] = kit_wechat.signature(TOKEN, stamp, echo["nonce"])
    message = signed("shop", text_xml(OPENID, "hello", "9001"), aes=False)
    with httpx.Client(base_url=f"http://{where}", timeout=10) as http:
        verified = http.get("/channels/wechat/shop", params=echo)
        answered = http.post(
            "/channels/wechat/shop",
            params={**message.params, "openid": OPENID},
            content=message.body,
        )
    time.sleep(0.3)  # the last access line is written as the response starts

    assert hello["type"] == "hello"
    assert verified.text == "echo-5d1e77" and answered.status_code == 200
    logged = [json.loads(line) for line in stream.getvalue().splitlines()]
    lines = [f"{entry['logger']}: {entry['message']}" for entry in logged]
    everything = "\n".join(lines) + caplog.text
    secrets = [VISITOR, VISITOR_TOKEN, "echo-5d1e77", echo["signature"], "8675309"]
    secrets += [message.params["signature"], message.params["nonce"], OPENID]
    assert not [s for s in secrets if s in everything], everything
    assert any(
        line.startswith("uvicorn.error: ")
        and '"WebSocket /channels/web/ws?visitor=***&token=***"' in line
        for line in lines
    ), lines
    access = [line for line in lines if line.startswith("uvicorn.access: ")]
    assert any(
        '"GET /channels/wechat/shop?timestamp=***&nonce=***&echostr=***&signature=*** HTTP/1.1" 200'
        in line
        for line in access
    ), access
    assert any(
        '"POST /channels/wechat/shop?timestamp=***&nonce=***&openid=***&signature=*** HTTP/1.1" 200'
        in line
        for line in access
    ), access
