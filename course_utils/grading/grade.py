"""Grade a folder of learners' exercise notebooks against the instructor's hidden spec.

Workflow: hand out exercises/NN_topic.ipynb; collect each learner's notebooks, names unchanged, into
SUBMISSIONS_DIR/<student>/<NN_topic>.ipynb (e.g. submissions/alice/04_evaluation_metrics.ipynb); run
this command from the course checkout; read report.csv (each learner's total is printed at the end).
Each notebook runs in its own confined child process (see course_utils.grading.sandbox): its own process
group and, on Linux, its own namespaces with no network, the spec and the submissions folder
hidden, and the file system read-only. The child only sends back the values of the answer
variables named in the public registry (course_utils.grading.questions); this process compares them with
the spec and writes one CSV row per submission and question:

    submission,question,score,max_score,status,detail

status is ok (full marks), wrong (answered, not or not fully right), error (the answer raised or
the kernel crashed), timeout (the notebook ran out of time before the answer existed) or missing
(no such notebook in the student's folder). A crash, a timeout or a missing notebook is recorded
and the batch goes on.

The spec (expected values and tolerances) is grading/spec.json in the course repository, or the
file given with --spec. It is not part of the installed package; keep it away from learners.

Examples:
  course-utils grade submissions/ --out report.csv
  course-utils grade submissions/ --out report.csv --json report.json --timeout 600 --notebook 05_fine_tuning_bert
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from course_utils.grading import questions as registry
from course_utils.errors import ConfigError, DataError
from course_utils.grading.questions import Question, is_number
from course_utils.grading.sandbox import Isolation, Limits, RunResult, run_notebook

STATUSES = ("ok", "wrong", "error", "timeout", "missing")
CSV_COLUMNS = ("submission", "question", "score", "max_score", "status", "detail")
DEFAULT_TIMEOUT = 300.0


# --------------------------------------------------------------------------------------------
# The hidden spec
# --------------------------------------------------------------------------------------------

# Fields each scoring rule needs from the spec; checked on load so a typo fails before grading.
_REQUIRED = {
    "number": ("expected",),
    "at_least": ("floor",),
    "exact": ("expected",),
    "set": ("expected",),
    "number_map": ("expected",),
    "cases": ("expected",),
    "params": ("expected", "grid"),
    "threshold": ("y_true", "scores", "target_recall", "min_precision"),
    "dataset_plan": ("min_task_words", "min_source_words"),
}


def default_spec_path() -> Path:
    """``grading/spec.json`` in the working directory, else in the course checkout this package runs from."""
    here = Path.cwd() / "grading" / "spec.json"
    if here.is_file():
        return here
    return Path(__file__).resolve().parents[1] / "grading" / "spec.json"


def load_spec(path: str | os.PathLike | None = None) -> dict:
    """Read and validate the spec: every registered question needs an entry with its rule's fields."""
    path = Path(path) if path is not None else default_spec_path()
    if not path.is_file():
        raise ConfigError(
            f"spec file {path} not found. It holds the expected answers and lives outside the package: "
            "run from the course checkout (grading/spec.json) or pass --spec PATH."
        )
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"spec file {path} is not valid JSON: {exc}.") from None
    entries = spec.get("questions") if isinstance(spec, dict) else None
    if not isinstance(entries, dict):
        raise ConfigError(f'spec file {path} needs a top-level "questions" object keyed by question id.')
    for q in registry.QUESTIONS:
        entry = entries.get(q.id)
        if not isinstance(entry, dict):
            raise ConfigError(f"spec file {path} has no entry for {q.id} ({q.notebook}: {q.variable}).")
        missing = [f for f in _REQUIRED[q.kind] if f not in entry]
        if missing:
            raise ConfigError(f"spec entry {q.id} (rule {q.kind!r}) lacks {missing} in {path}.")
    unknown = sorted(set(entries) - {q.id for q in registry.QUESTIONS})
    if unknown:
        raise ConfigError(f"spec file {path} has entries for unknown questions {unknown}; is it for another course version?")
    return spec


# --------------------------------------------------------------------------------------------
# Scoring rules: (value, spec entry) -> (fraction of the points, what was wrong)
# --------------------------------------------------------------------------------------------


def _plain_float(value: Any) -> float | None:
    if isinstance(value, dict) and "__float__" in value:
        return float(value["__float__"])
    return float(value) if is_number(value) else None


def _close(got: float, expected: float, entry: Mapping) -> bool:
    return math.isclose(got, expected, rel_tol=float(entry.get("rel_tol", 0.0)), abs_tol=float(entry.get("abs_tol", 1e-9)))


def _describe(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _rule_number(value, entry):
    got = _plain_float(value)
    if got is None:
        return 0.0, f"not a number: {_describe(value)}"
    return (1.0, "") if _close(got, float(entry["expected"]), entry) else (0.0, f"{got:.6g} is not the expected value")


def _rule_at_least(value, entry):
    got = _plain_float(value)
    if got is None:
        return 0.0, f"not a number: {_describe(value)}"
    high = entry.get("maximum")
    if high is not None and got > float(high):
        return 0.0, f"{got:.6g} is above the possible maximum {high}"
    return (1.0, "") if got >= float(entry["floor"]) else (0.0, f"{got:.4f} is below the floor {entry['floor']}")


def _normal(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip().lower()
    if isinstance(value, bool) or value is None:
        return value
    number = _plain_float(value)
    return number if number is not None else value


def _rule_exact(value, entry):
    expected = entry["expected"]
    if isinstance(expected, bool) != isinstance(value, bool):
        return 0.0, f"expected {'True/False' if isinstance(expected, bool) else 'a value'}, got {_describe(value)}"
    return (1.0, "") if _normal(value) == _normal(expected) else (0.0, f"{_describe(value)} is not the expected answer")


def _rule_set(value, entry):
    if not isinstance(value, list):
        return 0.0, f"expected a set, got {_describe(value)}"
    got = {str(v).strip().lower() for v in value}
    expected = {str(v).strip().lower() for v in entry["expected"]}
    return (1.0, "") if got == expected else (0.0, f"{sorted(got)} is not the expected set")


def _map_key(key: Any) -> Any:
    try:
        return float(key)
    except (TypeError, ValueError):
        return str(key).strip().lower()


def _rule_number_map(value, entry):
    if not isinstance(value, dict):
        return 0.0, f"expected a dict, got {_describe(value)}"
    got = {_map_key(k): v for k, v in value.items()}
    expected = {_map_key(k): v for k, v in entry["expected"].items()}
    wrong = [k for k, v in expected.items() if _plain_float(got.get(k)) is None or not _close(_plain_float(got[k]), float(v), entry)]
    fraction = 1.0 - len(wrong) / len(expected)
    return fraction, (f"wrong or missing for {wrong}" if wrong else "")


def _rule_cases(value, entry):
    if not isinstance(value, list) or len(value) != len(entry["expected"]):
        return 0.0, "the function could not be called on the grading cases"
    right, errors = 0, []
    for case, expected in zip(value, entry["expected"]):
        if not isinstance(case, dict) or not case.get("ok"):
            errors.append(str(case.get("error", "?")) if isinstance(case, dict) else "?")
            continue
        got = _plain_float(case.get("value"))
        if got is not None and _close(got, float(expected), entry):
            right += 1
    detail = f"{right}/{len(value)} grading cases right"
    if errors:
        detail += f"; {len(errors)} raised, e.g. {errors[0][:80]}"
    return right / len(value), detail


def _rule_params(value, entry):
    if not isinstance(value, dict):
        return 0.0, f"expected a dict of parameters, got {_describe(value)}"
    grid = entry["grid"]
    if set(value) != set(grid) or any(value[k] not in grid[k] for k in grid):
        return 0.0, "not a point of the exercise's grid"
    if all(value[k] == entry["expected"][k] for k in grid):
        return 1.0, ""
    return 0.5, "a valid grid point, but not what the grid search selects"


def _rule_threshold(value, entry):
    got = _plain_float(value)
    if got is None:
        return 0.0, f"not a number: {_describe(value)}"
    tol = 1e-9  # the learner's scores were recomputed in another process; ties at the boundary count
    tp = fp = fn = 0
    for label, score in zip(entry["y_true"], entry["scores"]):
        predicted = score >= got - tol
        tp += bool(predicted and label)
        fp += bool(predicted and not label)
        fn += bool(label and not predicted)
    recall = tp / (tp + fn) if tp + fn else 0.0
    precision = tp / (tp + fp) if tp + fp else 0.0
    if recall < float(entry["target_recall"]):
        return 0.0, f"recall {recall:.3f} is below the required {entry['target_recall']}"
    if precision + 1e-9 < float(entry["min_precision"]):
        return 0.5, f"recall {recall:.3f} is met, but a higher threshold keeps it with better precision than {precision:.3f}"
    return 1.0, f"recall {recall:.3f}, precision {precision:.3f}"


def _rule_dataset_plan(value, entry):
    """Four equal parts: a task sentence, three typed entries, distinct types, concrete sources."""
    if not isinstance(value, dict):
        return 0.0, "expected a dict with 'task' and 'data'"
    parts, missing = 0, []
    task = value.get("task")
    if isinstance(task, str) and len(task.split()) >= int(entry["min_task_words"]):
        parts += 1
    else:
        missing.append("a task sentence")
    data = value.get("data") if isinstance(value.get("data"), list) else []
    entries = [d for d in data if isinstance(d, dict) and isinstance(d.get("type"), str) and d["type"].strip()
               and isinstance(d.get("source"), str)]
    if len(data) == 3 and len(entries) == 3:
        parts += 1
    else:
        missing.append("exactly three entries with type and source")
    types = {d["type"].strip().lower() for d in entries}
    if len(entries) == 3 and len(types) == 3:
        parts += 1
    else:
        missing.append("three distinct types")
    sources = {d["source"].strip().lower() for d in entries if len(d["source"].split()) >= int(entry["min_source_words"])}
    if len(entries) == 3 and len(sources) == 3:
        parts += 1
    else:
        missing.append("a concrete, distinct source for each")
    return parts / 4, ("missing: " + ", ".join(missing) if missing else "")


RULES: dict[str, Callable[[Any, Mapping], tuple[float, str]]] = {
    "number": _rule_number,
    "at_least": _rule_at_least,
    "exact": _rule_exact,
    "set": _rule_set,
    "number_map": _rule_number_map,
    "cases": _rule_cases,
    "params": _rule_params,
    "threshold": _rule_threshold,
    "dataset_plan": _rule_dataset_plan,
}


@dataclass
class Row:
    """One line of the report."""

    submission: str
    question: str
    score: float
    max_score: float
    status: str
    detail: str = ""

    def csv_values(self) -> list[str]:
        return [self.submission, self.question, f"{self.score:g}", f"{self.max_score:g}", self.status, self.detail]


def score_answer(question: Question, collected: Mapping | None, entry: Mapping, run_status: str = "ok") -> tuple[float, str, str]:
    """Score one collected answer: returns (score, status, detail).

    ``collected`` is what the child sent for this question (``{"ok": True, "value": ...}`` or
    ``{"ok": False, "error": ...}``); ``run_status`` is how the notebook run ended, so an answer
    that never came into existence because the notebook ran out of time is a timeout, not an error.
    """
    points = float(entry.get("points", question.points))
    if not isinstance(collected, Mapping) or not collected.get("ok"):
        error = str(collected.get("error", "no value came back")) if isinstance(collected, Mapping) else "no value came back"
        if run_status == "timeout" or (isinstance(collected, Mapping) and collected.get("timeout")):
            return 0.0, "timeout", f"not available: the notebook ran out of time ({error})"
        return 0.0, "error", error
    value = collected.get("value")
    if value is None:
        return 0.0, "wrong", f"not answered ({question.variable} is None)"
    if isinstance(value, dict) and "__unsupported__" in value:
        return 0.0, "wrong", f"{question.variable} is a {value['__unsupported__']}, which cannot be graded"
    if question.call_cases and isinstance(value, list) and value and all(
        isinstance(c, dict) and not c.get("ok") for c in value
    ):
        return 0.0, "error", f"{question.variable} raised on every grading case: {str(value[0].get('error'))[:120]}"
    if question.call_cases and isinstance(value, list) and all(isinstance(c, dict) and c.get("value") is None for c in value):
        return 0.0, "wrong", f"not answered ({question.variable} returns None)"
    try:
        fraction, detail = RULES[question.kind](value, entry)
    except Exception as exc:  # a malformed answer must not stop the batch
        return 0.0, "wrong", f"could not score this answer ({type(exc).__name__})"
    fraction = min(1.0, max(0.0, float(fraction)))
    return round(points * fraction, 4), ("ok" if fraction >= 1.0 else "wrong"), detail


def score_run(student: str, notebook: str, run: RunResult | None, spec: Mapping) -> list[Row]:
    """Rows for one student's notebook; ``run=None`` means the notebook was missing."""
    rows = []
    for q in registry.for_notebook(notebook):
        entry = spec["questions"][q.id]
        points = float(entry.get("points", q.points))
        if run is None:
            rows.append(Row(student, q.id, 0.0, points, "missing", f"{notebook}.ipynb not submitted"))
            continue
        score, status, detail = score_answer(q, run.values.get(q.id), entry, run.status)
        if status == "error" and run.status == "error" and run.detail:
            detail = f"{run.detail}"
        rows.append(Row(student, q.id, score, points, status, detail))
    return rows


# --------------------------------------------------------------------------------------------
# The batch
# --------------------------------------------------------------------------------------------


@dataclass
class NotebookReport:
    student: str
    notebook: str
    status: str
    detail: str
    seconds: float
    isolation: dict | None
    cell_errors: list[str]
    rows: list[Row]


def find_submissions(root: Path, notebooks: Sequence[str] | None = None) -> tuple[list[str], list[str]]:
    """Students (sub-folders) and the notebooks to grade (given, or every known one anyone submitted)."""
    if not root.is_dir():
        raise DataError(f"submissions folder {root} does not exist or is not a folder; expected {root}/<student>/<NN_topic>.ipynb.")
    students = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not students:
        raise DataError(f"{root} has no student folders; expected {root}/<student>/<NN_topic>.ipynb.")
    known = registry.notebooks()
    if notebooks:
        unknown = [n for n in notebooks if n not in known]
        if unknown:
            raise ConfigError(f"unknown notebook(s) {unknown}; gradable notebooks are {known}.")
        return students, list(notebooks)
    present = sorted({p.stem for s in students for p in (root / s).glob("*.ipynb")} & set(known))
    if not present:
        raise DataError(f"no gradable notebooks under {root}; file names must be one of {[n + '.ipynb' for n in known]}.")
    return students, present


def _hidden_paths(spec_path: Path, submissions: Path) -> list[Path]:
    """What the child must not see: the spec (with its folder, when that holds nothing the child
    needs) and the submissions folder (the child works on a private copy of its one notebook)."""
    import tempfile

    needed = [Path(sys.prefix).resolve(), Path(__file__).resolve().parent, Path(tempfile.gettempdir()).resolve()]

    def harmless(path: Path) -> bool:
        return not any(n == path or path in n.parents for n in needed)

    spec_path = spec_path.resolve()
    hide = [spec_path.parent if harmless(spec_path.parent) else spec_path]
    if harmless(submissions.resolve()):
        hide.append(submissions.resolve())
    return hide


def grade(
    submissions: str | os.PathLike,
    spec_path: str | os.PathLike | None = None,
    limits: Limits | None = None,
    notebooks: Sequence[str] | None = None,
    jobs: int = 1,
    use_namespaces: bool | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[NotebookReport]:
    """Run and score every (student, notebook) pair; never stops on one submission's failure."""
    root = Path(submissions)
    spec_file = Path(spec_path) if spec_path is not None else default_spec_path()
    spec = load_spec(spec_file)
    students, selected = find_submissions(root, notebooks)
    limits = limits or Limits()
    hide = _hidden_paths(spec_file, root)
    manifests = {
        nb: {q.id: {"variable": q.variable, "call_cases": [list(c) for c in q.call_cases]} for q in registry.for_notebook(nb)}
        for nb in selected
    }

    def one(pair: tuple[str, str]) -> NotebookReport:
        student, notebook = pair
        path = root / student / f"{notebook}.ipynb"
        run: RunResult | None = None
        if path.is_symlink():  # a link could make the grader copy any file it can read into the sandbox
            run = RunResult("error", "the submitted notebook is a symbolic link; submit the file itself", {}, 0.0, Isolation())
        elif path.is_file():
            try:
                run = run_notebook(path, manifests[notebook], limits, hide=hide, use_namespaces=use_namespaces)
            except ConfigError:
                raise
            except Exception as exc:  # the batch goes on; this submission gets an error row per question
                run = RunResult("error", f"grader could not run it: {type(exc).__name__}: {exc}", {}, 0.0, Isolation())
        rows = score_run(student, notebook, run, spec)
        if run is None:
            report = NotebookReport(student, notebook, "missing", "not submitted", 0.0, None, [], rows)
        else:
            report = NotebookReport(student, notebook, run.status, run.detail, round(run.seconds, 1),
                                    asdict(run.isolation), run.cell_errors, rows)
        if progress:
            got = sum(r.score for r in report.rows)
            total = sum(r.max_score for r in report.rows)
            progress(f"{student}/{notebook}: {got:g}/{total:g} in {report.seconds:.1f} s ({report.status}"
                     + (f": {report.detail}" if report.detail else "") + ")")
        return report

    pairs = [(s, n) for s in students for n in selected]
    if jobs > 1:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            return list(pool.map(one, pairs))
    return [one(p) for p in pairs]


def write_csv(reports: Iterable[NotebookReport], path: str | os.PathLike) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for report in reports:
            for row in report.rows:
                writer.writerow(row.csv_values())


def totals(reports: Iterable[NotebookReport]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for report in reports:
        t = out.setdefault(report.student, {"score": 0.0, "max_score": 0.0})
        for row in report.rows:
            t["score"] += row.score
            t["max_score"] += row.max_score
    return out


def write_json(reports: Sequence[NotebookReport], path: str | os.PathLike, limits: Limits) -> None:
    data = {
        "limits": asdict(limits),
        "totals": totals(reports),
        "notebooks": [
            {**{k: v for k, v in asdict(r).items() if k != "rows"}, "rows": [asdict(row) for row in r.rows]}
            for r in reports
        ],
    }
    Path(path).write_text(json.dumps(data, indent=2), encoding="utf-8")
