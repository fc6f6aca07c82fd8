"""The package's three wings keep their import directions: core <- labs <- grading, and the CLI on top.

Parsed from the source (every ``import`` and ``from ... import`` anywhere in a module, lazy ones inside
functions included), so a core module that reaches into a lab fails here even if the import only runs
on some code path.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "course_utils"
WINGS = ("labs", "grading", "cli")
# Which wings each wing may import (the core is "core"; everyone may import the core).
ALLOWED = {
    "core": {"core"},
    "labs": {"core", "labs"},
    "grading": {"core", "labs", "grading"},
    "cli": {"core", "labs", "grading", "cli"},
}


def wing_of_module(dotted: str) -> str | None:
    parts = dotted.split(".")
    if parts[0] != "course_utils":
        return None
    if len(parts) > 1 and parts[1] in WINGS:
        return parts[1]
    return "core"


def wing_of_file(path: Path, package: Path = PACKAGE) -> str:
    rel = path.relative_to(package)
    return rel.parts[0] if len(rel.parts) > 1 and rel.parts[0] in WINGS else "core"


def imported_modules(path: Path, root: Path = PACKAGE) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    rel = path.relative_to(root.parent).with_suffix("")
    package = list(rel.parts[:-1])
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # `from course_utils import labs`
    return found


def violations(package: Path = PACKAGE) -> list[str]:
    bad = []
    for path in sorted(package.rglob("*.py")):
        wing = wing_of_file(path, package)
        for module in sorted(imported_modules(path, package)):
            target = wing_of_module(module)
            if target is not None and target not in ALLOWED[wing]:
                bad.append(f"{path.relative_to(package.parent)} ({wing}) imports {module} ({target})")
    return bad


def test_wings_import_only_in_the_allowed_directions():
    assert violations() == []


def test_the_check_fails_when_a_core_module_imports_a_lab(tmp_path):
    fake = tmp_path / "course_utils"
    (fake / "labs").mkdir(parents=True)
    (fake / "labs" / "transfer.py").write_text("X = 1\n")
    (fake / "tuning.py").write_text("def f():\n    from course_utils.labs.transfer import X\n    return X\n")
    (fake / "labs" / "ok.py").write_text("from course_utils import tuning\n")
    (fake / "labs" / "bad.py").write_text("from ..grading import grade\n")
    found = violations(fake)
    assert any("tuning.py (core) imports course_utils.labs.transfer (labs)" in v for v in found)
    assert any("labs/bad.py (labs) imports course_utils.grading" in v for v in found)
    assert not any("ok.py" in v for v in found)


@pytest.mark.parametrize("wing", WINGS)
def test_every_module_says_what_it_holds(wing):
    for path in sorted((PACKAGE / wing).glob("*.py")) + sorted(PACKAGE.glob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        assert doc and doc.strip(), f"{path.name} has no module docstring saying what it holds"
