"""The shared plots draw the data they are given, label it, and reject input they cannot draw."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from course_utils.errors import DataError  # noqa: E402
from course_utils.plots import (  # noqa: E402
    course_style,
    figure_problems,
    plot_class_balance,
    plot_confidence_histogram,
    plot_confusion_matrix,
    plot_learning_curves,
    plot_pr_curve,
    plot_search_points,
    plot_search_results,
    plot_threshold_curves,
    plot_train_val_grid,
    plot_training_history,
)
from course_utils.tuning import SearchResult  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_learning_curves_one_line_per_series_with_data_and_labels():
    ax = plot_learning_curves({"train": [1.0, 0.5, 0.25], "val": [1.2, 0.9, 0.8]}, ylabel="loss", title="t")
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["train", "val"]
    np.testing.assert_allclose(lines[0].get_xdata(), [1, 2, 3])
    np.testing.assert_allclose(lines[1].get_ydata(), [1.2, 0.9, 0.8])
    assert ax.get_ylabel() == "loss" and ax.get_title() == "t"


def test_learning_curves_start_at_zero_when_asked():
    ax = plot_learning_curves({"acc": [0.2, 0.6, 0.9]}, start=0)
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), [0, 1, 2])


def test_learning_curves_accept_list_of_epoch_dicts_and_skip_epoch_counter():
    history = [{"epoch": 1, "loss": 0.9, "accuracy": 0.5}, {"epoch": 2, "loss": 0.4, "accuracy": 0.8}]
    ax = plot_learning_curves(history)
    assert sorted(line.get_label() for line in ax.get_lines()) == ["accuracy", "loss"]


def test_learning_curves_accept_dataframe_and_object_with_history():
    class Run:
        history = pd.DataFrame({"loss": [3.0, 2.0]})

    ax = plot_learning_curves(Run())
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [3.0, 2.0])


def test_learning_curves_draw_on_given_axes_and_keep_nan_gaps():
    fig, axes = plt.subplots(1, 2)
    returned = plot_learning_curves({"diverged": [1.0, float("nan"), 2.0]}, ax=axes[1], logy=True)
    assert returned is axes[1]
    assert axes[1].get_yscale() == "log"
    assert np.isnan(returned.get_lines()[0].get_ydata()[1])


def test_learning_curves_reject_empty_or_wrong_input():
    with pytest.raises(DataError, match="no numeric series"):
        plot_learning_curves({})
    with pytest.raises(DataError, match="dict of name"):
        plot_learning_curves(42)


def test_confusion_matrix_image_holds_counts_or_row_shares():
    cm = [[8, 2], [1, 9]]
    ax = plot_confusion_matrix(cm, ["neg", "pos"])
    np.testing.assert_allclose(ax.images[0].get_array(), cm)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["neg", "pos"]
    assert [t.get_text() for t in ax.texts] == ["8", "2", "1", "9"]

    ax = plot_confusion_matrix(np.array(cm), ["neg", "pos"], normalize=True)
    np.testing.assert_allclose(ax.images[0].get_array(), [[0.8, 0.2], [0.1, 0.9]])
    assert "row-normalised" in ax.get_title()


def test_confusion_matrix_normalize_handles_empty_row():
    ax = plot_confusion_matrix([[0, 0], [3, 1]], ["a", "b"], normalize=True)
    np.testing.assert_allclose(ax.images[0].get_array(), [[0, 0], [0.75, 0.25]])


def test_confusion_matrix_rejects_mismatched_labels():
    with pytest.raises(DataError, match="labels"):
        plot_confusion_matrix([[1, 0], [0, 1]], ["only-one"])
    with pytest.raises(DataError, match="square"):
        plot_confusion_matrix([[1, 0, 0], [0, 1, 0]], ["a", "b"])


def test_pr_curve_draws_curve_and_threshold_marker():
    y = np.array([0, 0, 1, 1, 1, 0])
    s = np.array([0.1, 0.4, 0.35, 0.8, 0.9, 0.2])
    ax = plot_pr_curve(y, s, threshold=0.5)
    curve, point = ax.get_lines()
    recall = curve.get_xdata()
    assert recall.min() == 0.0 and recall.max() == 1.0
    # threshold 0.5 -> predicts the two highest scores, both positive: precision 1, recall 2/3
    np.testing.assert_allclose([point.get_xdata()[0], point.get_ydata()[0]], [2 / 3, 1.0])
    assert any("AP=" in t.get_text() for t in ax.get_legend().get_texts())


def test_pr_curve_rejects_multiclass_and_single_class():
    with pytest.raises(DataError, match="binary"):
        plot_pr_curve([0, 1, 2], [0.1, 0.2, 0.3])
    with pytest.raises(DataError, match="both classes"):
        plot_pr_curve([1, 1], [0.1, 0.2])
    with pytest.raises(DataError, match="same length"):
        plot_pr_curve([0, 1], [0.1])


def test_search_results_plot_best_so_far():
    class Result:
        scores = [0.5, 0.7, 0.6, 0.9]

    ax = plot_search_results({"random": Result(), "grid": [0.8, 0.1, 0.85]})
    lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["random", "grid"]
    np.testing.assert_allclose(lines[0].get_ydata(), [0.5, 0.7, 0.7, 0.9])
    np.testing.assert_allclose(lines[1].get_ydata(), [0.8, 0.8, 0.85])
    assert ax.get_xlabel() == "trial"


def test_search_results_minimize_uses_running_minimum():
    ax = plot_search_results({"loss": [3.0, 1.0, 2.0]}, maximize=False)
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [3.0, 1.0, 1.0])


def test_search_results_reject_empty():
    with pytest.raises(DataError):
        plot_search_results({})


def test_class_balance_bars_match_counts():
    df = pd.DataFrame({"label": ["a"] * 3 + ["b"] * 7, "other": range(10)})
    ax = plot_class_balance(df)
    heights = [patch.get_height() for patch in ax.patches]
    assert heights == [3, 7]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"]
    assert "n=10" in ax.get_title()
    assert any("70%" in t.get_text() for t in ax.texts)


def test_class_balance_names_missing_column():
    with pytest.raises(DataError, match="sentiment"):
        plot_class_balance(pd.DataFrame({"label": ["a"]}), label_column="sentiment")


def test_search_points_one_panel_per_strategy_with_shared_colour_scale():
    class Result:
        def __init__(self, xs, ys, scores):
            self.trials = pd.DataFrame({"C": xs, "gamma": ys, "score": scores})

    results = {"grid": Result([1, 1, 10, 10], [0.1, 1, 0.1, 1], [0.5, 0.6, 0.7, 0.9]),
               "random": Result([2, 30], [0.3, 0.05], [0.2, 0.95])}
    axes = plot_search_points(results, "C", "gamma", logx=True, logy=True)
    assert [ax.get_title() for ax in axes] == ["grid (4 trials)", "random (2 trials)"]
    assert axes[0].get_xscale() == "log" and axes[1].get_yscale() == "log"
    points, best = axes[1].collections[:2]
    np.testing.assert_allclose(points.get_offsets(), [[2, 0.3], [30, 0.05]])
    np.testing.assert_allclose(best.get_offsets(), [[30, 0.05]])
    assert points.get_clim() == axes[0].collections[0].get_clim() == (0.2, 0.95)


def test_search_points_need_the_named_columns():
    class Result:
        trials = pd.DataFrame({"C": [1], "score": [0.5]})

    with pytest.raises(DataError, match="gamma"):
        plot_search_points({"grid": Result()}, "C", "gamma")
    with pytest.raises(DataError):
        plot_search_points({}, "C", "gamma")


def test_learning_curves_pin_colours_by_name():
    ax = plot_learning_curves({"a": [1, 2], "b": [2, 1]}, colors={"b": "red"})
    assert matplotlib.colors.to_hex(ax.get_lines()[1].get_color()) == "#ff0000"


def test_class_balance_shared_axes_keep_room_for_the_taller_panel():
    _, (a, b) = plt.subplots(1, 2, sharey=True)
    plot_class_balance(pd.DataFrame({"label": ["x"] * 10}), ax=a)
    plot_class_balance(pd.DataFrame({"label": ["x"] * 5}), ax=b)
    assert a.get_ylim()[1] >= 12


def test_lines_differ_by_style_as_well_as_colour_so_they_read_in_grey():
    ax = plot_learning_curves({"a": [1, 2, 3], "b": [2, 3, 4], "c": [3, 4, 5]}, ylabel="loss")
    lines = ax.get_lines()[:3]
    assert len({line.get_color() for line in lines}) == 3
    assert len({(line.get_linestyle(), line.get_marker()) for line in lines}) == 3
    with course_style():  # what a lesson gets from use_course_style() in its set-up cell
        plain = plt.subplots()[1]
        first, second = plain.plot([0, 1]), plain.plot([1, 0])
    assert first[0].get_linestyle() != second[0].get_linestyle()  # the course style, not only the helpers


def test_importing_the_plots_changes_no_matplotlib_setting():
    import subprocess
    import sys

    code = ("import matplotlib; before = dict(matplotlib.rcParams); import course_utils.plots; "
            "assert dict(matplotlib.rcParams) == before, 'importing course_utils.plots changed rcParams'")
    subprocess.run([sys.executable, "-c", code], check=True)
    with course_style():
        assert plt.rcParams["axes.prop_cycle"].by_key()["linestyle"][:2] == ["-", "--"]
    assert "linestyle" not in plt.rcParams["axes.prop_cycle"].by_key()


def test_a_threshold_drawn_twice_is_listed_once_and_every_axis_has_a_y_label():
    y = np.array([0, 0, 1, 1, 0, 1])
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
    ax = plot_pr_curve(y, scores, threshold=0.5)
    plot_pr_curve(y, scores * 0.9, threshold=0.5, ax=ax)
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert len(labels) == len(set(labels)) and sum("threshold" in label for label in labels) == 1
    assert ax.get_ylabel()
    assert plot_class_balance(pd.DataFrame({"label": ["a", "b", "b"]})).get_ylim()[0] == 0


def test_two_models_at_one_threshold_are_two_named_entries_with_one_chance_line():
    y = np.array([0, 0, 1, 1, 0, 1, 0, 0])
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9, 0.6, 0.05])
    ax = plot_pr_curve(y, scores, threshold=0.5, label="plain", chance_level=True)
    plot_pr_curve(y, scores ** 2, threshold=0.5, label="weighted", ax=ax, chance_level=True)
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert "plain: threshold=0.5" in labels and "weighted: threshold=0.5" in labels
    assert [label for label in labels if label.startswith("chance")] == ["chance (positive share 0.375)"]
    markers = [line.get_marker() for line in ax.get_lines() if line.get_linestyle() == "None"]
    assert len(set(markers)) == 2  # the operating points differ by shape, not only colour
    assert figure_problems(ax.figure) == []


def test_confidence_histogram_says_how_many_missing_values_it_leaves_out():
    ax = plot_confidence_histogram([0.5, 0.9, None, 1.0, np.nan, 0.7])
    (label,) = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "4 rows with a value" in label and "2 missing" in label
    assert sum(p.get_height() for p in ax.patches) == 4
    assert ax.get_ylabel() == "rows" and figure_problems(ax.figure) == []
    with pytest.raises(DataError, match="all 2 values are missing"):
        plot_confidence_histogram([None, np.nan])


def test_figure_problems_finds_a_missing_y_label_a_repeated_legend_entry_and_cut_bars():
    fig, (a, b, c) = plt.subplots(1, 3)
    a.plot([0, 1], label="x")
    a.plot([1, 0], label="x")
    a.legend()
    a.set_ylabel("score")
    b.bar(["p", "q"], [0.7, 0.75])
    b.set_ylim(0.62, 0.8)
    b.set_ylabel("macro F1")
    c.plot([0, 1])
    problems = figure_problems(fig)
    assert len(problems) == 3
    assert "more than once" in problems[0] and "bars start at 0.62" in problems[1] and "no y-label" in problems[2]
    b.set_ylim(0, 0.8)
    c.set_ylabel("loss")
    a.legend(["x", "y"])
    assert figure_problems(fig) == []


def _search_result(name):
    trials = pd.DataFrame({"trial": [1, 2, 3], "lr": [1e-3, 1e-2, 1e-1], "batch": [8, 16, 32],
                           "score": [0.5, 0.7, 0.6], "seconds": [1.0, 1.0, 1.0]})
    return SearchResult(name, trials)


def _every_helper():
    y = np.array([0, 0, 1, 1, 0, 1, 0, 0])
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9, 0.6, 0.05])
    run = {"train_loss": [1.0, 0.6, 0.4], "val_loss": [1.1, 0.8, 0.9]}
    history = {"step": [1, 2, 3, 4], "loss": [1.0, 0.8, 0.7, 0.6], "best_epoch": 1,
               "epochs": [{"epoch": 1, "train_loss": 0.8, "val_loss": 0.9, "val_macro_f1": 0.6},
                          {"epoch": 2, "train_loss": 0.6, "val_loss": 0.95, "val_macro_f1": 0.62}]}
    yield "learning curves", lambda: plot_learning_curves(run).figure
    yield "confusion matrix", lambda: plot_confusion_matrix([[3, 1], [2, 4]], ["a", "b"]).figure
    yield "pr curve", lambda: plot_pr_curve(y, scores, threshold=0.5, label="m", chance_level=True).figure
    yield "threshold curves", lambda: plot_threshold_curves(y, scores, threshold=0.5).figure
    yield "search results", lambda: plot_search_results({"grid": [0.5, 0.7], "random": [0.6, 0.65]}).figure
    yield "class balance", lambda: plot_class_balance(pd.DataFrame({"label": ["a", "b", "b"]})).figure
    yield "search points", lambda: plot_search_points({"grid": _search_result("grid")}, "lr", "batch")[0].figure
    yield "train/val grid", lambda: plot_train_val_grid({"a": run, "b": run})[0, 0].figure
    yield "training history", lambda: plot_training_history(history)[0].figure
    yield "confidence histogram", lambda: plot_confidence_histogram([0.4, None, 0.9]).figure


@pytest.mark.parametrize("name,draw", list(_every_helper()), ids=[n for n, _ in _every_helper()])
def test_every_plot_helper_follows_the_course_plot_rules(name, draw):
    assert figure_problems(draw()) == []
