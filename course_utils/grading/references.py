"""Reference implementations the grader compares function answers with, where no library has one.

The metric questions (q4_2 to q4_4) are compared with scikit-learn; the answer-only loss of lesson 09
(q9_5) has no library function that takes the prompt mask and the shift as plain lists, so it is
written out here, once, for the grader (:mod:`course_utils.grading.channels`) and the public check
(:mod:`course_utils.grading.questions`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["answer_only_loss"]


def answer_only_loss(logits: Sequence[Sequence[float]], labels: Sequence[int]) -> float:
    """The causal language-model loss with a prompt mask, written out: position ``t`` predicts token
    ``t + 1``, and only the positions whose next label is not -100 count (their mean cross-entropy).

    What ``AutoModelForCausalLM`` computes when it is given ``labels`` (lesson 09, section 6); the
    grader's reference for q9_5."""
    total, count = 0.0, 0
    for row, target in zip(logits[:-1], labels[1:]):
        if target == -100:
            continue
        top = max(row)
        log_sum = top + math.log(sum(math.exp(v - top) for v in row))
        total += log_sum - row[target]
        count += 1
    if count == 0:
        raise ValueError("no label outside the mask: the loss is undefined")
    return total / count
