"""Plots of a hyperparameter search: the score of every trial, and where in the space each one looked.

Taught in lesson 03 (hyperparameter tuning).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from course_utils.errors import ConfigError, DataError
from course_utils.plots.style import _axes, _legend, course_style

__all__ = ["plot_search_results", "plot_search_points"]


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
        with course_style():
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
