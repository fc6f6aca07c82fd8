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


# -- the packages of the core: no cycles, honest __all__, complete re-exports, rooms of a readable size -------

CORE_PACKAGES = ("training", "data", "plots")
MAX_LINES = 520  # about 500: a module a reader can hold in one sitting


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package modules it imports (lazy imports inside functions included).

    ``from course_utils.training import checkpoints`` is an edge to the submodule ``checkpoints``, not to
    the package: that is what Python resolves it to.
    """
    modules = {module_name(p, package): p for p in package.rglob("*.py")}

    def owner(dotted: str) -> str | None:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = here.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
                subs = [f"{base}.{alias.name}" for alias in node.names]
                targets = [t for t in subs if t in modules] + ([base] if any(t not in modules for t in subs) else [])
            else:
                continue
            graph[name].update(t for t in map(owner, targets) if t is not None and t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_package_has_no_import_cycles_not_even_inside_functions():
    assert cycles(import_graph()) == []


def test_the_cycle_check_finds_a_cycle_hidden_in_a_function(tmp_path):
    fake = tmp_path / "course_utils"
    (fake / "training").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "training" / "__init__.py").write_text("from course_utils.training.trainer import Trainer\n")
    (fake / "training" / "trainer.py").write_text("from course_utils.training import checkpoints\nclass Trainer: ...\n")
    (fake / "training" / "checkpoints.py").write_text("def f():\n    from course_utils.models import load\n")
    (fake / "models.py").write_text("def load():\n    from course_utils.training.trainer import Trainer\n")
    assert cycles(import_graph(fake)) == [["course_utils.models", "course_utils.training.checkpoints",
                                           "course_utils.training.trainer"]]


def test_the_core_imports_neither_labs_nor_grading_nor_the_cli():
    graph = import_graph()
    core = [name for name in graph if wing_of_module(name) == "core"]
    assert "course_utils.training.trainer" in core and "course_utils.data.splits" in core
    reaching_out = {name: sorted(t for t in graph[name] if wing_of_module(t) != "core") for name in core}
    assert {name: out for name, out in reaching_out.items() if out} == {}


def _modules() -> list[str]:
    """Every importable module (``__main__`` runs the command line when imported, so it is left out)."""
    return sorted(module_name(p) for p in PACKAGE.rglob("*.py") if p.stem != "__main__")


@pytest.mark.parametrize("name", _modules())
def test_every_name_in_all_exists(name):
    import importlib

    module = importlib.import_module(name)
    missing = [n for n in getattr(module, "__all__", ()) if not hasattr(module, n)]
    assert missing == [], f"{name}.__all__ names {missing}, which the module does not have"


@pytest.mark.parametrize("package", CORE_PACKAGES)
def test_a_core_package_re_exports_every_public_name_of_its_modules(package):
    import importlib

    top = importlib.import_module(f"course_utils.{package}")
    for path in sorted((PACKAGE / package).glob("[!_]*.py")):
        module = importlib.import_module(f"course_utils.{package}.{path.stem}")
        assert hasattr(module, "__all__"), f"{module.__name__} has no __all__"
        if path.stem == "trainer" or package != "training":  # training/__init__ re-exports what lessons use
            missing = sorted(set(module.__all__) - set(top.__all__))
            assert missing == [], f"course_utils.{package} does not re-export {missing} from {path.stem}"


def test_the_old_module_names_still_re_export_everything():
    """``course_utils.trainer`` stays the name lessons, the CLI, the benchmarks and the tests import."""
    from course_utils import trainer, training

    assert set(trainer.__all__) == set(training.__all__)
    assert all(getattr(trainer, n) is getattr(training, n) for n in training.__all__)
    for name in ("TrainConfig", "Trainer", "TrainingError", "EncodedTexts", "History", "Predictions", "encode_texts",
                 "bucket_length", "plan_epoch", "padding_cost", "write_folder_atomically", "complete_folder",
                 "CHECKPOINT_DIR", "BEST_DIR", "MODEL_DIR", "PRECISIONS", "EVAL_METRICS", "DEFAULT_LEARNING_RATE",
                 "DEFAULT_LORA_LEARNING_RATE", "write_text_atomically"):
        assert name in trainer.__all__, name


def test_lesson_table_of_the_labs_lists_every_lab_a_lesson_imports():
    import json
    import re

    from course_utils.labs import LESSON_MODULES

    labs = {p.stem for p in (PACKAGE / "labs").glob("[!_]*.py")}
    assert set().union(*LESSON_MODULES.values()) <= labs
    for notebook in sorted((PACKAGE.parent / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        used = set(re.findall(r"course_utils\.labs\.(\w+)", code))
        used |= {m for group in re.findall(r"from course_utils\.labs import ([\w, ]+)", code)
                 for m in re.findall(r"(\w+)(?: as \w+)?", group) if m in labs}
        lesson = notebook.name[:2]
        assert used <= set(LESSON_MODULES.get(lesson, ())), f"{notebook.name} imports labs {sorted(used)}"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_longer_than_a_sitting(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(PACKAGE.parent)} has {lines} lines; split it by concern"


def test_every_core_module_says_what_it_holds_and_which_lesson_teaches_it():
    core = [p for p in PACKAGE.rglob("*.py") if wing_of_file(p) == "core"]
    assert any(p.parent.name == "training" for p in core)
    for path in sorted(core):
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        assert doc.strip(), f"{path.relative_to(PACKAGE.parent)} has no module docstring"
        assert "lesson" in doc.lower(), f"{path.relative_to(PACKAGE.parent)}: the docstring names no lesson"
