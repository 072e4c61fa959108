"""Knowledge for agents: search the bot's articles and FAQs, and suggestions for a
conversation (the best articles and canned responses for what the customer last wrote)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from starlette.concurrency import run_in_threadpool

from hub.core.fallback import pick
from hub.inbox.deps import CurrentAgent, HubDep, visible_conversation
from hub.inbox.schemas import RowId
from hub.store import CannedResponse

router = APIRouter(prefix="/api/v1", tags=["knowledge"])

RECENT = 3  # customer messages the suggestions look at
_WORDS = re.compile(r"[^\W\d_]+|\d+", re.UNICODE)


def hit_view(hit: Any, language: str | None, default_language: str) -> dict[str, Any]:
    entry = hit.entry
    return {
        "id": entry.id,
        "kind": entry.kind,
        "title": entry.title,
        "summary": pick(entry.summary, language, default_language),
        "answer": pick(entry.answer, language, default_language),
        "url": entry.url,
        "tags": list(entry.tags),
        "score": round(float(hit.score), 4),
        "confident": bool(hit.confident),
    }


async def search(hub: Any, query: str, k: int, language: str | None) -> list[dict[str, Any]]:
    knowledge = hub.knowledge
    if knowledge is None or not query.strip():
        return []
    hits = await run_in_threadpool(knowledge.search, query, k, language)
    return [hit_view(h, language, hub.settings.bot.language) for h in hits]


@router.get("/knowledge/search")
async def knowledge_search(
    hub: HubDep,
    agent: CurrentAgent,
    q: Annotated[str, Query(min_length=1, max_length=2000, description="what to look for")],
    k: Annotated[int, Query(ge=1, le=50)] = 5,
    language: Annotated[str | None, Query(max_length=16)] = None,
) -> dict[str, Any]:
    """The best articles and FAQ entries for `q`, best first."""
    if not q.strip():
        raise HTTPException(422, "q: say what to look for")
    return {"query": q, "items": await search(hub, q, k, language)}


@router.get("/conversations/{conversation_id}/suggestions")
async def suggestions(
    conversation_id: RowId,
    hub: HubDep,
    agent: CurrentAgent,
    k: Annotated[int, Query(ge=1, le=20)] = 3,
) -> dict[str, Any]:
    """Articles and canned responses for the customer's last messages, best first."""
    conversation = await visible_conversation(hub, agent, conversation_id)
    texts = [t for t in await hub.store.recent_customer_texts(conversation_id, RECENT) if t]
    query = " ".join(t for t in texts if not t.startswith("/"))
    language = conversation.language
    canned = rank_canned(query, await hub.store.canned_responses(), k)
    return {
        "query": query,
        "articles": await search(hub, query, k, language),
        "canned": canned,
    }


def rank_canned(query: str, responses: list[CannedResponse], k: int) -> list[dict[str, Any]]:
    """Canned responses sharing the most words with the query (Chinese: characters)."""
    wanted = terms(query)
    if not wanted:
        return []
    scored = []
    for response in responses:
        have = terms(f"{response.short_code} {response.text}")
        overlap = len(wanted & have) / (len(wanted) ** 0.5 * max(len(have), 1) ** 0.5)
        if overlap > 0:
            scored.append((overlap, response))
    scored.sort(key=lambda pair: -pair[0])
    return [
        {"short_code": r.short_code, "text": r.text, "score": round(score, 4)}
        for score, r in scored[:k]
    ]


def terms(text: str) -> set[str]:
    """Lowercased words; Chinese text as single characters and pairs of them."""
    found: set[str] = set()
    for word in _WORDS.findall(text.lower()):
        if any("\u4e00" <= ch <= "\u9fff" for ch in word):
            found.update(word)
            found.update(word[i : i + 2] for i in range(len(word) - 1))
        elif len(word) > 2:
            found.add(word)
    return found
