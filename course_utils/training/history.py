"""What a run of the trainer returns: :class:`History` (``fit``) and :class:`Predictions` (``predict``).

Taught in lesson 05 (fine-tuning BERT), which plots a ``History`` with ``plots.plot_training_history``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import numpy as np
import pandas as pd

__all__ = ["History", "Predictions"]


@dataclass
class History:
    """Loss per optimizer step and metrics per epoch: what ``plots.plot_training_history`` draws.

    Named like the labs' ``History`` because it means the same thing (what one ``fit`` returns), and
    like it ``to_frame()`` gives one row an epoch; this one also keeps per-step losses and throughput,
    which the BERT runs need.
    """

    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    learning_rate: list[float] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)  # epoch, train_loss, val_*, seconds, samples/tokens per s
    best_epoch: int | None = None
    best_metric: float | None = None
    stopped_early: bool = False
    train_seconds: float = 0.0  # time in training steps, all epochs (evaluation excluded)
    samples_per_second: float = 0.0  # over all epochs
    tokens_per_second: float = 0.0  # real (non-pad) tokens

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> History:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})

    def to_frame(self) -> pd.DataFrame:
        """One row an epoch: ``epoch``, ``train_loss``, the ``val_*`` metrics, seconds and throughput."""
        return pd.DataFrame(self.epochs)

    epoch_frame = to_frame  # the name lesson 05 uses


@dataclass
class Predictions:
    """Predicted label names and class probabilities; unpacks as ``labels, probabilities = ...``."""

    labels: list[str]
    probabilities: np.ndarray  # (n, n_classes), columns in the order of ``classes``
    classes: tuple[str, ...]

    def __iter__(self):
        return iter((self.labels, self.probabilities))
