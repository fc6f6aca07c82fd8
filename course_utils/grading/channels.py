"""How the grader obtains and scores each kind of answer: one class per question channel.

* :class:`ValueChannel`: the variable's value, read from the kernel after the notebook ran;
* :class:`FunctionChannel`: the function's source, called in a fresh interpreter on random cases;
* :class:`ArtefactChannel`: the submitted model's files, read by the grader's code, predicting on an
  evaluation set (:mod:`course_utils.grading.evaluation`), checked for what the question demands
  (a decision tree fitted on the training split, a LoRA adapter training at most a share of the weights);
* :class:`ManualChannel`: free text, left to a person.

Each channel ``plan``\\ s its part of the sandbox :class:`~course_utils.grading.sandbox.Job` and
``score``\\ s what came back with the rule the question names (:mod:`course_utils.grading.rules`).
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from typing import Any

from course_utils.errors import ConfigError
from course_utils.grading.evaluation import EvaluationCache
from course_utils.grading.public_checks import is_number
from course_utils.grading.questions import Question
from course_utils.grading.references import answer_only_loss
from course_utils.grading.rules import RULES
from course_utils.grading.sandbox import Job

Score = tuple[float, str, str]  # points, status, detail


def function_cases(rng: random.Random, n: int = 12, reference: str = "precision_score") -> list[list]:
    """The random cases one run calls a function answer on: binary ``(y_true, y_pred)`` pairs for the
    metric questions, ``(logits, labels)`` sequences for the answer-only loss (:func:`answer_only_loss`)."""
    if reference == "answer_only_loss":
        return _loss_cases(rng, n)
    cases = []
    for i in range(n):
        size = rng.randint(5, 40)
        y_true = [rng.randint(0, 1) for _ in range(size)]
        y_pred = [0] * size if i == 0 else [rng.randint(0, 1) for _ in range(size)]
        y_true[rng.randrange(size)] = 1  # at least one positive, so recall is defined
        cases.append([y_true, y_pred])
    return cases


def _loss_cases(rng: random.Random, n: int) -> list[list]:
    """One sequence per case: logits (positions x vocabulary) and labels whose first ``k`` are -100.

    Sizes, the masked prefix and the vocabulary vary per case, so neither a fixed shift nor a
    constant can match; the last case leaves exactly one answer token in the loss."""
    cases = []
    for i in range(n):
        length, vocab = rng.randint(4, 12), rng.randint(3, 9)
        masked = length - 2 if i == n - 1 else rng.randint(1, length - 2)
        logits = [[round(rng.gauss(0.0, 2.0), 4) for _ in range(vocab)] for _ in range(length)]
        labels = [-100] * masked + [rng.randrange(vocab) for _ in range(length - masked)]
        cases.append([logits, labels])
    return cases


def expected_cases(reference: str, cases: Sequence) -> list[float]:
    if reference == "answer_only_loss":
        return [answer_only_loss(logits, labels) for logits, labels in cases]
    import sklearn.metrics as skm

    fn = getattr(skm, reference, None)
    if fn is None:
        raise ConfigError(f"the spec names an unknown reference {reference!r} for a function question; "
                          "regenerate it with `python grading/build_spec.py --out DIR`.")
    return [float(fn(t, p, zero_division=0)) for t, p in cases]


class Channel:
    """Plans what the sandbox collects for a question and scores what came back."""

    def plan(self, question: Question, entry: dict, job: Job, rng: random.Random, evaluations: EvaluationCache,
             seed: int) -> None:
        job.values[question.id] = question.variable

    def check(self, question: Question, collected: Mapping, entry: Mapping) -> Score | None:
        """A channel's own refusal before the rule runs, or None."""
        return None

    def score(self, question: Question, collected: Mapping | None, entry: Mapping, run_status: str = "ok") -> Score:
        points = float(entry.get("points", question.points))
        if not isinstance(collected, Mapping) or not collected.get("ok"):
            error = str(collected.get("error", "no value came back")) if isinstance(collected, Mapping) else "no value came back"
            if run_status == "timeout" or (isinstance(collected, Mapping) and collected.get("timeout")):
                return 0.0, "timeout", f"not available: the notebook ran out of time ({error})"
            return 0.0, "error", error
        value = collected.get("value")
        if value is None:
            return 0.0, "wrong", f"not answered ({question.variable} is None)"
        if isinstance(value, dict) and "__unsupported__" in value:
            return 0.0, "wrong", f"{question.variable} is a {value['__unsupported__']}, which cannot be graded"
        refused = self.check(question, collected, entry)
        if refused is not None:
            return refused
        try:
            fraction, detail = RULES[question.kind](value, entry)
        except Exception as exc:  # noqa: BLE001 - a malformed answer must not stop the batch
            return 0.0, "wrong", f"could not score this answer ({type(exc).__name__})"
        fraction = min(1.0, max(0.0, float(fraction)))
        return round(points * fraction, 4), ("ok" if fraction >= 1.0 else "wrong"), detail


class ValueChannel(Channel):
    """A value is what the notebook states: scored against an exact expected value only."""


class FunctionChannel(Channel):
    def plan(self, question, entry, job, rng, evaluations, seed) -> None:
        cases = function_cases(rng, reference=entry["reference"])
        entry["expected"] = expected_cases(entry["reference"], cases)
        job.functions[question.id] = {"name": question.variable, "cases": cases}

    def check(self, question, collected, entry) -> Score | None:
        value = collected.get("value")
        if isinstance(value, list) and value:
            if all(isinstance(c, dict) and not c.get("ok") for c in value):
                return 0.0, "error", f"{question.variable} raised on every grading case: {str(value[0].get('error'))[:120]}"
            if all(isinstance(c, dict) and c.get("value") is None for c in value):
                return 0.0, "wrong", f"not answered ({question.variable} returns None)"
        return None


class ArtefactChannel(Channel):
    FORMATS = {"predict_texts": ["transformers", "peft"], "predict": ["sklearn"], "predict_proba": ["sklearn"]}

    def plan(self, question, entry, job, rng, evaluations, seed) -> None:
        evaluation = evaluations.get(question.evaluation, seed)
        entry["labels"] = evaluation.labels
        entry["evaluation_public"] = evaluation.public
        entry.update({k: v for k, v in evaluation.facts.items() if k not in entry})
        formats = ["peft"] if "max_trainable_share" in entry else self.FORMATS[evaluation.method]
        job.artefacts[question.id] = {"method": evaluation.method, "inputs": evaluation.inputs, "formats": formats}

    def check(self, question, collected, entry) -> Score | None:
        if "max_trainable_share" in entry:
            limit, share = float(entry["max_trainable_share"]), collected.get("trainable_share")
            if not is_number(share):
                return 0.0, "wrong", "the grader could not count the adapter's weights; submit the Trainer you trained with LoRA"
            if float(share) > limit:
                return 0.0, "wrong", (f"the submitted adapter carries {float(share):.2%} of the model's weights; this "
                                      f"question needs a parameter-efficient (LoRA) model training at most {limit:.0%}")
        if "train_size" in entry:
            rows = collected.get("tree_root_samples")
            if rows is None:
                return 0.0, "wrong", "the submitted model is not a decision tree (or a pipeline ending in one)"
            if rows != entry["train_size"]:
                return 0.0, "wrong", (f"the tree was fitted on {rows} rows, not on the {entry['train_size']} rows of the "
                                      "training split; fit it on the training split only")
        return None

    def score(self, question, collected, entry, run_status="ok") -> Score:
        points, status, detail = super().score(question, collected, entry, run_status)
        if entry.get("evaluation_public") and status in ("ok", "wrong"):
            detail = f"{detail} [public evaluation data]"
        return points, status, detail


class ManualChannel(Channel):
    def score(self, question, collected, entry, run_status="ok") -> Score:
        answer = collected.get("value") if isinstance(collected, Mapping) and collected.get("ok") else None
        shown = json.dumps(answer)[:250] if answer is not None else "not answered"
        return 0.0, "manual", f"to be scored by a person: {shown}"


CHANNELS: dict[str, Channel] = {"value": ValueChannel(), "function": FunctionChannel(), "artefact": ArtefactChannel(),
                                "manual": ManualChannel()}


def score_answer(question: Question, collected: Any, entry: Mapping, run_status: str = "ok") -> Score:
    """Score one collected answer with its question's channel: returns (score, status, detail)."""
    return CHANNELS[question.channel].score(question, collected, entry, run_status)
