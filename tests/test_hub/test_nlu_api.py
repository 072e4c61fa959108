"""`POST /api/v1/nlu/parse`: the demo bot's NLU in the shape of Rasa's `/model/parse`."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

URL = "/api/v1/nlu/parse"


def parse(client: TestClient, auth: dict[str, str], text: str, **extra: Any) -> dict[str, Any]:
    r = client.post(URL, json={"text": text, **extra}, headers=auth)
    assert r.status_code == 200, r.text
    return r.json()


def assert_rasa_shape(result: dict[str, Any]) -> None:
    assert set(result) == {"text", "intent", "entities", "intent_ranking", "language", "ambiguous"}
    assert set(result["intent"]) == {"name", "confidence"}
    for item in result["intent_ranking"]:
        assert set(item) == {"name", "confidence"}
    for entity in result["entities"]:
        assert set(entity) == {"entity", "value", "start", "end", "extractor"}
    assert isinstance(result["ambiguous"], bool)


def spans(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(entity, value, the text at its offsets) of each entity."""
    text = result["text"]
    return [(e["entity"], e["value"], text[e["start"] : e["end"]]) for e in result["entities"]]


def test_english_order_message(client: TestClient, auth: dict[str, str]) -> None:
    result = parse(client, auth, "where is my order 12345678", message_id="b2831e73")  # ignored
    assert_rasa_shape(result)
    assert result["text"] == "where is my order 12345678"
    assert result["intent"]["name"] == "check_order"
    assert result["intent"]["confidence"] > 0.5
    assert result["entities"] == [
        {
            "entity": "order_id",
            "value": "12345678",
            "start": 18,
            "end": 26,
            "extractor": "RegexEntityExtractor",
        }
    ]
    assert result["language"] == "en"


def test_chinese_order_message_offsets_index_the_stripped_text(
    client: TestClient, auth: dict[str, str]
) -> None:
    result = parse(client, auth, "  我的订单20231105到哪了 \n")
    assert result["text"] == "我的订单20231105到哪了"  # stripped, as Rasa does
    assert result["intent"]["name"] == "check_order"
    assert [(e["start"], e["end"]) for e in result["entities"]] == [(4, 12)]
    assert spans(result) == [("order_id", "20231105", "20231105")]
    assert result["language"] == "zh"


@pytest.mark.parametrize(
    ("text", "span"),
    [("能发顺丰吗", "顺丰"), ("do you ship with SF Express?", "SF Express")],
)
def test_carrier_lookup_with_synonym(
    client: TestClient, auth: dict[str, str], text: str, span: str
) -> None:
    result = parse(client, auth, text)
    assert result["intent"]["name"] == "shipping"
    assert spans(result) == [("carrier", "顺丰", span)]  # the canonical value, the span as written


@pytest.mark.parametrize("text", ["what is the meaning of life", "今天天气怎么样"])
def test_out_of_scope_has_a_null_intent_name(
    client: TestClient, auth: dict[str, str], text: str
) -> None:
    result = parse(client, auth, text)
    assert_rasa_shape(result)
    assert result["intent"]["name"] is None  # present and null, not missing
    best = result["intent_ranking"][0]
    assert best["name"] == "out_of_scope"
    assert result["intent"]["confidence"] == best["confidence"] > 0.5
    assert result["entities"] == []


@pytest.mark.parametrize("text", ["hello", "谢谢", "can you ship order 12345678 with DHL"])
def test_intent_ranking_is_sorted_and_at_most_one(
    client: TestClient, auth: dict[str, str], text: str
) -> None:
    result = parse(client, auth, text)
    ranking = result["intent_ranking"]
    scores = [item["confidence"] for item in ranking]
    assert 1 < len(ranking) <= 10  # Rasa's default ranking_length
    assert scores == sorted(scores, reverse=True)
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert sum(scores) <= 1.0 + 1e-9
    assert len({item["name"] for item in ranking}) == len(ranking)
    assert result["intent"] == ranking[0]


def test_intent_payload_is_taken_as_said(client: TestClient, auth: dict[str, str]) -> None:
    text = '/check_order{"order_id": "12345678"}'
    result = parse(client, auth, text)
    assert result == {
        "text": text,
        "intent": {"name": "check_order", "confidence": 1.0},
        # as Rasa 3.6's RegexMessageHandler: the entity spans the JSON object
        "entities": [
            {
                "entity": "order_id",
                "value": "12345678",
                "start": 12,
                "end": len(text),
                "extractor": "RegexMessageHandler",
            }
        ],
        "intent_ranking": [{"name": "check_order", "confidence": 1.0}],
        "language": None,
        "ambiguous": False,
    }
    assert parse(client, auth, "/human")["intent"] == {"name": "human", "confidence": 1.0}


def test_payload_list_values_give_one_entity_each(client: TestClient, auth: dict[str, str]) -> None:
    result = parse(client, auth, '/returns{"size": ["S", "M"], "count": 2}')
    assert [(e["entity"], e["value"]) for e in result["entities"]] == [
        ("size", "S"),
        ("size", "M"),
        ("count", 2),
    ]


def test_parsing_stores_nothing(client: TestClient, auth: dict[str, str]) -> None:
    parse(client, auth, "where is my order 12345678")
    r = client.get("/api/v1/conversations", headers=auth)
    assert r.json()["items"] == []


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer not-a-token"}, {"authorization": "Basic bGluOnB3"}],
)
def test_a_token_is_required(client: TestClient, agent: int, headers: dict[str, str]) -> None:
    r = client.post(URL, json={"text": "hi"}, headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    r = client.post(URL, json={}, headers=headers)  # not told what is wrong with the body
    assert r.status_code == 401


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "Field required"),
        ({"message_id": "m1"}, "Field required"),
        ({"text": None}, "valid string"),
        ({"text": 42}, "valid string"),
        ({"text": ["hi"]}, "valid string"),
        ({"text": ""}, "at least 1 character"),
        ({"text": " \n\t"}, "text is blank"),
        ({"text": "x" * 10_001}, "at most 10000 characters"),
    ],
)
def test_bad_text_is_422_saying_what_is_wrong(
    client: TestClient, auth: dict[str, str], body: dict[str, Any], message: str
) -> None:
    r = client.post(URL, json=body, headers=auth)
    assert r.status_code == 422, r.text
    [error] = r.json()["detail"]
    assert error["loc"] == ["body", "text"]
    assert message in error["msg"]


def test_malformed_bodies_are_422(client: TestClient, auth: dict[str, str]) -> None:
    headers = {**auth, "content-type": "application/json"}
    for content in (b"not json", b'["hi"]', b'"hi"', b"\xff\xfe"):
        r = client.post(URL, content=content, headers=headers)
        assert r.status_code == 422, (content, r.text)


@pytest.mark.parametrize("depth", [33, 300, 1500])  # 1500: beyond json.loads
def test_payload_nested_too_deep_is_422(
    client: TestClient, auth: dict[str, str], depth: int
) -> None:
    for value in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
        r = client.post(URL, json={"text": f'/check_order{{"order_id": {value}}}'}, headers=auth)
        assert r.status_code == 422, r.text
        assert r.json()["detail"] == "the payload's entity values nest deeper than 32 levels"


def test_payload_nested_32_deep_is_answered(client: TestClient, auth: dict[str, str]) -> None:
    value = '{"a":' * 31 + "[1]" + "}" * 31
    [entity] = parse(client, auth, f'/check_order{{"order_id": {value}}}')["entities"]
    assert entity["value"] == json.loads(value)


def test_longest_text_and_odd_characters_parse(client: TestClient, auth: dict[str, str]) -> None:
    longest = ("我的订单到哪了" * 1429)[:10_000]
    assert parse(client, auth, longest)["intent"]["name"] == "check_order"
    # a lone surrogate (valid JSON, not encodable) becomes U+FFFD, offsets unchanged
    r = client.post(
        URL,
        content=b'{"text": "hi \\ud800 order 12345678"}',
        headers={**auth, "content-type": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["text"] == "hi \ufffd order 12345678"
    assert spans(r.json()) == [("order_id", "12345678", "12345678")]
    # offsets count code points, so an emoji is one
    result = parse(client, auth, "😀 where is my order 12345678")
    assert [(e["start"], e["end"]) for e in result["entities"]] == [(20, 28)]
