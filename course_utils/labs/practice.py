"""Given code of the practice problems: the models the exercises ask learners to run.

An exercise that says "run this model with two learning rates" needs the model to be identical in
the learner's notebook, in the solution and in the instructor's reference run that fixes the
expected numbers. Keeping it here (small and seeded, on the lessons' own training loop) gives all
three the same code.

Used by the exercises of lesson 03 (the learning-rate practice problem).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported where used, so the question registry can read LR_BEHAVIOURS cheaply
    import torch

from course_utils.errors import ConfigError

# The words the learning-rate exercise offers for what a loss curve did (lesson 03's exercise).
LR_BEHAVIOURS = ("converged smoothly", "overshot and oscillated", "diverged to inf or nan")


def digits_training_set(n_classes: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 8x8 digits 0..n_classes-1 as float pixels in [0, 1] and integer labels."""
    import torch
    from sklearn.datasets import load_digits

    if not 2 <= n_classes <= 10:
        raise ConfigError(f"n_classes must be between 2 and 10 digits, got {n_classes}.")
    digits = load_digits()
    keep = digits.target < n_classes
    return (torch.tensor(digits.data[keep] / 16.0, dtype=torch.float32),
            torch.tensor(digits.target[keep], dtype=torch.long))


def lr_experiment(lr: float, epochs: int = 15, batch_size: int = 64, seed: int = 0) -> list[float]:
    """Training loss per epoch of the exercise's given model at learning rate ``lr``.

    The model is a 64-128-64-5 MLP trained with Adam on the digits 0-4 (about 900 images). Index 0
    of the result is the loss before any update, so a first step that makes things *worse* is
    visible; the others are means over each epoch's mini-batches, as a training log shows them.
    """
    if not lr > 0 or epochs < 1 or batch_size < 1:
        raise ConfigError(f"need lr > 0, epochs >= 1 and batch_size >= 1; got {lr}, {epochs}, {batch_size}.")
    import torch
    from torch import nn

    from course_utils.labs.loop import fit

    X, y = digits_training_set()
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 5))
    history = fit(model, X, y, epochs=epochs, lr=lr, batch_size=batch_size, optimizer="adam", seed=seed)
    return [float(v) for v in history["train_loss"]]


def describe_loss_curve(losses: list[float]) -> str:
    """Name what a loss curve did, in the words the learning-rate exercise offers.

    "diverged" when a value is inf/NaN; "overshot and oscillated" when some epoch ends above the
    starting loss or the loss clearly rises (by more than 0.05) in at least three epochs; otherwise
    "converged smoothly" (small bumps of a nearly converged run are noise, not oscillation).
    """
    values = [float(v) for v in losses]
    if len(values) < 2:
        raise ConfigError("a loss curve needs at least two values to describe.")
    if not all(math.isfinite(v) for v in values):
        return LR_BEHAVIOURS[2]
    rises = int(np.sum(np.diff(values) > 0.05))
    return LR_BEHAVIOURS[1] if max(values[1:]) > values[0] or rises >= 3 else LR_BEHAVIOURS[0]
