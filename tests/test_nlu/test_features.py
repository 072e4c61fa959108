"""The hand-rolled parse-time features equal scikit-learn's, which training uses."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from nlu.features import ANALYZERS, Featurizer, char_ngrams, normalize, word_ngrams

TRAIN = [
    "where is my order 12345678",
    "Where's my parcel?? it is LATE",
    "我的订单20231105到哪了",
    "我想退货，衣服太大了",
    "can I pay with 微信支付",
    "ｆｕｌｌ　ｗｉｄｔｈ text",
    "a",
    "hi hi hi",
]
UNSEEN = [
    "wheres my oder",
    "快递怎么还没到",
    "order order order 99999",
    "",
    "   ",
    "🙂",
    "退货 return 退货",
    "an entirely new sentence with no known words zzzz",
]


@pytest.mark.parametrize("text", TRAIN + UNSEEN)
def test_char_ngrams_are_sklearns_char_wb_of_the_normalized_text(text: str) -> None:
    sklearn_wb = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), lowercase=False)
    assert char_ngrams(text) == sklearn_wb.build_analyzer()(normalize(text))


def test_word_ngrams_cut_chinese_with_jieba_and_join_bigrams() -> None:
    assert word_ngrams("Where is my 订单") == [
        "where",
        "is",
        "my",
        "订单",
        "where is",
        "is my",
        "my 订单",
    ]
    assert word_ngrams("order 12345678") == ["order", "0000", "order 0000"]


def test_rows_equal_the_fitted_vectorizers_transform() -> None:
    featurizer, rows = Featurizer.fit(TRAIN)
    vectorizers = [
        TfidfVectorizer(analyzer=ANALYZERS[name], sublinear_tf=True).fit(TRAIN)
        for name in ANALYZERS
    ]
    expected = sp.hstack([v.transform(TRAIN + UNSEEN) for v in vectorizers]).toarray()
    assert np.allclose(rows.toarray(), expected[: len(TRAIN)])
    for index, text in enumerate(TRAIN + UNSEEN):
        columns, values = featurizer.row(text)
        dense = np.zeros(featurizer.size)
        dense[columns] = values
        assert np.allclose(dense, expected[index]), text


def test_blank_text_has_an_empty_row() -> None:
    featurizer, _ = Featurizer.fit(TRAIN)
    for text in ("", " \n "):
        columns, values = featurizer.row(text)
        assert len(columns) == len(values) == 0
