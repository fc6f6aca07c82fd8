"""Lesson 05's plumbing: the tweet subsets the three trainings share, a stopwatch, and the tables.

Lesson 05 fine-tunes the same BERT three ways (a loop written in the notebook, ``transformers.Trainer``
and :mod:`course_utils.trainer`) and compares them. The comparison is only fair if the three see the
same tweets, so :func:`lesson_subsets` builds the subsets once (split first, then stratified samples, so
no tweet is in two splits). :class:`Stopwatch` times each training the same way (wall time of the whole
call, evaluation included), and the remaining functions turn predictions into the lesson's tables: a
bootstrap spread of validation macro-F1 per route (:func:`bootstrap_macro_f1`) and of the difference
between two routes scored on the same texts (:func:`bootstrap_macro_f1_difference`), the error rate by text
length with an interval per group (:func:`error_rate_by_length`), and which sub-corpus the most
confident errors come from (:func:`errors_by_topic`, with the keyword rules of lesson 02).

The loop, the ``Trainer`` call and the tokenisation stay in the notebook: they are what the lesson teaches.

Taught in lesson 05 (fine-tuning BERT).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from course_utils.comparison import PairedDifference
from course_utils.data import label_ids, split_dataset, stratified_sample
from course_utils.errors import ConfigError, DataError
from course_utils.labs.applications import proportion_interval
from course_utils.labs.corpus import tweet_topics

__all__ = [
    "LessonData",
    "Stopwatch",
    "bootstrap_macro_f1",
    "bootstrap_macro_f1_difference",
    "error_rate_by_length",
    "errors_by_topic",
    "label_ids",
    "lesson_subsets",
]


@dataclass
class LessonData:
    """The train, validation and test frames of the lesson and their label names (sorted)."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    labels: list[str]

    def sizes(self) -> pd.DataFrame:
        """Tweets and label counts per split (one row per split)."""
        rows = {name: {"tweets": len(frame), **frame["label"].value_counts().sort_index().to_dict()}
                for name, frame in [("train", self.train), ("validation", self.validation), ("test", self.test)]}
        return pd.DataFrame(rows).T.fillna(0).astype(int)

    def majority_share(self, split: str = "validation") -> float:
        """Accuracy of always answering the most common class on ``split`` (the floor a model must beat)."""
        frame = {"train": self.train, "validation": self.validation, "test": self.test}[split]
        return float(frame["label"].value_counts(normalize=True).max())


def lesson_subsets(df: pd.DataFrame, n_train: int | None, n_validation: int | None, n_test: int | None,
                   seed: int = 42) -> LessonData:
    """Split ``df`` into train/validation/test first, then take stratified samples of the given sizes.

    ``None`` keeps a whole split. Splitting before sampling means the subsets never share a tweet,
    whatever the sizes; the same ``seed`` gives the same tweets to every training that uses them.
    """
    if not isinstance(df, pd.DataFrame) or not {"text", "label"} <= set(df.columns):
        raise DataError("lesson_subsets needs a DataFrame with 'text' and 'label' columns "
                        "(load it with course_utils.data.load_course_dataset).")
    for name, n in [("n_train", n_train), ("n_validation", n_validation), ("n_test", n_test)]:
        if n is not None and (not isinstance(n, (int, np.integer)) or n < 2):
            raise ConfigError(f"lesson_subsets: {name} must be an integer of at least 2 or None, got {n!r}.")
    splits = split_dataset(df, seed=seed)
    data = LessonData(train=stratified_sample(splits.train, n_train, seed=seed),
                      validation=stratified_sample(splits.validation, n_validation, seed=seed),
                      test=stratified_sample(splits.test, n_test, seed=seed),
                      labels=sorted(str(label) for label in splits.train["label"].unique()))
    for name, frame in [("train", data.train), ("validation", data.validation)]:
        if frame["label"].nunique() < 2:
            raise DataError(f"lesson_subsets: the {name} subset has one class only; ask for more tweets.")
    return data


class Stopwatch:
    """Wall-clock time of a block, the same way for every training of the lesson.

    >>> with Stopwatch() as watch:
    ...     pass
    >>> watch.seconds >= 0
    True
    """

    def __init__(self) -> None:
        self.seconds: float | None = None
        self._start: float | None = None

    def __enter__(self) -> Stopwatch:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self._start

    def rate(self, count: int) -> float:
        """``count`` items per second of the timed block (for example training samples per second)."""
        if self.seconds is None:
            raise ConfigError("Stopwatch.rate: time a block first (`with Stopwatch() as watch: ...`).")
        return count / max(self.seconds, 1e-9)


def _macro_f1(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    scores = []
    for c in range(n_classes):
        tp = np.sum((y_pred == c) & (y_true == c))
        denominator = np.sum(y_pred == c) + np.sum(y_true == c)
        if np.sum(y_true == c) == 0:
            continue  # a class absent from this resample: left out of the average, as the course metrics do
        scores.append(2 * tp / denominator if denominator else 0.0)
    return float(np.mean(scores))


def _checked(y_true: Sequence[int], predictions: Mapping[str, Sequence[int]], confidence: float,
             caller: str) -> tuple[np.ndarray, dict[str, np.ndarray], int]:
    y_true = np.asarray(y_true)
    if len(y_true) < 2 or not predictions:
        raise DataError(f"{caller} needs at least two true labels and one set of predictions.")
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be between 0 and 1, got {confidence}.")
    preds = {}
    for name, values in predictions.items():
        values = np.asarray(values)
        if values.shape != y_true.shape:
            raise DataError(f"{caller}: {name!r} has {len(values)} predictions for {len(y_true)} labels.")
        preds[name] = values
    n_classes = int(max(y_true.max(), *(p.max() for p in preds.values()))) + 1
    return y_true, preds, n_classes


def _resamples(n: int, n_boot: int, seed: int) -> np.ndarray:
    """The bootstrap's resampled text positions: one row per resample, the same rows for the same seed."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def _percentile_interval(values: Sequence[float], confidence: float) -> tuple[float, float]:
    """The central ``confidence`` share of bootstrap values: their two tail percentiles."""
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(np.asarray(values), [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_macro_f1(y_true: Sequence[int], predictions: Mapping[str, Sequence[int]], n_boot: int = 1000,
                       seed: int = 0, confidence: float = 0.95) -> pd.DataFrame:
    """Macro-F1 of each set of predictions, with a bootstrap interval over the evaluated texts.

    The resamples are shared by all the predictions, so the intervals show how much the choice of
    validation texts alone moves each score. They do not include the spread between training seeds.
    Two overlapping intervals do not mean "no clear difference": routes scored on the same texts tend to
    be right and wrong on the same ones, so judge a gap with :func:`bootstrap_macro_f1_difference`.
    """
    y_true, preds, n_classes = _checked(y_true, predictions, confidence, "bootstrap_macro_f1")
    draws = _resamples(len(y_true), n_boot, seed)
    rows = {}
    for name, values in preds.items():
        low, high = _percentile_interval([_macro_f1(y_true[d], values[d], n_classes) for d in draws], confidence)
        rows[name] = {"macro_f1": _macro_f1(y_true, values, n_classes), "low": low, "high": high}
    return pd.DataFrame(rows).T


def bootstrap_macro_f1_difference(y_true: Sequence[int], a: Sequence[int], b: Sequence[int], n_boot: int = 1000,
                                  seed: int = 0, confidence: float = 0.95) -> PairedDifference:
    """Macro-F1 of predictions ``a`` minus that of ``b`` on the same texts, with a paired bootstrap interval.

    Each resample draws one set of texts and scores both routes on it, so the luck of which texts were
    drawn cancels in the difference: two routes that err on the same hard tweets have a narrow interval
    for their gap even when each route's own interval is wide. The verdict is "higher" or "lower" only
    when the whole percentile interval lies on one side of zero (``PairedDifference.verdict``). The
    resamples are those of :func:`bootstrap_macro_f1` with the same ``seed`` and ``n_boot``.
    """
    y_true, preds, n_classes = _checked(y_true, {"a": a, "b": b}, confidence, "bootstrap_macro_f1_difference")
    a, b = preds["a"], preds["b"]
    draws = _resamples(len(y_true), n_boot, seed)
    low, high = _percentile_interval([_macro_f1(y_true[d], a[d], n_classes) - _macro_f1(y_true[d], b[d], n_classes)
                                      for d in draws], confidence)
    observed = _macro_f1(y_true, a, n_classes) - _macro_f1(y_true, b, n_classes)
    return PairedDifference((observed,), observed, low, high, confidence,
                            basis=f"paired bootstrap over {len(y_true)} texts, {n_boot} resamples")


def error_rate_by_length(correct: Sequence[bool], tokens: Sequence[int], groups: int = 4) -> pd.DataFrame:
    """Error rate per length group (quantiles of ``tokens``), with a 95% Wilson interval per group.

    Rows go from the shortest texts to the longest; ``tokens`` is the range of each group.
    """
    correct = np.asarray(correct, dtype=bool)
    tokens = np.asarray(tokens)
    if correct.shape != tokens.shape or len(correct) < groups:
        raise DataError(f"error_rate_by_length: need one length per prediction and at least {groups} of them, "
                        f"got {len(correct)} predictions and {len(tokens)} lengths.")
    bins = pd.qcut(tokens, groups, duplicates="drop")
    rows = []
    for interval in bins.categories:
        inside = np.asarray(bins == interval)
        errors, n = int((~correct[inside]).sum()), int(inside.sum())
        low, high = proportion_interval(errors, n)
        rows.append({"tokens": f"{int(np.floor(interval.left)) + 1}-{int(interval.right)}", "texts": n,
                     "error_rate": errors / n, "low": low, "high": high})
    return pd.DataFrame(rows)


def errors_by_topic(texts: pd.Series, correct: Sequence[bool], confidence: Sequence[float], top: int = 20,
                    train: pd.DataFrame | None = None, positive: str = "positive") -> pd.DataFrame:
    """Which sub-corpus (lesson 02's keyword rules) the texts, the errors and the most confident errors come from.

    Columns: ``texts`` (evaluated texts per topic), ``error_rate`` with its 95% Wilson interval (``low``,
    ``high``: a topic with two test tweets measures almost nothing), ``confident_errors`` (how many of the
    ``top`` errors with the highest confidence fall in the topic), and, when ``train`` is given, the share
    of ``positive`` labels per topic in it, which shows that a label means something different from one
    sub-corpus to another.

    Give the texts as the corpus has them (``load_course_dataset(..., keep_raw_text=True)["raw_text"]``):
    cleaning replaces @handles by ``@user``, and without ``@united`` most airline tweets fall in "other".
    For ``train`` the same holds: its ``raw_text`` column is used when it has one.
    """
    if not isinstance(texts, pd.Series):
        raise DataError(f"errors_by_topic: texts must be a pandas Series, got {type(texts).__name__}.")
    correct = np.asarray(correct, dtype=bool)
    confidence = np.asarray(confidence, dtype=float)
    if not len(texts) == len(correct) == len(confidence):
        raise DataError(f"errors_by_topic: {len(texts)} texts, {len(correct)} correct flags and "
                        f"{len(confidence)} confidences must be the same length.")
    topics = tweet_topics(texts.reset_index(drop=True))
    frame = pd.DataFrame({"topic": topics, "error": ~correct, "confidence": confidence})
    table = frame.groupby("topic").agg(texts=("error", "size"), error_rate=("error", "mean"))
    bounds = [proportion_interval(int(round(rate * n)), int(n)) for rate, n in zip(table["error_rate"], table["texts"])]
    table["low"], table["high"] = [b[0] for b in bounds], [b[1] for b in bounds]  # Wilson, 95%: 2 texts say little
    confident = frame[frame["error"]].sort_values("confidence", ascending=False).head(top)
    table["confident_errors"] = confident["topic"].value_counts().reindex(table.index, fill_value=0)
    if train is not None:
        train_topics = tweet_topics(train["raw_text" if "raw_text" in train else "text"].reset_index(drop=True))
        is_positive = (train["label"].reset_index(drop=True).astype(str) == positive)
        table[f"train {positive} share"] = is_positive.groupby(train_topics).mean().reindex(table.index)
    return table.sort_values("texts", ascending=False)


#: Words that state a negative view outright; a tweet using them is rarely positive in any sense of the word.
NEGATIVE_WORDS = r"\bcheat|\bliar|\blie[sd]?\b|\bhate|\bsuck|\bworst|\bstupid|\bdisgrac|\bshame"


def label_audit(texts: pd.Series, labels: Sequence[str], pattern: str = NEGATIVE_WORDS) -> pd.DataFrame:
    """Per topic and label: tweets, and the share that uses one of ``pattern``'s openly negative words.

    Taught in lesson 05 (error analysis): when a sub-corpus's *positive* tweets use words such as "cheat" or
    "liar" far more often than its negative ones, and far more often than other topics' positive tweets,
    the disagreement between model and label is the label's, not the model's. Give the raw texts
    (``raw_text``) so the topic rules see the @handles.
    """
    if not isinstance(texts, pd.Series):
        raise DataError(f"label_audit: texts must be a pandas Series, got {type(texts).__name__}.")
    labels = pd.Series(list(labels), dtype=object)
    if len(labels) != len(texts):
        raise DataError(f"label_audit: {len(texts)} texts and {len(labels)} labels must be the same length.")
    texts = texts.reset_index(drop=True)
    frame = pd.DataFrame({"topic": tweet_topics(texts), "label": labels.astype(str),
                          "negative words": texts.astype(str).str.contains(pattern, case=False, regex=True)})
    table = frame.groupby(["topic", "label"]).agg(tweets=("negative words", "size"),
                                                 negative_word_share=("negative words", "mean"))
    return table.reset_index()
