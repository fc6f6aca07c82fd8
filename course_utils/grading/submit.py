"""Hand a fitted model to the grader: ``submit_model("q7_2", fraud_model)``.

A number a notebook prints proves nothing: anyone can type ``0.93``. So the quality questions
(accuracy, F1, average precision of a model you trained) are scored from the model itself: the
exercise calls :func:`submit_model` with it, and the grader (``course-utils grade``) loads it in a
fresh, confined interpreter, asks it to predict on inputs the grader chooses, and scores those
predictions against labels that stay with the grader.

What the grader calls on the object, per question (``Question.evaluation`` in the registry):

* tabular questions: ``model.predict(X)`` (accuracy) or ``model.predict_proba(X)[:, 1]`` (ranking
  metrics) on a 2-D float array, as every scikit-learn classifier and pipeline provides;
* text questions: ``model.predict(list_of_texts)``, returning labels or an object with ``.labels``
  (``course_utils.trainer.Trainer`` does).

Outside grading (no ``COURSE_GRADER_ARTEFACTS`` in the environment) the call only checks that the
object has the method the grader needs and says so, so the notebook runs the same everywhere.
New questions reuse it: register a ``Question(..., channel="artefact", evaluation=NAME)`` and add
``NAME`` to ``course_utils.grading.grade.EVALUATION_SETS``.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

from course_utils.errors import ConfigError

ARTEFACTS_ENV = "COURSE_GRADER_ARTEFACTS"


def submit_model(question_id: str, model: Any) -> Path | None:
    """Save ``model`` for the grader (while grading) or check it can be graded (otherwise).

    Returns the file written while grading, ``None`` otherwise (``model=None``, an unanswered
    exercise, only says so). Raises :class:`ConfigError` for an unknown question or an object without
    a ``predict`` method.
    """
    from course_utils.grading import questions

    question = questions.get(question_id)
    if question.channel != "artefact":
        raise ConfigError(f"{question_id} is not answered with a model; assign {question.variable} instead.")
    if model is None:
        print(f"{question_id}: no model to submit yet (it is still None).")
        return None
    if not callable(getattr(model, "predict", None)):
        raise ConfigError(f"submit_model({question_id!r}, ...) needs a fitted model with a predict method, "
                          f"got {type(model).__name__}.")
    folder = os.environ.get(ARTEFACTS_ENV)
    if not folder:
        print(f"{question_id}: model ready for grading ({type(model).__name__}).")
        return None
    path = Path(folder) / f"{question_id}.pkl"
    tmp = path.with_suffix(".tmp")
    try:  # classes defined in the notebook itself travel by value with cloudpickle
        import cloudpickle as pickler
    except ImportError:  # pragma: no cover - plain pickle handles every library model
        pickler = pickle
    with open(tmp, "wb") as fh:
        pickler.dump(model, fh, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)  # nothing half-written for the grader to read
    print(f"{question_id}: model saved for grading ({type(model).__name__}).")
    return path


VARIANT_ENV = "COURSE_VARIANT_SEED"


def variant_seed() -> int:
    """This learner's data seed: set by the grader for each learner, 0 (the solutions' data) otherwise.

    Exercises with a numeric answer draw their data from it (``make_fraud_data(seed=variant_seed())``),
    so two learners get different expected answers and a copied number is wrong for the copier; the
    grader computes each learner's expected answer for that learner's seed. Taught in exercise 07.
    """
    raw = os.environ.get(VARIANT_ENV, "0")
    try:
        return max(0, int(raw))
    except ValueError:
        return 0


def variant_data(name: str, seed: int | None = None) -> dict:
    """Keyword arguments of an exercise's data generator for this learner's variant.

    ``variant_data("fraud")`` -> ``make_fraud_data(**kwargs)``: seed 0 (no grader) is the solutions'
    data; other seeds also change the fraud rate (1% to 3%), so the answers differ clearly between
    learners rather than by a rounding step.
    """
    seed = variant_seed() if seed is None else int(seed)
    if name == "fraud":
        return {"seed": 0} if seed == 0 else {"seed": seed, "fraud_rate": round(0.01 + 0.0025 * (seed % 9), 4)}
    raise ConfigError(f"no variant data named {name!r}; known: 'fraud'.")
