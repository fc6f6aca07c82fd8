"""Tests for the functions lessons 04, 06 and 07 appended to course_utils.plots."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from course_utils.errors import ConfigError, DataError  # noqa: E402
from course_utils.labs.loop import History  # noqa: E402
from course_utils.plots import plot_threshold_curves, plot_train_val_grid  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _history(val_loss, best):
    return History(
        {"train_loss": [1.0, 0.5, 0.2], "val_loss": val_loss, "train_accuracy": [0.5, 0.8, 0.9],
         "val_accuracy": [0.5, 0.7, 0.6]},
        first_epoch=1,
        best_epoch=best,
        stopped_epoch=3,
    )


def test_train_val_grid_one_panel_per_run_with_both_curves_and_best_epoch():
    runs = {"a": _history([1.1, 0.7, 0.9], best=2), "b": {"train_loss": [3.0, 2.0], "val_loss": [3.5, 2.5]}}
    axes = plot_train_val_grid(runs, ncols=3)
    assert axes.shape == (1, 2)
    first, second = axes.flat
    assert first.get_title() == "a" and second.get_title() == "b"
    labels = [line.get_label() for line in first.get_lines()]
    assert labels[:2] == ["train", "validation"]
    np.testing.assert_allclose(first.get_lines()[1].get_ydata(), [1.1, 0.7, 0.9])
    # the dashed best-epoch marker sits at x = 2 on the History run only
    assert list(first.get_lines()[2].get_xdata()) == [2, 2]
    assert len(second.get_lines()) == 2


def test_train_val_grid_accuracy_metric_and_hidden_spare_panels():
    runs = {name: _history([1.0, 0.9, 0.8], best=3) for name in "abcd"}
    axes = plot_train_val_grid(runs, metric="accuracy", ncols=3)
    assert axes.shape == (2, 3)
    np.testing.assert_allclose(axes[0, 0].get_lines()[1].get_ydata(), [0.5, 0.7, 0.6])
    assert [ax.get_visible() for ax in axes.flat] == [True] * 4 + [False] * 2


def test_train_val_grid_rejects_bad_input():
    with pytest.raises(DataError):
        plot_train_val_grid({})
    with pytest.raises(ConfigError):
        plot_train_val_grid({"a": _history([1, 1, 1], 1)}, ncols=0)
    with pytest.raises(DataError, match="val_f1"):
        plot_train_val_grid({"a": _history([1, 1, 1], 1)}, metric="f1")


def test_threshold_curves_plot_precision_and_recall_against_threshold():
    y = np.array([0, 0, 1, 1])
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    ax = plot_threshold_curves(y, scores, threshold=0.35)
    precision, recall, marker = ax.get_lines()
    assert precision.get_label() == "precision" and recall.get_label() == "recall"
    np.testing.assert_allclose(precision.get_xdata(), [0.1, 0.35, 0.4, 0.8])
    # at threshold 0.35: 3 predicted positive, 2 of them right; both positives found
    assert precision.get_ydata()[1] == pytest.approx(2 / 3) and recall.get_ydata()[1] == 1.0
    assert list(marker.get_xdata()) == [0.35, 0.35]


def test_threshold_curves_reject_non_binary_labels():
    with pytest.raises(DataError):
        plot_threshold_curves([0, 1, 2], [0.1, 0.5, 0.9])
    with pytest.raises(DataError):
        plot_threshold_curves([1, 1], [0.1, 0.5])
    with pytest.raises(DataError):
        plot_threshold_curves([0, 1], [0.1])
