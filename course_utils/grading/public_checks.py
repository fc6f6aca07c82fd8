"""The building blocks of the exercises' public checks: each returns ``None`` or one sentence saying what is wrong.

A question in :mod:`course_utils.grading.questions` names one of these as its ``public_check``. They check
types, ranges, stated floors and agreement with a reference on *public* cases, never an expected answer
(that lives only in the instructor's spec), so running them in a learner's notebook reveals nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

PublicCheck = Callable[[Any, Mapping[str, Any]], "str | None"]

# The public cases a learner's check runs; deliberately different from the grading inputs.
PUBLIC_METRIC_CASES: tuple[tuple[list[int], list[int]], ...] = (
    ([1, 0, 1, 1, 0, 1], [1, 1, 1, 0, 0, 1]),
    ([0, 1, 1, 0, 1, 1, 0, 0], [0, 1, 0, 0, 1, 1, 1, 0]),
    ([1, 1, 0, 0], [0, 0, 0, 0]),
)





def is_number(value: Any) -> bool:
    """A real, finite number; bools are excluded because ``True == 1`` would hide a wrong answer."""
    if isinstance(value, bool) or value is None:
        return False
    try:
        return math.isfinite(float(value)) and not isinstance(value, (str, bytes))
    except (TypeError, ValueError):
        return False


def number(low: float | None = None, high: float | None = None, integer: bool = False) -> PublicCheck:
    def check(value, _context):
        if not is_number(value):
            return f"expected a number, got {type(value).__name__} {value!r:.60}."
        if integer and float(value) != int(float(value)):
            return f"expected a whole number, got {value!r}."
        if low is not None and float(value) < low:
            return f"{value!r} is below {low}, which cannot be right here."
        if high is not None and float(value) > high:
            return f"{value!r} is above {high}, which cannot be right here."
        return None

    return check


def at_least(floor: float, high: float | None = None, what: str = "the score") -> PublicCheck:
    inner = number(0.0, high)

    def check(value, context):
        problem = inner(value, context)
        if problem:
            return problem
        if float(value) < floor:
            return f"{what} is {float(value):.4f}; the exercise asks for at least {floor}."
        return None

    return check


def choice(options: Sequence[Any]) -> PublicCheck:
    def check(value, _context):
        if isinstance(value, str):
            value = value.strip().lower()
        if value not in [o.lower() if isinstance(o, str) else o for o in options] or isinstance(value, bool):
            return f"{value!r} is not one of the allowed answers {list(options)}."
        return None

    return check


def boolean(value, _context):
    return None if isinstance(value, bool) else f"expected True or False, got {type(value).__name__} {value!r:.40}."


def letters(options: Sequence[str]) -> PublicCheck:
    def check(value, _context):
        if isinstance(value, str) or not isinstance(value, (set, frozenset, list, tuple)):
            return "expected a set of letters such as {'a', 'b'}."
        letters = [str(v).strip().lower() for v in value]
        unknown = sorted(set(letters) - set(options))
        if unknown:
            return f"{unknown} are not scenario letters; choose from {sorted(options)}."
        if not letters:
            return "the set is empty: at least one scenario is fine-tuning."
        return None

    return check


def number_map(keys: Sequence[float], low: float = 0.0) -> PublicCheck:
    def check(value, _context):
        if not isinstance(value, Mapping):
            return "expected a dict {learning_rate: final_loss}."
        found = {}
        for k, v in value.items():
            try:
                found[float(k)] = v
            except (TypeError, ValueError):
                return f"key {k!r} is not a learning rate."
        missing = [k for k in keys if k not in found]
        if missing:
            return f"missing learning rate(s) {missing}; the dict needs exactly {list(keys)}."
        for k in keys:
            if not is_number(found[k]) or float(found[k]) < low:
                return f"the value for {k} should be a final training loss (a non-negative number), got {found[k]!r:.40}."
        return None

    return check


def named_numbers(names: Sequence[str], low: float = 0.0, high: float = 1.0) -> PublicCheck:
    def check(value, _context):
        if not isinstance(value, Mapping):
            return f"expected a dict with keys {list(names)}."
        missing = [n for n in names if n not in value]
        if missing:
            return f"missing key(s) {missing}."
        for n in names:
            if not is_number(value[n]) or not low <= float(value[n]) <= high:
                return f"{n!r} should be a number between {low} and {high}, got {value[n]!r:.40}."
        return None

    return check


def grid_params(grid: Mapping[str, Sequence[Any]]) -> PublicCheck:
    def check(value, _context):
        if not isinstance(value, Mapping):
            return "expected a dict such as search.best_params_."
        if set(value) != set(grid):
            return f"keys are {sorted(value)}; expected exactly {sorted(grid)} (use search.best_params_)."
        for name, options in grid.items():
            if value[name] not in options:
                return f"{name}={value[name]!r} is not in the grid {options}."
        return None

    return check


def metric_function(sklearn_name: str) -> PublicCheck:
    """Compare a learner's binary metric with scikit-learn's on the public cases."""

    def check(value, _context):
        if not callable(value):
            return f"expected a function f(y_true, y_pred), got {type(value).__name__}."
        import sklearn.metrics as skm

        reference = getattr(skm, sklearn_name)
        for y_true, y_pred in PUBLIC_METRIC_CASES:
            expected = float(reference(y_true, y_pred, zero_division=0))
            try:
                got = value(list(y_true), list(y_pred))
            except Exception as exc:  # the learner's code: report, never crash the notebook
                return f"calling it on y_true={y_true}, y_pred={y_pred} raised {type(exc).__name__}: {exc}."
            if not is_number(got):
                return f"on y_true={y_true}, y_pred={y_pred} it returned {got!r:.40}, not a number."
            if abs(float(got) - expected) > 1e-9:
                return (f"on y_true={y_true}, y_pred={y_pred} it returned {float(got):.4f}; "
                        f"scikit-learn's {sklearn_name} gives {expected:.4f}.")
        return None

    return check


# Public cases for q9_5: (logits, labels) of three short sequences; the grader draws its own per run.
PUBLIC_LOSS_CASES: tuple[tuple[list[list[float]], list[int]], ...] = (
    ([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5], [0.2, 0.3, 0.1], [-1.0, 2.0, 0.0]], [-100, -100, 2, 1]),
    ([[2.0, 0.0, 0.0, 1.0], [0.0, 1.5, -2.0, 0.5], [1.0, 1.0, 1.0, 1.0], [0.0, -1.0, 3.0, 0.0], [0.5, 0.5, 0.0, 2.0]],
     [-100, -100, -100, 3, 0]),
    ([[1.0, 2.0], [3.0, -1.0], [0.0, 0.0]], [-100, 1, 0]),
)


def loss_function(value, _context):
    """Compare a learner's answer-only loss with the reference on the public cases, naming the usual slips."""
    from course_utils.grading.references import answer_only_loss

    if not callable(value):
        return f"expected a function f(logits, labels), got {type(value).__name__}."
    for logits, labels in PUBLIC_LOSS_CASES:
        expected = answer_only_loss(logits, labels)
        try:
            got = value([list(r) for r in logits], list(labels))
        except Exception as exc:  # the learner's code: report, never crash the notebook
            return f"calling it on the public case with labels={labels} raised {type(exc).__name__}: {exc}."
        if hasattr(got, "item") and getattr(got, "shape", None) == ():
            got = got.item()
        if not is_number(got):
            return f"on labels={labels} it returned {got!r:.40}, not a number."
        if abs(float(got) - expected) > 1e-4:
            return (f"on labels={labels} it returned {float(got):.4f}; the answer-only loss is {expected:.4f}. "
                    "Did you shift (logits[:-1] predict labels[1:]) and average over the unmasked positions only?")
    return None


def floor_on_default_data(floor: float, high: float | None, what: str) -> PublicCheck:
    """The stated floor on the solutions' data; on a grader's variant only the range (the floor is per variant)."""
    strict, loose = at_least(floor, high, what), number(0.0, high)

    def check(value, context):
        from course_utils.grading.variants import variant_seed

        return strict(value, context) if variant_seed() == 0 else loose(value, context)

    return check


def threshold(target_recall: float) -> PublicCheck:
    """Range check, plus recall on the learner's own data when ``y_true=`` and ``scores=`` are given."""
    inner = number(0.0, 1.0)

    def check(value, context):
        problem = inner(value, context)
        if problem:
            return problem
        if "y_true" in context and "scores" in context:
            from course_utils.metrics import metrics_at_threshold

            m = metrics_at_threshold(context["y_true"], context["scores"], float(value))
            if m["recall"] < target_recall:
                return f"at threshold {float(value):.4f} recall is {m['recall']:.3f}; the task needs at least {target_recall}."
            if float(value) <= 0.0:
                return ("threshold 0 flags every patient: recall is perfect and useless. "
                        "Find the highest threshold that still reaches the recall.")
        return None

    return check


def fewer_than_total(value, context):
    """A positive whole number; with ``n_total=`` also smaller than the whole model."""
    problem = number(1, None, integer=True)(value, context)
    if problem is None and "n_total" in context and int(value) >= int(context["n_total"]):
        return f"{int(value):,} is not fewer than the model's {int(context['n_total']):,} parameters: is the body really frozen?"
    return problem
