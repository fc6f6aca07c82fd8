"""Scoring rules: (value, spec entry) -> (fraction of the points, what was wrong).

Partial credit only where a constant, an identity or a random answer cannot reach it. A rule sees
plain JSON values only (what came back from the confined run) and the spec entry of the learner's
variant, completed with what the grader drew for this run (random cases, evaluation labels).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from course_utils.grading.public_checks import is_number


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
    wrong = [k for k, v in expected.items()
             if _plain_float(got.get(k)) is None or not _close(_plain_float(got[k]), float(v), entry)]
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
        detail = f"{name} {score:.4f} of the submitted model on the grader's inputs (floor {floor:g})"
        return (1.0 if score >= floor else 0.0), detail

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
