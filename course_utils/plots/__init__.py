"""Plots every lesson reuses: learning curves, confusion matrices, PR curves, search traces.

A learner should *look* at a run rather than read a column of numbers, and every lesson should draw
the same quantity the same way so that plots are comparable across notebooks. Each function takes an
optional ``ax`` (so lessons can put several panels side by side), draws with plain matplotlib (works
headless, no seaborn), and returns the Axes it drew on so tests and notebooks can inspect it.

Importing the plots changes no matplotlib setting: a lesson calls :func:`use_course_style` once in its
set-up cell (or draws inside ``with course_style():``).

One module a concern, every public name re-exported here: ``style`` (palette, line styles, the
course style), ``curves`` (learning curves, lessons 01, 03, 05, 06), ``classification`` (confusion
matrix, PR and threshold curves, class balance, confidence; lessons 02 and 04), ``search`` (lesson 03's
search traces) and ``checks`` (:func:`figure_problems`, the plot rules as a test).
"""

from course_utils.plots.checks import figure_problems
from course_utils.plots.classification import (
    plot_class_balance,
    plot_confidence_histogram,
    plot_confusion_matrix,
    plot_pr_curve,
    plot_threshold_curves,
)
from course_utils.plots.curves import plot_learning_curves, plot_train_val_grid, plot_training_history
from course_utils.plots.search import plot_search_points, plot_search_results
from course_utils.plots.style import LINE_STYLES, MARKERS, OKABE_ITO, course_style, use_course_style

__all__ = [
    "LINE_STYLES",
    "MARKERS",
    "OKABE_ITO",
    "course_style",
    "use_course_style",
    "plot_learning_curves",
    "plot_train_val_grid",
    "plot_training_history",
    "plot_confusion_matrix",
    "plot_pr_curve",
    "plot_class_balance",
    "plot_threshold_curves",
    "plot_confidence_histogram",
    "plot_search_results",
    "plot_search_points",
    "figure_problems",
]
