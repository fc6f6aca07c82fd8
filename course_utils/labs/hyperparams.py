"""Lesson 03's small training runs: one MLP per learning rate, batch size or epoch budget, same start.

Taught in lesson 03 (sections on learning rate, batch size and epochs). The runs share everything but
the one setting being varied, initial weights included, so two curves differ for one reason only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from course_utils.errors import ConfigError, DataError

# --------------------------------------------------------------------------------------------
# Learning rate, batch size, epochs: small training runs to look at
# --------------------------------------------------------------------------------------------


def train_settings(
    splits,
    settings: Mapping[str, Mapping[str, Any]],
    *,
    hidden: Sequence[int] = (128, 64),
    epochs: int = 10,
    batch_size: int = 32,
    lr: float = 0.01,
    optimizer: str = "adam",
    seed: int = 0,
) -> dict[str, Any]:
    """Train one small MLP per named setting on the same data and return their histories.

    ``splits`` is any object with ``X_train, y_train, X_val, y_val`` arrays (e.g.
    ``overfitting.load_digits_splits()``). Each setting overrides some of ``lr``, ``optimizer``,
    ``batch_size``, ``epochs``; everything else, including the initial weights, is shared, so a
    difference between two curves is caused by the one thing that differs. Histories record
    ``train_loss``, ``val_loss`` and ``val_acc`` per epoch, and every mini-batch loss.
    """
    import torch

    from course_utils.labs.loop import accuracy, fit, mlp

    allowed = {"lr", "optimizer", "batch_size", "epochs"}
    for name, overrides in settings.items():
        unknown = set(overrides) - allowed
        if unknown:
            raise ConfigError(f"setting {name!r} has unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}.")
    try:
        X = torch.as_tensor(np.asarray(splits.X_train), dtype=torch.float32)
        y = torch.as_tensor(np.asarray(splits.y_train), dtype=torch.long)
        X_val = torch.as_tensor(np.asarray(splits.X_val), dtype=torch.float32)
        y_val = torch.as_tensor(np.asarray(splits.y_val), dtype=torch.long)
    except AttributeError as exc:
        raise DataError(f"train_settings needs X_train, y_train, X_val, y_val on splits: {exc}") from None
    n_classes = int(max(y.max(), y_val.max())) + 1
    loss_fn = torch.nn.CrossEntropyLoss()

    @torch.no_grad()
    def val_loss(model) -> float:
        model.eval()
        return float(loss_fn(model(X_val), y_val))

    histories = {}
    for name, overrides in settings.items():
        run = {"lr": lr, "optimizer": optimizer, "batch_size": batch_size, "epochs": epochs, **overrides}
        torch.manual_seed(seed)
        model = mlp(X.shape[1], hidden, n_classes)
        histories[name] = fit(
            model, X, y, epochs=int(run["epochs"]), lr=float(run["lr"]), batch_size=int(run["batch_size"]),
            optimizer=str(run["optimizer"]), seed=seed,
            evaluate={"val_loss": val_loss, "val_acc": lambda m: accuracy(m, X_val, y_val)},
        )
    return histories


def settings_table(histories: Mapping[str, Any]) -> pd.DataFrame:
    """One row per setting: final losses, best and final validation accuracy, steps and time."""
    rows = []
    for name, h in histories.items():
        val_loss = np.asarray(h["val_loss"], dtype=float)
        rows.append({
            "setting": name,
            "final_train_loss": round(h.final("train_loss"), 4),
            "final_val_loss": round(h.final("val_loss"), 4),
            "best_val_loss_epoch": int(np.nanargmin(val_loss)) if np.isfinite(val_loss).any() else None,
            "final_val_acc": round(h.final("val_acc"), 4),
            "best_val_acc": round(float(np.nanmax(h["val_acc"])), 4),
            "optimizer_steps": len(h.step_losses),
            "seconds": round(h.seconds, 2),
        })
    return pd.DataFrame(rows).set_index("setting")


