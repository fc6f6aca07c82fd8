"""The inputs a submitted model is scored on, and the labels that stay with the grader.

One builder per evaluation set; ``grading/build_spec.py`` uses the same builders for its reference
scores, so each set is defined once. Each set says whether a learner could have seen its rows:

* ``fraud_test``: rows drawn from the learner's own fraud process with a **secret** sample seed
  (:func:`course_utils.grading.spec.keyed_seed`): the same problem the learner trained for, on rows that
  only the spec's holder can generate, so a model that looks labels up has nothing to look up;
* ``breast_cancer_test`` and ``tweets_test``: the course's public splits. A learner who trains on them
  (or ships a lookup table as a model) cannot be told apart from one who learned, so the report marks
  these answers "public evaluation data", and an instructor can pass rows of their own instead:
  ``course-utils grade ... --eval-set tweets_test=private_tweets.csv`` (columns ``text,label``) or
  ``--eval-set breast_cancer_test=rows.csv`` (the 30 feature columns of scikit-learn's data, then ``label``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from course_utils.errors import ConfigError, DataError
from course_utils.grading.spec import keyed_seed
from course_utils.grading.variants import variant_data

TWEETS_TEST_SIZE = 512


@dataclass(frozen=True)
class EvaluationSet:
    method: str  # what the grader's runner calls: predict, predict_proba or predict_texts
    inputs: list
    labels: list
    public: bool  # True: a learner could have seen these rows
    facts: dict = field(default_factory=dict)  # what the rules may check (the training split's size)


def tweets_test_frame():
    """The binary tweet test set of lesson 05 and exercises 05 and 08 (512 tweets, split seed 42)."""
    from course_utils.data import load_course_dataset, split_dataset, stratified_sample

    tweets = load_course_dataset("tweets", binary=True)
    return stratified_sample(split_dataset(tweets, seed=42).test, TWEETS_TEST_SIZE, seed=42)


def breast_cancer_test(spec: Mapping, seed: int) -> EvaluationSet:
    from course_utils.labs.applications import load_breast_cancer_splits

    data = load_breast_cancer_splits(seed=0)
    return EvaluationSet("predict", data.X_test.tolist(), data.y_test.astype(int).tolist(), public=True,
                         facts={"train_size": int(len(data.y_train))})


def fraud_rows(spec: Mapping, seed: int):
    """The learner's fraud process (their variant), new rows from the spec's secret: (X, y)."""
    import numpy as np

    from course_utils.labs.applications import make_fraud_data

    fresh = make_fraud_data(**variant_data("fraud", seed), sample_seed=keyed_seed(spec, "fraud-evaluation", seed))
    return np.vstack([fresh.X_val, fresh.X_test]), np.concatenate([fresh.y_val, fresh.y_test]).astype(int)


def fraud_test(spec: Mapping, seed: int) -> EvaluationSet:
    X, y = fraud_rows(spec, seed)
    return EvaluationSet("predict_proba", X.tolist(), y.tolist(), public=False)


def tweets_test(spec: Mapping, seed: int) -> EvaluationSet:
    test = tweets_test_frame()
    return EvaluationSet("predict_texts", test["text"].tolist(), test["label"].astype(str).tolist(), public=True)


EVALUATION_SETS: dict[str, Callable[[Mapping, int], EvaluationSet]] = {
    "breast_cancer_test": breast_cancer_test,
    "fraud_test": fraud_test,
    "tweets_test": tweets_test,
}
PRIVATE_FILE_COLUMNS = {"breast_cancer_test": "30 numeric feature columns then 'label' (1 = malignant)",
                        "tweets_test": "'text' and 'label' (negative / positive)"}


def read_private_set(name: str, path: str | os.PathLike) -> EvaluationSet:
    """An instructor's own evaluation rows for a public set (``--eval-set NAME=FILE``)."""
    import pandas as pd

    if name not in PRIVATE_FILE_COLUMNS:
        raise ConfigError(f"--eval-set takes {sorted(PRIVATE_FILE_COLUMNS)}; {name!r} is not one "
                          "(fraud_test is already drawn from the spec's secret).")
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"--eval-set {name}={path}: cannot read it as CSV ({type(exc).__name__}).") from None
    if "label" not in frame.columns or len(frame) < 20:
        raise DataError(f"--eval-set {name}={path}: needs a 'label' column and at least 20 rows "
                        f"({PRIVATE_FILE_COLUMNS[name]}).")
    public = EVALUATION_SETS[name]({"secret": ""}, 0)
    if name == "tweets_test":
        if "text" not in frame.columns or frame["text"].isna().any():
            raise DataError(f"--eval-set {name}={path}: needs a 'text' column without empty rows.")
        labels = frame["label"].astype(str).str.strip().str.lower()
        unknown = sorted(set(labels) - set(public.labels))
        if unknown:
            raise DataError(f"--eval-set {name}={path}: unknown labels {unknown[:5]}; use {sorted(set(public.labels))}.")
        return EvaluationSet(public.method, frame["text"].astype(str).tolist(), labels.tolist(), public=False)
    features = frame.drop(columns=["label"])
    if features.shape[1] != len(public.inputs[0]) or not all(pd.api.types.is_numeric_dtype(t) for t in features.dtypes):
        raise DataError(f"--eval-set {name}={path}: needs {len(public.inputs[0])} numeric feature columns and 'label'.")
    labels = frame["label"].tolist()
    if not set(labels) <= {0, 1}:
        raise DataError(f"--eval-set {name}={path}: labels must be 0 or 1 (1 = malignant).")
    return EvaluationSet(public.method, features.to_numpy(dtype=float).tolist(), [int(v) for v in labels], public=False,
                         facts=public.facts)


class EvaluationCache:
    """Evaluation sets built once per (name, seed) per batch; instructors' private sets override public ones."""

    def __init__(self, spec: Mapping, private: Mapping[str, EvaluationSet] | None = None) -> None:
        self._spec, self._private = spec, dict(private or {})
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, int], EvaluationSet] = {}

    def get(self, name: str, seed: int) -> EvaluationSet:
        if name in self._private:
            return self._private[name]
        with self._lock:
            if (name, seed) not in self._cache:
                self._cache[(name, seed)] = EVALUATION_SETS[name](self._spec, seed)
            return self._cache[(name, seed)]
