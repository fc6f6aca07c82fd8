"""Hand a fitted model to the grader: ``submit_model("q7_2", fraud_model)``.

A number a notebook prints proves nothing: anyone can type ``0.93``. So the quality questions
(accuracy, F1, average precision of a model you trained) are scored from the model itself: the
exercise calls :func:`submit_model`, which writes the model as **data files** (a skops file for
scikit-learn, safetensors for transformers, a peft adapter for LoRA; see
:mod:`course_utils.grading.artefacts`). The grader (``course-utils grade``) reads those files with
its own code in a confined process, predicts on inputs it chooses and scores the predictions against
labels that stay with the grader. No object of the learner's is ever unpickled or called.

Outside grading (no ``COURSE_GRADER_ARTEFACTS`` in the environment) the call writes the same files
to a temporary folder and removes them, so a model the grader would refuse is refused in the
learner's own notebook, with the reason. New questions reuse it: register a
``Question(..., channel="artefact", evaluation=NAME)`` and add ``NAME`` to
:data:`course_utils.grading.evaluation.EVALUATION_SETS`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from course_utils.errors import ConfigError
from course_utils.files import atomic_directory
from course_utils.grading import questions
from course_utils.grading.artefacts import save_model
from course_utils.grading.variants import VARIANT_ENV, variant_data, variant_seed

ARTEFACTS_ENV = "COURSE_GRADER_ARTEFACTS"
__all__ = ["ARTEFACTS_ENV", "VARIANT_ENV", "submit_model", "variant_data", "variant_seed"]


def submit_model(question_id: str, model: Any) -> Path | None:
    """Save ``model`` for the grader (while grading) or check it can be graded (otherwise).

    Returns the folder written while grading, ``None`` otherwise (``model=None``, an unanswered
    exercise, only says so). Raises :class:`ConfigError` for an unknown question or a model the grader
    would not load.
    """
    question = questions.get(question_id)
    if question.channel != "artefact":
        raise ConfigError(f"{question_id} is not answered with a model; assign {question.variable} instead.")
    if model is None:
        print(f"{question_id}: no model to submit yet (it is still None).")
        return None
    folder = os.environ.get(ARTEFACTS_ENV)
    if not folder:
        with tempfile.TemporaryDirectory(prefix="submit-check-") as tmp:
            fmt = save_model(model, Path(tmp))
        print(f"{question_id}: model ready for grading ({type(model).__name__}, saved as {fmt} files).")
        return None
    formats: list[str] = []
    path = atomic_directory(Path(folder) / question_id, lambda staging: formats.append(save_model(model, staging)))
    print(f"{question_id}: model saved for grading ({type(model).__name__}, {formats[0]} files).")
    return path
