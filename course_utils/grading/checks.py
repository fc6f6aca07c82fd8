"""Instant feedback inside an exercise notebook: ``check("q4_2", precision)`` prints ✓ or ✗ and a hint.

Only public checks run here (types, ranges, stated floors, agreement with scikit-learn on public
cases); the instructor's expected answers are not in this package. A check never raises: an
unanswered stub (``None``), a wrong type or a crashing function all print ✗ and let the notebook
go on, so a half-done exercise still executes top to bottom. The grader does not use this module,
so patching it in a notebook changes what the learner sees and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from course_utils.grading import questions

PASS, FAIL = "✓", "✗"


@dataclass(frozen=True)
class CheckResult:
    """What a public check concluded; ``str()`` is the line :func:`check` prints."""

    question_id: str
    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return f"{PASS if self.passed else FAIL} {self.question_id}: {self.message}"


def evaluate(question_id: str, answer: Any, **context: Any) -> CheckResult:
    """Run the public check of ``question_id`` on ``answer`` without printing.

    ``context`` passes data some checks can use for a self-consistency test, e.g.
    ``evaluate("q4_5", threshold, y_true=y_test, scores=scores)`` also checks the recall.
    An unknown id is the one mistake reported as a failed check rather than silently passed.
    """
    try:
        question = questions.get(question_id)
    except Exception as exc:
        return CheckResult(str(question_id), False, str(exc))
    if answer is None:
        return CheckResult(question.id, False, f"not answered yet ({question.variable} is still None). Hint: {question.hint}")
    try:
        problem = question.public_check(answer, context)
    except Exception as exc:  # a check must never stop the learner's notebook
        problem = f"the check could not read this answer ({type(exc).__name__}: {exc})."
    if problem:
        return CheckResult(question.id, False, f"{problem} Hint: {question.hint}")
    return CheckResult(question.id, True, "passes the public checks. The instructor's grader may test more cases.")


def check(question_id: str, answer: Any, **context: Any) -> None:
    """Print ✓ or ✗ with a hint for one answer; never raises. See :func:`evaluate`."""
    print(evaluate(question_id, answer, **context))
