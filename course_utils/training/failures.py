"""What the trainer says when a run cannot go on: a loss that stopped being finite, or memory that ran out.

Each message names what happened (the step, the batch) and the likely causes or the setting to change,
so a learner can fix the run instead of reading a stack trace.

Taught in lesson 05 (fine-tuning BERT), where a too-high learning rate makes the loss diverge.
"""

from __future__ import annotations

import torch

from course_utils.errors import TrainingError

__all__ = ["divergence_message", "raise_if_out_of_memory"]


def divergence_message(value: float, step: int, epoch: int, learning_rate: float, bf16: bool) -> str:
    """Why the loss became ``value`` (NaN or inf) at ``step``, most likely causes first."""
    causes = []
    if step == 1:
        causes.append("the loss was not finite before any update, so the weights or inputs are already broken "
                      "(a model with NaN weights, or labels outside 0..num_labels-1)")
    if learning_rate > 1e-3 or step > 1:
        causes.append(f"the learning rate is too high (it was {learning_rate:.2g}; BERT fine-tuning uses 1e-5 to "
                      "2e-4, and warm-up helps)")
    if bf16:
        causes.append("overflow in reduced precision (try precision='fp32' to check)")
    causes.append("bad labels or texts in the data (check a few rows)")
    return (f"the training loss became {value} at step {step} (epoch {epoch}); stopping. "
            f"Likely cause: {'; or '.join(causes)}.")


def raise_if_out_of_memory(exc: BaseException, what: str, device: torch.device, batch_size: int,
                           gradient_accumulation: int, length: int | None) -> None:
    """Turn an out-of-memory error during ``what`` (training, evaluation) into one that names the fix."""
    text = str(exc).lower()
    if not isinstance(exc, torch.cuda.OutOfMemoryError) and "out of memory" not in text and "can't allocate" not in text:
        return
    if device.type == "cuda":
        torch.cuda.empty_cache()
    field_name = "batch_size" if what == "training" else "eval_batch_size"
    smaller = max(1, batch_size // 2)
    keep = (f" with gradient_accumulation={gradient_accumulation * 2} to keep the effective batch"
            if what == "training" else "")
    raise TrainingError(
        f"out of memory during {what} on {device} (batch of {batch_size}"
        f"{f' x {length} tokens' if length else ''}): try {field_name}={smaller}{keep}, or a smaller max_length."
    ) from None
