"""The grader's outputs: the per-question CSV, the JSON record, totals for an LMS, per-learner feedback.

Every text from a submission is cleaned before it is written (:func:`clean_text`): one line, no control
characters, at most 300 characters, a leading ``= + - @`` or tab escaped so a spreadsheet shows text.
Learner ids are unique in every output: two folder names that clean to the same text are kept apart
(:func:`course_utils.grading.batch.learner_ids`), and so are their feedback files. Every file is
written atomically (:mod:`course_utils.files`).
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from course_utils.errors import ConfigError
from course_utils.files import atomic_write
from course_utils.grading import questions as registry

STATUSES = ("ok", "wrong", "error", "timeout", "missing", "manual", "refused")
CSV_COLUMNS = ("submission", "question", "score", "max_score", "status", "detail")
DETAIL_LIMIT = 300
EXPORT_FORMATS = ("plain", "gradescope", "canvas")

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def clean_text(text: Any, limit: int = DETAIL_LIMIT) -> str:
    """One line of at most ``limit`` characters, no control characters, safe in a spreadsheet."""
    line = _CONTROL.sub(" ", str(text)).strip()
    if len(line) > limit:
        line = line[: limit - 3] + "..."
    if line[:1] in ("=", "+", "-", "@", "\t", "|", "%"):
        line = "'" + line
    return line



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



@dataclass
class NotebookReport:
    student: str  # the learner's id: cleaned and unique in the batch
    notebook: str
    status: str
    detail: str
    seconds: float
    isolation: dict | None  # None: no run was started (missing or refused), so nothing to record
    cell_errors: list[str]
    rows: list[Row]
    variant: int = 0
    memory_peak_mb: float | None = None


class Batch(list):
    """The reports of one grading batch, with what was not graded and why."""

    def __init__(self, reports: Iterable[NotebookReport] = (), skipped: Sequence[str] = (),
                 collisions: Sequence[str] = ()) -> None:
        super().__init__(reports)
        self.skipped = list(skipped)
        self.collisions = list(collisions)


def isolated(reports: Iterable[NotebookReport]) -> bool:
    """True when every run that started was confined by namespaces (runs never started do not count)."""
    return all(r.isolation is None or str(r.isolation.get("method", "")).startswith("namespaces") for r in reports)


def write_csv(reports: Iterable[NotebookReport], path: str | os.PathLike) -> None:
    def write(fh) -> None:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for report in reports:
            for row in report.rows:
                writer.writerow(row.csv_values())

    atomic_write(path, write)


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



def write_json(reports: Sequence[NotebookReport], path: str | os.PathLike, limits: Any, allow_unisolated: bool = False) -> None:
    data = {
        "limits": asdict(limits),
        "unisolated_allowed": allow_unisolated,
        "isolated": isolated(reports),
        "skipped": list(getattr(reports, "skipped", [])),
        "collisions": list(getattr(reports, "collisions", [])),
        "totals": totals(reports),
        "notebooks": [
            {**{k: v for k, v in asdict(r).items() if k != "rows"}, "rows": [asdict(row) for row in r.rows]}
            for r in reports
        ],
    }
    atomic_write(path, json.dumps(data, indent=2))


def write_totals(reports: Sequence[NotebookReport], path: str | os.PathLike, fmt: str = "plain",
                 assignment: str = "Exercises") -> None:
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
            writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section",
                             f"{clean_text(assignment, 80)} ({top:g})"])
            writer.writerow(["Points Possible", "", "", "", "", f"{top:g}"])
            for learner, t in table.items():
                name = clean_text(learner, 100)
                writer.writerow([name, "", "", name, "", f"{t['score']:g}"])

    atomic_write(path, write)


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
    unique = feedback_names(list(by_student))
    for student, items in by_student.items():
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
        path = out / f"{unique[student]}.md"
        atomic_write(path, "\n".join(lines))
        written.append(path)
    return written


def feedback_names(students: Sequence[str]) -> dict[str, str]:
    """A file name per learner id, distinct even where two ids reduce to the same safe characters."""
    names: dict[str, str] = {}
    used: set[str] = set()
    for student in students:
        base = re.sub(r"[^A-Za-z0-9_.@-]", "_", student)[:100].lstrip(".") or "learner"
        name, n = base, 1
        while name.lower() in used:
            n += 1
            name = f"{base}-{n}"
        used.add(name.lower())
        names[student] = name
    return names
