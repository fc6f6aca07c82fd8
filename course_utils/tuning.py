"""Hyperparameter search on a budget: grid, random and Bayesian (optuna TPE), compared fairly.

Lesson 03 asks "which search strategy finds a good configuration in the fewest trials?". Answering
it needs the three strategies to share one objective, one search space and one trial budget, and
to report the same thing: every trial's parameters and score. This module provides exactly that
small API, so that the lesson and its exercise compare like with like:

* :class:`SearchSpace` of :class:`FloatParam`, :class:`IntParam` and :class:`CategoricalParam`;
* :func:`grid_search`, :func:`random_search`, :func:`bayesian_search` and :func:`compare_searches`,
  each returning a :class:`SearchResult`;
* :func:`train_settings` for the learning-rate / batch-size / epochs experiments on digits;
* :func:`tune_decision_tree` and :func:`cv_results_table` for scikit-learn's ``GridSearchCV``.

An objective is any function ``params -> float``; by default larger is better.

Taught in lesson 03 (hyperparameter tuning).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from course_utils.errors import ConfigError, DataError

__all__ = [
    "FloatParam",
    "IntParam",
    "CategoricalParam",
    "SearchSpace",
    "SearchResult",
    "grid_search",
    "random_search",
    "bayesian_search",
    "compare_searches",
    "DEFAULT_TREE_GRID",
    "grid_differences",
    "tune_decision_tree",
    "cv_results_table",
]

Objective = Callable[[dict[str, Any]], float]

# --------------------------------------------------------------------------------------------
# Search space
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FloatParam:
    """A real-valued hyperparameter in ``[low, high]``; ``log=True`` for scales like learning rates.

    On a log scale 0.001 -> 0.01 is as big a step as 0.01 -> 0.1, which is how learning rates and
    regularisation strengths behave; sampling them uniformly would waste most trials at the top.
    """

    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        _check_range(self.low, self.high, self.log)

    def grid(self, n: int) -> list[float]:
        if n == 1:
            return [float(math.sqrt(self.low * self.high)) if self.log else (self.low + self.high) / 2]
        points = np.geomspace(self.low, self.high, n) if self.log else np.linspace(self.low, self.high, n)
        return [float(p) for p in points]

    def sample(self, rng: np.random.Generator) -> float:
        if self.log:
            return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return float(rng.uniform(self.low, self.high))

    def suggest(self, trial, name: str) -> float:
        return trial.suggest_float(name, self.low, self.high, log=self.log)

    @property
    def max_levels(self) -> float:
        return math.inf


@dataclass(frozen=True)
class IntParam:
    """An integer hyperparameter in ``[low, high]`` (both included), e.g. a tree depth."""

    low: int
    high: int
    log: bool = False

    def __post_init__(self) -> None:
        if int(self.low) != self.low or int(self.high) != self.high:
            raise ConfigError(f"IntParam bounds must be integers, got {self.low} and {self.high}.")
        _check_range(self.low, self.high, self.log)

    def grid(self, n: int) -> list[int]:
        values = FloatParam(self.low, self.high, self.log).grid(n)
        return sorted({int(round(v)) for v in values})

    def sample(self, rng: np.random.Generator) -> int:
        if not self.log:
            return int(rng.integers(self.low, self.high + 1))
        # floor of a log-uniform draw on [low, high + 1): small values as likely as a log scale says
        value = math.floor(math.exp(rng.uniform(math.log(self.low), math.log(self.high + 1))))
        return int(min(self.high, max(self.low, value)))

    def suggest(self, trial, name: str) -> int:
        return trial.suggest_int(name, int(self.low), int(self.high), log=self.log)

    @property
    def max_levels(self) -> float:
        return float(self.high - self.low + 1)


@dataclass(frozen=True)
class CategoricalParam:
    """A hyperparameter taking one of a few listed values (e.g. ``"gini"`` or ``"entropy"``)."""

    choices: tuple

    def __post_init__(self) -> None:
        if len(self.choices) == 0:
            raise ConfigError("CategoricalParam needs at least one choice.")
        object.__setattr__(self, "choices", tuple(self.choices))

    def grid(self, n: int) -> list:
        if n >= len(self.choices):
            return list(self.choices)
        idx = np.linspace(0, len(self.choices) - 1, n).round().astype(int)
        return [self.choices[i] for i in sorted(set(idx))]

    def sample(self, rng: np.random.Generator):
        return self.choices[int(rng.integers(len(self.choices)))]

    def suggest(self, trial, name: str):
        return trial.suggest_categorical(name, list(self.choices))

    @property
    def max_levels(self) -> float:
        return float(len(self.choices))


Param = FloatParam | IntParam | CategoricalParam


def _check_range(low: float, high: float, log: bool) -> None:
    if not (math.isfinite(low) and math.isfinite(high)) or not low < high:
        raise ConfigError(f"a search range needs finite low < high, got low={low}, high={high}.")
    if log and low <= 0:
        raise ConfigError(f"a log-scale range must be positive, got low={low}; use log=False or a positive low.")


@dataclass
class SearchSpace:
    """Named hyperparameters to search over, e.g. ``SearchSpace({"C": FloatParam(1e-2, 1e3, log=True)})``."""

    params: Mapping[str, Param]

    def __post_init__(self) -> None:
        if not self.params:
            raise ConfigError("a SearchSpace needs at least one parameter.")
        for name, param in self.params.items():
            if not isinstance(param, (FloatParam, IntParam, CategoricalParam)):
                raise ConfigError(
                    f"parameter {name!r} must be a FloatParam, IntParam or CategoricalParam, got {type(param).__name__}."
                )
        self.params = dict(self.params)

    @property
    def names(self) -> list[str]:
        return list(self.params)

    def levels_for_budget(self, budget: int) -> dict[str, int]:
        """How many values per parameter a grid of at most ``budget`` points can afford.

        Starts at one value each and keeps adding a value to the parameter with the fewest, as long
        as the grid still fits: the budget is spread as evenly as the parameters allow.
        """
        if budget < 1:
            raise ConfigError(f"the budget must be at least one trial, got {budget}.")
        levels = {name: 1 for name in self.params}
        while True:
            grown = False
            for name in sorted(levels, key=lambda n: levels[n]):
                if levels[name] + 1 > self.params[name].max_levels:
                    continue
                trial = {**levels, name: levels[name] + 1}
                if math.prod(trial.values()) <= budget:
                    levels, grown = trial, True
                    break
            if not grown:
                return levels

    def grid(self, budget: int) -> list[dict[str, Any]]:
        """Every combination of evenly spaced values, at most ``budget`` of them, in grid order."""
        levels = self.levels_for_budget(budget)
        axes = {name: self.params[name].grid(n) for name, n in levels.items()}
        points: list[dict[str, Any]] = [{}]
        for name, values in axes.items():
            points = [{**p, name: v} for p in points for v in values]
        return points

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return {name: param.sample(rng) for name, param in self.params.items()}

    def suggest(self, trial) -> dict[str, Any]:
        return {name: param.suggest(trial, name) for name, param in self.params.items()}


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass
class SearchResult:
    """Every trial of one search: parameters, score and time, plus the best found.

    ``trials`` has one row per trial (``trial`` numbered from 1, one column per parameter,
    ``score``, ``seconds``). Non-finite scores (a diverged run) are kept as NaN and never chosen
    as best.
    """

    method: str
    trials: pd.DataFrame
    direction: str = "maximize"
    params: list[dict[str, Any]] | None = field(default=None, repr=False)
    best_params: dict[str, Any] = field(init=False)
    best_score: float = field(init=False)

    def __post_init__(self) -> None:
        if self.params is None:  # rebuilt from the frame (pandas may have turned None into NaN)
            self.params = [{n: _plain(v) for n, v in row.items()} for row in self.trials[self.param_names].to_dict("records")]
        scores = self.trials["score"].astype(float).reset_index(drop=True)
        if scores.notna().any():
            best = int(scores.idxmax() if self.direction == "maximize" else scores.idxmin())
            self.best_params = dict(self.params[best])
            self.best_score = float(scores[best])
        else:
            self.best_params, self.best_score = {}, float("nan")

    @property
    def param_names(self) -> list[str]:
        return [c for c in self.trials.columns if c not in ("trial", "score", "seconds")]

    @property
    def scores(self) -> list[float]:
        return self.trials["score"].astype(float).tolist()

    @property
    def n_trials(self) -> int:
        return len(self.trials)

    def best_so_far(self, length: int | None = None) -> np.ndarray:
        """The best score after each trial: what a budget of ``k`` trials would have found.

        ``length`` pads with the final best (a grid that fits fewer points than the budget simply
        stops early), so searches with different trial counts line up for averaging.
        """
        s = np.asarray(self.scores, dtype=float)
        fill = -np.inf if self.direction == "maximize" else np.inf
        s = np.where(np.isnan(s), fill, s)
        best = np.maximum.accumulate(s) if self.direction == "maximize" else np.minimum.accumulate(s)
        if length is not None and length > len(best):
            best = np.concatenate([best, np.full(length - len(best), best[-1] if len(best) else fill)])
        return best

    def trials_to_reach(self, score: float) -> int | None:
        """The first trial (1-based) whose best-so-far reaches ``score``, or None if never."""
        best = self.best_so_far()
        hit = best >= score if self.direction == "maximize" else best <= score
        return int(np.argmax(hit)) + 1 if hit.any() else None

    def __str__(self) -> str:
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in self.best_params.items())
        return f"{self.method}: best {self.best_score:.4f} after {self.n_trials} trials ({params})"


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _check_direction(direction: str) -> None:
    if direction not in ("maximize", "minimize"):
        raise ConfigError(f"direction must be 'maximize' or 'minimize', got {direction!r}.")


def _trial(objective: Objective, params: dict[str, Any]) -> dict[str, Any]:
    """One row of the trials table: the parameters, the score (NaN when not finite) and the seconds."""
    start = time.perf_counter()
    value = objective(dict(params))
    try:
        score = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"the objective must return a number, got {type(value).__name__} for {params}.") from None
    return {**params, "score": score if math.isfinite(score) else float("nan"),
            "seconds": time.perf_counter() - start}


def _progress(total: int, desc: str, enabled: bool):
    """A tqdm bar with an estimate for a search (trials of a few seconds each add up to minutes)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="trial", disable=not enabled)


def _run_trials(objective: Objective, points, total: int, desc: str, progress: bool) -> list[dict[str, Any]]:
    rows = []
    with _progress(total, desc, progress) as bar:
        for params in points:
            rows.append(_trial(objective, params))
            bar.update(1)
    return rows


def _result(method: str, rows: list[dict[str, Any]], direction: str, names: Sequence[str]) -> SearchResult:
    frame = pd.DataFrame(rows, columns=[*names, "score", "seconds"])
    frame.insert(0, "trial", np.arange(1, len(frame) + 1))
    params = [{n: row[n] for n in names} for row in rows]
    return SearchResult(method, frame, direction, params)


# --------------------------------------------------------------------------------------------
# The three strategies
# --------------------------------------------------------------------------------------------


def grid_search(objective: Objective, space: SearchSpace, budget: int, direction: str = "maximize",
                progress: bool = True) -> SearchResult:
    """Evaluate an evenly spaced grid of at most ``budget`` points, in grid order.

    A grid spends its budget on every combination, so with ``k`` parameters each one only gets
    about ``budget ** (1/k)`` distinct values: the reason grids scale badly with dimensions.
    """
    _check_direction(direction)
    points = space.grid(budget)
    rows = _run_trials(objective, points, len(points), "grid search", progress)
    return _result("grid", rows, direction, space.names)


def random_search(
    objective: Objective, space: SearchSpace, n_trials: int, seed: int = 0, direction: str = "maximize",
    progress: bool = True,
) -> SearchResult:
    """Evaluate ``n_trials`` independent random points (reproducible with ``seed``).

    Every trial tries a new value of *every* parameter, so when only one or two parameters matter
    random search covers them far more densely than a grid of the same size.
    """
    _check_direction(direction)
    if n_trials < 1:
        raise ConfigError(f"n_trials must be at least 1, got {n_trials}.")
    rng = np.random.default_rng(seed)
    rows = _run_trials(objective, (space.sample(rng) for _ in range(n_trials)), n_trials, "random search", progress)
    return _result("random", rows, direction, space.names)


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[Any]:
    import optuna

    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield optuna
    finally:
        optuna.logging.set_verbosity(previous)


def bayesian_search(
    objective: Objective,
    space: SearchSpace,
    n_trials: int,
    seed: int = 0,
    direction: str = "maximize",
    n_startup_trials: int | None = None,
    progress: bool = True,
) -> SearchResult:
    """Optuna's TPE sampler: a few random trials, then proposals shaped by the scores so far.

    TPE models where good and bad trials fell and proposes points likelier to be good, so later
    trials concentrate near the best region. ``n_startup_trials`` random trials come first
    (default: a third of the budget, between 2 and 10); the seeded sampler makes runs repeatable.
    """
    _check_direction(direction)
    if n_trials < 1:
        raise ConfigError(f"n_trials must be at least 1, got {n_trials}.")
    startup = n_startup_trials if n_startup_trials is not None else max(2, min(10, n_trials // 3))
    with _quiet_optuna() as optuna:
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)
        study = optuna.create_study(direction=direction, sampler=sampler)
        rows: list[dict[str, Any]] = []

        def wrapped(trial) -> float:
            rows.append(_trial(objective, space.suggest(trial)))
            bar.update(1)
            return rows[-1]["score"]  # NaN marks the trial failed; TPE then ignores it

        with _progress(n_trials, "bayesian search", progress) as bar:
            study.optimize(wrapped, n_trials=n_trials)
    return _result("bayesian (TPE)", rows, direction, space.names)


def compare_searches(
    objective: Objective,
    space: SearchSpace,
    budget: int,
    seed: int = 0,
    direction: str = "maximize",
    progress: bool = True,
) -> dict[str, SearchResult]:
    """Run grid, random and Bayesian search on the same objective, space and budget."""
    return {
        "grid": grid_search(objective, space, budget, direction, progress=progress),
        "random": random_search(objective, space, budget, seed, direction, progress=progress),
        "bayesian (TPE)": bayesian_search(objective, space, budget, seed, direction, progress=progress),
    }


# --------------------------------------------------------------------------------------------
# scikit-learn's GridSearchCV on a decision tree
# --------------------------------------------------------------------------------------------

DEFAULT_TREE_GRID: dict[str, list] = {  # the course outline's grid; lesson 03 shows its max_depth values tie
    "criterion": ["gini", "entropy"],
    "max_depth": [None, 10, 20, 30],
    "min_samples_split": [2, 5, 10],
}


def grid_differences(grid: Mapping[str, Sequence], reference: Mapping[str, Sequence] = DEFAULT_TREE_GRID) -> list[str]:
    """What keeps ``grid`` from being ``reference`` (by default the outline's grid); empty when they match.

    Values are compared in order: with tied scores GridSearchCV keeps the first best candidate, so the
    order of a grid's values decides ``best_params_``. Exercise 03 checks the learner's grid with it.
    """
    if not isinstance(grid, Mapping):
        return [f"expected a dict of parameter -> list of values, got {type(grid).__name__}"]
    problems = [f"missing {name!r}" for name in reference if name not in grid]
    problems += [f"{name!r} is not in the grid to write" for name in grid if name not in reference]
    problems += [f"{name!r} should list {len(reference[name])} values in the outline's order"
                 for name in reference if name in grid and list(grid[name]) != list(reference[name])]
    return problems


def tune_decision_tree(
    X_train,
    y_train,
    param_grid: Mapping[str, Sequence] | None = None,
    cv: int = 5,
    seed: int = 0,
    scoring: str = "accuracy",
):
    """Fit ``GridSearchCV(DecisionTreeClassifier(random_state=seed), param_grid, cv=cv)``.

    Each combination is scored by ``cv``-fold cross-validation on the training data only; the
    returned search is refitted on all of it, ready for one final look at a held-out test set.
    Parameter names are checked up front, so a typo names the valid ones instead of failing deep
    inside scikit-learn after minutes of fitting.
    """
    from sklearn.model_selection import GridSearchCV
    from sklearn.tree import DecisionTreeClassifier

    grid = {k: list(v) for k, v in (param_grid or DEFAULT_TREE_GRID).items()}
    valid = DecisionTreeClassifier().get_params()
    unknown = sorted(set(grid) - set(valid))
    if unknown:
        raise ConfigError(f"unknown DecisionTreeClassifier parameter(s) {unknown}; valid ones: {sorted(valid)}.")
    empty = [k for k, v in grid.items() if not v]
    if empty:
        raise ConfigError(f"parameter(s) {empty} have no values to try.")
    y = np.asarray(y_train)
    if len(y) != len(X_train):
        raise DataError(f"X_train has {len(X_train)} rows but y_train has {len(y)}.")
    smallest = int(np.unique(y, return_counts=True)[1].min()) if len(y) else 0
    if not 2 <= cv <= smallest:
        raise ConfigError(
            f"cv must be between 2 and {smallest} (rows of the rarest class) for stratified folds, got {cv}."
        )
    search = GridSearchCV(DecisionTreeClassifier(random_state=seed), grid, cv=cv, scoring=scoring)
    return search.fit(X_train, y)


def cv_results_table(search, top: int | None = 10) -> pd.DataFrame:
    """``search.cv_results_`` as a readable frame: rank, parameters, mean and std of the CV score."""
    if not hasattr(search, "cv_results_"):
        raise ConfigError("the search has no cv_results_: call .fit(X, y) first.")
    res = pd.DataFrame(search.cv_results_)
    params = [c for c in res.columns if c.startswith("param_")]
    table = res[["rank_test_score", *params, "mean_test_score", "std_test_score"]].rename(
        columns={c: c.removeprefix("param_") for c in params} | {"rank_test_score": "rank",
                                                                   "mean_test_score": "mean_cv_score",
                                                                   "std_test_score": "std_cv_score"}
    )
    table = table.sort_values(["rank", "mean_cv_score"], ascending=[True, False]).reset_index(drop=True)
    return table.head(top) if top is not None else table
