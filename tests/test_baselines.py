"""The TF-IDF baseline and the overlap helpers lesson 02 uses to measure cleaning and leakage."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from course_utils.errors import ConfigError, DataError
from course_utils.labs.baselines import (
    BaselineConfig,
    compare_training_sets,
    drop_overlap,
    evaluate_baseline,
    fit_baseline,
    leakage_effect,
    overlap_keys,
    split_by_overlap,
)

POS = ["I love this phone", "great service, thank you", "what a lovely day", "best support ever",
       "so happy with the fix", "amazing and fast help"]
NEG = ["I hate this phone", "terrible service again", "what an awful day", "worst support ever",
       "so angry about the bug", "slow and useless help"]


def _frame(pos=POS, neg=NEG) -> pd.DataFrame:
    return pd.DataFrame({"text": list(pos) + list(neg), "label": ["positive"] * len(pos) + ["negative"] * len(neg)})


def test_baseline_learns_words_and_reports_course_metrics():
    model = fit_baseline(_frame(), BaselineConfig(min_df=1, ngram_range=(1, 1)))
    test = pd.DataFrame({"text": ["love the service", "hate the awful bug"], "label": ["positive", "negative"]})
    metrics = evaluate_baseline(model, test)
    assert metrics["accuracy"] == 1.0
    assert metrics["labels"] == ["negative", "positive"]
    assert metrics["confusion_matrix"] == [[1, 0], [0, 1]]


def test_baseline_rejects_bad_frames_with_clear_messages():
    with pytest.raises(DataError, match="missing column"):
        fit_baseline(pd.DataFrame({"text": ["a", "b"]}))
    with pytest.raises(DataError, match="two classes"):
        fit_baseline(pd.DataFrame({"text": ["a", "b"], "label": ["x", "x"]}))
    with pytest.raises(DataError, match="no label"):
        fit_baseline(pd.DataFrame({"text": ["a", "b"], "label": ["x", None]}))
    model = fit_baseline(_frame(), BaselineConfig(min_df=1))
    with pytest.raises(DataError, match="never seen"):
        evaluate_baseline(model, pd.DataFrame({"text": ["meh"], "label": ["neutral"]}))


def test_baseline_config_is_validated():
    with pytest.raises(ConfigError, match="C"):
        BaselineConfig(C=0)
    with pytest.raises(ConfigError, match="ngram_range"):
        BaselineConfig(ngram_range=(2, 1))


def test_overlap_matches_raw_and_cleaned_copies_of_a_tweet():
    raw = pd.DataFrame({"text": ["RT @bob: Loving it!! https://t.co/abc", "caf\u00c3\u00a9 time", "new text"]})
    cleaned = pd.DataFrame({"text": ["Loving it!! http", "caf\u00e9 time"]})
    keys = overlap_keys(raw)
    assert keys.iloc[0] == overlap_keys(cleaned).iloc[0] == "loving it http"
    assert keys.iloc[1] == "café time"
    overlap, rest = split_by_overlap(raw, cleaned)
    assert len(overlap) == 2 and rest["text"].tolist() == ["new text"]
    kept, report = drop_overlap(raw, cleaned)
    assert kept["text"].tolist() == ["new text"]
    assert report.rows_before == 3 and report.rows_removed == 2


def test_overlap_exact_mode_needs_identical_text():
    a = pd.DataFrame({"text": ["Hello world", "hello world!"]})
    b = pd.DataFrame({"text": ["Hello world"]})
    assert len(split_by_overlap(a, b, near=False)[0]) == 1
    assert len(split_by_overlap(a, b, near=True)[0]) == 2
    with pytest.raises(DataError, match="'text'"):
        split_by_overlap(pd.DataFrame({"body": ["x"]}), b)


def test_compare_training_sets_holds_model_and_test_fixed():
    test = pd.DataFrame({"text": ["love the service", "hate the awful bug"], "label": ["positive", "negative"]})
    config = BaselineConfig(min_df=1)
    table = compare_training_sets({"full": _frame(), "half": _frame(POS[:3], NEG[:3])}, test, config)
    assert list(table.index) == ["full", "half"]
    assert table.loc["full", "train_rows"] == 12 and table.loc["half", "train_rows"] == 6
    assert table["accuracy"].between(0, 1).all()
    with pytest.raises(ConfigError):
        compare_training_sets({}, test)


def test_leakage_effect_separates_memorised_rows():
    train = _frame()
    test = pd.concat([train.iloc[[0, 6]], pd.DataFrame({"text": ["purple elephants"], "label": ["positive"]})])
    model = fit_baseline(train, BaselineConfig(min_df=1))
    table = leakage_effect(model, train, test)
    assert table.loc["all test rows", "rows"] == 3
    assert table.loc["leaked (text also in train)", "rows"] == 2
    assert table.loc["leaked (text also in train)", "accuracy"] == 1.0
    assert table.loc["unseen", "rows"] == 1


def test_leakage_effect_with_no_leak_reports_nan_row():
    train = _frame()
    test = pd.DataFrame({"text": ["purple elephants", "green frogs"], "label": ["positive", "negative"]})
    table = leakage_effect(fit_baseline(train, BaselineConfig(min_df=1)), train, test)
    assert table.loc["leaked (text also in train)", "rows"] == 0
    assert math.isnan(table.loc["leaked (text also in train)", "accuracy"])

