"""The one small training loop every lab uses, its history, its splits type, its MLP and the body/head network.

Taught in lesson 01 (the loop itself), lessons 03 and 06 (the same loop with other learning rates,
batch sizes, weight decay and early stopping), lesson 07 (the splits of a tabular task). The BERT
trainer (:mod:`course_utils.trainer`) is the same loop made fast; it shares the names ``fit``,
``evaluate`` and ``History`` where they mean the same thing.

Keeping one loop means a difference between two lessons' curves is never a difference between two
implementations: the same mini-batch order (a seeded generator), the same optimiser handling (only
parameters with ``requires_grad``), the same bookkeeping.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from course_utils.errors import ConfigError, DataError

OPTIMIZERS = ("adam", "adamw", "sgd", "sgd_momentum")


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


@dataclass
class ArraySplits:
    """Train / validation / test arrays of one classification task (lessons 03, 04, 06, 07).

    ``y_train_clean`` keeps the true training labels when noise was injected (lesson 06), so a
    lesson can show that a model "learned" the wrong labels rather than the task;
    ``feature_names`` names the columns of a tabular task (lesson 07).
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    classes: list[int]
    y_train_clean: np.ndarray | None = None
    feature_names: list[str] = field(default_factory=list)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "validation": len(self.y_val), "test": len(self.y_test)}

    def positive_rate(self) -> dict[str, float]:
        """Share of class 1 per split, for binary tasks (1 = the positive class)."""
        return {
            "train": float(np.mean(self.y_train)),
            "validation": float(np.mean(self.y_val)),
            "test": float(np.mean(self.y_test)),
        }


def as_tensors(X, y, name: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """Features as float32 and labels as int64 tensors, with one clear error for a malformed set."""
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y)
    if X.ndim != 2:
        raise DataError(f"{name} features must be a 2-D array (examples x features), got shape {X.shape}.")
    if y.ndim != 1 or len(y) != len(X):
        raise DataError(f"{name} labels must be 1-D with one label per row of features: {len(X)} rows, labels shape {y.shape}.")
    if len(y) == 0:
        raise DataError(f"{name} set is empty.")
    return torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))


# --------------------------------------------------------------------------------------------
# Model pieces
# --------------------------------------------------------------------------------------------


def mlp_layers(in_features: int, hidden: Sequence[int], dropout: float = 0.0) -> tuple[list[nn.Module], int]:
    """Linear -> ReLU (-> Dropout) blocks; returns the layers and the width of the last one.

    Lesson 01 wraps them as the body of a body/head network, lesson 06 as one flat ``Sequential``.
    """
    if not hidden or any(int(h) < 1 for h in hidden):
        raise ConfigError(f"hidden must be a non-empty sequence of positive layer sizes, got {hidden!r}.")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"dropout must be in [0, 1), got {dropout}.")
    layers: list[nn.Module] = []
    width = int(in_features)
    for h in hidden:
        layers += [nn.Linear(width, int(h)), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = int(h)
    return layers, width


def mlp(in_features: int, hidden: Sequence[int], n_classes: int, dropout: float = 0.0) -> nn.Sequential:
    """The labs' MLP: :func:`mlp_layers` and a linear head, as one flat ``Sequential`` (lessons 03, 06)."""
    if n_classes < 2:
        raise ConfigError(f"a classifier needs n_classes >= 2, got {n_classes}.")
    layers, width = mlp_layers(in_features, hidden, dropout)
    return nn.Sequential(*layers, nn.Linear(width, n_classes))


class BodyHeadNet(nn.Module):
    """A network split into ``body`` (feature extractor) and ``head`` (one linear layer).

    Keeping the two as separate attributes is what makes "replace the head", "freeze the body"
    and "old head on the new body" one-liners, exactly as with a pre-trained transformer
    (``model.bert`` and ``model.classifier``). Subclasses build ``body`` and ``head``.
    """

    body: nn.Module
    head: nn.Linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    def replace_head(self, n_classes: int) -> nn.Linear:
        """Give the model a fresh head for a new task; return the old one (to evaluate the old task)."""
        old = self.head
        self.head = nn.Linear(old.in_features, n_classes)
        return old

    def freeze_body(self) -> None:
        """Stop gradient updates to the body, so only the head learns."""
        for p in self.body.parameters():
            p.requires_grad_(False)


class MLP(BodyHeadNet):
    """A body of Linear + ReLU layers on the flattened pixels, then a linear head.

    Every weight is tied to one pixel position, so what it learns about a stroke at the top-left
    does not help with the same stroke elsewhere: the reason :class:`SmallCNN` transfers better.
    """

    def __init__(self, in_features: int = 144, hidden: Sequence[int] = (256, 128), n_classes: int = 5):
        super().__init__()
        layers, width = mlp_layers(in_features, hidden)
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, n_classes)


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


@torch.no_grad()
def predict(model: nn.Module, X) -> np.ndarray:
    """Class indices predicted by ``model`` in eval mode (dropout off); its train/eval mode is restored."""
    was_training = model.training
    model.eval()
    out = model(torch.as_tensor(np.asarray(X, dtype=np.float32)) if not torch.is_tensor(X) else X)
    model.train(was_training)
    return out.argmax(dim=1).cpu().numpy()


def accuracy(model: nn.Module, X, y) -> float:
    """Share of rows predicted right."""
    y = y.cpu().numpy() if torch.is_tensor(y) else np.asarray(y)
    return float((predict(model, X) == y).mean())


@torch.no_grad()
def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Cross-entropy loss and accuracy on a whole set, in eval mode (lessons 03 and 06 plot both)."""
    was_training = model.training
    model.eval()
    logits = model(X)
    model.train(was_training)
    return nn.functional.cross_entropy(logits, y).item(), (logits.argmax(dim=1) == y).float().mean().item()


def head_accuracy(model: BodyHeadNet, X: torch.Tensor, y: torch.Tensor, head: nn.Module) -> float:
    """Accuracy of ``model``'s body with another ``head`` on top: the old task's score after fine-tuning."""
    return accuracy(nn.Sequential(model.body, head).train(model.training), X, y)


# --------------------------------------------------------------------------------------------
# History
# --------------------------------------------------------------------------------------------


@dataclass
class History:
    """Per-epoch numbers of one training run.

    ``series`` maps a name (``train_loss``, ``val_loss``, ``val_acc``, ``new_task_acc``...) to one
    value per recorded epoch. With ``first_epoch == 0`` the first value was measured *before* the
    first update, which makes "fine-tuning starts ahead" visible (lesson 01); with 1 the first value
    is after epoch 1 (lesson 06). ``step_losses`` holds every mini-batch loss: where a too-large
    learning rate shows up as zig-zags that an epoch average smooths away (lesson 03).
    """

    series: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0  # time spent in optimisation steps, evaluation excluded
    step_losses: list[float] = field(default_factory=list)
    best_epoch: int = 0
    stopped_epoch: int = 0
    restored_best: bool = False
    first_epoch: int = 0

    def __getitem__(self, name: str) -> list[float]:
        if name not in self.series:
            raise KeyError(f"no series {name!r} in this history; it has {sorted(self.series)}")
        return self.series[name]

    def final(self, name: str) -> float:
        return self[name][-1]

    @property
    def train_loss(self) -> list[float]:
        return self.series.get("train_loss", [])

    @property
    def val_loss(self) -> list[float]:
        return self.series.get("val_loss", [])

    @property
    def train_accuracy(self) -> list[float]:
        return self.series.get("train_accuracy", [])

    @property
    def val_accuracy(self) -> list[float]:
        return self.series.get("val_accuracy", [])

    @property
    def epochs(self) -> list[int]:
        return list(range(self.first_epoch, self.first_epoch + len(self.train_loss)))

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"epoch": self.epochs, **{k: v for k, v in self.series.items() if len(v) == len(self.epochs)}})

    def summary(self) -> dict:
        """The numbers lesson 06 compares across runs: where the best epoch was and the final gap.

        ``final_*`` describe the weights the run ended with: the best epoch's when they were
        restored, the last epoch's otherwise.
        """
        if not self.train_loss or not self.val_loss:
            raise ConfigError("this history is empty: train for at least one epoch (with validation) first.")
        end = (self.best_epoch if self.restored_best else self.stopped_epoch) - self.first_epoch
        return {
            "epochs_run": self.stopped_epoch,
            "best_epoch": self.best_epoch,
            "best_val_loss": self.val_loss[self.best_epoch - self.first_epoch],
            "final_train_accuracy": self.train_accuracy[end],
            "final_val_accuracy": self.val_accuracy[end],
            "final_gap": self.train_accuracy[end] - self.val_accuracy[end],
        }


# --------------------------------------------------------------------------------------------
# The loop
# --------------------------------------------------------------------------------------------


def make_optimizer(params, name: str, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """Adam, AdamW (decoupled weight decay, lesson 06), plain SGD or SGD with momentum 0.9 (lesson 03)."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd_momentum":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    raise ConfigError(f"optimizer must be one of {list(OPTIMIZERS)}, got {name!r}.")


def fit(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    lr: float,
    batch_size: int = 16,
    optimizer: str = "adam",
    weight_decay: float = 0.0,
    evaluate: Mapping[str, Callable[[nn.Module], float]] | None = None,
    eval_every: int = 1,
    record_initial: bool = True,
    patience: int | None = None,
    restore_best: bool = True,
    monitor: str = "val_loss",
    seed: int = 0,
) -> History:
    """Mini-batch training with cross-entropy; returns the :class:`History` of the run.

    * Only parameters with ``requires_grad`` reach the optimiser, so a frozen body really stays
      frozen (Adam would otherwise still move it with its momentum).
    * ``evaluate`` maps names to functions of the model, run every ``eval_every`` epochs and after
      the last one (NaN in between). ``train_loss`` defaults to the mean mini-batch loss of the
      epoch; an ``evaluate`` entry named ``train_loss`` replaces it (lesson 06 measures train and
      validation the same way, in eval mode, so their gap is real).
    * ``record_initial`` measures everything once before the first update (epoch 0).
    * Early stopping: the epoch with the lowest ``monitor`` value is remembered as ``best_epoch``;
      with ``patience`` set, training stops after that many epochs without improvement and, with
      ``restore_best``, the best epoch's weights come back (as the transformers Trainer does with
      ``load_best_model_at_end=True``).
    """
    if epochs < 1 or batch_size < 1 or eval_every < 1:
        raise ConfigError(f"epochs, batch_size and eval_every must be >= 1, got {epochs}, {batch_size} and {eval_every}.")
    if not lr > 0:
        raise ConfigError(f"learning rate must be positive, got {lr}.")
    if weight_decay < 0:
        raise ConfigError(f"weight_decay must be >= 0, got {weight_decay}.")
    if patience is not None and patience < 1:
        raise ConfigError(f"patience must be None (no early stopping) or >= 1, got {patience}.")
    if len(X) != len(y) or len(X) == 0:
        raise DataError(f"X and y must be non-empty and the same length, got {len(X)} and {len(y)}.")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("every parameter of the model is frozen: nothing would train. Unfreeze at least the head.")
    opt = make_optimizer(params, optimizer, lr, weight_decay)
    evaluate = dict(evaluate or {})
    if patience is not None and monitor not in evaluate:
        raise ConfigError(f"early stopping monitors {monitor!r}, which evaluate does not compute; add it.")
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    series: dict[str, list[float]] = {"train_loss": [], **{name: [] for name in evaluate if name != "train_loss"}}

    def record(mean_loss: float, run_eval: bool) -> None:
        if "train_loss" not in evaluate:
            series["train_loss"].append(mean_loss)
        for name, fn in evaluate.items():
            series[name].append(fn(model) if run_eval else float("nan"))

    if record_initial:
        with torch.no_grad():
            was_training = model.training
            model.eval()
            initial = float(loss_fn(model(X), y))
            model.train(was_training)
        record(initial, True)
    history = History(series, first_epoch=0 if record_initial else 1)
    best, best_state, since_best = float("inf"), None, 0
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(X), generator=generator)
        total = 0.0
        start = time.perf_counter()
        for i in range(0, len(X), batch_size):
            idx = order[i : i + batch_size]
            opt.zero_grad()
            loss = loss_fn(model(X[idx]), y[idx])
            loss.backward()
            opt.step()
            history.step_losses.append(float(loss.detach()))
            total += history.step_losses[-1] * len(idx)
        history.seconds += time.perf_counter() - start
        record(total / len(X), run_eval=epoch % eval_every == 0 or epoch == epochs)
        history.stopped_epoch = epoch
        if monitor in series and series[monitor][-1] < best:
            best, since_best, history.best_epoch = series[monitor][-1], 0, epoch
            if patience is not None and restore_best:
                best_state = copy.deepcopy(model.state_dict())
        elif monitor in series:
            since_best += 1
            if patience is not None and since_best >= patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
        history.restored_best = True
    return history
