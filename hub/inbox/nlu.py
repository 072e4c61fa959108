"""The NLU parse API: what the bot's classifier makes of a message, in the shape of Rasa's
`POST /model/parse`, so Rasa tooling can test a bot served by the hub."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from starlette.concurrency import run_in_threadpool

from hub.core.understanding import PayloadTooDeep, parse_payload
from hub.inbox.deps import CurrentAgent, HubDep
from hub.inbox.schemas import NluEntity, NluIntent, NluParse, NluParseBody, NluRankedIntent

router = APIRouter(prefix="/api/v1", tags=["nlu"])

RANKING_LENGTH = 10  # as Rasa's classifiers (`ranking_length`)
# The names of the Rasa 3 components doing the same jobs, as Rasa tooling filters on them.
EXTRACTOR = "RegexEntityExtractor"  # regexes and lookup tables
PAYLOAD_EXTRACTOR = "RegexMessageHandler"  # `/intent{json}`


@router.post("/nlu/parse")
async def parse(body: NluParseBody, hub: HubDep, agent: CurrentAgent) -> NluParse:
    """Intent, entities and intent ranking of `text`; nothing is stored, no flow runs.

    As in Rasa, the text is stripped (entity offsets index the stripped text) and a
    `/intent{"entity": "value"}` payload is taken as said, with confidence 1."""
    text = body.text.strip()
    try:
        explicit = parse_payload(text)
    except PayloadTooDeep as e:
        raise HTTPException(422, str(e)) from None
    if explicit is not None:
        assert explicit.intent is not None
        start = text.find("{")  # as Rasa 3.6: payload entities span the JSON object
        return NluParse(
            text=text,
            intent=NluIntent(name=explicit.intent, confidence=1.0),
            entities=[
                NluEntity(
                    entity=str(e["entity"]),
                    value=value,
                    start=start,
                    end=len(text),
                    extractor=PAYLOAD_EXTRACTOR,
                )
                for e in explicit.entities
                for value in _values(e["value"])
            ],
            intent_ranking=[NluRankedIntent(name=explicit.intent, confidence=1.0)],
            language=None,
            ambiguous=False,
        )
    # ~3 ms for a sentence but ~90 ms for 10,000 Chinese characters: off the event loop.
    result = await run_in_threadpool(hub.classifier.parse, text)
    return NluParse(
        text=text,
        intent=NluIntent(name=result.intent, confidence=float(result.confidence)),
        entities=[
            NluEntity(
                entity=str(e["entity"]),
                value=e["value"],
                start=int(e["start"]),
                end=int(e["end"]),
                extractor=EXTRACTOR,
            )
            for e in result.entities
        ],
        intent_ranking=[
            NluRankedIntent(name=name, confidence=float(confidence))
            for name, confidence in result.ranking[:RANKING_LENGTH]
        ],
        language=None if result.language == "und" else result.language,
        ambiguous=result.ambiguous,
    )


def _values(value: Any) -> list[Any]:
    """Rasa gives one entity per value of a list: `{"size": ["S", "M"]}` is two entities."""
    return value if isinstance(value, list) else [value]
