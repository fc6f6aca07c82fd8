"""Learner feedback: public checks print ✓/✗ with a hint, never raise, and never need the hidden spec."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score

from course_utils.grading import questions
from course_utils.grading.checks import check, evaluate
from course_utils.grading.grade import RULES

ROOT = Path(__file__).resolve().parents[1]


def _precision(t, p):
    t, p = np.asarray(t), np.asarray(p)
    tp, fp = int(((p == 1) & (t == 1)).sum()), int(((p == 1) & (t == 0)).sum())
    return tp / (tp + fp) if tp + fp else 0.0


GOOD_PLAN = {
    "task": "Route each customer email of a web shop to the right support team.",
    "data": [
        {"type": "past tickets", "source": "helpdesk export of closed tickets"},
        {"type": "chat logs", "source": "live chat tool logs"},
        {"type": "order metadata", "source": "the order database"},
    ],
}


@pytest.mark.parametrize("question", questions.QUESTIONS, ids=lambda q: q.id)
def test_unanswered_stub_fails_with_a_hint_and_never_raises(question, capsys):
    result = evaluate(question.id, None)
    assert not result.passed
    assert "not answered" in result.message and question.hint in result.message
    check(question.id, None)  # must not raise
    assert capsys.readouterr().out.startswith(f"✗ {question.id}:")


@pytest.mark.parametrize("question", questions.QUESTIONS, ids=lambda q: q.id)
def test_wrong_types_fail_without_raising(question):
    for junk in ("text", object(), [1, 2], {"a": 1}, float("nan"), True):
        if junk is True and question.id == "q1_3":  # a yes/no question: True is a valid answer
            continue
        assert not evaluate(question.id, junk).passed, (question.id, junk)


def test_check_prints_a_tick_for_a_passing_answer(capsys):
    check("q4_1", 0.8)
    assert capsys.readouterr().out.startswith("✓ q4_1:")


def test_unknown_question_is_a_failed_check_not_an_exception():
    result = evaluate("q9_9", 1)
    assert not result.passed and "unknown question" in result.message


@pytest.mark.parametrize("qid, reference", [("q4_2", precision_score), ("q4_3", recall_score), ("q4_4", f1_score)])
def test_metric_functions_are_compared_with_scikit_learn(qid, reference):
    assert evaluate(qid, lambda t, p: reference(t, p, zero_division=0)).passed
    wrong = evaluate(qid, lambda t, p: float(np.mean(np.asarray(t) == np.asarray(p))))  # accuracy, not the metric
    assert not wrong.passed and "scikit-learn" in wrong.message


def test_a_crashing_function_is_reported_not_raised():
    def naive_precision(t, p):  # no guard: divides by zero when nothing is predicted positive
        t, p = np.asarray(t), np.asarray(p)
        return int(((p == 1) & (t == 1)).sum()) / int((p == 1).sum())

    result = evaluate("q4_2", naive_precision)
    assert not result.passed and "ZeroDivisionError" in result.message
    assert evaluate("q4_2", _precision).passed


def test_threshold_check_uses_the_learners_data_for_recall():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    s = np.array([0.9, 0.8, 0.7, 0.2, 0.6, 0.3, 0.1, 0.05])
    assert evaluate("q4_5", 0.2, y_true=y, scores=s).passed  # recall 1.0
    too_high = evaluate("q4_5", 0.75, y_true=y, scores=s)
    assert not too_high.passed and "recall" in too_high.message
    assert not evaluate("q4_5", 0.0, y_true=y, scores=s).passed  # flags everyone
    assert evaluate("q4_5", 0.5).passed  # without data only the range is checked
    assert not evaluate("q4_5", 1.5).passed


def test_dataset_plan_structure():
    assert evaluate("q2_1", GOOD_PLAN).passed
    same_types = {**GOOD_PLAN, "data": [dict(GOOD_PLAN["data"][0]) for _ in range(3)]}
    assert "different" in evaluate("q2_1", same_types).message
    no_source = {**GOOD_PLAN, "data": GOOD_PLAN["data"][:2] + [{"type": "reviews", "source": ""}]}
    assert not evaluate("q2_1", no_source).passed
    assert not evaluate("q2_1", {**GOOD_PLAN, "task": "sentiment"}).passed
    assert not evaluate("q2_1", {**GOOD_PLAN, "data": GOOD_PLAN["data"][:2]}).passed


def test_grid_parameters_must_come_from_the_grid():
    assert evaluate("q3_3", {"criterion": "gini", "max_depth": 10, "min_samples_split": 2}).passed
    assert evaluate("q3_3", {"criterion": "entropy", "max_depth": None, "min_samples_split": 5}).passed
    assert not evaluate("q3_3", {"criterion": "gini", "max_depth": 10}).passed
    assert "not in the grid" in evaluate("q3_3", {"criterion": "gini", "max_depth": 7, "min_samples_split": 2}).message


def test_floors_choices_and_maps():
    assert evaluate("q3_4", 0.95).passed
    low = evaluate("q3_4", 0.5)
    assert not low.passed and str(questions.TREE_TEST_ACCURACY_FLOOR) in low.message
    assert evaluate("q3_2", "Overshot and oscillated ").passed
    assert not evaluate("q3_2", "exploded").passed
    assert evaluate("q3_1", {0.01: 0.01, "0.1": 0.2}).passed
    assert "missing" in evaluate("q3_1", {0.01: 0.01}).message
    assert evaluate("q1_4", {"a", "d"}).passed and not evaluate("q1_4", {"z"}).passed
    assert evaluate("q1_3", False).passed and not evaluate("q1_3", 1).passed
    assert evaluate("q1_1", 100, n_total=1000).passed
    assert "frozen" in evaluate("q1_1", 1000, n_total=1000).message


def test_registry_is_consistent_with_notebooks_and_scoring_rules():
    ids = [q.id for q in questions.QUESTIONS]
    assert len(ids) == len(set(ids))
    for q in questions.QUESTIONS:
        assert q.kind in RULES or q.channel == "manual", q.id
        assert q.channel in ("value", "function", "artefact", "manual"), q.id
        assert (q.channel == "artefact") == bool(q.evaluation), q.id
        assert q.variable.isidentifier(), q.id
        assert (ROOT / "solutions" / f"{q.notebook}.ipynb").is_file(), q.notebook
        assert (ROOT / "exercises" / f"{q.notebook}.ipynb").is_file(), q.notebook
        assert q.id.startswith(f"q{q.lesson}_")
    json.dumps(questions.manifest())  # the public manifest is plain data


def test_learner_side_never_loads_the_grader_or_its_spec():
    code = ("import sys, course_utils.grading.checks as c; c.check('q4_1', None); "
            "print('course_utils.grading.grade' in sys.modules, 'course_utils.grading.sandbox' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("False False")


def test_the_answer_only_loss_check_names_the_shift_and_the_mask():
    import torch

    def answer_loss(logits, labels):
        logits, labels = torch.tensor(logits), torch.tensor(labels)
        return torch.nn.functional.cross_entropy(logits[:-1], labels[1:], ignore_index=-100)

    assert evaluate("q9_5", answer_loss).passed  # a 0-d tensor is accepted as a number

    def unshifted(logits, labels):
        return torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(labels), ignore_index=-100).item()

    result = evaluate("q9_5", unshifted)
    assert not result.passed and "shift" in result.message
    assert not evaluate("q9_5", 2.5).passed
