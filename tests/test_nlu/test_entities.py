"""Regex and lookup entities, synonym mapping and character offsets."""

from __future__ import annotations

from pathlib import Path

from nlu import TrainingData
from nlu.entities import EntityExtractor

DEMO = Path(__file__).parents[2] / "examples" / "shop" / "nlu"


def demo_extractor() -> EntityExtractor:
    data = TrainingData.load(DEMO)
    return EntityExtractor(data.regexes, data.lookups, data.synonyms)


def test_offsets_in_chinese_text() -> None:
    text = "您好，我的订单20231105用顺丰发的，到哪了"
    entities = demo_extractor().extract(text)
    assert entities == [
        {"entity": "order_id", "value": "20231105", "start": 7, "end": 15},
        {"entity": "carrier", "value": "顺丰", "start": 16, "end": 18},
    ]
    for entity in entities:
        assert text[entity["start"] : entity["end"]] == entity["value"]


def test_synonyms_map_to_canonical_values() -> None:
    text = "Is it shipped by sf  EXPRESS or by 中通快递?"
    entities = demo_extractor().extract(text)
    assert [(e["value"], text[e["start"] : e["end"]]) for e in entities] == [
        ("顺丰", "sf  EXPRESS"),
        ("中通", "中通快递"),
    ]


def test_lookup_match_takes_the_table_spelling() -> None:
    (entity,) = demo_extractor().extract("can you send it with fedex")
    assert entity == {"entity": "carrier", "value": "FedEx", "start": 21, "end": 26}


def test_lookup_values_do_not_match_inside_words() -> None:
    assert demo_extractor().extract("two items and a bumps") == []


def test_order_id_regex_ignores_longer_and_shorter_numbers() -> None:
    extractor = demo_extractor()
    assert extractor.extract("call 13800138000123 or use code 12345") == []
    assert [e["value"] for e in extractor.extract("单号123456和987654321")] == [
        "123456",
        "987654321",
    ]


def test_a_mobile_number_is_not_an_order_id() -> None:
    extractor = demo_extractor()
    found = extractor.extract("订单20231105没到，打我电话13912345678")
    assert [(e["entity"], e["value"]) for e in found] == [("order_id", "20231105")]


def test_short_carrier_names_are_found_and_canonical() -> None:
    extractor = demo_extractor()
    found = extractor.extract("shipped by SF, not ZTO or China Post")
    assert [e["value"] for e in found] == ["顺丰", "中通", "EMS"]


def test_longest_of_overlapping_matches_wins() -> None:
    extractor = EntityExtractor(
        regexes={"number": [r"\d+"]}, lookups={"carrier": ["顺丰", "顺丰速运"]}
    )
    assert extractor.extract("顺丰速运 12") == [
        {"entity": "carrier", "value": "顺丰速运", "start": 0, "end": 4},
        {"entity": "number", "value": "12", "start": 5, "end": 7},
    ]


def test_no_patterns_no_entities() -> None:
    assert EntityExtractor().extract("anything 12345678") == []
