"""Plots every lesson reuses: learning curves, confusion matrices, PR curves, search traces.

A learner should *look* at a run rather than read a column of numbers, and every lesson should draw
the same quantity the same way so that plots are comparable across notebooks. Each function takes an
optional ``ax`` (so lessons can put several panels side by side), draws with plain matplotlib (works
headless, no seaborn), and returns the Axes it drew on so tests and notebooks can inspect it.

Used by every lesson; each plot helper names the lesson it was written for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from cycler import cycler

from course_utils.errors import ConfigError, DataError

__all__ = [
    "figure_problems",
    "plot_class_balance",
    "plot_confidence_histogram",
    "plot_confusion_matrix",
    "plot_learning_curves",
    "plot_pr_curve",
    "plot_search_points",
    "plot_search_results",
]

#: Marker shapes cycled with the colours, for scatter points and operating points.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


#: Okabe and Ito's palette: told apart by readers with the common colour-vision deficiencies.
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
#: One line style per colour, so the series still differ when a page is printed in grey.
LINE_STYLES = ("-", "--", ":", "-.", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 3)), (0, (7, 2, 2, 2)))


def use_course_style() -> None:
    """Make every later matplotlib line cycle through :data:`OKABE_ITO` *and* :data:`LINE_STYLES`.

    Applied when this module is imported, so lessons that import a plot helper get it without a call;
    colours a helper pins itself (a red threshold marker) are left alone.
    """
    plt.rcParams["axes.prop_cycle"] = cycler(color=list(OKABE_ITO)) + cycler(linestyle=list(LINE_STYLES))


use_course_style()


def _legend(ax: plt.Axes, handles=None, labels=None, **kwargs):
    """A legend with each label once (drawing a threshold twice must not list it twice)."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    unique: dict[str, Any] = {}
    for handle, label in zip(handles, labels):
        unique.setdefault(label, handle)
    return ax.legend(list(unique.values()), list(unique.keys()), **kwargs)


def _axes(ax: plt.Axes | None, figsize: tuple[float, float] = (6.0, 4.0)) -> plt.Axes:
    if ax is not None:
        return ax
    _, new_ax = plt.subplots(figsize=figsize)
    return new_ax


def _curves_from_history(history: Any) -> dict[str, list[float]]:
    """Accept the shapes a "history" takes across the course and return named series.

    Supported: a mapping name -> sequence of numbers; a list of per-epoch dicts (``[{"loss": ..,
    "accuracy": ..}, ...]``, the shape the course trainer logs); a pandas DataFrame (one column per
    series); or any object with a ``.series`` (the labs' History), ``.history`` or ``.log_history`` attribute holding one of those.
    Non-numeric entries (e.g. an "epoch" counter) are skipped rather than plotted.
    """
    for attr in ("series", "history", "log_history"):
        if not isinstance(history, (Mapping, pd.DataFrame, list, tuple)) and hasattr(history, attr):
            history = getattr(history, attr)
    if isinstance(history, pd.DataFrame):
        history = {str(c): history[c].tolist() for c in history.columns}
    if isinstance(history, (list, tuple)) and history and all(isinstance(r, Mapping) for r in history):
        keys: list[str] = []
        for row in history:
            keys.extend(k for k in row if k not in keys)
        history = {k: [row.get(k, np.nan) for row in history] for k in keys}
    if not isinstance(history, Mapping):
        raise DataError(
            f"plot_learning_curves needs a dict of name -> values, a list of per-epoch dicts or a "
            f"DataFrame; got {type(history).__name__}."
        )
    curves: dict[str, list[float]] = {}
    for name, values in history.items():
        if str(name) in {"epoch", "step"}:
            continue
        try:
            arr = np.asarray(list(values), dtype=float)
        except (TypeError, ValueError):
            continue
        if arr.ndim == 1 and arr.size and not np.all(np.isnan(arr)):
            curves[str(name)] = arr.tolist()
    if not curves:
        raise DataError("plot_learning_curves got no numeric series to plot (is the history empty?).")
    return curves


def plot_learning_curves(
    curves: Mapping[str, Sequence[float]] | Any,
    ax: plt.Axes | None = None,
    ylabel: str = "loss",
    title: str | None = None,
    xlabel: str = "epoch",
    logy: bool = False,
    start: int = 1,
    colors: Mapping[str, str] | None = None,
) -> plt.Axes:
    """Draw one line per named series against its step index (``start``, ``start + 1``, ...).

    Steps start at 1 by default so "epoch 1" on the axis is the value *after* the first epoch; pass
    ``start=0`` when the first value was measured before any training. NaN points (e.g. a diverged
    loss) are left as gaps instead of crashing. ``logy`` helps when one run's loss explodes and
    would otherwise flatten every other line. ``colors`` pins a colour per series name, so the same
    run keeps its colour across plots that show different subsets of runs.
    """
    series = _curves_from_history(curves)
    ax = _axes(ax)
    colors = dict(colors or {})
    for name, values in series.items():
        ax.plot(np.arange(start, start + len(values)), values, marker="o" if len(values) <= 30 else None,
                markersize=3, label=name, color=colors.get(name))
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    _legend(ax, fontsize="small")
    return ax


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
    if set(np.unique(y).tolist()) - {0, 1, True, False}:
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


def _scores_of(result: Any) -> list[float]:
    if hasattr(result, "scores"):
        return [float(v) for v in result.scores]
    if isinstance(result, Sequence) and not isinstance(result, str):
        return [float(v) for v in result]
    raise DataError(
        f"plot_search_results needs SearchResult objects (with .scores) or lists of scores; got {type(result).__name__}."
    )


def plot_search_results(
    results: Mapping[str, Any],
    ax: plt.Axes | None = None,
    maximize: bool = True,
    ylabel: str = "best score so far",
    title: str = "search strategies on the same budget",
) -> plt.Axes:
    """Best-so-far score against trial number, one line per search strategy.

    Plotting the running best (not each trial's score) answers the question a budget holder asks:
    "after N trials, how good is the best configuration I have?". Accepts ``tuning.SearchResult``
    objects or plain lists of per-trial scores. Each trial's own score is drawn faintly behind.
    """
    if not results:
        raise DataError("plot_search_results got no results to plot.")
    ax = _axes(ax)
    for name, result in results.items():
        scores = np.asarray(_scores_of(result), dtype=float)
        if scores.size == 0:
            raise ConfigError(f"search result {name!r} has no trials.")
        filled = np.where(np.isnan(scores), -np.inf if maximize else np.inf, scores)
        best = np.maximum.accumulate(filled) if maximize else np.minimum.accumulate(filled)
        trials = np.arange(1, scores.size + 1)
        (line,) = ax.step(trials, best, where="post", label=name, linewidth=2)
        ax.scatter(trials, scores, color=line.get_color(), alpha=0.3, s=12)
    ax.set_xlabel("trial")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    _legend(ax, fontsize="small")
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


def plot_search_points(
    results: Mapping[str, Any],
    x: str,
    y: str,
    logx: bool = False,
    logy: bool = False,
    axes: Sequence[plt.Axes] | None = None,
) -> list[plt.Axes]:
    """One panel per search strategy: where in the (``x``, ``y``) plane it tried, coloured by score.

    This is the picture behind "random beats grid": a grid tries few distinct values of each
    parameter, random search a new one every trial, and TPE piles its later trials near the best
    region. All panels share one colour scale; the best trial of each is ringed in red.
    """
    if not results:
        raise DataError("plot_search_points got no results to plot.")
    frames = {}
    for name, result in results.items():
        trials = getattr(result, "trials", None)
        if not isinstance(trials, pd.DataFrame) or not {x, y, "score"} <= set(trials.columns):
            raise DataError(f"result {name!r} needs a trials frame with columns {x!r}, {y!r} and 'score'.")
        frames[name] = trials
    if axes is None:
        _, created = plt.subplots(1, len(frames), figsize=(4.2 * len(frames), 3.6), squeeze=False,
                                  sharex=True, sharey=True)
        axes = list(created[0])
    if len(axes) < len(frames):
        raise DataError(f"got {len(axes)} axes for {len(frames)} results.")
    scores = pd.concat([f["score"] for f in frames.values()]).astype(float)
    vmin, vmax = float(np.nanmin(scores)), float(np.nanmax(scores))
    for ax, (name, trials) in zip(axes, frames.items()):
        points = ax.scatter(trials[x], trials[y], c=trials["score"].astype(float), cmap="viridis",
                            vmin=vmin, vmax=vmax, s=28, edgecolors="none")
        best = trials["score"].astype(float).idxmax()
        ax.scatter([trials.loc[best, x]], [trials.loc[best, y]], s=120, facecolors="none", edgecolors="red",
                   linewidths=1.5)
        if logx:
            ax.set_xscale("log")
        if logy:
            ax.set_yscale("log")
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.set_title(f"{name} ({len(trials)} trials)")
    axes[-1].figure.colorbar(points, ax=list(axes[: len(frames)]), label="score")
    return list(axes[: len(frames)])


def plot_train_val_grid(
    runs: Mapping[str, Any],
    metric: str = "loss",
    ncols: int = 3,
    sharey: bool = True,
    sharex: bool = True,
    panel_size: tuple[float, float] = (4.0, 3.0),
) -> np.ndarray:
    """One panel per run, each with its ``train_<metric>`` and ``val_<metric>`` curves, on shared axes.

    Comparing remedies for overfitting (lesson 06) means comparing *shapes*: where the validation
    curve turns up, how wide the gap gets, when a run stopped. Shared axes make those shapes
    comparable at a glance.
    A run is anything :func:`plot_learning_curves` accepts, or an object with ``to_frame()`` (such
    as ``overfitting.History``); a ``best_epoch`` attribute, when present, is marked with a dashed
    line. Returns the array of Axes (unused panels are hidden).
    """
    if not runs:
        raise DataError("plot_train_val_grid got no runs to plot.")
    if ncols < 1:
        raise ConfigError(f"ncols must be >= 1, got {ncols}.")
    ncols = min(ncols, len(runs))
    nrows = -(-len(runs) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_size[0] * ncols, panel_size[1] * nrows),
                             sharex=sharex, sharey=sharey, squeeze=False)
    for ax, (name, run) in zip(axes.flat, runs.items()):
        table = run.to_frame() if hasattr(run, "to_frame") and not isinstance(run, pd.DataFrame) else run
        curves = _curves_from_history(table)
        wanted = {f"train_{metric}": "train", f"val_{metric}": "validation"}
        missing = [key for key in wanted if key not in curves]
        if missing:
            raise DataError(f"run {name!r} has no {missing} series; it has {sorted(curves)}.")
        plot_learning_curves({label: curves[key] for key, label in wanted.items()}, ax=ax, ylabel=metric, title=str(name))
        best = getattr(run, "best_epoch", None)
        if best:
            ax.axvline(best, color="grey", linestyle="--", linewidth=1)
    for ax in list(axes.flat)[len(runs):]:
        ax.set_visible(False)
    fig.tight_layout()
    return axes


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
    if set(np.unique(y).tolist()) - {0, 1, True, False} or len(np.unique(y)) < 2:
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


def plot_training_history(history: Any, metric: str = "macro_f1", axes: Sequence[plt.Axes] | None = None,
                          smooth: int = 10) -> np.ndarray:
    """Two panels for one run of ``course_utils.trainer``: loss per step, and loss/metric per epoch.

    Left: the raw training loss of every optimizer step (faint) and its moving average over
    ``smooth`` steps; single steps are noisy, the trend is what tells you whether it learns. Right:
    training and validation loss per epoch, and the validation ``metric`` on a second axis, with the
    best epoch marked — validation loss rising while training loss falls is overfitting.
    Takes a ``History`` or its ``to_dict()``.
    """
    data = history.to_dict() if hasattr(history, "to_dict") else dict(history)
    missing = [k for k in ("step", "loss", "epochs") if k not in data]
    if missing:
        raise DataError(f"plot_training_history needs a trainer history with step, loss and epochs; missing {missing}.")
    steps, losses = np.asarray(data["step"], dtype=float), np.asarray(data["loss"], dtype=float)
    if losses.size == 0:
        raise DataError("plot_training_history got an empty history: train for at least one step.")
    steps = steps[: losses.size]
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11.0, 3.8))
    loss_ax, epoch_ax = axes
    loss_ax.plot(steps, losses, alpha=0.3, linewidth=1, label="loss per step")
    window = max(1, min(int(smooth), losses.size))
    if window > 1:
        average = np.convolve(losses, np.ones(window) / window, mode="valid")
        loss_ax.plot(steps[window - 1:], average, linewidth=2, label=f"moving average ({window} steps)")
    loss_ax.set_xlabel("optimizer step")
    loss_ax.set_ylabel("training loss")
    loss_ax.set_title("training loss")
    loss_ax.grid(alpha=0.3)
    _legend(loss_ax, fontsize="small")

    rows = pd.DataFrame(data["epochs"])
    if rows.empty:
        epoch_ax.set_axis_off()
        return np.asarray(axes)
    epochs = rows["epoch"].to_numpy()
    for column, label in (("train_loss", "train loss"), ("val_loss", "validation loss")):
        if column in rows:
            epoch_ax.plot(epochs, rows[column], marker="o", label=label)
    epoch_ax.set_xlabel("epoch")
    epoch_ax.set_ylabel("loss")
    epoch_ax.set_xticks(epochs)
    epoch_ax.grid(alpha=0.3)
    handles, labels = epoch_ax.get_legend_handles_labels()
    if f"val_{metric}" in rows:
        metric_ax = epoch_ax.twinx()
        metric_ax.plot(epochs, rows[f"val_{metric}"], marker="s", color=OKABE_ITO[2], linestyle=LINE_STYLES[2],
                       label=f"validation {metric}")
        metric_ax.set_ylabel(metric)
        more_handles, more_labels = metric_ax.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    if data.get("best_epoch"):
        epoch_ax.axvline(data["best_epoch"], color="grey", linestyle="--", linewidth=1)
    epoch_ax.set_title("per epoch" + (f" (best epoch {data['best_epoch']}, dashed)" if data.get("best_epoch") else ""))
    _legend(epoch_ax, handles, labels, fontsize="small", loc="best")
    return np.asarray(axes)


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


def figure_problems(fig: plt.Figure) -> list[str]:
    """What the course's plot rules find wrong with a figure; an empty list when nothing.

    Checks each visible Axes (twin axes included): a non-empty y-label; legend labels listed once;
    bar charts whose value axis starts at zero (a bar's length is its value; a cut axis exaggerates
    differences). Used by the tests of every plot helper, and usable on any figure a lesson draws.
    """
    from matplotlib.patches import Rectangle

    problems = []
    for i, ax in enumerate(fig.axes):
        if not ax.get_visible() or ax.get_label() == "<colorbar>":
            continue
        name = f"axes {i} ({ax.get_title() or 'untitled'})"
        if not ax.get_ylabel().strip():
            problems.append(f"{name}: no y-label")
        legend = ax.get_legend()
        if legend is not None:
            texts = [t.get_text() for t in legend.get_texts()]
            repeated = sorted({t for t in texts if texts.count(t) > 1})
            if repeated:
                problems.append(f"{name}: legend lists {repeated} more than once")
        bars = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_width() > 0 and p.get_height() != 0]
        is_hist = bool(bars) and all(np.isclose(b.get_x() + b.get_width(), c.get_x()) for b, c in pairwise(bars))
        if bars and not is_hist and ax.get_yscale() == "linear":
            low = ax.get_ylim()[0]
            if low > 0:
                problems.append(f"{name}: bars start at {low:g}, not 0")
    return problems
