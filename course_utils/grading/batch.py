"""One grading batch: find the learners, run each notebook confined, score every answer.

Every entry of the submissions folder gets a row or a "skipped" line: hidden entries (``.name``) and
plain files are skipped and listed; a learner folder or notebook that is a symbolic link is refused
with a row saying so (a link could make the grader read another learner's work, or any file it can
read); a folder without a notebook gets "missing" rows. Folder names that clean to the same text are
kept apart (``bob`` and ``bob (2)``) and listed as collisions.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from course_utils.errors import ConfigError, DataError
from course_utils.grading import questions as registry
from course_utils.grading.channels import CHANNELS, score_answer
from course_utils.grading.evaluation import EvaluationCache, EvaluationSet
from course_utils.grading.reports import Batch, NotebookReport, Row, clean_text
from course_utils.grading.sandbox import Job, Limits, RunResult, namespace_command, run_notebook
from course_utils.grading.spec import check_spec_location, entry_for, learner_seed, load_spec
from course_utils.grading.variants import VARIANT_ENV

DEFAULT_TIMEOUT = 300.0


@dataclass(frozen=True)
class Learner:
    folder: str  # the name on disk
    id: str  # cleaned, unique in the batch: what every output shows
    refused: str = ""  # why the folder is not graded at all ("" = it is)


def learner_ids(names: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """A unique, clean id per folder name, and the collisions that needed a suffix."""
    ids: dict[str, str] = {}
    used: set[str] = set()
    collisions = []
    for name in sorted(names):
        base = clean_text(name, 90) or "learner"
        candidate, n = base, 1
        while candidate.lower() in used:
            n += 1
            candidate = f"{base} ({n})"
        if candidate != base:
            collisions.append(f"{name!r} cleans to the same text as another folder; reported as {candidate!r}")
        used.add(candidate.lower())
        ids[name] = candidate
    return ids, collisions


def find_submissions(root: Path, notebooks: Sequence[str] | None = None) -> tuple[list[Learner], list[str], list[str], list[str]]:
    """Learners, the notebooks to grade, skipped entries (one line each) and id collisions."""
    if not root.is_dir():
        raise DataError(f"submissions folder {root} does not exist or is not a folder; expected {root}/<student>/<NN_topic>.ipynb.")
    skipped, names = [], []
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if entry.name.startswith("."):
            skipped.append(f"{clean_text(entry.name, 100)}: hidden entry, skipped")
        elif not entry.is_dir():
            skipped.append(f"{clean_text(entry.name, 100)}: not a folder, skipped")
        else:
            names.append(entry.name)
    if not names:
        raise DataError(f"{root} has no student folders; expected {root}/<student>/<NN_topic>.ipynb.")
    ids, collisions = learner_ids(names)
    learners = [Learner(n, ids[n], "the learner folder is a symbolic link; refused" if (root / n).is_symlink() else "")
                for n in sorted(names)]
    known = registry.notebooks()
    if notebooks:
        unknown = [n for n in notebooks if n not in known]
        if unknown:
            raise ConfigError(f"unknown notebook(s) {unknown}; gradable notebooks are {known}.")
        return learners, list(notebooks), skipped, collisions
    present = sorted({p.stem for x in learners if not x.refused for p in (root / x.folder).glob("*.ipynb")} & set(known))
    if not present:
        raise DataError(f"no gradable notebooks under {root}; file names must be one of {[n + '.ipynb' for n in known]}.")
    return learners, present, skipped, collisions


def plan_job(notebook: str, spec: Mapping, seed: int, rng: random.Random, evaluations: EvaluationCache) -> tuple[Job, dict[str, dict]]:
    """What to ask the sandbox for one notebook, and the spec entries completed for this run."""
    import hashlib

    job = Job(env={VARIANT_ENV: str(seed)}, canary_sha256=hashlib.sha256(spec["canary"].encode()).hexdigest())
    entries: dict[str, dict] = {}
    for q in registry.for_notebook(notebook):
        entry = entry_for(spec, q, seed)
        CHANNELS[q.channel].plan(q, entry, job, rng, evaluations, seed)
        entries[q.id] = entry
    return job, entries


def score_run(student: str, notebook: str, run: RunResult | None, entries: Mapping[str, Mapping],
              refused: str = "") -> list[Row]:
    """Rows for one learner's notebook; ``run=None`` means missing, or ``refused`` says why it was not run."""
    rows = []
    for q in registry.for_notebook(notebook):
        entry = entries[q.id]
        points = float(entry.get("points", q.points))
        if refused:
            rows.append(Row(student, q.id, 0.0, points, "refused", refused))
            continue
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
    private_sets: Mapping[str, EvaluationSet] | None = None,
) -> Batch:
    """Run and score every (learner, notebook) pair; never stops on one submission's failure.

    Raises :class:`ConfigError` before running anything when Linux namespaces are not available,
    unless ``allow_unisolated`` (then submissions can read what the grader's user can read).
    ``private_sets`` replaces public evaluation sets by the instructor's own rows (``--eval-set``).
    """
    root = Path(submissions)
    spec = load_spec(spec_path)
    check_spec_location(Path(spec_path))
    learners, selected, skipped, collisions = find_submissions(root, notebooks)
    limits = limits or Limits()
    namespaced = namespace_command() is not None
    if not namespaced and not allow_unisolated:
        raise ConfigError("Linux namespaces (unshare, setpriv, pivot_root) are not available here, so a submission "
                          "could read the spec, use the network and outlive the grader. Grade in a container or VM "
                          "that allows them, or pass --allow-unisolated for submissions you trust.")
    rng = random.SystemRandom()
    evaluations = EvaluationCache(spec, private_sets)

    def one(pair: tuple[Learner, str]) -> NotebookReport:
        learner, notebook = pair
        seed = learner_seed(spec, learner.folder)
        job, entries = plan_job(notebook, spec, seed, rng, evaluations)
        path = root / learner.folder / f"{notebook}.ipynb"
        run: RunResult | None = None
        refused = learner.refused
        if not refused and path.is_symlink():  # a link could make the grader copy any file it can read
            refused = "the submitted notebook is a symbolic link; submit the file itself"
        elif not refused and path.is_file():
            try:
                run = run_notebook(path, job, limits, use_namespaces=True if namespaced else False)
            except ConfigError:
                raise
            except Exception as exc:  # noqa: BLE001 - the batch goes on; this submission gets an error row
                run = RunResult("error", f"grader could not run it: {type(exc).__name__}: {exc}", {}, 0.0, None)
        rows = score_run(learner.id, notebook, run, entries, refused)
        if refused:
            report = NotebookReport(learner.id, notebook, "refused", refused, 0.0, None, [], rows, seed)
        elif run is None:
            report = NotebookReport(learner.id, notebook, "missing", "not submitted", 0.0, None, [], rows, seed)
        else:
            report = NotebookReport(learner.id, notebook, run.status, clean_text(run.detail), round(run.seconds, 1),
                                    asdict(run.isolation) if run.isolation is not None else None,
                                    [clean_text(e) for e in run.cell_errors], rows, seed, run.memory_peak_mb)
        if progress:
            got = sum(r.score for r in report.rows)
            total = sum(r.max_score for r in report.rows)
            progress(f"{learner.id}/{notebook}: {got:g}/{total:g} in {report.seconds:.1f} s ({report.status}"
                     + (f": {report.detail}" if report.detail else "") + ")")
        return report

    pairs = [(x, n) for x in learners for n in selected]
    if jobs > 1:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            return Batch(pool.map(one, pairs), skipped, collisions)
    return Batch([one(p) for p in pairs], skipped, collisions)
