"""LoRA for the trainer: wrap a classifier with peft adapters so only the adapters and the head train.

``TrainConfig(lora_r=8)`` (``course-utils train --lora-r 8``) calls :func:`add_lora` once the model is
loaded: the base weights freeze, and every checkpoint, ``best/`` and ``model/`` then hold only the
adapters and head (see :mod:`course_utils.training.checkpoints`). peft is imported only when LoRA is used.

Taught in lesson 08 (parameter-efficient fine-tuning), which compares it with full fine-tuning.
"""

from __future__ import annotations

import sys

import torch

from course_utils.errors import ConfigError

__all__ = ["add_lora", "is_peft"]


def is_peft(model) -> bool:
    """True for a peft-wrapped model (peft is imported only when LoRA is used, so check lazily)."""
    peft = sys.modules.get("peft")
    return peft is not None and isinstance(model, peft.PeftModel)


def add_lora(model, r: int, alpha: float | None = None, targets=None):
    """``model`` with LoRA adapters of rank ``r`` (scaling ``alpha / r``; ``alpha`` None: ``2 * r``).

    ``task_type=SEQ_CLS`` makes peft keep the new classification head trainable and save it with
    the adapters, so a checkpoint or ``model/`` holds the adapters and head only (kilobytes to a
    few MB), not the base model. ``targets`` None: peft's default modules (BERT: query, value).
    """
    from peft import LoraConfig, TaskType, get_peft_model

    if is_peft(model):
        raise ConfigError("the model passed in already has peft adapters; leave lora_r at 0 to train them, "
                          "or pass the base model to add new ones.")
    lora = LoraConfig(task_type=TaskType.SEQ_CLS, r=r, lora_alpha=alpha if alpha is not None else 2 * r,
                      target_modules=list(targets) if targets is not None else None)
    try:
        return get_peft_model(model, lora)
    except ValueError as exc:
        names = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
        raise ConfigError(f"LoRA cannot be added to {type(model).__name__}: {str(exc).splitlines()[0][:160]} "
                          f"Set lora_targets to some of its linear layers: {names[:12]}.") from None
