"""Exercises are generated from solutions: the pair cannot drift without a failing test."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import nbformat
import pytest

from course_utils.cli import main as cli_main
from course_utils.errors import ConfigError
from course_utils.grading import questions
from course_utils.grading.exercises import STUB, build_exercise, stub_source, sync

ROOT = Path(__file__).resolve().parents[1]
TOPICS = sorted(p.stem for p in (ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))


def test_every_exercise_is_in_sync_with_its_solution():
    results = sync(ROOT / "solutions", ROOT / "exercises", check_only=True)
    assert {r.topic for r in results} == set(TOPICS) == set(questions.notebooks())
    assert [r.problem for r in results if not r.in_sync] == []


def test_cli_check_mode_reports_sync_and_lists_questions(capsys):
    assert cli_main(["exercises", "build", "--check"]) == 0
    assert cli_main(["exercises", "list"]) == 0
    out = capsys.readouterr().out
    assert all(q.id in out for q in questions.QUESTIONS)


@pytest.fixture
def pair_copy(tmp_path):
    shutil.copytree(ROOT / "solutions", tmp_path / "solutions")
    shutil.copytree(ROOT / "exercises", tmp_path / "exercises")
    return tmp_path / "solutions", tmp_path / "exercises"


def _edit_first_tagged(path: Path, tag: str, new_source: str) -> None:
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if tag in c.metadata.get("tags", []))
    cell.source = new_source
    nbformat.write(nb, path)


def test_a_hand_edited_exercise_is_reported_as_drift(pair_copy):
    solutions, exercises = pair_copy
    _edit_first_tagged(exercises / "04_evaluation_metrics.ipynb", "exercise", "accuracy_80 = 0.8  # leaked answer")
    bad = [r for r in sync(solutions, exercises, check_only=True) if not r.in_sync]
    assert [r.topic for r in bad] == ["04_evaluation_metrics"]
    assert "differs in source" in bad[0].problem
    assert cli_main(["exercises", "build", "--check", "--solutions", str(solutions), "--exercises", str(exercises)]) == 1


def test_a_changed_solution_needs_a_rebuild_then_passes(pair_copy):
    solutions, exercises = pair_copy
    _edit_first_tagged(solutions / "07_real_world_applications.ipynb", "solution",
                       "new_answer = 1  # keep\nmajority_accuracy = 0.989")
    assert not all(r.in_sync for r in sync(solutions, exercises, check_only=True))
    sync(solutions, exercises)
    assert all(r.in_sync for r in sync(solutions, exercises, check_only=True))
    rebuilt = nbformat.read(exercises / "07_real_world_applications.ipynb", as_version=4)
    assert any(c.source == f"new_answer = 1\nmajority_accuracy = None  {STUB}" for c in rebuilt.cells)


def test_missing_and_orphan_exercises_are_reported(pair_copy):
    solutions, exercises = pair_copy
    (exercises / "06_overfitting_and_best_practices.ipynb").unlink()
    shutil.copy(solutions / "07_real_world_applications.ipynb", exercises / "99_orphan.ipynb")
    problems = {r.topic: r.problem for r in sync(solutions, exercises, check_only=True) if not r.in_sync}
    assert "missing" in problems["06_overfitting_and_best_practices"]
    assert "without a solution" in problems["99_orphan"]


def test_stub_rules():
    source = '''
X, y = load()  # keep
# Step 2: fit  # keep
def precision(y_true, y_pred):
    """TP / (TP + FP)."""
    tp = 1
    return tp

search = Search(model,
                cv=5)
search.fit(X, y)
curves = {lr: run(lr) for lr in (1, 2)}  # stub: {}
best_params, threshold = search.best_params_, 0.5
'''
    stub = stub_source(source, ["best_params", "threshold", "precision"])
    assert stub.splitlines() == [
        "X, y = load()", "# Step 2: fit", "", "",
        "def precision(y_true, y_pred):", '    """TP / (TP + FP)."""', f"    return None  {STUB}", "", "",
        f"curves = {{}}  {STUB}", f"best_params = None  {STUB}", f"threshold = None  {STUB}",
    ]
    ast.parse(stub)
    assert stub_source("x = 1", ["y"]) == STUB  # nothing to keep: still tells the learner where to write
    with pytest.raises(ConfigError, match="plain Python"):
        stub_source("%matplotlib inline", [])
    with pytest.raises(ConfigError, match="own lines"):
        stub_source("def f(x): return x", ["f"])


def test_an_answer_outside_solution_cells_is_refused():
    nb = nbformat.read(ROOT / "solutions" / "04_evaluation_metrics.ipynb", as_version=4)
    for cell in nb.cells:
        cell.metadata["tags"] = [t for t in cell.metadata.get("tags", []) if t != "solution"]
    with pytest.raises(ConfigError, match="not assigned in any cell tagged"):
        build_exercise(nb, "04_evaluation_metrics")


@pytest.mark.parametrize("topic", TOPICS)
def test_exercises_reset_every_answer_and_hold_no_solution(topic):
    exercise = nbformat.read(ROOT / "exercises" / f"{topic}.ipynb", as_version=4)
    solution = nbformat.read(ROOT / "solutions" / f"{topic}.ipynb", as_version=4)
    stubs = [c for c in exercise.cells if "exercise" in c.metadata.get("tags", [])]
    assert stubs and all(STUB in c.source for c in stubs)
    assert not any("solution_only" in c.metadata.get("tags", []) for c in exercise.cells)
    reset = set()
    for cell in stubs:
        for node in ast.parse(cell.source).body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and node.value.value is None:
                reset |= {t.id for t in node.targets if isinstance(t, ast.Name)}
            if isinstance(node, ast.FunctionDef):
                assert isinstance(node.body[-1], ast.Return) and node.body[-1].value.value is None
                reset.add(node.name)
    assert {q.variable for q in questions.for_notebook(topic)} <= reset
    solution_code = "\n".join(c.source for c in solution.cells if "solution" in c.metadata.get("tags", []))
    exercise_code = "\n".join(c.source for c in exercise.cells if c.cell_type == "code")
    given = ("def ", '"""', "# keep")  # signatures, docstrings and kept lines are meant to stay
    leaked = [line for line in solution_code.splitlines() if len(line.strip()) > 25 and line.strip() in exercise_code
              and not line.strip().startswith(given) and "# keep" not in line]
    assert leaked == []


@pytest.mark.parametrize("folder", ["exercises", "solutions"])
def test_committed_notebooks_are_clean(folder):
    for path in sorted((ROOT / folder).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata["kernelspec"]["name"] == "python3"
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path.name
        assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
        first_code = next(c for c in nb.cells if c.cell_type == "code")
        assert first_code.source.startswith("%matplotlib inline") and "set_seed(" in first_code.source
        kinds = [c.cell_type for c in nb.cells]
        assert all(kinds[i - 1] == "markdown" for i, k in enumerate(kinds) if k == "code"), path.name


@pytest.mark.parametrize("topic", TOPICS)
def test_solutions_and_exercises_are_titled_apart(topic):
    """Search on the site shows both pages: "Solution NN · …" and "Exercises NN · …" tell them apart."""
    solution = nbformat.read(ROOT / "solutions" / f"{topic}.ipynb", as_version=4)
    exercise = nbformat.read(ROOT / "exercises" / f"{topic}.ipynb", as_version=4)
    assert solution.cells[0].source.startswith(f"# Solution {topic[:2]} · ")
    assert exercise.cells[0].source.startswith(f"# Exercises {topic[:2]} · ")
    # the maintainers' note lives in CONTRIBUTING.md, not on every solution page a learner reads
    assert not any("course-utils exercises build" in c.source for c in solution.cells if c.cell_type == "markdown")


def test_a_solution_without_its_title_is_refused():
    nb = nbformat.read(ROOT / "solutions" / f"{TOPICS[0]}.ipynb", as_version=4)
    nb.cells[0].source = nb.cells[0].source.replace("# Solution", "# Exercises", 1)
    with pytest.raises(ConfigError, match="must open with a markdown cell titled '# Solution 01"):
        build_exercise(nb, TOPICS[0])
