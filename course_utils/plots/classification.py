"""Plots of a classifier's results and its data: confusion matrix, precision-recall and threshold curves,
class balance and the annotators' confidence.

Taught in lesson 04 (evaluation metrics) and lesson 02 (the corpus's classes and confidence); lessons
05 and 07 reuse them.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from course_utils.errors import DataError
from course_utils.plots.style import MARKERS, _axes, _legend

__all__ = ["plot_confusion_matrix", "plot_pr_curve", "plot_class_balance", "plot_threshold_curves", "plot_confidence_histogram"]


def plot_confusion_matrix(
    cm: Sequence[Sequence[float]] | np.ndarray,
    labels: Sequence[str],
    ax: plt.Axes | None = None,
    normalize: bool = False,
    title: str | None = None,
) -> plt.Axes:
    """Heat-map a confusion matrix (rows = true class, columns = predicted class).

    ``normalize=True`` divides each row by its total, so each cell reads "share of this true class
    predicted as that class" — the view to use when classes are imbalanced, where raw counts hide
    that a small class is almost always wrong.
    """
    matrix = np.asarray(cm, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise DataError(f"confusion matrix must be square (n_classes x n_classes); got shape {matrix.shape}.")
    if len(labels) != matrix.shape[0]:
        raise DataError(
            f"got {len(labels)} labels for a {matrix.shape[0]}x{matrix.shape[0]} confusion matrix; "
            "pass one label per class in the matrix's order."
        )
    if normalize:
        totals = matrix.sum(axis=1, keepdims=True)
        matrix = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    ax = _axes(ax, figsize=(4.5, 4.0))
    image = ax.imshow(matrix, cmap="Blues", vmin=0.0, vmax=1.0 if normalize else None)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ticks = np.arange(len(labels))
    ax.set_xticks(ticks, labels=list(labels), rotation=45, ha="right")
    ax.set_yticks(ticks, labels=list(labels))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    threshold = matrix.max() / 2.0 if matrix.size else 0.0
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            text = f"{matrix[i, j]:.2f}" if normalize else f"{int(round(matrix[i, j]))}"
            ax.text(j, i, text, ha="center", va="center",
                    color="white" if matrix[i, j] > threshold else "black", fontsize="small")
    ax.set_title(title or ("confusion matrix (row-normalised)" if normalize else "confusion matrix"))
    return ax


def plot_pr_curve(
    y_true: Sequence[int] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    ax: plt.Axes | None = None,
    threshold: float | None = None,
    label: str | None = None,
    chance_level: bool = False,
) -> plt.Axes:
    """Precision-recall curve for a binary problem, optionally marking one operating threshold.

    The marker shows where a chosen threshold (e.g. from ``metrics.threshold_for_recall``) sits on
    the trade-off, which is what a product decision is actually about. Several curves can share
    one Axes: each gets the next colour, line style and marker shape, and its threshold marker is
    named after its ``label`` so two models at "threshold 0.5" stay two legend entries that say
    which is which. ``chance_level`` draws the positive share (AP of a coin) once per Axes.
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve

    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=float)
    if y.shape != s.shape or y.ndim != 1:
        raise DataError(f"y_true and scores must be 1-D and the same length; got {y.shape} and {s.shape}.")
    if set(np.unique(y).tolist()) - {0, 1}:  # True and False equal 1 and 0
        raise DataError("plot_pr_curve is for binary labels 0/1; pass (y_true == positive_class) for multi-class.")
    if len(np.unique(y)) < 2:
        raise DataError("plot_pr_curve needs both classes in y_true to draw a curve.")
    precision, recall, _ = precision_recall_curve(y, s)
    ap = average_precision_score(y, s)
    ax = _axes(ax, figsize=(5.0, 4.0))
    n_before = len(ax.lines)
    marker = MARKERS[n_before % len(MARKERS)]
    (line,) = ax.plot(recall, precision, label=f"{label + ' ' if label else ''}(AP={ap:.3f})")
    if threshold is not None:
        predicted = s >= threshold
        tp = int(np.sum(predicted & (y == 1)))
        p = tp / max(int(predicted.sum()), 1)
        r = tp / max(int((y == 1).sum()), 1)
        ax.plot([r], [p], linestyle="none", marker=marker, markersize=9, markerfacecolor=line.get_color(),
                markeredgecolor="black", zorder=3, label=f"{label + ': ' if label else ''}threshold={threshold:.3g}")
    if chance_level:
        ax.axhline(float(np.mean(y == 1)), color="grey", linestyle=":", label=f"chance (positive share {np.mean(y == 1):.3f})")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0.0, 1.02)
    ax.set_ylim(0.0, 1.02)
    ax.grid(alpha=0.3)
    _legend(ax, fontsize="small", loc="lower left")
    ax.set_title("precision-recall curve")
    return ax


def plot_class_balance(
    df: pd.DataFrame,
    label_column: str = "label",
    ax: plt.Axes | None = None,
    title: str | None = None,
) -> plt.Axes:
    """Bar chart of how many rows each class has, with counts and shares written on the bars.

    Look at this before training anything: a 70/20/10 split means accuracy alone flatters a model
    that never predicts the small class.
    """
    if label_column not in df.columns:
        raise DataError(
            f"column {label_column!r} not found; the frame has {list(df.columns)}. Pass label_column=..."
        )
    counts = df[label_column].value_counts().sort_index()
    if counts.empty:
        raise DataError("plot_class_balance got an empty frame.")
    ax = _axes(ax, figsize=(5.0, 3.5))
    bars = ax.bar([str(k) for k in counts.index], counts.to_numpy())
    total = int(counts.sum())
    for bar, count in zip(bars, counts.to_numpy()):
        ax.annotate(f"{int(count)}\n({count / total:.0%})", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize="small")
    ax.set_ylabel("rows")
    ax.set_xlabel(label_column)
    # never shrink: with sharey=True an earlier, taller panel must keep room for its labels
    ax.set_ylim(0, max(ax.get_ylim()[1], counts.max() * 1.2))
    ax.set_title(title or f"class balance (n={total})")
    return ax


def plot_threshold_curves(
    y_true: Sequence[int] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    ax: plt.Axes | None = None,
    threshold: float | None = None,
) -> plt.Axes:
    """Precision and recall of the positive class as the decision threshold moves from 0 to 1.

    The PR curve hides the threshold; this view shows it on the x-axis, so a learner can read off
    "to keep recall at 0.98 I must predict positive above *this* score" and see what precision
    that costs. ``threshold`` draws the chosen operating point as a vertical line.
    """
    from sklearn.metrics import precision_recall_curve

    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=float)
    if y.shape != s.shape or y.ndim != 1:
        raise DataError(f"y_true and scores must be 1-D and the same length; got {y.shape} and {s.shape}.")
    if set(np.unique(y).tolist()) - {0, 1} or len(np.unique(y)) < 2:  # True and False equal 1 and 0
        raise DataError("plot_threshold_curves needs binary 0/1 labels with both classes present.")
    precision, recall, thresholds = precision_recall_curve(y, s)
    ax = _axes(ax, figsize=(5.5, 3.5))
    ax.plot(thresholds, precision[:-1], label="precision")
    ax.plot(thresholds, recall[:-1], label="recall")
    if threshold is not None:
        ax.axvline(threshold, color="red", linestyle="--", linewidth=1, label=f"threshold={threshold:.3g}")
    ax.set_xlabel("threshold (predict positive if score >= threshold)")
    ax.set_ylabel("score")
    ax.set_ylim(0.0, 1.02)
    ax.grid(alpha=0.3)
    _legend(ax, fontsize="small", loc="lower left")
    ax.set_title("precision and recall vs threshold")
    return ax


def plot_confidence_histogram(
    values: Sequence[float] | pd.Series | np.ndarray,
    ax: plt.Axes | None = None,
    bins: int = 20,
    xlabel: str = "annotator confidence",
    ylabel: str = "rows",
    title: str | None = None,
) -> plt.Axes:
    """Histogram of a column with missing values, saying in its legend how many it leaves out.

    A histogram can only draw rows that have a value; when thousands have none (lesson 02's
    ``confidence`` column), a plot that is silent about them invites the reader to forget them,
    and a filter on that column then drops them unseen. The legend names both counts.
    """
    series = pd.Series(np.asarray(values, dtype=float))
    if series.empty:
        raise DataError("plot_confidence_histogram got no values.")
    present = series.dropna()
    missing = int(series.isna().sum())
    if present.empty:
        raise DataError(f"all {missing} values are missing: there is nothing to draw.")
    ax = _axes(ax, figsize=(5.0, 3.5))
    ax.hist(present, bins=bins, color="0.55", edgecolor="black",
            label=f"{len(present):,} rows with a value ({missing:,} missing, not shown)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    _legend(ax, fontsize="small", loc="upper left")
    return ax
