"""The course's plot style and the small pieces every plot helper shares.

:func:`use_course_style` makes lines cycle through a palette readers with colour-vision deficiencies
tell apart (:data:`OKABE_ITO`) *and* through line styles, so series differ in grey print too; each
lesson calls it once in its set-up cell (:func:`course_style` does the same inside a ``with`` block).

Used by every lesson that draws.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import matplotlib.pyplot as plt
from cycler import cycler

__all__ = ["LINE_STYLES", "MARKERS", "OKABE_ITO", "course_style", "use_course_style"]


#: Marker shapes cycled with the colours, for scatter points and operating points.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


#: Okabe and Ito's palette: told apart by readers with the common colour-vision deficiencies.
OKABE_ITO = ("#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
#: One line style per colour, so the series still differ when a page is printed in grey.
LINE_STYLES = ("-", "--", ":", "-.", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 3)), (0, (7, 2, 2, 2)))


def _course_cycle() -> cycler:
    return cycler(color=list(OKABE_ITO)) + cycler(linestyle=list(LINE_STYLES))


def use_course_style() -> None:
    """Make every later matplotlib line cycle through :data:`OKABE_ITO` *and* :data:`LINE_STYLES`.

    Each lesson calls it once in its set-up cell; importing the plots changes nothing by itself.
    Colours a helper pins itself (a red threshold marker) are left alone.
    """
    plt.rcParams["axes.prop_cycle"] = _course_cycle()


@contextlib.contextmanager
def course_style() -> Iterator[None]:
    """The course style inside a ``with`` block only (matplotlib's settings come back after it)."""
    with plt.rc_context({"axes.prop_cycle": _course_cycle()}):
        yield


def _legend(ax: plt.Axes, handles=None, labels=None, **kwargs):
    """A legend with each label once (drawing a threshold twice must not list it twice)."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    unique: dict[str, Any] = {}
    for handle, label in zip(handles, labels):
        unique.setdefault(label, handle)
    return ax.legend(list(unique.values()), list(unique.keys()), **kwargs)


def _axes(ax: plt.Axes | None, figsize: tuple[float, float] = (6.0, 4.0)) -> plt.Axes:
    """``ax``, or a new Axes in the course style (a helper's own figure looks the same in every lesson)."""
    if ax is not None:
        return ax
    with course_style():
        _, new_ax = plt.subplots(figsize=figsize)
    return new_ax
