"""Transfer learning in miniature: pre-train on digits 0-4, fine-tune on digits 5-9.

Lesson 01 shows *why* fine-tuning works before it touches a 22M-parameter BERT. A small network
(a two-layer CNN by default, an MLP on request) is pre-trained on one half of scikit-learn's digits,
then adapted to the other half with a handful of labels. Everything runs in seconds on a CPU, so
the lesson can compare four strategies side by side:

* **from scratch** -- a fresh network trained only on the few new labels;
* **fine-tune (small lr)** -- start from the pre-trained body, train everything gently;
* **frozen body (head only)** -- keep the pre-trained body fixed, train only a new output layer;
* **fine-tune (large lr)** -- start from the pre-trained body, train everything with a learning
  rate that is too large, which overwrites what pre-training learned (catastrophic forgetting).

The network is a *body* (the feature extractor) plus a *head* (one linear layer per task). The new
task gets a new head; the old task keeps its pre-trained head. Measuring the old task through the
*fine-tuned* body and the *old* head shows how much of the pre-trained knowledge survived.

Taught in lesson 01 (what fine-tuning is).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn

from course_utils.errors import ConfigError
from course_utils.labs.loop import MLP, BodyHeadNet, History, accuracy, fit, head_accuracy

__all__ = [
    "DigitTasks",
    "place_on_canvas",
    "make_digit_tasks",
    "BodyHeadNet",
    "MLP",
    "SmallCNN",
    "build_model",
    "head_accuracy",
    "TransferConfig",
    "STRATEGIES",
    "STRATEGY_COLORS",
    "pretrain",
    "StrategyRun",
    "fine_tune",
    "TransferComparison",
    "compare_strategies",
    "label_efficiency",
    "learning_rate_sweep",
]


# --------------------------------------------------------------------------------------------
# Data: two tasks carved out of the digits data set
# --------------------------------------------------------------------------------------------


@dataclass
class DigitTasks:
    """An old task (pre-training) and a new task (fine-tuning) as float/long tensors.

    Labels are re-numbered within each task (digit 5 is class 0 of the new task), because each
    task has its own head. ``X_new_train`` holds only ``labels_per_class`` examples per digit, the
    "few labels" a fine-tuning project starts with, drawn from ``X_new_pool`` (every new-task
    training row); :meth:`with_labels_per_class` draws another such set without touching the
    test sets or the old task, so one pre-trained model serves every draw.
    """

    old_classes: tuple[int, ...]
    new_classes: tuple[int, ...]
    X_old_train: torch.Tensor
    y_old_train: torch.Tensor
    X_old_test: torch.Tensor
    y_old_test: torch.Tensor
    X_new_pool: torch.Tensor
    y_new_pool: torch.Tensor
    X_new_test: torch.Tensor
    y_new_test: torch.Tensor
    labels_per_class: int | None = None
    sample_seed: int = 0
    X_new_train: torch.Tensor = field(init=False, repr=False)
    y_new_train: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        smallest = int(torch.bincount(self.y_new_pool).min())
        n = self.labels_per_class
        if n is None:
            self.X_new_train, self.y_new_train = self.X_new_pool, self.y_new_pool
            return
        if not 1 <= n <= smallest:
            raise ConfigError(
                f"labels_per_class must be between 1 and {smallest} (the training rows of the rarest new digit); "
                f"got {n}."
            )
        rng = np.random.default_rng(self.sample_seed)
        y = self.y_new_pool.numpy()
        keep = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:n] for c in range(len(self.new_classes))])
        keep = torch.from_numpy(rng.permutation(keep))
        self.X_new_train, self.y_new_train = self.X_new_pool[keep], self.y_new_pool[keep]

    def with_labels_per_class(self, labels_per_class: int | None, sample_seed: int = 0) -> DigitTasks:
        """The same tasks with another labelled set for the new task (``None``: every pool row)."""
        return dataclasses.replace(self, labels_per_class=labels_per_class, sample_seed=sample_seed)

    def sizes(self) -> dict[str, int]:
        return {
            "old_train": len(self.y_old_train),
            "old_test": len(self.y_old_test),
            "new_train": len(self.y_new_train),
            "new_test": len(self.y_new_test),
        }


def _split_task(X: np.ndarray, y: np.ndarray, classes: Sequence[int], test_size: float, rng: np.random.Generator):
    """Per class: shuffle, put ``test_size`` of the rows in test; labels re-numbered 0..k-1."""
    train_idx, test_idx = [], []
    for digit in classes:
        idx = rng.permutation(np.flatnonzero(y == digit))
        n_test = int(round(len(idx) * test_size))
        test_idx.append(idx[:n_test])
        train_idx.append(idx[n_test:])
    train_idx, test_idx = rng.permutation(np.concatenate(train_idx)), np.concatenate(test_idx)
    remap = np.full(10, -1)
    remap[list(classes)] = np.arange(len(classes))
    return X[train_idx], remap[y[train_idx]], X[test_idx], remap[y[test_idx]]


def place_on_canvas(images: np.ndarray, canvas: int, rng: np.random.Generator) -> np.ndarray:
    """Paste each 8x8 digit at a random position on an empty ``canvas`` x ``canvas`` image.

    Centred 8x8 digits are so easy that raw pixels plus logistic regression need almost no labels,
    which leaves nothing for pre-training to add. Real handwriting is not centred: once the digit
    can be anywhere, a model must learn strokes that work at every position, and *that* is
    knowledge a model pre-trained on other digits can bring to a new task.
    """
    images = np.asarray(images, dtype=np.float32).reshape(-1, 8, 8)
    if canvas < 8:
        raise ConfigError(f"canvas must be at least 8 pixels (the digit size), got {canvas}.")
    out = np.zeros((len(images), canvas, canvas), dtype=np.float32)
    offsets = rng.integers(0, canvas - 8 + 1, size=(len(images), 2))
    for img, (dy, dx), dst in zip(images, offsets, out):
        dst[dy : dy + 8, dx : dx + 8] = img
    return out.reshape(len(images), -1)


def make_digit_tasks(
    old_classes: Sequence[int] = (0, 1, 2, 3, 4),
    new_classes: Sequence[int] = (5, 6, 7, 8, 9),
    labels_per_class: int | None = 5,
    canvas: int = 12,
    pretrain_copies: int = 5,
    test_size: float = 0.3,
    seed: int = 0,
    sample_seed: int = 0,
) -> DigitTasks:
    """Split scikit-learn's 8x8 digits into an old and a new task (pixels scaled to 0-1).

    Each digit is placed at a random spot on a ``canvas`` x ``canvas`` image (``canvas=8`` keeps
    the original centred digits). The old task keeps all its training rows, each in
    ``pretrain_copies`` random positions (pre-training data is plentiful); the new task keeps only
    ``labels_per_class`` training rows per digit (``None`` keeps all), chosen by ``sample_seed``.
    ``seed`` fixes the split and the positions, so the test sets stay the same while
    ``labels_per_class`` and ``sample_seed`` change.
    """
    from sklearn.datasets import load_digits

    old, new = tuple(int(c) for c in old_classes), tuple(int(c) for c in new_classes)
    if set(old) & set(new):
        raise ConfigError(f"old and new tasks must use different digits; both contain {sorted(set(old) & set(new))}.")
    if len(old) < 2 or len(new) < 2:
        raise ConfigError("each task needs at least two digits to be a classification problem.")
    if not set(old + new) <= set(range(10)):
        raise ConfigError(f"digits must be between 0 and 9; got {sorted(set(old + new) - set(range(10)))}.")
    if not 0.0 < test_size < 1.0:
        raise ConfigError(f"test_size must be between 0 and 1, got {test_size}.")
    if pretrain_copies < 1:
        raise ConfigError(f"pretrain_copies must be >= 1, got {pretrain_copies}.")
    digits = load_digits()
    X, y = digits.data / 16.0, digits.target
    rng = np.random.default_rng(seed)
    X_ot, y_ot, X_oe, y_oe = _split_task(X, y, old, test_size, rng)
    X_nt, y_nt, X_ne, y_ne = _split_task(X, y, new, test_size, rng)
    place = lambda images: torch.from_numpy(place_on_canvas(images, canvas, rng))  # noqa: E731
    X_oe, X_ne, X_nt = place(X_oe), place(X_ne), place(X_nt)
    X_ot = torch.cat([place(X_ot) for _ in range(pretrain_copies)])
    long = lambda a: torch.as_tensor(a, dtype=torch.long)  # noqa: E731
    return DigitTasks(
        old, new, X_ot, long(np.tile(y_ot, pretrain_copies)), X_oe, long(y_oe), X_nt, long(y_nt), X_ne, long(y_ne),
        labels_per_class=labels_per_class, sample_seed=sample_seed,
    )


# --------------------------------------------------------------------------------------------
# Model and training loop
# --------------------------------------------------------------------------------------------


class SmallCNN(BodyHeadNet):
    """Two convolution layers with max-pooling as the body, then a linear head.

    Convolutions apply the same stroke detectors at every position, and max-pooling down to a 2x2
    grid keeps only "is this stroke in this quadrant?" rather than its exact pixel; that is the
    knowledge that carries over from digits 0-4 to digits 5-9 when digits are not centred. Same
    ``body``/``head`` interface as :class:`MLP`.
    """

    def __init__(self, in_features: int = 144, channels: Sequence[int] = (16, 32), n_classes: int = 5):
        super().__init__()
        side = int(round(in_features**0.5))
        if side * side != in_features:
            raise ConfigError(f"SmallCNN needs square images; {in_features} inputs is not a square number of pixels.")
        if len(channels) != 2 or any(int(c) < 1 for c in channels):
            raise ConfigError(f"channels must be two positive sizes, got {channels!r}.")
        c1, c2 = (int(c) for c in channels)
        self.body = nn.Sequential(
            nn.Unflatten(1, (1, side, side)),
            nn.Conv2d(1, c1, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, kernel_size=3, padding=1), nn.ReLU(), nn.AdaptiveMaxPool2d(2),
            nn.Flatten(),
        )
        self.head = nn.Linear(4 * c2, n_classes)


# --------------------------------------------------------------------------------------------
# The comparison the lesson runs
# --------------------------------------------------------------------------------------------

STRATEGIES = ("from scratch", "fine-tune (small lr)", "frozen body (head only)", "fine-tune (large lr)")
# One colour per strategy, so a strategy looks the same in every plot of the lesson.
STRATEGY_COLORS = dict(zip(STRATEGIES, ("tab:blue", "tab:orange", "tab:green", "tab:red")))


@dataclass
class TransferConfig:
    """Sizes and learning rates of the experiment; defaults run in a few seconds on a CPU."""

    arch: str = "cnn"
    hidden: tuple[int, ...] = (256, 128)
    channels: tuple[int, int] = (16, 32)
    pretrain_epochs: int = 10
    finetune_epochs: int = 30
    pretrain_batch_size: int = 64
    batch_size: int = 8
    lr: float = 3e-3
    small_lr: float = 1e-3
    head_lr: float = 1e-2
    large_lr: float = 3e-2
    optimizer: str = "adam"
    seed: int = 0

    def lr_for(self, strategy: str) -> float:
        if strategy not in STRATEGIES:
            raise ConfigError(f"unknown strategy {strategy!r}; choose from {list(STRATEGIES)}.")
        return {
            "from scratch": self.lr,
            "fine-tune (small lr)": self.small_lr,
            "frozen body (head only)": self.head_lr,
            "fine-tune (large lr)": self.large_lr,
        }[strategy]


def build_model(config: TransferConfig, in_features: int, n_classes: int) -> BodyHeadNet:
    """A fresh network of the kind ``config.arch`` names ("mlp" or "cnn")."""
    if config.arch == "mlp":
        return MLP(in_features, config.hidden, n_classes)
    if config.arch == "cnn":
        return SmallCNN(in_features, config.channels, n_classes)
    raise ConfigError(f"arch must be 'mlp' or 'cnn', got {config.arch!r}.")


def pretrain(tasks: DigitTasks, config: TransferConfig | None = None) -> tuple[BodyHeadNet, History]:
    """Train a network on the old task with all its labels: the "pre-trained model" of the lesson."""
    config = config or TransferConfig()
    torch.manual_seed(config.seed)
    model = build_model(config, tasks.X_old_train.shape[1], len(tasks.old_classes))
    history = fit(
        model, tasks.X_old_train, tasks.y_old_train, epochs=config.pretrain_epochs, lr=config.lr,
        batch_size=config.pretrain_batch_size, optimizer=config.optimizer, seed=config.seed,
        evaluate={"old_task_acc": lambda m: accuracy(m, tasks.X_old_test, tasks.y_old_test)},
    )
    return model, history


@dataclass
class StrategyRun:
    """One strategy's run: its curves, final model and how many weights it trained."""

    strategy: str
    lr: float
    history: History
    trainable_params: int
    model: BodyHeadNet

    def final(self, name: str) -> float:
        return self.history.final(name)


def fine_tune(
    pretrained: BodyHeadNet,
    tasks: DigitTasks,
    strategy: str,
    config: TransferConfig | None = None,
    curves: bool = True,
) -> StrategyRun:
    """Adapt a copy of ``pretrained`` to the new task with one of :data:`STRATEGIES`.

    The pre-trained model is never modified. Old-task accuracy is measured with the pre-trained
    old head on top of the current body; it is NaN for "from scratch", which has no old head.
    ``curves=False`` evaluates only before and after training (NaN in between), for sweeps that
    need final numbers only.
    """
    config = config or TransferConfig()
    lr = config.lr_for(strategy)
    torch.manual_seed(config.seed + 1)
    n_new = len(tasks.new_classes)
    if strategy == "from scratch":
        model = build_model(config, tasks.X_new_train.shape[1], n_new)
        old_head = None
    else:
        model = copy.deepcopy(pretrained)
        old_head = copy.deepcopy(model.replace_head(n_new)).requires_grad_(False)
        if strategy == "frozen body (head only)":
            model.freeze_body()
    evaluate = {"new_task_acc": lambda m: accuracy(m, tasks.X_new_test, tasks.y_new_test)}
    evaluate["old_task_acc"] = (
        (lambda m: head_accuracy(m, tasks.X_old_test, tasks.y_old_test, old_head)) if old_head is not None
        else (lambda m: float("nan"))
    )
    history = fit(
        model, tasks.X_new_train, tasks.y_new_train, epochs=config.finetune_epochs, lr=lr,
        batch_size=config.batch_size, optimizer=config.optimizer, seed=config.seed, evaluate=evaluate,
        eval_every=1 if curves else config.finetune_epochs,
    )
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return StrategyRun(strategy, lr, history, trainable, model)


@dataclass
class TransferComparison:
    """All strategies of one experiment plus the pre-trained model they started from."""

    pretrained: BodyHeadNet
    pretrain_history: History
    runs: dict[str, StrategyRun]

    @property
    def pretrained_old_acc(self) -> float:
        return self.pretrain_history.final("old_task_acc")

    def curves(self, metric: str) -> dict[str, list[float]]:
        """``metric`` ("new_task_acc", "old_task_acc" or "train_loss") per strategy, for plotting."""
        return {name: run.history[metric] for name, run in self.runs.items()
                if not np.all(np.isnan(run.history[metric]))}

    def summary(self) -> pd.DataFrame:
        rows = []
        for name, run in self.runs.items():
            old = run.final("old_task_acc")
            rows.append({
                "strategy": name,
                "lr": run.lr,
                "trainable_params": run.trainable_params,
                "new_task_acc": round(run.final("new_task_acc"), 3),
                "old_task_acc": round(old, 3),
                "old_task_drop": round(self.pretrained_old_acc - old, 3),
                "train_seconds": round(run.history.seconds, 2),
            })
        return pd.DataFrame(rows).set_index("strategy")


def compare_strategies(
    tasks: DigitTasks,
    config: TransferConfig | None = None,
    strategies: Sequence[str] = STRATEGIES,
    pretrained: tuple[BodyHeadNet, History] | None = None,
    curves: bool = True,
) -> TransferComparison:
    """Pre-train once (unless ``pretrained`` is given), then run every strategy from that model."""
    config = config or TransferConfig()
    for s in strategies:
        config.lr_for(s)  # validates the name before any training
    model, history = pretrained or pretrain(tasks, config)
    runs = {s: fine_tune(model, tasks, s, config, curves=curves) for s in strategies}
    return TransferComparison(model, history, runs)


def label_efficiency(
    tasks: DigitTasks,
    labels_per_class: Sequence[int],
    config: TransferConfig | None = None,
    strategies: Sequence[str] = ("from scratch", "frozen body (head only)", "fine-tune (small lr)"),
    sample_seeds: Sequence[int] = (0, 1),
    pretrained: tuple[BodyHeadNet, History] | None = None,
) -> pd.DataFrame:
    """New-task test accuracy against the number of labels per class, over several label draws.

    This is the "fine-tuning saves data" experiment: the pre-trained start is worth most when
    labels are scarce and matters less as they grow. One pre-trained model (``pretrained`` or one
    trained here) serves every draw. Returns one row per (labels_per_class, strategy) with the
    mean and standard deviation over ``sample_seeds`` of the final new- and old-task accuracy.
    """
    config = config or TransferConfig()
    if not labels_per_class or not sample_seeds:
        raise ConfigError("label_efficiency needs at least one labels_per_class value and one sample seed.")
    pretrained = pretrained or pretrain(tasks, config)
    rows = []
    for n in labels_per_class:
        for sample_seed in sample_seeds:
            drawn = tasks.with_labels_per_class(int(n), sample_seed)
            comparison = compare_strategies(
                drawn, dataclasses.replace(config, seed=config.seed + sample_seed), strategies,
                pretrained=pretrained, curves=False,
            )
            for name, run in comparison.runs.items():
                rows.append({"labels_per_class": int(n), "strategy": name, "sample_seed": sample_seed,
                             "new_task_acc": run.final("new_task_acc"), "old_task_acc": run.final("old_task_acc")})
    frame = pd.DataFrame(rows)
    table = frame.groupby(["labels_per_class", "strategy"], sort=False).agg(
        new_task_acc=("new_task_acc", "mean"), new_task_std=("new_task_acc", "std"),
        old_task_acc=("old_task_acc", "mean"),
    )
    return table.reset_index()


def learning_rate_sweep(
    pretrained: tuple[BodyHeadNet, History],
    tasks: DigitTasks,
    learning_rates: Mapping[str, float],
    config: TransferConfig | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    epochs: int = 90,
) -> pd.DataFrame:
    """Full fine-tuning at each learning rate, over several seeds and label draws, with a long budget.

    Taught in lesson 01 (catastrophic forgetting). Each seed draws another labelled set of the new
    task and another head initialisation, so the spread shows how much of a difference is luck.
    Every rate gets the same, generous number of epochs (``epochs``), long enough for the slow rate
    to finish learning its 25 images too: a rate is not judged by a budget that suits another. One
    row per (rate, seed): the new task's and the old task's test accuracy, and the final training loss.
    """
    config = config or TransferConfig()
    if not learning_rates or not seeds:
        raise ConfigError("learning_rate_sweep needs at least one learning rate and one seed.")
    if any(not lr > 0 for lr in learning_rates.values()):
        raise ConfigError(f"learning rates must be positive, got {dict(learning_rates)}.")
    model, history = pretrained
    rows = []
    for name, lr in learning_rates.items():
        for seed in seeds:
            drawn = tasks.with_labels_per_class(tasks.labels_per_class, sample_seed=seed)
            cfg = dataclasses.replace(config, seed=seed, small_lr=float(lr), finetune_epochs=int(epochs))
            run = fine_tune(model, drawn, "fine-tune (small lr)", cfg, curves=False)
            rows.append({"learning_rate": name, "lr": float(lr), "seed": seed,
                         "new_task_acc": run.final("new_task_acc"), "old_task_acc": run.final("old_task_acc"),
                         "old_task_drop": history.final("old_task_acc") - run.final("old_task_acc"),
                         "final_train_loss": run.final("train_loss")})
    return pd.DataFrame(rows)
