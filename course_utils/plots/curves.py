"""Learning curves: losses and metrics per epoch, for one run, a grid of runs, or the BERT trainer's history.

:func:`plot_learning_curves` accepts every shape a history takes across the course (a dict of series,
a frame, the labs' ``History``, the trainer's, ``transformers``' ``log_history``).

Taught in lesson 01 (first curves), lessons 03 and 06 (settings side by side, the train/validation
gap) and lesson 05 (:func:`plot_training_history`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from course_utils.errors import ConfigError, DataError
from course_utils.plots.style import LINE_STYLES, OKABE_ITO, _axes, _legend, course_style

__all__ = ["plot_learning_curves", "plot_train_val_grid", "plot_training_history"]


def _curves_from_history(history: Any) -> dict[str, list[float]]:
    """Accept the shapes a "history" takes across the course and return named series.

    Supported: a mapping name -> sequence of numbers; a list of per-epoch dicts (``[{"loss": ..,
    "accuracy": ..}, ...]``, the shape the course trainer logs); a pandas DataFrame (one column per
    series); or any object with a ``.series`` (the labs' History), ``.history`` or ``.log_history``
    attribute holding one of those.
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
    with course_style():
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
        with course_style():
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
