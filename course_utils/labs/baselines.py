"""A fast TF-IDF + logistic-regression baseline, and the data experiments lesson 02 runs with it.

Before fine-tuning a transformer, a linear model on word counts answers two questions in seconds
on a CPU: "is there signal in this data at all?" and "did this cleaning step help or hurt?".
Lesson 02 uses it for the second question: the same baseline trained on raw and on cleaned tweets,
scored on the same clean validation set (choosing a step is a decision, so it is never made on
test), and scored on test rows that leaked from training versus rows it has never seen.

Taught in lesson 02 (selecting and cleaning a custom dataset).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from course_utils.data import StepReport, fix_mojibake, near_duplicate_key, normalise_urls_and_handles
from course_utils.errors import ConfigError, DataError
from course_utils.metrics import classification_metrics

__all__ = [
    "BaselineConfig",
    "build_baseline",
    "fit_baseline",
    "evaluate_baseline",
    "overlap_keys",
    "drop_overlap",
    "split_by_overlap",
    "compare_training_sets",
    "leakage_effect",
]


@dataclass
class BaselineConfig:
    """TF-IDF and logistic-regression settings; the defaults are a strong, quick text baseline.

    Word uni- and bigrams with sublinear term frequency are the classic recipe; ``min_df=2``
    ignores words seen once (typos, user names), which mostly are noise for a linear model.
    """

    ngram_range: tuple[int, int] = (1, 2)
    min_df: int = 2
    max_features: int | None = 50_000
    sublinear_tf: bool = True
    C: float = 2.0
    class_weight: str | None = None
    max_iter: int = 1000

    def __post_init__(self) -> None:
        if not (1 <= self.ngram_range[0] <= self.ngram_range[1]):
            raise ConfigError(f"ngram_range must be (low, high) with 1 <= low <= high, got {self.ngram_range}.")
        if self.C <= 0:
            raise ConfigError(f"C (inverse regularisation strength) must be positive, got {self.C}.")
        if self.min_df < 1:
            raise ConfigError(f"min_df must be >= 1, got {self.min_df}.")


def build_baseline(config: BaselineConfig | None = None):
    """An unfitted scikit-learn ``Pipeline(TfidfVectorizer -> LogisticRegression)``."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    config = config or BaselineConfig()
    return Pipeline([
        ("tfidf", TfidfVectorizer(ngram_range=tuple(config.ngram_range), min_df=config.min_df,
                                  max_features=config.max_features, sublinear_tf=config.sublinear_tf)),
        # newton-cg: on sparse TF-IDF it converges in a few iterations, many times faster than lbfgs
        ("clf", LogisticRegression(C=config.C, class_weight=config.class_weight, max_iter=config.max_iter,
                                   solver="newton-cg")),
    ])


def _texts_labels(df: pd.DataFrame, where: str, text_column: str, label_column: str) -> tuple[list[str], np.ndarray]:
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{where}: expected a pandas DataFrame, got {type(df).__name__}.")
    missing = [c for c in (text_column, label_column) if c not in df.columns]
    if missing:
        raise DataError(f"{where}: missing column(s) {missing}; the frame has {list(df.columns)}.")
    if df.empty:
        raise DataError(f"{where}: the frame has no rows.")
    if df[label_column].isna().any():
        raise DataError(f"{where}: {int(df[label_column].isna().sum())} row(s) have no label; drop or fill them.")
    return df[text_column].fillna("").astype(str).tolist(), df[label_column].astype(str).to_numpy()


def fit_baseline(
    train_df: pd.DataFrame,
    config: BaselineConfig | None = None,
    text_column: str = "text",
    label_column: str = "label",
):
    """Fit the TF-IDF baseline on a frame of texts and labels; returns the fitted pipeline."""
    texts, labels = _texts_labels(train_df, "fit_baseline", text_column, label_column)
    if len(set(labels)) < 2:
        raise DataError(f"fit_baseline: need at least two classes to train, found {sorted(set(labels))}.")
    return build_baseline(config).fit(texts, labels)


def evaluate_baseline(model, test_df: pd.DataFrame, text_column: str = "text", label_column: str = "label") -> dict:
    """``metrics.classification_metrics`` of the model on a frame (keys: accuracy, macro_f1, ...)."""
    texts, labels = _texts_labels(test_df, "evaluate_baseline", text_column, label_column)
    classes = [str(c) for c in model.classes_]
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise DataError(f"evaluate_baseline: test labels {unknown} were never seen in training (classes: {classes}).")
    index = {c: i for i, c in enumerate(classes)}
    y_true = np.array([index[label] for label in labels])
    y_pred = np.array([index[str(p)] for p in model.predict(texts)])
    return classification_metrics(y_true, y_pred, label_names=classes)


# --------------------------------------------------------------------------------------------
# Overlap between frames (the leakage that makes a test score lie)
# --------------------------------------------------------------------------------------------


def overlap_keys(df: pd.DataFrame, near: bool = True) -> pd.Series:
    """One comparison key per row, computed on the text as the cleaning pipeline would leave it.

    A raw tweet and its cleaned copy in a test set are the same tweet, but their texts differ
    (mojibake repaired, links turned into ``http``). Keying both on the repaired, normalised text
    (``data.fix_mojibake`` then ``data.normalise_urls_and_handles``, both idempotent on clean
    text), then on :func:`course_utils.data.near_duplicate_key` when ``near``, makes them match.
    Rows whose text repairs to nothing get an empty key, which matches nothing.
    """
    if "text" not in df.columns:
        raise DataError(f"the frame has no 'text' column (columns: {list(df.columns)}).")
    frame = pd.DataFrame({"text": df["text"].astype(str).to_numpy(), "_row": np.arange(len(df))})
    repaired, _ = normalise_urls_and_handles(fix_mojibake(frame)[0])
    keys = pd.Series([""] * len(df), index=df.index, dtype=object)
    repaired_keys = repaired["text"].map(near_duplicate_key) if near else repaired["text"]
    keys.iloc[repaired["_row"].to_numpy()] = repaired_keys.to_numpy()
    return keys


def split_by_overlap(df: pd.DataFrame, reference: pd.DataFrame, near: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ``df`` into rows whose text also occurs in ``reference`` and rows that do not.

    Texts are compared by :func:`overlap_keys`, so a retweet, a copy with another link or a copy
    with broken characters counts as the same text.
    """
    seen = set(overlap_keys(reference, near)) - {""}
    mask = overlap_keys(df, near).isin(seen).to_numpy()
    return df[mask].reset_index(drop=True), df[~mask].reset_index(drop=True)


def drop_overlap(df: pd.DataFrame, reference: pd.DataFrame, near: bool = True) -> tuple[pd.DataFrame, StepReport]:
    """Remove from ``df`` every row whose text also occurs in ``reference`` (e.g. the test set)."""
    overlap, rest = split_by_overlap(df, reference, near)
    examples = [(str(t), "dropped") for t in overlap["text"].head(5)]
    return rest, StepReport("drop_overlap" + (" (near)" if near else ""), len(df), len(rest), 0, examples)


# --------------------------------------------------------------------------------------------
# The experiments of lesson 02
# --------------------------------------------------------------------------------------------


def compare_training_sets(
    train_sets: Mapping[str, pd.DataFrame],
    validation_df: pd.DataFrame,
    config: BaselineConfig | None = None,
    by: str | None = None,
) -> pd.DataFrame:
    """Train the same baseline on each named training set and score all on one validation set.

    Holding the model and the evaluation set fixed makes the training data the only thing that
    differs, which is the only way to tell whether a cleaning step helped. Choosing a cleaning step
    is a decision, so it is judged on **validation**: a frame that :func:`course_utils.data.split_dataset`
    marked as the test split is refused (the test set is scored once, at the end).

    ``by`` names a column of ``validation_df``: the macro-F1 within each of its values is added as
    ``macro_f1[value]`` columns, to see *where* a training set wins or loses.
    """
    if not train_sets:
        raise ConfigError("compare_training_sets needs at least one training set.")
    if validation_df.attrs.get("split") == "test":
        raise ConfigError(
            "compare_training_sets: this frame is the test split. Choosing between training sets is a "
            "decision, so make it on the validation split (splits.validation); score the test set once, "
            "at the end, with the choice already made."
        )
    if by is not None and by not in validation_df.columns:
        raise ConfigError(f"compare_training_sets: by={by!r} is not a column of the validation frame "
                          f"(columns: {list(validation_df.columns)}).")
    rows = []
    for name, train in train_sets.items():
        start = time.perf_counter()
        model = fit_baseline(train, config)
        seconds = time.perf_counter() - start
        m = evaluate_baseline(model, validation_df)
        row = {"training set": name, "train_rows": len(train), "accuracy": round(m["accuracy"], 4),
               "macro_f1": round(m["macro_f1"], 4), "fit_seconds": round(seconds, 1)}
        if by is not None:
            for value, part in validation_df.groupby(by, sort=True):
                row[f"macro_f1[{value}]"] = round(evaluate_baseline(model, part)["macro_f1"], 4)
        rows.append(row)
    return pd.DataFrame(rows).set_index("training set")


def leakage_effect(model, train_df: pd.DataFrame, test_df: pd.DataFrame, near: bool = True) -> pd.DataFrame:
    """Score ``model`` separately on test rows that also occur in training and on unseen rows.

    If the leaked rows score much higher, the overall test score is inflated: part of it measures
    memory of training tweets, not the ability to classify new ones.
    """
    leaked, unseen = split_by_overlap(test_df, train_df, near)
    rows = []
    for name, part in (("all test rows", test_df), ("leaked (text also in train)", leaked), ("unseen", unseen)):
        if len(part) == 0:
            rows.append({"test rows": name, "rows": 0, "accuracy": float("nan"), "macro_f1": float("nan")})
            continue
        m = evaluate_baseline(model, part)
        rows.append({"test rows": name, "rows": len(part), "accuracy": round(m["accuracy"], 4),
                     "macro_f1": round(m["macro_f1"], 4)})
    return pd.DataFrame(rows).set_index("test rows")

