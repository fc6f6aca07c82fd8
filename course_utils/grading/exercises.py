"""Build the exercise notebooks from the solution notebooks, or check that they are in sync.

The solution notebook is the single source of truth. In it, code cells tagged ``solution`` hold the
worked answer; the exercise notebook gets the same cells with each ``solution`` cell replaced by a
stub that keeps only:

* statements with a line ending in ``# keep`` (the marker is removed): given code the learner builds on;
* function definitions, reduced to their signature and docstring plus ``return None  # YOUR CODE HERE``;
* for every answer variable of the question registry the cell assigns: ``name = None  # YOUR CODE HERE``;
* an assignment whose line ends in ``# stub: EXPR`` becomes ``name = EXPR  # YOUR CODE HERE``, for
  helper variables that later given cells read (e.g. ``histories = {...}  # stub: {}``).

Cells tagged ``solution_only`` (explanations of the answer, a final self-test) are left out of the
exercise. The solution's title, ``# Solution NN · Topic``, becomes ``# Exercises NN · Topic``, so the two
pages cannot be confused on the website or in its search. Because every answer is reset to ``None`` (or a
function returning ``None``), an untouched exercise executes top to bottom, its checks print ✗, and it scores
zero.

Examples:
  course-utils exercises build            # rewrite exercises/ from solutions/
  course-utils exercises build --check    # exit 1 and list the drifted pairs (CI, pre-commit)
  course-utils exercises list             # the questions, their variables and scoring rules
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from course_utils.errors import ConfigError
from course_utils.grading import questions as registry

SOLUTION_TAG = "solution"
SOLUTION_ONLY_TAG = "solution_only"
EXERCISE_TAG = "exercise"
STUB = "# YOUR CODE HERE"
_KEEP = re.compile(r"\s*#\s*keep\s*$", re.IGNORECASE)
_STUB_VALUE = re.compile(r"#\s*stub:\s*(?P<expr>.+?)\s*$")
SOLUTION_TITLE = re.compile(r"\A# Solution (?P<number>\d\d) · ")


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------
# One cell
# --------------------------------------------------------------------------------------------


def _assigned_names(node: ast.stmt) -> list[str]:
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        targets = [node.target]
    names = []
    for target in targets:
        for sub in ast.walk(target):
            if isinstance(sub, ast.Name):
                names.append(sub.id)
    return names


def _function_stub(node: ast.FunctionDef, lines: list[str]) -> list[str]:
    """Signature (with decorators) and docstring of ``node``; the body becomes a ``None`` return."""
    start = (node.decorator_list[0].lineno if node.decorator_list else node.lineno) - 1
    first_body = node.body[0]
    if first_body.lineno == node.lineno:
        raise ConfigError(f"function {node.name!r} in a solution cell: put its body on its own lines, so the "
                          "exercise can keep the signature and drop the body.")
    has_doc = (isinstance(first_body, ast.Expr) and isinstance(first_body.value, ast.Constant)
               and isinstance(first_body.value.value, str))
    header_end = first_body.end_lineno if has_doc else first_body.lineno - 1
    body_line = lines[first_body.lineno - 1]
    indent = body_line[: len(body_line) - len(body_line.lstrip())] or "    "
    return lines[start:header_end] + [f"{indent}return None  {STUB}"]


def stub_source(source: str, answer_variables: Sequence[str], where: str = "cell") -> str:
    """The exercise version of one ``solution`` cell (see the module docstring for the rules)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ConfigError(f"{where}: a solution cell must be plain Python (no magics): {exc.msg} on line {exc.lineno}.") from None
    lines = source.splitlines()
    kept_lines = {i for i, line in enumerate(lines) if _KEEP.search(line)}
    pieces: list[tuple[int, list[str]]] = []  # (first source line, lines to emit), sorted at the end
    covered: set[int] = set()
    for node in tree.body:
        first = (node.decorator_list[0].lineno if getattr(node, "decorator_list", None) else node.lineno) - 1
        span = range(first, node.end_lineno)
        covered.update(span)
        if kept_lines & set(span):
            pieces.append((first, [_KEEP.sub("", lines[i]) for i in span]))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            pieces.append((first, _function_stub(node, lines)))
        else:
            marked = [m.group("expr") for i in span if (m := _STUB_VALUE.search(lines[i]))]
            names = _assigned_names(node)
            if marked and isinstance(node, ast.Assign):
                # `x = compute()  # stub: {}` -> `x = {}  # YOUR CODE HERE`, for given cells below that read x
                targets = " = ".join(ast.get_source_segment(source, t) or ast.unparse(t) for t in node.targets)
                pieces.append((first, [f"{targets} = {marked[0]}  {STUB}"]))
            else:
                pieces.append((first, [f"{name} = None  {STUB}" for name in names if name in answer_variables]))
    pieces += [(i, [_KEEP.sub("", lines[i])]) for i in kept_lines - covered]  # kept comment lines
    out: list[str] = []
    after_def = False
    for first, emitted in sorted(pieces, key=lambda p: p[0]):
        if not emitted:
            continue
        is_def = emitted[0].lstrip().startswith(("def ", "async def ", "@"))
        if out:  # the blank lines that preceded this statement (at most two; two around functions)
            blank = 0
            while blank < 2 and first - blank - 1 >= 0 and not lines[first - blank - 1].strip():
                blank += 1
            out.extend([""] * (2 if is_def or after_def else blank))
        out.extend(emitted)
        after_def = is_def
    if not any(STUB in line for line in out):
        out.insert(0, STUB)
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# Whole notebooks
# --------------------------------------------------------------------------------------------


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _defined_names(source: str) -> set[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names = set()
    for node in tree.body:
        names.update(_assigned_names(node))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
    return names


def build_exercise(solution_nb, topic: str):
    """The exercise notebook (nbformat node) for the solution notebook ``solution_nb`` of ``topic``."""
    import copy

    import nbformat

    try:
        variables = [q.variable for q in registry.for_notebook(topic)]
    except ConfigError:
        variables = []
    exercise = copy.deepcopy(solution_nb)
    first = exercise.cells[0] if exercise.cells else None
    title = SOLUTION_TITLE.match(first.source) if first is not None and first.cell_type == "markdown" else None
    if title is None:
        raise ConfigError(f"{topic}: the solution notebook must open with a markdown cell titled "
                          f"'# Solution {topic[:2]} · Topic'; the exercise's title is made from it.")
    first.source = f"# Exercises {title.group('number')} · " + first.source[title.end():]
    cells, defined = [], set()
    for index, cell in enumerate(exercise.cells):
        tags = _tags(cell)
        if SOLUTION_ONLY_TAG in tags:
            continue
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            if SOLUTION_TAG in tags:
                defined |= _defined_names(cell.source) & set(variables)
                cell.source = stub_source(cell.source, variables, where=f"{topic} cell {index}")
                cell.metadata["tags"] = [EXERCISE_TAG if t == SOLUTION_TAG else t for t in tags]
        cells.append(cell)
    missing = [v for v in variables if v not in defined]
    if missing:
        raise ConfigError(
            f"{topic}: answer variable(s) {missing} are not assigned in any cell tagged '{SOLUTION_TAG}', so the "
            "exercise would not reset them; tag the cell that computes them."
        )
    exercise.cells = cells
    nbformat.validate(exercise)
    return exercise


@dataclass
class PairStatus:
    topic: str
    in_sync: bool
    problem: str = ""


def _cell_key(cell) -> tuple[str, str, tuple[str, ...]]:
    return cell.cell_type, cell.source, tuple(_tags(cell))


def compare(expected_nb, actual_nb) -> str:
    """Empty when the exercise on disk matches the generated one, else where they first differ."""
    expected = [_cell_key(c) for c in expected_nb.cells]
    actual = [_cell_key(c) for c in actual_nb.cells]
    for i, (e, a) in enumerate(zip(expected, actual)):
        if e != a:
            what = "type" if e[0] != a[0] else "tags" if e[2] != a[2] else "source"
            return f"cell {i} differs in {what}: expected {e[1][:60]!r}, found {a[1][:60]!r}"
    if len(expected) != len(actual):
        return f"expected {len(expected)} cells, found {len(actual)}"
    dirty = [i for i, c in enumerate(actual_nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    if dirty:
        return f"cells {dirty} carry outputs; committed exercises must be clean"
    return ""


def sync(solutions: Path, exercises: Path, check_only: bool = False, topics: Sequence[str] | None = None) -> list[PairStatus]:
    """Build (or, with ``check_only``, compare) every exercise from its solution."""
    import nbformat

    if not solutions.is_dir():
        raise ConfigError(f"solutions folder {solutions} not found; run from the course checkout or pass --solutions.")
    found = sorted(p.stem for p in solutions.glob("[0-9][0-9]_*.ipynb"))
    chosen = list(topics) if topics else found
    results = []
    for topic in chosen:
        source = solutions / f"{topic}.ipynb"
        target = exercises / f"{topic}.ipynb"
        if not source.is_file():
            results.append(PairStatus(topic, False, f"no solution notebook {source}"))
            continue
        expected = build_exercise(nbformat.read(source, as_version=4), topic)
        if check_only:
            if not target.is_file():
                results.append(PairStatus(topic, False, f"{target} is missing"))
                continue
            problem = compare(expected, nbformat.read(target, as_version=4))
            results.append(PairStatus(topic, not problem, problem))
        else:
            exercises.mkdir(parents=True, exist_ok=True)
            nbformat.write(expected, target)
            results.append(PairStatus(topic, True, f"wrote {target}"))
    if check_only and not topics:
        for orphan in sorted(p.stem for p in exercises.glob("[0-9][0-9]_*.ipynb")):
            if orphan not in found:
                results.append(PairStatus(orphan, False, f"exercise without a solution notebook in {solutions}"))
    return results
