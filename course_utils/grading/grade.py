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
* artefact: the model files the notebook submitted (submit_model), read by the grader's own code
  and predicting on the grader's inputs, scored with labels that never leave this process;
* manual: free text, left to a person (status ``manual``, 0 points until scored by hand).

The CSV has one row per submission and question:

    submission,question,score,max_score,status,detail

status is ok (full marks), wrong, error (the answer raised or the kernel crashed), timeout, missing (no such
notebook), refused (a symbolic link where a folder or notebook should be) or manual. Every text from a
submission is cleaned before it is written: newlines and control characters removed, at most 300 characters,
and a leading = + - @ or tab escaped with a quote so a spreadsheet shows it as text. A crash, a timeout or a
missing notebook is recorded and the batch goes on.

Examples:
  course-utils grade submissions/ --spec ~/course-private/spec.json --out report.csv
  course-utils grade submissions/ --spec SPEC --out report.csv --json report.json --feedback feedback/
  course-utils grade submissions/ --spec SPEC --out report.csv --format canvas --totals totals.csv
"""

from __future__ import annotations

from course_utils.grading.batch import DEFAULT_TIMEOUT, find_submissions, grade, learner_ids, plan_job, score_run
from course_utils.grading.channels import CHANNELS, expected_cases, function_cases, score_answer
from course_utils.grading.evaluation import EVALUATION_SETS, EvaluationCache, read_private_set
from course_utils.grading.reports import (
    CSV_COLUMNS,
    DETAIL_LIMIT,
    EXPORT_FORMATS,
    STATUSES,
    Batch,
    NotebookReport,
    Row,
    clean_text,
    totals,
    write_csv,
    write_feedback,
    write_json,
    write_totals,
)
from course_utils.grading.rules import RULES
from course_utils.grading.sandbox import namespace_command
from course_utils.grading.spec import (
    _REQUIRED,
    SPEC_FORMAT,
    check_spec_location,
    entry_for,
    keyed_seed,
    learner_seed,
    load_spec,
)

__all__ = [
    "CHANNELS", "CSV_COLUMNS", "DEFAULT_TIMEOUT", "DETAIL_LIMIT", "EVALUATION_SETS", "EXPORT_FORMATS", "RULES",
    "SPEC_FORMAT", "STATUSES", "Batch", "EvaluationCache", "NotebookReport", "Row", "_REQUIRED", "check_spec_location",
    "clean_text", "entry_for", "expected_cases", "find_submissions", "function_cases", "grade", "keyed_seed",
    "learner_ids", "learner_seed", "load_spec", "namespace_command", "plan_job", "read_private_set", "score_answer",
    "score_run", "totals", "write_csv", "write_feedback", "write_json", "write_totals",
]
