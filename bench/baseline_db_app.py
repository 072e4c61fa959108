"""The load benchmark's baseline: a bare FastAPI app that stores each message with one INSERT.

What it does per message, and nothing more (no NLU, flows, contacts, conversations or events):

- `POST /webhooks/rest/webhook` with the REST channel's body, validated by the same pydantic
  model as bench/baseline_app.py: one `INSERT INTO message (sender, channel, text, created_at)`
  and its COMMIT, then a one-element JSON list `[{"recipient_id": ..., "text": "ok"}]`;
- WebSocket `/channels/web/ws?visitor=<id>` with the widget's frames (DESIGN.md section 4): a
  `hello` first; per `message` frame, the same INSERT + COMMIT, then an `ack` with the row id and
  a `message` frame from the "bot" (same id);
- `GET /count`: how many messages are stored (the benchmark's lost-message count).

The database is SQLite in WAL mode with `synchronous=NORMAL`, as the hub's default, through one
aiosqlite connection (the hub's SQLite driver, without the ORM). Served by uvicorn in one process,
the way `kefu run` serves the hub:

    python bench/baseline_db_app.py --db /tmp/baseline.db --port 8100
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import aiosqlite
from baseline_app import RestMessage
from fastapi import FastAPI, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, Field, ValidationError

SCHEMA = """
CREATE TABLE IF NOT EXISTS message (
    id INTEGER PRIMARY KEY,
    sender TEXT NOT NULL,
    channel TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at TEXT NOT NULL
)
"""


class MessageFrame(BaseModel):
    type: str
    client_id: str | None = Field(default=None, max_length=64)
    text: str = Field(default="", max_length=4000)


def create_app(path: str) -> FastAPI:
    db: dict[str, aiosqlite.Connection] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        conn = await aiosqlite.connect(path)
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")
        await conn.execute(SCHEMA)
        await conn.commit()
        db["conn"] = conn
        try:
            yield
        finally:
            await conn.close()

    app = FastAPI(title="REST + widget baseline with one INSERT", lifespan=lifespan)

    async def insert(sender: str, channel: str, text: str) -> int:
        conn = db["conn"]
        now = dt.datetime.now(dt.UTC).isoformat()
        cursor = await conn.execute(
            "INSERT INTO message (sender, channel, text, created_at) VALUES (?, ?, ?, ?)",
            (sender, channel, text, now),
        )
        await conn.commit()
        return int(cursor.lastrowid or 0)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/count")
    async def count() -> dict[str, int]:
        async with db["conn"].execute("SELECT count(*) FROM message") as cursor:
            row = await cursor.fetchone()
        return {"messages": int(row[0]) if row else 0}

    @app.post("/webhooks/rest/webhook")
    async def webhook(body: RestMessage) -> list[dict[str, Any]]:
        await insert(body.sender, "rest", body.message)
        return [{"recipient_id": body.sender, "text": "ok"}]

    @app.websocket("/channels/web/ws")
    async def widget(websocket: WebSocket) -> None:
        visitor = websocket.query_params.get("visitor") or os.urandom(8).hex()
        await websocket.accept()
        await websocket.send_json({"type": "hello", "visitor": visitor, "conversation_id": None})
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                raw = await websocket.receive_text()
                try:
                    frame = MessageFrame.model_validate(json.loads(raw))
                except (ValueError, ValidationError):
                    await websocket.send_json({"type": "error", "error": "invalid frame"})
                    continue
                if frame.type != "message":
                    continue
                message_id = await insert(visitor, "web", frame.text)
                await websocket.send_json(
                    {"type": "ack", "client_id": frame.client_id, "id": str(message_id)}
                )
                await websocket.send_json(
                    {
                        "type": "message",
                        "id": str(message_id),
                        "sender": "bot",
                        "text": "ok",
                        "buttons": [],
                        "attachments": [],
                        "created_at": dt.datetime.now(dt.UTC).isoformat(),
                    }
                )

    return app


def main() -> None:
    import uvicorn

    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--db", required=True, help="SQLite file (created if missing)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8100)
    args = p.parse_args()
    # The same uvicorn settings as `kefu run` (hub/cli.py), access log included.
    uvicorn.run(
        create_app(args.db),
        host=args.host,
        port=args.port,
        log_level="info",
        ws_max_size=1_000_000,
    )


if __name__ == "__main__":
    main()
