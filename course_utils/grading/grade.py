"""Grade a folder of learners' exercise notebooks against the instructor's private spec.

Workflow (INSTRUCTORS.md has the whole of it): generate the spec outside the course checkout with
``python grading/build_spec.py --out ~/course-private``; hand out exercises/NN_topic.ipynb; collect each
learner's notebooks, names unchanged, into SUBMISSIONS_DIR/<learner>/<NN_topic>.ipynb; run
``course-utils grade SUBMISSIONS_DIR --spec ~/course-private/spec.json --out report.csv``.

Each notebook runs in its own confined child (course_utils.grading.sandbox): new namespaces, a new
root file system holding only Python, the package and the one notebook, a non-root uid, no network.
Without Linux namespaces the grader refuses unless --allow-unisolated is given (the report says so).
What is scored, per question channel (course_utils.grading.questions):

* value: the variable the notebook assigns, against an exact expected value (per learner variant);
* function: the function's source, called in a fresh interpreter on inputs drawn at random per run;
* artefact: the model the notebook submitted (submit_model), predicting on the grader's inputs,
  scored with labels that never leave this process;
* manual: free text, left to a person (status ``manual``, 0 points until scored by hand).

The CSV has one row per submission and question:

    submission,question,score,max_score,status,detail

status is ok (full marks), wrong, error (the answer raised or the kernel crashed), timeout, missing
(no such notebook) or manual. Every text from a submission is cleaned before it is written: newlines
and control characters removed, at most 300 characters, and a leading = + - @ or tab escaped with a
quote so a spreadsheet shows it as text. A crash, a timeout or a missing notebook is recorded and the
batch goes on.

Examples:
  course-utils grade submissions/ --spec ~/course-private/spec.json --out report.csv
  course-utils grade submissions/ --spec SPEC --out report.csv --json report.json --feedback feedback/
  course-utils grade submissions/ --spec SPEC --out report.csv --format canvas --totals totals.csv
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import math
import os
import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from course_utils.errors import ConfigError, DataError
from course_utils.grading import questions as registry
from course_utils.grading.questions import Question, is_number
from course_utils.grading.sandbox import Isolation, Job, Limits, RunResult, exposed_paths, namespace_command, run_notebook
from course_utils.grading.submit import VARIANT_ENV

STATUSES = ("ok", "wrong", "error", "timeout", "missing", "manual")
CSV_COLUMNS = ("submission", "question", "score", "max_score", "status", "detail")
DEFAULT_TIMEOUT = 300.0
DETAIL_LIMIT = 300
SPEC_FORMAT = 2


# --------------------------------------------------------------------------------------------
# Report safety: text from a submission is data, never a formula, a row or a megabyte
# --------------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def clean_text(text: Any, limit: int = DETAIL_LIMIT) -> str:
    """One line of at most ``limit`` characters, no control characters, safe in a spreadsheet."""
    line = _CONTROL.sub(" ", str(text)).strip()
    if len(line) > limit:
        line = line[: limit - 3] + "..."
    if line[:1] in ("=", "+", "-", "@", "\t", "|", "%"):
        line = "'" + line
    return line


# --------------------------------------------------------------------------------------------
# The private spec
# --------------------------------------------------------------------------------------------

# Fields each scoring rule needs from the spec; checked on load so a typo fails before grading.
_REQUIRED = {
    "number": ("expected",),
    "exact": ("expected",),
    "set": ("expected",),
    "number_map": ("expected",),
    "cases": ("reference",),
    "params": ("expected", "grid"),
    "threshold": ("y_true", "scores", "target_recall", "min_precision"),
    "dataset_plan": (),
    "artefact_accuracy": ("floor",),
    "artefact_average_precision": ("floor",),
    "artefact_macro_f1": ("floor",),
}


def load_spec(path: str | os.PathLike | None) -> dict:
    """Read and validate the spec: every registered question needs an entry with its rule's fields."""
    if path is None:
        raise ConfigError("no spec given: pass --spec PATH. Generate it outside the course checkout with "
                          "`python grading/build_spec.py --out DIR` (see INSTRUCTORS.md).")
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"spec file {path} not found; generate it with `python grading/build_spec.py --out DIR` "
                          "and pass --spec DIR/spec.json.")
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"spec file {path} is not valid JSON: {exc}.") from None
    entries = spec.get("questions") if isinstance(spec, dict) else None
    if not isinstance(entries, dict):
        raise ConfigError(f'spec file {path} needs a top-level "questions" object keyed by question id.')
    if spec.get("format") != SPEC_FORMAT or not isinstance(spec.get("canary"), str) or not isinstance(spec.get("secret"), str):
        raise ConfigError(f"spec file {path} is from an older grader (no canary/secret, format != {SPEC_FORMAT}); "
                          "regenerate it with `python grading/build_spec.py --out DIR`.")
    for q in registry.QUESTIONS:
        entry = entries.get(q.id)
        if not isinstance(entry, dict):
            raise ConfigError(f"spec file {path} has no entry for {q.id} ({q.notebook}: {q.variable}).")
        variants = entry.get("variants")
        if variants is not None and (not isinstance(variants, dict) or not variants):
            raise ConfigError(f"spec entry {q.id} has an empty or malformed 'variants' in {path}.")
        for variant in (variants.values() if variants else [entry]):
            missing = [f for f in _REQUIRED[q.kind] if f not in variant and f not in entry]
            if missing:
                raise ConfigError(f"spec entry {q.id} (rule {q.kind!r}) lacks {missing} in {path}.")
    unknown = sorted(set(entries) - {q.id for q in registry.QUESTIONS})
    if unknown:
        raise ConfigError(f"spec file {path} has entries for unknown questions {unknown}; is it for another course version?")
    return spec


def check_spec_location(spec_path: Path) -> None:
    """The spec must not sit where a submission's sandbox shows files (Python, venv, package)."""
    spec_path = spec_path.resolve()
    for exposed in exposed_paths():
        if exposed == spec_path.parent or exposed in spec_path.parents:
            raise ConfigError(f"the spec {spec_path} lies inside {exposed}, which every submission can read; "
                              "keep it in a private folder outside the course checkout and the Python installation.")


def learner_seed(spec: Mapping, learner: str) -> int:
    """The learner's variant seed: one of the spec's seeds, chosen by a keyed hash of the learner id.

    The key (``spec["secret"]``) is private, so a learner cannot tell which seeds others got; the
    pool is regenerated with every spec, so seeds and answers in an older spec are worthless.
    """
    pool = spec.get("variant_seeds") or [0]
    digest = hmac.new(str(spec["secret"]).encode(), learner.encode("utf-8"), hashlib.sha256).digest()
    return int(pool[int.from_bytes(digest[:8], "big") % len(pool)])


def entry_for(spec: Mapping, question: Question, seed: int) -> dict:
    """The spec entry of ``question`` for variant ``seed`` (variant fields override the shared ones)."""
    entry = dict(spec["questions"][question.id])
    variants = entry.pop("variants", None)
    if variants:
        if str(seed) not in variants:
            raise ConfigError(f"spec has no variant {seed} for {question.id}; regenerate it.")
        entry.update(variants[str(seed)])
    return entry


# --------------------------------------------------------------------------------------------
# What the grader supplies: random inputs for function answers, input sets for artefacts
# --------------------------------------------------------------------------------------------


def function_cases(rng: random.Random, n: int = 12) -> list[list[list[int]]]:
    """Binary (y_true, y_pred) pairs drawn for one run; includes a case with no positive prediction."""
    cases = []
    for i in range(n):
        size = rng.randint(5, 40)
        y_true = [rng.randint(0, 1) for _ in range(size)]
        y_pred = [0] * size if i == 0 else [rng.randint(0, 1) for _ in range(size)]
        y_true[rng.randrange(size)] = 1  # at least one positive, so recall is defined
        cases.append([y_true, y_pred])
    return cases


def _expected_cases(reference: str, cases: Sequence) -> list[float]:
    import sklearn.metrics as skm

    fn = getattr(skm, reference)
    return [float(fn(t, p, zero_division=0)) for t, p in cases]


def _breast_cancer_test(seed: int):
    from course_utils.labs.applications import load_breast_cancer_splits

    data = load_breast_cancer_splits(seed=0)
    return "predict", data.X_test.tolist(), data.y_test.astype(int).tolist()


def _fraud_test(seed: int):
    from course_utils.grading.submit import variant_data
    from course_utils.labs.applications import make_fraud_data

    data = make_fraud_data(**variant_data("fraud", seed))
    return "predict_proba", data.X_test.tolist(), data.y_test.astype(int).tolist()


def _tweets_test(seed: int):
    from course_utils.data import load_course_dataset, split_dataset, stratified_sample

    tweets = load_course_dataset("tweets", binary=True)
    test = stratified_sample(split_dataset(tweets, seed=42).test, 512, seed=42)
    return "predict_texts", test["text"].tolist(), test["label"].astype(str).tolist()


# name -> seed -> (method the model is called with, inputs, labels kept here)
EVALUATION_SETS: dict[str, Callable[[int], tuple[str, list, list]]] = {
    "breast_cancer_test": _breast_cancer_test,
    "fraud_test": _fraud_test,
    "tweets_test": _tweets_test,
}


# --------------------------------------------------------------------------------------------
# Scoring rules: (value, spec entry) -> (fraction of the points, what was wrong)
# Partial credit only where a constant, an identity or a random answer cannot reach it.
# --------------------------------------------------------------------------------------------


def _plain_float(value: Any) -> float | None:
    if isinstance(value, dict) and "__float__" in value:
        try:
            return float(value["__float__"])
        except (TypeError, ValueError):
            return None
    return float(value) if is_number(value) else None


def _close(got: float, expected: float, entry: Mapping) -> bool:
    return math.isclose(got, expected, rel_tol=float(entry.get("rel_tol", 0.0)), abs_tol=float(entry.get("abs_tol", 1e-9)))


def _rule_number(value, entry):
    got = _plain_float(value)
    if got is None:
        return 0.0, "not a number"
    return (1.0, "") if _close(got, float(entry["expected"]), entry) else (0.0, f"{got:.6g} is not the expected value")


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
        return 0.0, f"expected {'True/False' if isinstance(expected, bool) else 'another kind of value'}"
    return (1.0, "") if _normal(value) == _normal(expected) else (0.0, "not the expected answer")


def _rule_set(value, entry):
    if not isinstance(value, list):
        return 0.0, "expected a set"
    got = {str(v).strip().lower() for v in value}
    expected = {str(v).strip().lower() for v in entry["expected"]}
    return (1.0, "") if got == expected else (0.0, "not the expected set")


def _map_key(key: Any) -> Any:
    try:
        return float(key)
    except (TypeError, ValueError):
        return str(key).strip().lower()


def _rule_number_map(value, entry):
    """Per-key credit: each key needs its own measured value, which no constant reproduces."""
    if not isinstance(value, dict):
        return 0.0, "expected a dict"
    got = {_map_key(k): v for k, v in value.items()}
    expected = {_map_key(k): v for k, v in entry["expected"].items()}
    wrong = [k for k, v in expected.items() if _plain_float(got.get(k)) is None or not _close(_plain_float(got[k]), float(v), entry)]
    return 1.0 - len(wrong) / len(expected), (f"wrong or missing for {len(wrong)} of {len(expected)} keys" if wrong else "")


def _rule_cases(value, entry):
    """All or nothing over the run's random cases: a constant or a guess matches some, never all."""
    expected = entry["expected"]
    if not isinstance(value, list) or len(value) != len(expected):
        return 0.0, "the function could not be called on the grading cases"
    right, errors = 0, []
    for case, want in zip(value, expected):
        if not isinstance(case, dict) or not case.get("ok"):
            errors.append(str(case.get("error", "?")) if isinstance(case, dict) else "?")
            continue
        got = _plain_float(case.get("value"))
        if got is not None and _close(got, float(want), entry):
            right += 1
    detail = f"{right}/{len(value)} random grading cases right"
    if errors:
        detail += f"; {len(errors)} raised, e.g. {errors[0][:80]}"
    return (1.0 if right == len(value) else 0.0), detail


def _rule_params(value, entry):
    if not isinstance(value, dict):
        return 0.0, "expected a dict of parameters"
    grid = entry["grid"]
    if set(value) != set(grid) or any(value[k] not in grid[k] for k in grid):
        return 0.0, "not a point of the exercise's grid"
    if all(value[k] == entry["expected"][k] for k in grid):
        return 1.0, ""
    return 0.0, "a valid grid point, but not what the grid search selects"


def _rule_threshold(value, entry):
    got = _plain_float(value)
    if got is None:
        return 0.0, "not a number"
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
        return 0.0, f"recall {recall:.3f} is met, but a higher threshold keeps it with better precision than {precision:.3f}"
    return 1.0, f"recall {recall:.3f}, precision {precision:.3f}"


def _artefact_rule(metric: Callable[[list, list], float], name: str):
    def rule(value, entry):
        labels = entry["labels"]
        if not isinstance(value, list) or len(value) != len(labels):
            return 0.0, "the model did not return one prediction per input"
        try:
            score = float(metric(labels, value))
        except Exception as exc:  # noqa: BLE001 - predictions of the wrong kind
            return 0.0, f"the predictions could not be scored ({type(exc).__name__})"
        floor = float(entry["floor"])
        return (1.0 if score >= floor else 0.0), f"{name} {score:.4f} of the submitted model on the grader's inputs (floor {floor:g})"

    return rule


def _accuracy(labels, predictions):
    return sum(int(float(p) == float(t)) for t, p in zip(labels, predictions)) / len(labels)


def _average_precision(labels, scores):
    from sklearn.metrics import average_precision_score

    if any(s is None for s in scores):
        raise ValueError("missing scores")
    return average_precision_score(labels, scores)


def _macro_f1(labels, predictions):
    from sklearn.metrics import f1_score

    return f1_score([str(t) for t in labels], [str(p) for p in predictions], average="macro", zero_division=0)


RULES: dict[str, Callable[[Any, Mapping], tuple[float, str]]] = {
    "number": _rule_number,
    "exact": _rule_exact,
    "set": _rule_set,
    "number_map": _rule_number_map,
    "cases": _rule_cases,
    "params": _rule_params,
    "threshold": _rule_threshold,
    "artefact_accuracy": _artefact_rule(_accuracy, "accuracy"),
    "artefact_average_precision": _artefact_rule(_average_precision, "average precision"),
    "artefact_macro_f1": _artefact_rule(_macro_f1, "macro-F1"),
}


@dataclass
class Row:
    """One line of the report; ``detail`` is cleaned on the way in."""

    submission: str
    question: str
    score: float
    max_score: float
    status: str
    detail: str = ""

    def __post_init__(self) -> None:
        self.submission = clean_text(self.submission, 100)
        self.detail = clean_text(self.detail)

    def csv_values(self) -> list[str]:
        return [self.submission, self.question, f"{self.score:g}", f"{self.max_score:g}", self.status, self.detail]


def score_answer(question: Question, collected: Mapping | None, entry: Mapping, run_status: str = "ok") -> tuple[float, str, str]:
    """Score one collected answer: returns (score, status, detail).

    ``collected`` is what the child sent for this question (``{"ok": True, "value": ...}`` or
    ``{"ok": False, "error": ...}``); ``entry`` the spec entry for this learner's variant, completed
    with what the grader chose for this run (``expected`` of random cases, ``labels`` of an input set).
    """
    points = float(entry.get("points", question.points))
    if question.channel == "manual":
        answer = collected.get("value") if isinstance(collected, Mapping) and collected.get("ok") else None
        shown = json.dumps(answer)[:250] if answer is not None else "not answered"
        return 0.0, "manual", f"to be scored by a person: {shown}"
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
    if question.channel == "function" and isinstance(value, list) and value:
        if all(isinstance(c, dict) and not c.get("ok") for c in value):
            return 0.0, "error", f"{question.variable} raised on every grading case: {str(value[0].get('error'))[:120]}"
        if all(isinstance(c, dict) and c.get("value") is None for c in value):
            return 0.0, "wrong", f"not answered ({question.variable} returns None)"
    if question.channel == "artefact" and "max_trainable_share" in entry:
        limit, share = float(entry["max_trainable_share"]), collected.get("trainable_share")
        if not is_number(share):
            return 0.0, "wrong", ("the submitted model exposes no torch parameters to count; submit the Trainer "
                                  "(or peft model) you trained with LoRA")
        if float(share) > limit:
            return 0.0, "wrong", (f"the submitted model trains {float(share):.2%} of its weights; this question needs a "
                                  f"parameter-efficient (LoRA) model training at most {limit:.0%}")
    try:
        fraction, detail = RULES[question.kind](value, entry)
    except Exception as exc:  # a malformed answer must not stop the batch
        return 0.0, "wrong", f"could not score this answer ({type(exc).__name__})"
    fraction = min(1.0, max(0.0, float(fraction)))
    return round(points * fraction, 4), ("ok" if fraction >= 1.0 else "wrong"), detail


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
    variant: int = 0


def find_submissions(root: Path, notebooks: Sequence[str] | None = None) -> tuple[list[str], list[str]]:
    """Learners (sub-folders) and the notebooks to grade (given, or every known one anyone submitted)."""
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


class _EvaluationCache:
    """Input sets are built once per (name, seed) per batch; thread-safe enough for --jobs."""

    def __init__(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._cache: dict[tuple[str, int], tuple[str, list, list]] = {}

    def get(self, name: str, seed: int) -> tuple[str, list, list]:
        with self._lock:
            if (name, seed) not in self._cache:
                self._cache[(name, seed)] = EVALUATION_SETS[name](seed)
            return self._cache[(name, seed)]


def plan_job(notebook: str, spec: Mapping, seed: int, rng: random.Random, evaluations: _EvaluationCache) -> tuple[Job, dict[str, dict]]:
    """What to ask the sandbox for one notebook, and the spec entries completed for this run."""
    job = Job(env={VARIANT_ENV: str(seed)}, canary_sha256=hashlib.sha256(spec["canary"].encode()).hexdigest())
    entries: dict[str, dict] = {}
    for q in registry.for_notebook(notebook):
        entry = entry_for(spec, q, seed)
        if q.channel == "function":
            cases = function_cases(rng)
            entry["expected"] = _expected_cases(entry["reference"], cases)
            job.functions[q.id] = {"name": q.variable, "cases": cases}
        elif q.channel == "artefact":
            method, inputs, labels = evaluations.get(q.evaluation, seed)
            entry["labels"] = labels
            job.artefacts[q.id] = {"method": method, "inputs": inputs}
        else:
            job.values[q.id] = q.variable
        entries[q.id] = entry
    return job, entries


def score_run(student: str, notebook: str, run: RunResult | None, entries: Mapping[str, Mapping]) -> list[Row]:
    """Rows for one learner's notebook; ``run=None`` means the notebook was missing."""
    rows = []
    for q in registry.for_notebook(notebook):
        entry = entries[q.id]
        points = float(entry.get("points", q.points))
        if run is None:
            rows.append(Row(student, q.id, 0.0, points, "missing", f"{notebook}.ipynb not submitted"))
            continue
        score, status, detail = score_answer(q, run.values.get(q.id), entry, run.status)
        if status == "error" and run.status == "error" and run.detail:
            detail = run.detail
        rows.append(Row(student, q.id, score, points, status, detail))
    return rows


def grade(
    submissions: str | os.PathLike,
    spec_path: str | os.PathLike | None,
    limits: Limits | None = None,
    notebooks: Sequence[str] | None = None,
    jobs: int = 1,
    allow_unisolated: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[NotebookReport]:
    """Run and score every (learner, notebook) pair; never stops on one submission's failure.

    Raises :class:`ConfigError` before running anything when Linux namespaces are not available,
    unless ``allow_unisolated`` (then submissions can read what the grader's user can read).
    """
    root = Path(submissions)
    spec = load_spec(spec_path)
    check_spec_location(Path(spec_path))
    students, selected = find_submissions(root, notebooks)
    limits = limits or Limits()
    namespaced = namespace_command() is not None
    if not namespaced and not allow_unisolated:
        raise ConfigError("Linux namespaces (unshare, setpriv, pivot_root) are not available here, so a submission "
                          "could read the spec, use the network and outlive the grader. Grade in a container or VM "
                          "that allows them, or pass --allow-unisolated for submissions you trust.")
    rng = random.SystemRandom()
    evaluations = _EvaluationCache()

    def one(pair: tuple[str, str]) -> NotebookReport:
        student, notebook = pair
        seed = learner_seed(spec, student)
        job, entries = plan_job(notebook, spec, seed, rng, evaluations)
        path = root / student / f"{notebook}.ipynb"
        run: RunResult | None = None
        if path.is_symlink():  # a link could make the grader copy any file it can read into the sandbox
            run = RunResult("error", "the submitted notebook is a symbolic link; submit the file itself", {}, 0.0, Isolation())
        elif path.is_file():
            try:
                run = run_notebook(path, job, limits, use_namespaces=True if namespaced else False)
            except ConfigError:
                raise
            except Exception as exc:  # the batch goes on; this submission gets an error row per question
                run = RunResult("error", f"grader could not run it: {type(exc).__name__}: {exc}", {}, 0.0, Isolation())
        rows = score_run(student, notebook, run, entries)
        if run is None:
            report = NotebookReport(student, notebook, "missing", "not submitted", 0.0, None, [], rows, seed)
        else:
            report = NotebookReport(student, notebook, run.status, clean_text(run.detail), round(run.seconds, 1),
                                    asdict(run.isolation), [clean_text(e) for e in run.cell_errors], rows, seed)
        if progress:
            got = sum(r.score for r in report.rows)
            total = sum(r.max_score for r in report.rows)
            progress(f"{clean_text(student, 60)}/{notebook}: {got:g}/{total:g} in {report.seconds:.1f} s ({report.status}"
                     + (f": {report.detail}" if report.detail else "") + ")")
        return report

    pairs = [(s, n) for s in students for n in selected]
    if jobs > 1:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            return list(pool.map(one, pairs))
    return [one(p) for p in pairs]


# --------------------------------------------------------------------------------------------
# Outputs: the CSV, the JSON, totals for an LMS, per-learner feedback
# --------------------------------------------------------------------------------------------


def _atomic_write(path: str | os.PathLike, write: Callable[[Any], None]) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        write(fh)
    os.replace(tmp, path)


def write_csv(reports: Iterable[NotebookReport], path: str | os.PathLike) -> None:
    def write(fh) -> None:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for report in reports:
            for row in report.rows:
                writer.writerow(row.csv_values())

    _atomic_write(path, write)


def totals(reports: Iterable[NotebookReport]) -> dict[str, dict[str, float]]:
    """Per learner: points scored, points possible, and points waiting for a person (manual)."""
    out: dict[str, dict[str, float]] = {}
    for report in reports:
        t = out.setdefault(report.student, {"score": 0.0, "max_score": 0.0, "manual": 0.0})
        for row in report.rows:
            t["score"] += row.score
            t["max_score"] += row.max_score
            if row.status == "manual":
                t["manual"] += row.max_score
    return out


def write_json(reports: Sequence[NotebookReport], path: str | os.PathLike, limits: Limits, allow_unisolated: bool = False) -> None:
    data = {
        "limits": asdict(limits),
        "unisolated_allowed": allow_unisolated,
        "isolated": all(r.isolation is None or str(r.isolation.get("method", "")).startswith("namespaces") for r in reports),
        "totals": totals(reports),
        "notebooks": [
            {**{k: v for k, v in asdict(r).items() if k != "rows"}, "rows": [asdict(row) for row in r.rows]}
            for r in reports
        ],
    }
    _atomic_write(path, lambda fh: fh.write(json.dumps(data, indent=2)))


EXPORT_FORMATS = ("plain", "gradescope", "canvas")


def write_totals(reports: Sequence[NotebookReport], path: str | os.PathLike, fmt: str = "plain", assignment: str = "Exercises") -> None:
    """One row per learner for an LMS import.

    * ``plain``: ``learner,score,max_score,manual_pending``;
    * ``gradescope``: ``Email,Total Score`` (the learner folder names must be the roster's e-mails);
    * ``canvas``: ``Student,ID,SIS User ID,SIS Login ID,Section,<assignment> (<max>)``; the folder
      name goes into ``SIS Login ID``, which Canvas matches on import.
    """
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of {list(EXPORT_FORMATS)}.")
    table = totals(reports)
    top = max((t["max_score"] for t in table.values()), default=0.0)

    def write(fh) -> None:
        writer = csv.writer(fh)
        if fmt == "plain":
            writer.writerow(["learner", "score", "max_score", "manual_pending"])
            for learner, t in table.items():
                writer.writerow([clean_text(learner, 100), f"{t['score']:g}", f"{t['max_score']:g}", f"{t['manual']:g}"])
        elif fmt == "gradescope":
            writer.writerow(["Email", "Total Score"])
            for learner, t in table.items():
                writer.writerow([clean_text(learner, 100), f"{t['score']:g}"])
        else:
            writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", f"{clean_text(assignment, 80)} ({top:g})"])
            writer.writerow(["Points Possible", "", "", "", "", f"{top:g}"])
            for learner, t in table.items():
                name = clean_text(learner, 100)
                writer.writerow([name, "", "", name, "", f"{t['score']:g}"])

    _atomic_write(path, write)


def write_feedback(reports: Sequence[NotebookReport], folder: str | os.PathLike) -> list[Path]:
    """One Markdown file per learner: each question's score, status, the grader's note and the public hint.

    Never an expected value: the notes come from the scoring rules, which describe what was wrong
    ("not the expected value", "recall 0.91 is below the required 0.95") without the answer.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    by_student: dict[str, list[NotebookReport]] = {}
    for report in reports:
        by_student.setdefault(report.student, []).append(report)
    written = []
    for student, items in by_student.items():
        safe = re.sub(r"[^A-Za-z0-9_.@-]", "_", student)[:100] or "learner"
        t = totals(items)[student]
        lines = [f"# Feedback for {clean_text(student, 100)}", "",
                 f"Total: **{t['score']:g} / {t['max_score']:g}**"
                 + (f" ({t['manual']:g} points wait for a person to read your free-text answer)" if t["manual"] else ""), ""]
        for report in items:
            lines += [f"## {report.notebook}", ""]
            if report.status not in ("ok", "missing"):
                lines += [f"The notebook run ended with **{report.status}**: {clean_text(report.detail)}", ""]
            lines += ["| question | score | status | note | hint |", "|---|---|---|---|---|"]
            for row in report.rows:
                hint = registry.get(row.question).hint
                cells = [row.question, f"{row.score:g} / {row.max_score:g}", row.status, row.detail, hint]
                lines.append("| " + " | ".join(clean_text(c).replace("|", "/") for c in cells) + " |")
            lines.append("")
        path = out / f"{safe}.md"
        path.write_text("\n".join(lines), encoding="utf-8")
        written.append(path)
    return written
