"""The course's plot rules as a check: every Axes has a y-label, a legend lists each label once, bars start at 0.

Used by the tests of every plot helper; a lesson can run :func:`figure_problems` on any figure it draws.
"""

from __future__ import annotations

from itertools import pairwise

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["figure_problems"]


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
