"""The public question registry: what each exercise asks, where the answer lives, how to self-check it.

One registry serves two readers. :mod:`course_utils.grading.checks` runs a question's *public* check inside
a learner's notebook (types, shapes, ranges, stated floors, agreement with scikit-learn on public
cases), which gives instant feedback without revealing an answer. :mod:`course_utils.grading.grade` reads
the same entries as its *manifest*: which variable of which notebook to collect, which inputs to
call a function answer with, and which scoring rule applies. The expected values and tolerances
of those scoring rules are the instructor's hidden spec (``grading/spec.json``), which is not part
of this package and never enters the process that runs a submission.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from course_utils.errors import ConfigError
from course_utils.labs.practice import LR_BEHAVIOURS

# --------------------------------------------------------------------------------------------
# Public constants the exercises state (floors and targets are part of the task, not secrets)
# --------------------------------------------------------------------------------------------

TREE_GRID = {
    "criterion": ["gini", "entropy"],
    "max_depth": [2, 3, 4, 5, None],
    "min_samples_split": [2, 5, 10],
}
TREE_TEST_ACCURACY_FLOOR = 0.90
TARGET_RECALL = 0.95
BERT_MACRO_F1_FLOOR = 0.70
BERT_MIN_TEST_EXAMPLES = 200
FRAUD_AP_FLOOR = 0.80
FRAUD_METRICS = ("accuracy", "average_precision")
SCENARIOS = {
    "a": "Start from a BERT pre-trained on Wikipedia and keep training all its weights on 2,000 labelled support tickets.",
    "b": "Train a new network from random weights on the same 2,000 support tickets.",
    "c": "Use a pre-trained sentiment model exactly as it is to label new tweets, with no further training.",
    "d": "Take an ImageNet-pre-trained network and update its weights on 500 labelled X-ray images.",
    "e": "Fit a logistic regression on hand-made word counts of the support tickets.",
}
DATA_SOURCES_MIN_WORDS = 2
TASK_MIN_WORDS = 6

# Inputs the grader calls function answers with. They are inputs, not answers: the expected
# outputs live in the hidden spec. Binary labels, 1 = the positive class.
_METRIC_CASES: tuple[tuple[list[int], list[int]], ...] = (
    ([1, 1, 0, 0, 1, 0, 1, 1, 0, 0], [1, 0, 0, 1, 1, 0, 1, 0, 0, 1]),
    ([0, 0, 0, 1, 1, 1, 1, 1], [0, 1, 1, 1, 1, 1, 1, 1]),
    ([1, 0, 1, 0, 1, 0], [0, 0, 0, 0, 0, 0]),  # no positive prediction: precision must be 0, not a crash
    ([1, 1, 1, 0], [1, 1, 1, 0]),
    ([0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 1, 1], [0, 1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 1]),
)
# The public cases a learner's check runs; deliberately different from the grading inputs.
_PUBLIC_METRIC_CASES: tuple[tuple[list[int], list[int]], ...] = (
    ([1, 0, 1, 1, 0, 1], [1, 1, 1, 0, 0, 1]),
    ([0, 1, 1, 0, 1, 1, 0, 0], [0, 1, 0, 0, 1, 1, 1, 0]),
    ([1, 1, 0, 0], [0, 0, 0, 0]),
)


# --------------------------------------------------------------------------------------------
# The question type
# --------------------------------------------------------------------------------------------

PublicCheck = Callable[[Any, Mapping[str, Any]], "str | None"]


@dataclass(frozen=True)
class Question:
    """One gradable answer of one exercise notebook.

    ``variable`` is the name the exercise assigns; the grader evaluates exactly that name in the
    submission's kernel. With ``call_cases`` the answer is a function, and the grader collects
    ``variable(*case)`` for each case instead of the function itself (functions do not travel as
    JSON). ``kind`` names the scoring rule in :mod:`course_utils.grading.grade`; its parameters
    (expected value, tolerance, ...) come from the hidden spec. ``public_check`` returns ``None``
    when the answer passes the public checks and otherwise one sentence saying what is wrong.
    """

    id: str
    notebook: str
    variable: str
    prompt: str
    hint: str
    kind: str
    public_check: PublicCheck
    points: float = 1.0
    call_cases: tuple[tuple[Any, ...], ...] = field(default_factory=tuple)

    @property
    def lesson(self) -> int:
        return int(self.notebook[:2])


# --------------------------------------------------------------------------------------------
# Building blocks of public checks (each returns None or what is wrong)
# --------------------------------------------------------------------------------------------


def is_number(value: Any) -> bool:
    """A real, finite number; bools are excluded because ``True == 1`` would hide a wrong answer."""
    if isinstance(value, bool) or value is None:
        return False
    try:
        return math.isfinite(float(value)) and not isinstance(value, (str, bytes))
    except (TypeError, ValueError):
        return False


def _number(low: float | None = None, high: float | None = None, integer: bool = False) -> PublicCheck:
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


def _at_least(floor: float, high: float | None = None, what: str = "the score") -> PublicCheck:
    inner = _number(0.0, high)

    def check(value, context):
        problem = inner(value, context)
        if problem:
            return problem
        if float(value) < floor:
            return f"{what} is {float(value):.4f}; the exercise asks for at least {floor}."
        return None

    return check


def _choice(options: Sequence[Any]) -> PublicCheck:
    def check(value, _context):
        if isinstance(value, str):
            value = value.strip().lower()
        if value not in [o.lower() if isinstance(o, str) else o for o in options] or isinstance(value, bool):
            return f"{value!r} is not one of the allowed answers {list(options)}."
        return None

    return check


def _boolean(value, _context):
    return None if isinstance(value, bool) else f"expected True or False, got {type(value).__name__} {value!r:.40}."


def _letters(options: Sequence[str]) -> PublicCheck:
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


def _number_map(keys: Sequence[float], low: float = 0.0) -> PublicCheck:
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


def _named_numbers(names: Sequence[str], low: float = 0.0, high: float = 1.0) -> PublicCheck:
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


def _grid_params(grid: Mapping[str, Sequence[Any]]) -> PublicCheck:
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


def _metric_function(sklearn_name: str) -> PublicCheck:
    """Compare a learner's binary metric with scikit-learn's on the public cases."""

    def check(value, _context):
        if not callable(value):
            return f"expected a function f(y_true, y_pred), got {type(value).__name__}."
        import sklearn.metrics as skm

        reference = getattr(skm, sklearn_name)
        for y_true, y_pred in _PUBLIC_METRIC_CASES:
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


def _threshold(target_recall: float) -> PublicCheck:
    """Range check, plus recall on the learner's own data when ``y_true=`` and ``scores=`` are given."""
    inner = _number(0.0, 1.0)

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
                return "threshold 0 flags every patient: recall is perfect and useless. Find the highest threshold that still reaches the recall."
        return None

    return check


def _fewer_than_total(value, context):
    """A positive whole number; with ``n_total=`` also smaller than the whole model."""
    problem = _number(1, None, integer=True)(value, context)
    if problem is None and "n_total" in context and int(value) >= int(context["n_total"]):
        return f"{int(value):,} is not fewer than the model's {int(context['n_total']):,} parameters: is the body really frozen?"
    return problem


def _dataset_plan(value, _context):
    """The structure of the dataset-selection answer, which is also all the grader can score."""
    if not isinstance(value, Mapping):
        return 'expected a dict {"task": ..., "data": [{"type": ..., "source": ...}, ...]}.'
    task = value.get("task")
    if not isinstance(task, str) or len(task.split()) < TASK_MIN_WORDS:
        return f'"task" should be a sentence of at least {TASK_MIN_WORDS} words describing the task.'
    data = value.get("data")
    if not isinstance(data, Sequence) or isinstance(data, str) or len(data) != 3:
        return '"data" should be a list of exactly three entries.'
    types = []
    for i, entry in enumerate(data, 1):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("type"), str) or not isinstance(entry.get("source"), str):
            return f'entry {i} of "data" needs a "type" and a "source", both strings.'
        if not entry["type"].strip():
            return f'entry {i} has an empty "type".'
        if len(entry["source"].split()) < DATA_SOURCES_MIN_WORDS:
            return f'entry {i}: say where the data comes from in at least {DATA_SOURCES_MIN_WORDS} words.'
        types.append(entry["type"].strip().lower())
    if len(set(types)) != 3:
        return f"the three data types must be different, got {types}."
    return None


# --------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------

QUESTIONS: tuple[Question, ...] = (
    # 01 -- what fine-tuning is
    Question("q1_1", "01_what_is_fine_tuning", "frozen_trainable_params",
             "How many parameters stay trainable after freezing the pre-trained body and adding a new 5-class head?",
             "Only the new head should have requires_grad=True: sum p.numel() over those parameters.",
             "number", _fewer_than_total),
    Question("q1_2", "01_what_is_fine_tuning", "new_task_accuracy",
             "New-task test accuracy with 5 labels per digit: from scratch vs fine-tuned.",
             "Run compare_strategies on make_digit_tasks(labels_per_class=5) and read run.final('new_task_acc').",
             "number_map", _named_numbers(["from scratch", "fine-tune (small lr)"])),
    Question("q1_3", "01_what_is_fine_tuning", "fine_tuning_helped",
             "Did starting from the pre-trained body beat training from scratch?",
             "Compare the two accuracies you just measured.", "exact", _boolean),
    Question("q1_4", "01_what_is_fine_tuning", "fine_tuning_scenarios",
             "Which scenarios are fine-tuning?",
             "Fine-tuning starts from pre-trained weights AND trains them further on the new task's data.",
             "set", _letters(sorted(SCENARIOS))),
    # 02 -- selecting and cleaning a dataset
    Question("q2_1", "02_selecting_custom_datasets", "dataset_plan",
             "Describe a task and three distinct types of data to collect for it, with where each comes from.",
             'Shape: {"task": "...", "data": [{"type": "...", "source": "..."}, x3]}.',
             "dataset_plan", _dataset_plan, points=2.0),
    Question("q2_2", "02_selecting_custom_datasets", "n_duplicates_removed",
             "How many tweets does de-duplication remove after fixing mojibake and normalising URLs/handles?",
             "clean_tweets returns one StepReport per step; read rows_removed of the drop_duplicates step.",
             "number", _number(0, 38_158, integer=True)),
    Question("q2_3", "02_selecting_custom_datasets", "n_leaked_pairs_raw",
             "How many texts does check_leakage find in more than one split if you split the raw, uncleaned corpus?",
             "split_dataset(raw, seed=42), then check_leakage(splits).n_pairs.",
             "number", _number(0, None, integer=True)),
    # 03 -- hyperparameters
    Question("q3_1", "03_hyperparameter_tuning", "final_losses",
             "Final training loss after 15 epochs with learning rate 0.01 and with 0.1.",
             "lr_experiment(lr) returns the loss per epoch; the final loss is its last value: {0.01: ..., 0.1: ...}.",
             "number_map", _number_map([0.01, 0.1])),
    Question("q3_2", "03_hyperparameter_tuning", "high_lr_behaviour",
             "What did the loss do with learning rate 0.1?",
             f"Plot or print both loss curves epoch by epoch; choose one of {list(LR_BEHAVIOURS)}.",
             "exact", _choice(LR_BEHAVIOURS)),
    Question("q3_3", "03_hyperparameter_tuning", "best_params",
             "best_params_ of GridSearchCV over the decision tree grid with cv=5.",
             "GridSearchCV(DecisionTreeClassifier(random_state=0), TREE_GRID, cv=5).fit(X_train, y_train).best_params_",
             "params", _grid_params(TREE_GRID), points=2.0),
    Question("q3_4", "03_hyperparameter_tuning", "tree_test_accuracy",
             f"Test accuracy of the best tree (at least {TREE_TEST_ACCURACY_FLOOR}).",
             "Score search.best_estimator_ on the held-out X_test, y_test (never on the training data).",
             "at_least", _at_least(TREE_TEST_ACCURACY_FLOOR, 1.0, "test accuracy")),
    # 04 -- metrics
    Question("q4_1", "04_evaluation_metrics", "accuracy_80",
             "Accuracy of a classifier with 80 correct predictions out of 100.",
             "accuracy = correct / total; compute it from y_true_100 and y_pred_100 with your own function.",
             "number", _number(0.0, 1.0)),
    Question("q4_2", "04_evaluation_metrics", "precision",
             "precision(y_true, y_pred) from scratch (positive class 1; 0 when nothing is predicted positive).",
             "precision = TP / (TP + FP); guard the division when TP + FP == 0.",
             "cases", _metric_function("precision_score"), call_cases=_METRIC_CASES),
    Question("q4_3", "04_evaluation_metrics", "recall",
             "recall(y_true, y_pred) from scratch.",
             "recall = TP / (TP + FN).", "cases", _metric_function("recall_score"), call_cases=_METRIC_CASES),
    Question("q4_4", "04_evaluation_metrics", "f1",
             "f1(y_true, y_pred) from scratch.",
             "F1 = 2PR / (P + R), and 0 when P + R == 0; reuse your precision and recall.",
             "cases", _metric_function("f1_score"), call_cases=_METRIC_CASES),
    Question("q4_5", "04_evaluation_metrics", "threshold",
             f"The highest decision threshold that reaches recall >= {TARGET_RECALL} for malignant tumours on the test set.",
             "Sort the thresholds from high to low and keep the first whose recall reaches the target "
             "(course_utils.metrics.threshold_for_recall does exactly this). Pass y_true= and scores= to check it.",
             "threshold", _threshold(TARGET_RECALL), points=2.0),
    # 05 -- BERT
    Question("q5_1", "05_fine_tuning_bert", "test_macro_f1",
             f"Macro-F1 of the fine-tuned offline BERT on the held-out tweets (at least {BERT_MACRO_F1_FLOOR}).",
             "Trainer(TrainConfig(epochs=2, max_length=64, batch_size=32, learning_rate=...)).fit(train_df, val_df), "
             "then .evaluate(test_df)['macro_f1']. If it is low, try a learning rate between 5e-5 and 2e-4.",
             "at_least", _at_least(BERT_MACRO_F1_FLOOR, 1.0, "macro-F1"), points=2.0),
    Question("q5_2", "05_fine_tuning_bert", "n_test_examples",
             f"How many tweets the test score is measured on (at least {BERT_MIN_TEST_EXAMPLES}).",
             "A score on two examples is an anecdote: report len(test_df) of the held-out set you evaluated.",
             "at_least", _at_least(BERT_MIN_TEST_EXAMPLES, None, "the test set size")),
    # 06 -- overfitting
    Question("q6_1", "06_overfitting_and_best_practices", "best_epoch",
             "The epoch (counted from 1) with the lowest validation loss: where early stopping should keep the weights.",
             "1 + the index of the smallest value in history.val_loss.", "number", _number(1, 60, integer=True)),
    Question("q6_2", "06_overfitting_and_best_practices", "best_val_loss",
             "The validation loss at that epoch.",
             "history.val_loss[best_epoch - 1].", "number", _number(0.0, None)),
    Question("q6_3", "06_overfitting_and_best_practices", "cv_mean_accuracy",
             "Mean 5-fold cross-validated accuracy of DecisionTreeClassifier(random_state=0) on the wine data.",
             "cross_val_score(model, X, y, cv=5).mean()", "number", _number(0.0, 1.0)),
    # 07 -- real-world applications
    Question("q7_1", "07_real_world_applications", "majority_accuracy",
             "Test accuracy of a 'model' that calls every transaction legitimate.",
             "It predicts 0 everywhere: the accuracy is the share of legitimate transactions in y_test.",
             "number", _number(0.0, 1.0)),
    Question("q7_2", "07_real_world_applications", "fraud_average_precision",
             f"Average precision of the logistic regression on the fraud test set (at least {FRAUD_AP_FLOOR}).",
             "average_precision_score(y_test, model.predict_proba(X_test)[:, 1]) -- scores, not hard labels.",
             "at_least", _at_least(FRAUD_AP_FLOOR, 1.0, "average precision")),
    Question("q7_3", "07_real_world_applications", "fraud_metric",
             "Which metric should decide between fraud models?",
             f"One of {list(FRAUD_METRICS)}: which one did the do-nothing model score well on?",
             "exact", _choice(FRAUD_METRICS)),
)

_BY_ID = {q.id: q for q in QUESTIONS}
if len(_BY_ID) != len(QUESTIONS):  # pragma: no cover - a registry typo should fail at import
    raise RuntimeError("duplicate question ids in the registry")


def get(question_id: str) -> Question:
    """The question with this id, or a :class:`ConfigError` listing the valid ones."""
    try:
        return _BY_ID[question_id]
    except KeyError:
        raise ConfigError(f"unknown question {question_id!r}; known ids: {', '.join(_BY_ID)}.") from None


def notebooks() -> list[str]:
    """Exercise notebook names (``NN_topic``) that have questions, in lesson order."""
    return sorted({q.notebook for q in QUESTIONS})


def for_notebook(notebook: str) -> list[Question]:
    """The questions of one exercise notebook, in registry order."""
    found = [q for q in QUESTIONS if q.notebook == notebook]
    if not found:
        raise ConfigError(f"no questions for notebook {notebook!r}; known notebooks: {', '.join(notebooks())}.")
    return found


def manifest() -> list[dict]:
    """The public manifest as plain data: what the grader collects from each notebook."""
    return [
        {"id": q.id, "notebook": q.notebook, "variable": q.variable, "kind": q.kind, "points": q.points,
         "call_cases": [list(c) for c in q.call_cases], "prompt": q.prompt}
        for q in QUESTIONS
    ]
