"""Classification metrics as plain, JSON-safe dicts.

scikit-learn computes them; this module fixes one layout (names, macro/weighted averages, per-class
rows, a confusion matrix with rows = true labels) that the trainer, the CLI's metrics.json, the
plots and the lessons all share.

Taught in lesson 04 (evaluation metrics).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_curve,
    precision_recall_fscore_support,
)

from course_utils.errors import DataError


def _as_1d(values, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise DataError(f"{name} must be one-dimensional, got shape {arr.shape}.")
    return arr


def classification_metrics(y_true, y_pred, label_names: Sequence[str] | None = None) -> dict:
    """Accuracy, macro/weighted scores, per-class report and confusion matrix.

    ``y_true``/``y_pred`` are class indices (with ``label_names`` giving their names in order) or
    labels of any type. Classes that never occur still get a row, with zero support, so two runs
    always produce tables of the same shape; they are named in ``zero_support`` and a class that
    neither occurs nor is predicted is left out of the macro averages instead of counting as 0.
    """
    y_true = _as_1d(y_true, "y_true")
    y_pred = _as_1d(y_pred, "y_pred")
    if len(y_true) != len(y_pred):
        raise DataError(f"y_true has {len(y_true)} items but y_pred has {len(y_pred)}.")
    if len(y_true) == 0:
        raise DataError("cannot compute metrics on zero examples.")
    if label_names is not None:
        label_ids = list(range(len(label_names)))
        names = [str(n) for n in label_names]
    else:
        label_ids = sorted(set(y_true.tolist()) | set(y_pred.tolist()))
        names = [str(n) for n in label_ids]
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=label_ids, zero_division=0)
    # A class absent from both y_true and y_pred has no score, not a score of 0: averaging a 0 in would
    # halve a perfect model's macro-F1 on a two-class test split that lost one class. Such classes are
    # listed under "zero_support" and left out of the macro averages.
    present = set(y_true.tolist()) | set(y_pred.tolist())
    scored = [i for i, label in enumerate(label_ids) if label in present]
    scored_ids = [label_ids[i] for i in scored]
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_precision": float(np.mean(p[scored])),
        "macro_recall": float(np.mean(r[scored])),
        "macro_f1": float(f1_score(y_true, y_pred, labels=scored_ids, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(y_true, y_pred, labels=label_ids, average="weighted", zero_division=0)),
        "zero_support": [name for name, si in zip(names, s) if si == 0],
        "per_class": {
            name: {"precision": float(pi), "recall": float(ri), "f1": float(fi), "support": int(si)}
            for name, pi, ri, fi, si in zip(names, p, r, f, s)
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=label_ids).tolist(),
        "labels": names,
        "n": int(len(y_true)),
    }


def _binary_inputs(y_true, scores) -> tuple[np.ndarray, np.ndarray]:
    y = _as_1d(y_true, "y_true").astype(int)
    s = _as_1d(scores, "scores").astype(float)
    if len(y) != len(s):
        raise DataError(f"y_true has {len(y)} items but scores has {len(s)}.")
    if not set(np.unique(y)) <= {0, 1}:
        raise DataError(f"y_true must be 0/1 (1 = the positive class), got values {sorted(set(np.unique(y)))}.")
    if y.sum() == 0:
        raise DataError("y_true has no positive example; recall is undefined.")
    return y, s


def threshold_for_recall(y_true, scores, target_recall: float) -> float:
    """The highest threshold whose recall reaches ``target_recall`` (predict positive if score >= t).

    The highest such threshold gives the best precision among the thresholds that meet the recall
    requirement, which is the trade the healthcare example asks for.
    """
    if not 0.0 < target_recall <= 1.0:
        raise DataError(f"target_recall must be in (0, 1], got {target_recall}.")
    y, s = _binary_inputs(y_true, scores)
    _, recall, thresholds = precision_recall_curve(y, s)
    ok = np.flatnonzero(recall[:-1] >= target_recall)
    return float(thresholds[ok].max()) if len(ok) else float(s.min())


def metrics_at_threshold(y_true, scores, threshold: float) -> dict:
    """Confusion counts, precision, recall and F1 when predicting positive for ``score >= threshold``."""
    y, s = _binary_inputs(y_true, scores)
    pred = (s >= threshold).astype(int)
    tp = int(((pred == 1) & (y == 1)).sum())
    fp = int(((pred == 1) & (y == 0)).sum())
    fn = int(((pred == 0) & (y == 1)).sum())
    tn = int(((pred == 0) & (y == 0)).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"threshold": float(threshold), "precision": precision, "recall": recall, "f1": f1,
            "tp": tp, "fp": fp, "fn": fn, "tn": tn}
