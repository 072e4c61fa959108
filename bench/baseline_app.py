"""The benchmark's baseline: a bare FastAPI endpoint with the REST channel's request shape.

It accepts the same JSON body as `POST /webhooks/rest/webhook` (validated by a pydantic model
like the channel's) and answers a one-element JSON list, with no NLU, flows or database: the
floor the hub's REST channel is compared with. Served by uvicorn in one process, the way
`kefu run` serves the hub:

    python bench/baseline_app.py --host 127.0.0.1 --port 8100
"""

from __future__ import annotations

import argparse
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field


class RestMessage(BaseModel):
    sender: str = Field(min_length=1, max_length=255)
    message: str = Field(max_length=10_000)
    metadata: dict[str, Any] | None = None


app = FastAPI(title="REST baseline")


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/webhooks/rest/webhook")
async def webhook(body: RestMessage) -> list[dict[str, Any]]:
    return [{"recipient_id": body.sender, "text": "ok"}]


def main() -> None:
    import uvicorn

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8100)
    args = p.parse_args()
    # The same uvicorn settings as `kefu run` (hub/cli.py), access log included.
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", ws_max_size=1_000_000)


if __name__ == "__main__":
    main()
