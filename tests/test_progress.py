"""Long searches show a progress bar with an estimate, and the bar never changes the result."""

from __future__ import annotations

from course_utils.tuning import FloatParam, SearchSpace, bayesian_search, grid_search, random_search

SPACE = SearchSpace({"x": FloatParam(-2.0, 2.0)})


def objective(params):
    return -(params["x"] - 0.5) ** 2


def test_searches_report_progress_on_stderr_and_give_the_same_result(capsys):
    for search, kwargs in ((grid_search, {}), (random_search, {"seed": 0}), (bayesian_search, {"seed": 0})):
        shown = search(objective, SPACE, 6, **kwargs, progress=True)
        err = capsys.readouterr().err
        assert "search" in err and "6/6" in err, f"{search.__name__} showed no finished bar: {err[-200:]!r}"
        quiet = search(objective, SPACE, 6, **kwargs, progress=False)
        assert capsys.readouterr().err == ""
        assert shown.trials["score"].tolist() == quiet.trials["score"].tolist()
