"""`course-utils release`: the learners' tree holds no solution and no expected value (issue 10, item 4)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
import pytest

from course_utils.cli import main as cli_main
from course_utils.cli.release import make_release
from course_utils.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from test_grading import make_spec  # noqa: E402


def _taught_elsewhere() -> str:
    """The lessons and the package: code the course teaches openly (a solution may reuse its lines)."""
    parts = [p.read_text(encoding="utf-8") for p in (ROOT / "notebooks").glob("*.ipynb")]
    parts += [p.read_text(encoding="utf-8") for p in (ROOT / "course_utils").rglob("*.py")]
    return "\n".join(parts)


def _solution_lines() -> list[str]:
    """Whole solution cells, and their lines that neither the exercise nor a lesson nor the package shows."""
    taught = _taught_elsewhere()
    found = []
    for path in sorted((ROOT / "solutions").glob("*.ipynb")):
        exercise = (ROOT / "exercises" / path.name).read_text(encoding="utf-8")
        given = {line.strip() for cell in nbformat.reads(exercise, as_version=4).cells for line in cell.source.splitlines()}
        for cell in nbformat.read(str(path), as_version=4).cells:
            if cell.cell_type != "code" or not {"solution", "solution_only"} & set(cell.metadata.get("tags", [])):
                continue
            found.append(cell.source)
            for line in cell.source.splitlines():
                line = line.strip()
                if (len(line) > 30 and line not in given and json.dumps(line)[1:-1] not in taught and line not in taught
                        and not line.startswith(("#", "print(", "from ", "import "))):
                    found.append(line)
    return found


def _expected_values(spec: dict) -> list[str]:
    """Every float of the spec (as Python prints it and to 4 decimals), the canary and the secret."""
    out = {spec["canary"], spec["secret"]}

    def walk(value):
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list) and len(value) < 50:
            for v in value:
                walk(v)
        elif isinstance(value, float) and len(repr(value)) >= 6:
            out.add(repr(value))

    walk(spec["questions"])
    return sorted(out)


def _text(root: Path) -> dict[str, str]:
    """Each file's text; a notebook's cell sources are added as plain text (JSON escapes newlines)."""
    out = {}
    for p in root.rglob("*"):
        if p.is_file():
            text = p.read_text(encoding="utf-8", errors="replace")
            if p.suffix == ".ipynb":
                text += "\n" + "\n".join(c.source for c in nbformat.reads(text, as_version=4).cells)
            out[str(p.relative_to(root))] = text
    return out


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rel") / "class"
    assert cli_main(["release", str(out)]) == 0
    return out


def test_release_has_what_a_class_needs_and_nothing_that_grades(released):
    names = {p.relative_to(released).as_posix() for p in released.rglob("*") if p.is_file()}
    assert "README.md" in names and "pyproject.toml" in names
    assert any(n.startswith("exercises/") for n in names) and any(n.startswith("notebooks/") for n in names)
    assert "course_utils/grading/submit.py" in names
    for banned in ("solutions/", "grading/", "tests/", ".git/", "benchmarks/"):
        assert not any(n.startswith(banned) for n in names), banned
    assert not any(n.endswith("spec.json") or "build_spec" in n or n == "INSTRUCTORS.md" for n in names)


def test_release_holds_no_solution_cell_and_no_expected_value(released, tmp_path):
    """A built-in spec for lessons 04 and 07; set COURSE_GRADING_SPEC=PATH to grep a full private spec too."""
    from course_utils.metrics import threshold_for_recall

    spec = json.loads(make_spec(tmp_path).read_text())
    q45 = spec["questions"]["q4_5"]
    values = _expected_values(spec) + [repr(threshold_for_recall(q45["y_true"], q45["scores"], q45["target_recall"]))]
    if os.environ.get("COURSE_GRADING_SPEC"):
        values += _expected_values(json.loads(Path(os.environ["COURSE_GRADING_SPEC"]).read_text()))
    texts = _text(released)
    lines = _solution_lines()
    assert len(values) >= 7 and len(lines) > 20  # the grep has something to find
    leaks = [(v, name) for v in values for name, text in texts.items() if v in text]
    assert not leaks, leaks[:5]
    leaked_lines = [(line, name) for line in lines for name, text in texts.items() if line in text]
    assert not leaked_lines, leaked_lines[:5]


def test_the_grep_would_catch_a_leak(tmp_path):
    """The same checks fail on a tree that does ship solutions and the spec."""
    spec_path = make_spec(tmp_path / "spec")
    fake = tmp_path / "leaky"
    (fake / "solutions").mkdir(parents=True)
    for path in (ROOT / "solutions").glob("*.ipynb"):
        (fake / "solutions" / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    (fake / "spec.json").write_text(spec_path.read_text(), encoding="utf-8")
    texts = _text(fake)
    spec = json.loads(spec_path.read_text())
    assert any(v in t for v in _expected_values(spec) for t in texts.values())
    assert any(line in t for line in _solution_lines() for t in texts.values())
    cells = [c for c in _solution_lines() if "\n" in c]
    assert cells and all(any(c in t for t in texts.values()) for c in cells)  # every whole cell is caught


def test_release_refuses_bad_targets(tmp_path):
    with pytest.raises(ConfigError, match="inside the course checkout"):
        make_release(ROOT / "dist-release")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(ConfigError, match="not an empty folder"):
        make_release(tmp_path / "full")
