"""Unrecognized messages become training data (hub/features/nlu_review/review.py): the messages to
review, and
the examples designers label from them. Designers and admins.

- `GET /api/v1/nlu/review?since=&until=&limit=50`: unrecognized customer messages of the
  conversations created in [since, until) (the reports' window and definition), not labeled
  yet, most frequent first, with the classifier's best three intents for each.
- `POST /api/v1/nlu/examples` `{"text", "intent"}`: 201 with the example; 200 with the existing
  one when the text has that label already; 409 when it has another; 422 for an intent the
  bot's NLU data doesn't have (the answer lists the ones it has).
- `GET /api/v1/nlu/examples` (newest first), `DELETE /api/v1/nlu/examples/{id}`.

The next training (`POST /api/v1/bot/reload`, `kefu train`, a restart) uses the examples."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from fastapi.responses import JSONResponse
from pydantic import Field, field_validator

from hub.features import reports
from hub.features.nlu_review import review as nlu_review
from hub.features.nlu_review.review import NluReview
from hub.features.reports import WHEN
from hub.inbox.deps import DesignerAgent, HubDep, actor, part
from hub.inbox.schemas import Body, RowId
from hub.messages import utcnow

router = APIRouter(prefix="/api/v1", tags=["nlu"])


class BotFolder(Protocol):
    """The bot folder as it is now (hub.bot.BotReloader, the composition root's `reloader`)."""

    def intents_now(self) -> list[str]:
        """The intents of the folder's NLU data now; none while it has errors. Blocking."""
        ...


Folder = Annotated[BotFolder, Depends(part("reloader"))]
Review = Annotated[NluReview, Depends(part("nlu_review"))]

MAX_REVIEW = 500


class ExampleBody(Body):
    text: str = Field(min_length=1, max_length=4000, description="the customer's words")
    intent: str = Field(min_length=1, max_length=128, description="one of the bot's intents")

    @field_validator("text")
    @classmethod
    def _not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("text is blank")
        return text


@router.get("/nlu/review")
async def review(
    hub: HubDep,
    examples: Review,
    designer: DesignerAgent,
    since: Annotated[datetime | None, Query(description=WHEN + "; default: until - 7 days")] = None,
    until: Annotated[datetime | None, Query(description=WHEN + "; default: now")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_REVIEW)] = 50,
) -> dict[str, Any]:
    """The messages the bot did not understand and nobody labeled yet: `text`, `count`,
    `last_at`, `language` and `suggested` (the classifier's best intents), most frequent
    first. At most 366 days."""
    try:
        start, end = reports.window(since, until, utcnow())
    except reports.BadWindow as e:
        raise HTTPException(422, str(e)) from e
    items = await examples.review(
        hub.classifier,
        start,
        end,
        limit=limit,
        skip_channels=nlu_review.skipped_channels(hub.settings),
    )
    return {"items": items}


@router.get("/nlu/examples")
async def list_examples(examples: Review, designer: DesignerAgent) -> dict[str, Any]:
    """The labeled examples, newest first."""
    rows = await examples.examples()
    return {"items": [nlu_review.example_view(e) for e in rows]}


@router.post("/nlu/examples", status_code=201, response_model=None)
async def create_example(
    body: ExampleBody, hub: HubDep, examples: Review, folder: Folder, designer: DesignerAgent
) -> dict[str, Any] | JSONResponse:
    """Label a text with one of the bot's intents, for the next training."""
    known = await asyncio.to_thread(folder.intents_now)
    if body.intent not in known:
        detail = (
            f"intent {body.intent!r} is not one of the bot's intents: {', '.join(sorted(known))}"
            if known
            else "the bot's NLU data has errors, so it has no intents now (see GET /api/v1/bot)"
        )
        raise HTTPException(422, detail)
    who = actor(designer)
    try:
        example, created = await examples.label(body.text, body.intent, who)
    except nlu_review.ConflictingLabel as e:
        raise HTTPException(409, str(e)) from e
    view = nlu_review.example_view(example)
    if not created:
        return JSONResponse(view, status_code=200)
    await hub.store.audit(who, "nlu.example.created", example_id=example.id, intent=example.intent)
    return view


@router.delete("/nlu/examples/{example_id}", status_code=204)
async def delete_example(
    example_id: RowId, hub: HubDep, examples: Review, designer: DesignerAgent
) -> Response:
    example = await examples.unlabel(example_id)
    if example is None:
        raise HTTPException(404, f"labeled example {example_id} not found")
    await hub.store.audit(
        actor(designer), "nlu.example.deleted", example_id=example_id, intent=example.intent
    )
    return Response(status_code=204)
