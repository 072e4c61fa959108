"""The entity benchmark (bench/nlu_entities.py): figures, held-out recall, offsets in Chinese."""

from __future__ import annotations

import importlib.util
import re
import sys
import unicodedata
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from nlu import TrainingData
from nlu.entities import EntityExtractor
from nlu.tokenize import HAN

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "shop" / "nlu"
HELDOUT = ROOT / "tests" / "fixtures" / "entities_heldout.yml"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """bench/ is scripts, not a package: load the module from its file."""
    spec = importlib.util.spec_from_file_location(
        "nlu_entities", ROOT / "bench" / "nlu_entities.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["nlu_entities"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def demo() -> TrainingData:
    return TrainingData.load(DEMO)


@pytest.fixture(scope="module")
def extractor(demo: TrainingData) -> EntityExtractor:
    return EntityExtractor(demo.regexes, demo.lookups, demo.synonyms)


def test_evaluation_runs_on_the_demo_data(bench: ModuleType) -> None:
    result = bench.evaluate(DEMO)
    data = result["data"]
    assert (data["annotated"], data["gold_spans"], data["folds"]) == (18, 19, 18)  # leave-one-out
    assert data["heldout_messages"] >= 30
    for evaluation in ("cross_validation", "heldout"):
        assert set(result[evaluation]) == {"regex_lookup", "learned", "combined"}
        for scores in result[evaluation].values():
            for figure in ("precision", "recall", "f1", "value_accuracy"):
                assert 0.0 <= scores[figure] <= 1.0, (evaluation, scores)
    # The bot's own patterns find every annotated entity of its own data.
    assert result["cross_validation"]["regex_lookup"]["recall"] == 1.0
    assert "| regex_lookup |" in bench.markdown(result)


def test_regex_lookup_finds_every_heldout_entity_its_patterns_cover(
    bench: ModuleType, extractor: EntityExtractor
) -> None:
    messages = bench.load_heldout(HELDOUT)
    covered = [(m.text, g) for m in messages for g in m.entities if not g.outside_patterns]
    missed, stale = [], []
    for message in messages:
        found = {
            (e["entity"], e["start"], e["end"], e["value"]) for e in extractor.extract(message.text)
        }
        for gold in message.entities:
            caught = (gold.entity, gold.start, gold.end, gold.value) in found
            if not gold.outside_patterns and not caught:
                missed.append((message.text, message.text[gold.start : gold.end], gold.value))
            if gold.outside_patterns and caught:  # an exclusion no longer needed
                stale.append((message.text, message.text[gold.start : gold.end], gold.value))
    assert missed == []
    assert stale == []
    # What the fixture exercises: 6-12 digit order ids anywhere in Chinese text (first, middle,
    # last, after full-width punctuation or as full-width digits) and synonyms canonicalized.
    chinese_ids = [
        (text, gold)
        for text, gold in covered
        if gold.entity == "order_id" and re.search(f"[{HAN}]", text)
    ]
    assert len(chinese_ids) >= 10
    assert any(gold.start == 0 for _, gold in chinese_ids)
    assert any(gold.end == len(text) for text, gold in chinese_ids)
    synonyms = {(text[g.start : g.end], g.value) for text, g in covered if g.entity == "carrier"}
    assert {("SF express", "顺丰"), ("顺丰速运", "顺丰"), ("中国邮政", "EMS")} <= synonyms
    assert {("SF", "顺丰"), ("ZTO", "中通"), ("China Post", "EMS")} <= synonyms  # short names


def test_chinese_offsets_are_right_for_both_extractors(
    bench: ModuleType, demo: TrainingData, extractor: EntityExtractor
) -> None:
    text = "您好，我的订单２０２３１１０５用顺丰发的，还是SF Express？"
    expected: list[dict[str, Any]] = [
        {"entity": "order_id", "value": "２０２３１１０５", "start": 7, "end": 15},
        {"entity": "carrier", "value": "顺丰", "start": 16, "end": 18},
        {"entity": "carrier", "value": "顺丰", "start": 23, "end": 33},
    ]
    assert extractor.extract(text) == expected
    assert text[23:33] == "SF Express"

    tagger = bench.TokenTagger(extractor.canonical).fit(
        bench.demo_messages(demo, extractor.canonical)
    )
    learned = tagger.extract(text)
    assert learned[0] == expected[0]  # the order id, at the same offsets
    assert all(entity in expected for entity in learned)


def test_token_offsets_point_into_the_original_text(bench: ModuleType) -> None:
    text = "Ｏｒｄｅｒ 556677889 还没到，顺丰速运说在路上"
    tokens = bench.token_offsets(text)
    assert tokens[:2] == [("order", 0, 5), ("556677889", 6, 15)]
    for token, start, end in tokens:
        assert unicodedata.normalize("NFKC", text[start:end]).casefold() == token
