"""No notebook chooses anything on a test split (issue 14's first rule), checked in two ways.

1. The helpers that make a choice refuse a test split themselves: ``compare_training_sets`` refuses
   a frame that ``split_dataset`` marked as the test split, even after ``assign`` or a filter
   (tested below).
2. A scanner reads every code cell of the lessons, exercises and solutions and flags a call to a
   selection helper (a comparison, a search, a threshold chooser, a search object's ``fit``) whose
   arguments name test data (``X_test``, ``splits.test``, ``test_df``...). Scoring the test set once,
   at the end (``metrics_at_threshold``, ``accuracy``, ``classification_metrics``), is not selection
   and is not flagged. The scanner is tested on snippets, so it is known to be able to fail.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for folder in ("notebooks", "exercises", "solutions") for p in (ROOT / folder).glob("*.ipynb"))

#: Functions whose job is to choose (a training set, a threshold, hyperparameters, a search winner).
SELECTORS = {
    "compare_training_sets", "threshold_for_recall", "tune_decision_tree", "grid_search", "random_search",
    "bayesian_search", "compare_searches", "cross_val_score", "cross_validate", "GridSearchCV",
    "RandomizedSearchCV", "HalvingGridSearchCV", "HalvingRandomSearchCV",
}
#: Any other helper named like a choice (``select_...``, ``tune_...``, ``..._search``, ``compare_...``,
#: ``choose_...``, ``pick_...``) counts as one too, so a new helper is covered without editing this list.
SELECTOR_NAME = re.compile(r"^(select|tune|search|choose|pick|compare)_|_search$|_tune$")
#: Named like a choice but not one: ``select_labels`` applies the task's label set (decided before any
#: data), which every split must get alike.
NOT_SELECTORS = {"select_labels"}
#: Receivers whose ``.fit(...)`` is a search (GridSearchCV objects and the like, by their names).
SEARCH_RECEIVER = re.compile(r"search|grid|^cv$|_cv$|study", re.IGNORECASE)
TEST_NAME = re.compile(r"(^|_)test($|_)", re.IGNORECASE)


def _names(node: ast.AST) -> list[str]:
    found = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            found.append(sub.id)
        elif isinstance(sub, ast.Attribute):
            found.append(sub.attr)
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            found.append(sub.value)
    return found


def _callee(call: ast.Call) -> tuple[str, str]:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id, ""
    if isinstance(func, ast.Attribute):
        receiver = func.value
        if isinstance(receiver, ast.Name):
            return func.attr, receiver.id
        if isinstance(receiver, ast.Attribute):
            return func.attr, receiver.attr
        if isinstance(receiver, ast.Call):
            return func.attr, _callee(receiver)[0]
    return "", ""


def selections_on_test(source: str) -> list[str]:
    """The calls in ``source`` that choose something while being given test data."""
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        return []
    flagged = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name, receiver = _callee(node)
        named_like_one = bool(SELECTOR_NAME.search(name)) and name not in NOT_SELECTORS
        fits_a_search = name == "fit" and (receiver in SELECTORS or SEARCH_RECEIVER.search(receiver or ""))
        is_selector = name in SELECTORS or named_like_one or fits_a_search
        if not is_selector:
            continue
        arguments = [*node.args, *(k.value for k in node.keywords)]
        keyword_names = [k.arg for k in node.keywords if k.arg]
        if any(TEST_NAME.search(n) for n in keyword_names) or any(
                TEST_NAME.search(n) for arg in arguments for n in _names(arg)):
            flagged.append(ast.unparse(node)[:120])
    return flagged


@pytest.mark.parametrize("snippet", [
    "effect = compare_training_sets(training_sets, splits.test)",
    "search = GridSearchCV(tree, grid, cv=5)\nsearch.fit(X_test, y_test)",
    "GridSearchCV(tree, grid).fit(X_test, y_test)",
    "t = threshold_for_recall(y_test, scores_test, 0.95)",
    "best = tune_decision_tree(data.X_test, data.y_test)",
    "steps = select_cleaning_steps(candidates, validation=splits.test)",
    "lr = tune_learning_rate(model, X_test=X_te, y_test=y_te)",
    "best = optuna_search(objective, data=test_df)",
    "effect = compare_training_sets(training_sets, splits.test.assign(rated=1), by='rated')",
])
def test_the_scanner_flags_selection_on_test_data(snippet):
    assert selections_on_test(snippet), snippet


@pytest.mark.parametrize("snippet", [
    "effect = compare_training_sets(training_sets, splits.validation)",
    "search.fit(X_train, y_train)\nprint(search.score(X_test, y_test))",
    "t = threshold_for_recall(y_val, scores_val, 0.95)\nm = metrics_at_threshold(y_test, scores_test, t)",
    "model.fit(X_train, y_train)",
    "test_only, _ = select_labels(splits.test, ['negative', 'positive'])",
    "s = split_dataset(clean, val_size=0.1, test_size=0.1, seed=0)",
])
def test_the_scanner_lets_a_final_test_score_through(snippet):
    assert not selections_on_test(snippet), snippet


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_notebook_selects_on_a_test_split(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    flagged = [f"cell {i}: {call}" for i, cell in enumerate(cells) if cell["cell_type"] == "code"
               for call in selections_on_test("".join(cell["source"]))]
    assert not flagged, f"{path.name} chooses on test data (choose on validation or CV):\n" + "\n".join(flagged)


def test_compare_training_sets_refuses_the_test_split_even_after_assign_or_a_filter():
    import pandas as pd

    from course_utils.data import split_dataset
    from course_utils.errors import ConfigError
    from course_utils.labs.baselines import compare_training_sets

    df = pd.DataFrame({"text": [f"good day {i}" if i % 2 else f"bad day {i}" for i in range(80)],
                       "label": ["pos" if i % 2 else "neg" for i in range(80)]})
    splits = split_dataset(df, val_size=0.2, test_size=0.2, seed=0)
    for disguised in (splits.test, splits.test.assign(rated="rated"), splits.test[splits.test["label"] == "pos"],
                      splits.test.reset_index(drop=True)):
        with pytest.raises(ConfigError, match="validation split"):
            compare_training_sets({"all": splits.train}, disguised)
    assert "all" in compare_training_sets({"all": splits.train}, splits.validation.assign(rated="rated")).index


# --------------------------------------------------------------------------------------------
# 3. A public floor check (✓ when a model's score reaches the exercise's floor) never reads test data
#    (issue 22 item 1): a learner who re-runs until the ✓ appears would be tuning on the test set.
# --------------------------------------------------------------------------------------------


def _floor_questions() -> set[str]:
    from course_utils.grading import questions

    return {q.id for q in questions.QUESTIONS if q.channel == "artefact"}


def floor_checks_on_test(cells: list[str], floor_questions: set[str]) -> list[str]:
    """``check``/``evaluate`` calls of floor questions whose value is computed, at any depth, from test data."""
    sources: dict[str, set[str]] = {}
    calls: list[tuple[str, str]] = []
    for source in cells:
        lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
        try:
            tree = ast.parse("\n".join(lines))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for name in (n.id for n in ast.walk(target) if isinstance(n, ast.Name)):
                        sources.setdefault(name, set()).update(_names(node.value))
            elif isinstance(node, ast.Call) and _callee(node)[0] in ("check", "evaluate") and len(node.args) >= 2:
                qid, value = node.args[0], node.args[1]
                if isinstance(qid, ast.Constant) and qid.value in floor_questions:
                    calls.append((qid.value, ast.unparse(value)))
    flagged = []
    for qid, expression in calls:
        seen, todo = set(), set(_names(ast.parse(expression, mode="eval")))
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            todo |= sources.get(name, set()) - seen
        if any(TEST_NAME.search(n) for n in seen):
            flagged.append(f"{qid}: {expression}")
    return flagged


def test_the_floor_check_scanner_can_fail():
    cells = ["trainer.fit(train_df, val_df)\nmetrics = trainer.evaluate(test_df)\nscore = metrics['macro_f1']",
             "check('q5_1', score)"]
    assert floor_checks_on_test(cells, {"q5_1"}) == ["q5_1: score"]
    honest = ["trainer.fit(train_df, val_df)\nmetrics = trainer.evaluate(val_df)\nscore = metrics['macro_f1']",
              "check('q5_1', score)\nprint(trainer.evaluate(test_df))"]
    assert floor_checks_on_test(honest, {"q5_1"}) == []
    assert floor_checks_on_test(["acc = tree.score(data.X_test, data.y_test)", "evaluate('q3_4', acc)"], {"q3_4"})


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.parent.name in ("exercises", "solutions")],
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_public_floor_check_reads_test_data(path):
    cells = ["".join(c["source"]) for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
    flagged = floor_checks_on_test(cells, _floor_questions())
    assert not flagged, f"{path.name}: a public floor check reads test data (check on validation):\n" + "\n".join(flagged)
