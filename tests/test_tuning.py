"""Search spaces, the three search strategies, training-setting runs and the decision-tree grid search."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from course_utils.errors import ConfigError, DataError
from course_utils.labs.hyperparams import settings_table, train_settings
from course_utils.labs.overfitting import load_digits_splits
from course_utils.tuning import (
    DEFAULT_TREE_GRID,
    CategoricalParam,
    FloatParam,
    IntParam,
    SearchResult,
    SearchSpace,
    bayesian_search,
    compare_searches,
    cv_results_table,
    grid_search,
    random_search,
    tune_decision_tree,
)

SPACE = SearchSpace({"x": FloatParam(-2.0, 2.0), "lr": FloatParam(1e-4, 1.0, log=True), "act": CategoricalParam(("a", "b"))})


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def bowl(p: dict) -> float:
    """Peak 1.0 at x=0.5, lr=0.01, act='b'."""
    return 1.0 - (p["x"] - 0.5) ** 2 - (math.log10(p["lr"]) + 2) ** 2 / 4 - (0.3 if p["act"] == "a" else 0.0)


# --- search space --------------------------------------------------------------------------


def test_grid_fits_budget_and_spreads_levels_evenly():
    space = SearchSpace({"a": FloatParam(0, 1), "b": FloatParam(0, 1)})
    assert space.levels_for_budget(8) == {"a": 4, "b": 2} or space.levels_for_budget(8) == {"a": 2, "b": 4}
    assert len(space.grid(8)) == 8 and len(space.grid(9)) == 9
    assert SPACE.levels_for_budget(12) == {"x": 3, "lr": 2, "act": 2}


def test_grid_values_respect_scale_and_type():
    assert FloatParam(1e-4, 1e-2, log=True).grid(3) == pytest.approx([1e-4, 1e-3, 1e-2])
    assert FloatParam(0, 10).grid(1) == [5.0]
    assert IntParam(1, 10).grid(4) == [1, 4, 7, 10]
    assert CategoricalParam(("a", "b", "c")).grid(5) == ["a", "b", "c"]
    # a categorical never gets more levels than it has choices
    assert SearchSpace({"c": CategoricalParam(("a", "b"))}).levels_for_budget(10) == {"c": 2}


def test_samples_stay_in_range():
    rng = np.random.default_rng(0)
    space = SearchSpace({"f": FloatParam(1e-3, 1e-1, log=True), "i": IntParam(2, 64, log=True),
                         "j": IntParam(0, 3), "c": CategoricalParam((None, "x"))})
    draws = [space.sample(rng) for _ in range(300)]
    assert all(1e-3 <= d["f"] <= 1e-1 and 2 <= d["i"] <= 64 and d["j"] in {0, 1, 2, 3} for d in draws)
    assert {d["c"] for d in draws} == {None, "x"} and {d["j"] for d in draws} == {0, 1, 2, 3}
    # log scale: about half the draws below the geometric middle
    assert 0.35 < np.mean([d["f"] < 1e-2 for d in draws]) < 0.65


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: FloatParam(1.0, 1.0), "low < high"),
        (lambda: FloatParam(0.0, 1.0, log=True), "positive"),
        (lambda: IntParam(1.5, 3), "integers"),
        (lambda: CategoricalParam(()), "at least one"),
        (lambda: SearchSpace({}), "at least one"),
        (lambda: SearchSpace({"a": (0, 1)}), "FloatParam"),
        (lambda: SPACE.grid(0), "budget"),
    ],
)
def test_bad_spaces_are_rejected(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


# --- strategies ----------------------------------------------------------------------------


def test_grid_search_runs_the_whole_grid_and_reports_best():
    result = grid_search(bowl, SPACE, budget=12)
    assert result.n_trials == 12 and result.method == "grid"
    assert list(result.trials.columns) == ["trial", "x", "lr", "act", "score", "seconds"]
    assert result.trials["trial"].tolist() == list(range(1, 13))
    assert result.best_score == max(result.scores)
    assert result.best_score == pytest.approx(bowl(result.best_params))


def test_random_search_is_reproducible_and_seed_dependent():
    a, b = random_search(bowl, SPACE, 15, seed=3), random_search(bowl, SPACE, 15, seed=3)
    c = random_search(bowl, SPACE, 15, seed=4)
    assert a.scores == b.scores and a.scores != c.scores
    assert a.best_so_far().tolist() == np.maximum.accumulate(a.scores).tolist()


def test_bayesian_search_is_seeded_quiet_and_improves_on_its_random_start(capsys):
    a = bayesian_search(bowl, SPACE, 30, seed=0, progress=False)
    b = bayesian_search(bowl, SPACE, 30, seed=0, progress=False)
    assert a.scores == b.scores and a.n_trials == 30
    assert capsys.readouterr().err == ""  # optuna's per-trial log lines are silenced
    startup = max(2, min(10, 30 // 3))
    assert a.best_score > max(a.scores[:startup])
    assert a.best_params["act"] == "b"


def test_compare_searches_uses_the_same_budget_for_all():
    results = compare_searches(bowl, SPACE, budget=12, seed=1)
    assert list(results) == ["grid", "random", "bayesian (TPE)"]
    assert [r.n_trials for r in results.values()] == [12, 12, 12]


def test_minimize_direction_and_non_finite_scores():
    calls = iter([float("nan"), 3.0, 1.0, float("inf")])
    space = SearchSpace({"k": CategoricalParam((1, 2, 3, 4))})
    result = grid_search(lambda p: next(calls), space, budget=4, direction="minimize")
    assert math.isnan(result.scores[0]) and math.isnan(result.scores[3])
    assert result.best_score == 1.0 and result.best_params == {"k": 3}
    assert result.best_so_far().tolist() == [np.inf, 3.0, 1.0, 1.0]
    assert result.trials_to_reach(1.0) == 3 and result.trials_to_reach(0.5) is None
    assert result.best_so_far(length=6).tolist() == [np.inf, 3.0, 1.0, 1.0, 1.0, 1.0]
    with pytest.raises(ConfigError, match="direction"):
        grid_search(bowl, SPACE, 4, direction="up")


def test_objective_must_return_a_number():
    with pytest.raises(ConfigError, match="number"):
        random_search(lambda p: "good", SPACE, 2)


def test_none_choices_survive_into_best_params():
    space = SearchSpace({"depth": CategoricalParam((None, 3))})
    result = grid_search(lambda p: 1.0 if p["depth"] is None else 0.0, space, budget=2)
    assert result.best_params == {"depth": None}
    rebuilt = SearchResult("copy", result.trials)
    assert rebuilt.best_score == 1.0 and "best 1.0000" in str(rebuilt)


# --- training settings ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    return load_digits_splits(n_train=120, n_val=100, seed=0)


def test_train_settings_share_initial_weights_and_differ_only_in_the_setting(digits):
    runs = train_settings(digits, {"a": {"lr": 0.01}, "b": {"lr": 0.01}, "big batch": {"batch_size": 120}},
                          hidden=(16,), epochs=3)
    assert runs["a"].series == runs["b"].series  # same seed, same setting -> identical run
    assert len(runs["a"].step_losses) == 3 * 4 and len(runs["big batch"].step_losses) == 3
    assert runs["a"]["val_loss"][0] == runs["big batch"]["val_loss"][0]
    table = settings_table(runs)
    assert list(table.index) == ["a", "b", "big batch"]
    assert table.loc["big batch", "optimizer_steps"] == 3
    assert table["final_val_acc"].between(0, 1).all()


def test_train_settings_rejects_unknown_keys_and_bad_splits(digits):
    with pytest.raises(ConfigError, match="momentum"):
        train_settings(digits, {"x": {"momentum": 0.9}})
    with pytest.raises(DataError, match="X_train"):
        train_settings(object(), {"x": {}})


# --- decision tree -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cancer():
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    X, y = load_breast_cancer(return_X_y=True)
    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)


def test_tune_decision_tree_searches_the_grid_with_cv(cancer):
    X_train, X_test, y_train, y_test = cancer
    grid = {"criterion": ["gini", "entropy"], "max_depth": [2, 4], "min_samples_split": [2, 10]}
    search = tune_decision_tree(X_train, y_train, grid, cv=5, seed=0)
    assert search.n_splits_ == 5 and len(search.cv_results_["params"]) == 8
    assert set(search.best_params_) == set(grid)
    assert search.best_estimator_.score(X_test, y_test) > 0.85
    table = cv_results_table(search, top=3)
    assert len(table) == 3 and table["rank"].iloc[0] == 1
    assert {"criterion", "max_depth", "min_samples_split", "mean_cv_score"} <= set(table.columns)
    assert table["mean_cv_score"].iloc[0] == pytest.approx(search.best_score_)


def test_default_tree_grid_covers_the_three_parameters():
    assert set(DEFAULT_TREE_GRID) == {"criterion", "max_depth", "min_samples_split"}


def test_tune_decision_tree_names_bad_parameters_and_folds(cancer):
    X_train, _, y_train, _ = cancer
    with pytest.raises(ConfigError, match="max_dept"):
        tune_decision_tree(X_train, y_train, {"max_dept": [2]})
    with pytest.raises(ConfigError, match="no values"):
        tune_decision_tree(X_train, y_train, {"max_depth": []})
    with pytest.raises(ConfigError, match="cv must be"):
        tune_decision_tree(X_train, y_train, {"max_depth": [2]}, cv=1)
    with pytest.raises(DataError, match="rows"):
        tune_decision_tree(X_train, y_train[:10], {"max_depth": [2]})
    with pytest.raises(ConfigError, match="fit"):
        cv_results_table(pd.DataFrame())


def test_grid_differences_names_what_keeps_a_grid_from_the_outlines():
    from course_utils.grading.questions import TREE_GRID
    from course_utils.tuning import grid_differences

    assert TREE_GRID is DEFAULT_TREE_GRID  # one home: the grading registry reads the core's grid
    assert grid_differences({k: list(v) for k, v in DEFAULT_TREE_GRID.items()}) == []
    assert grid_differences({}) == [f"missing {name!r}" for name in DEFAULT_TREE_GRID]
    reordered = {**DEFAULT_TREE_GRID, "max_depth": [10, 20, 30, None], "splitter": ["best"]}
    assert grid_differences(reordered) == ["'splitter' is not in the grid to write",
                                           "'max_depth' should list 4 values in the outline's order"]
    assert grid_differences(None) == ["expected a dict of parameter -> list of values, got NoneType"]
