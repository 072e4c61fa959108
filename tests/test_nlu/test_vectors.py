"""Static subword vectors, and the classifier using them next to its n-grams."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

from nlu import IntentClassifier, TrainingData
from nlu.classifier import training_key
from nlu.vectors import TABLE_FILE, StaticVectors, VectorsError, save

VOCAB = ["[UNK]", "[CLS]", "[SEP]", "refund", "money", "back", "where", "order", "parcel", "track"]
# Two directions of meaning: "getting money back" and "finding a parcel".
MEANING = {"refund": 0, "money": 0, "back": 0, "where": 1, "order": 1, "parcel": 1, "track": 1}


def make_vectors(folder: Path, noise: float = 0.0) -> StaticVectors:
    tokenizer = Tokenizer(models.WordPiece({t: i for i, t in enumerate(VOCAB)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    rng = np.random.default_rng(0)
    table = rng.normal(0, 0.05 + noise, (len(VOCAB), 8)).astype(np.float32)
    for token, axis in MEANING.items():
        table[VOCAB.index(token), axis] += 1.0
    save(folder, tokenizer, table, {"source": "test"})
    return StaticVectors.load(folder)


DATA = TrainingData.from_yaml(
    "nlu:\n"
    "- intent: refund\n  examples: |\n    - I want a refund\n    - refund please\n"
    "    - can I get a refund\n"
    "- intent: track\n  examples: |\n    - where is my order\n    - track my order\n"
    "    - where is it\n"
)


def test_sentence_vectors_are_unit_means_of_token_vectors(tmp_path: Path) -> None:
    vectors = make_vectors(tmp_path)
    assert vectors.dimensions == 8
    refund, money = vectors.embed("Refund!"), vectors.embed("money back")
    assert np.isclose(np.linalg.norm(refund), 1.0) and float(refund @ money) > 0.9
    assert float(refund @ vectors.embed("where is my parcel")) < 0.3
    assert not vectors.embed("").any()
    assert np.allclose(vectors.embed_many(["refund", "track"])[1], vectors.embed("track"))


def test_a_damaged_folder_is_a_clear_error(tmp_path: Path) -> None:
    make_vectors(tmp_path)
    (tmp_path / TABLE_FILE).write_bytes(b"garbage")
    with pytest.raises(VectorsError, match="not a usable vectors folder"):
        StaticVectors.load(tmp_path)
    with pytest.raises(VectorsError):
        StaticVectors.load(tmp_path / "missing")


def test_vectors_carry_meaning_the_ngrams_lack(tmp_path: Path) -> None:
    vectors = make_vectors(tmp_path / "v")
    with_vectors = IntentClassifier.train(DATA, vectors=vectors)
    parse = with_vectors.parse("money back")  # no word or 3-gram in common with "refund"
    assert parse.ranking[0][0] == "refund"
    assert with_vectors.parse("parcel?").ranking[0][0] == "track"


def test_saved_model_loads_with_its_vectors_and_refuses_others(tmp_path: Path) -> None:
    vectors = make_vectors(tmp_path / "v")
    model = IntentClassifier.train(DATA, vectors=vectors)
    model.save(tmp_path / "model")
    loaded = IntentClassifier.load(tmp_path / "model")  # finds the folder it was trained with
    texts = ["money back", "where is my parcel", "退款"]
    assert loaded.parse_many(texts) == model.parse_many(texts)

    other = make_vectors(tmp_path / "other", noise=0.1)
    with pytest.raises(ValueError, match="other vectors"):
        IntentClassifier.load(tmp_path / "model", vectors=other)
    key = training_key(DATA, vectors=vectors.digest)
    assert model.metadata["training_key"] == key != training_key(DATA)


def test_the_digest_covers_what_parsing_uses_not_the_metadata(tmp_path: Path) -> None:
    first = make_vectors(tmp_path / "a")
    tokenizer = Tokenizer.from_file(str(tmp_path / "a" / "tokenizer.json"))
    save(tmp_path / "b", tokenizer, first.table, {"source": "built elsewhere"})
    assert StaticVectors.load(tmp_path / "b").digest == first.digest
    save(tmp_path / "c", tokenizer, first.table * 2, {"source": "test"})
    assert StaticVectors.load(tmp_path / "c").digest != first.digest


def test_far_from_every_example_is_out_of_scope_however_sure_the_svm(tmp_path: Path) -> None:
    # Without the bundled negatives ("qwerty" is one): the closeness discount alone is tested.
    model = IntentClassifier.train(
        DATA, vectors=make_vectors(tmp_path), threshold=0.3, negatives=False
    )
    near = model.parse("refund please")
    assert near.intent == "refund" and near.confidence > 0.5
    assert near.confidence <= near.ranking[0][1]  # the probability, discounted by closeness
    far = model.parse("qwerty zzz")  # unknown tokens: a vector unlike either intent's
    assert far.ranking[0][1] > 0.5  # the SVM alone would take it
    assert far.intent is None and far.confidence < 0.3
