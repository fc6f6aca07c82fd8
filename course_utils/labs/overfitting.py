"""Small, fast experiments that make overfitting visible (lesson 06).

Fine-tuning a 23M-parameter BERT on a few hundred tweets overfits in exactly the ways a tiny MLP
overfits a few hundred digits, but the MLP trains in a second on a laptop CPU. So the lesson runs
every remedy (early stopping, dropout, weight decay, fewer epochs, frozen layers, cleaner labels)
on the MLP, where a learner can afford to compare ten runs side by side, and the ideas carry over
unchanged to the transformer lessons.

Taught in lesson 06 (overfitting and best practices).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from course_utils.errors import ConfigError, DataError
from course_utils.labs.loop import ArraySplits, History, accuracy, as_tensors, evaluate, fit, mlp
from course_utils.models import count_parameters

# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def load_digits_splits(
    n_train: int = 200,
    n_val: int = 400,
    label_noise: float = 0.0,
    classes: Sequence[int] | None = None,
    seed: int = 0,
) -> ArraySplits:
    """The scikit-learn 8x8 digits, cut into a *small* training set and larger evaluation sets.

    A small training set is the whole point: with a couple of hundred examples a two-layer MLP can
    memorise everything, which is the situation of fine-tuning on a small labelled corpus. Pixels
    are scaled to [0, 1]. ``classes`` keeps only some digits and re-numbers them 0..k-1 (used to
    build a "pretraining" task and a different "fine-tuning" task). Whatever is not train or
    validation becomes the test set. Label noise, if any, is applied to the training labels only:
    the evaluation sets stay clean, so they measure the real task.
    """
    X, y = _digits_arrays()
    if classes is not None:
        classes = [int(c) for c in classes]
        unknown = sorted(set(classes) - set(range(10)))
        if unknown or len(set(classes)) < 2:
            raise DataError(f"classes must be at least two distinct digits 0-9, got {classes}.")
        keep = np.isin(y, classes)
        X, y = X[keep], y[keep]
        remap = {c: i for i, c in enumerate(classes)}
        y = np.array([remap[int(v)] for v in y], dtype=np.int64)
    else:
        classes = list(range(10))
    if n_train < len(classes) or n_val < len(classes):
        raise DataError(f"n_train={n_train} and n_val={n_val} must each be at least the number of classes ({len(classes)}).")
    if n_train + n_val >= len(y):
        raise DataError(
            f"n_train + n_val = {n_train + n_val} leaves no test set: only {len(y)} digits are available "
            f"for classes {classes}. Use smaller sizes."
        )
    from sklearn.model_selection import train_test_split

    X_train, X_rest, y_train, y_rest = train_test_split(X, y, train_size=n_train, stratify=y, random_state=seed)
    X_val, X_test, y_val, y_test = train_test_split(X_rest, y_rest, train_size=n_val, stratify=y_rest, random_state=seed)
    y_clean = None
    if label_noise > 0:
        y_clean = y_train
        y_train, _ = inject_label_noise(y_train, label_noise, n_classes=len(classes), seed=seed)
    return ArraySplits(X_train, y_train, X_val, y_val, X_test, y_test, classes, y_train_clean=y_clean)


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.data / 16.0).astype(np.float32), digits.target.astype(np.int64)


_TARGET_TASKS = {
    "parity": (lambda d: d % 2, 2),
    "mod3": (lambda d: d % 3, 3),
    "five_or_more": (lambda d: (d >= 5).astype(np.int64), 2),
}


def load_digits_transfer(
    n_source: int = 900,
    n_target_train: int = 100,
    n_val: int = 400,
    target: str = "parity",
    label_noise: float = 0.2,
    seed: int = 0,
) -> tuple[ArraySplits, ArraySplits]:
    """A "pretraining" task and a different, small "fine-tuning" task on disjoint digit images.

    The source task is the full 10-class problem on ``n_source`` images (a tenth of them held out
    for validation). The target task relabels *other* images (``target``: "parity", "mod3" or
    "five_or_more") and gives only ``n_target_train`` of them, with ``label_noise``, for training:
    the position of a BERT checkpoint facing a small, imperfect labelled set. Features learned on
    the source task are useful for the target one, which is what makes freezing them pay off.
    """
    if target not in _TARGET_TASKS:
        raise ConfigError(f"unknown target task {target!r}; use one of {sorted(_TARGET_TASKS)}.")
    relabel, k = _TARGET_TASKS[target]
    X, y = _digits_arrays()
    if n_source + n_target_train + n_val >= len(y) or min(n_source, n_target_train, n_val) < 20:
        raise DataError(
            f"n_source + n_target_train + n_val must be below the {len(y)} digits available (each at least 20), "
            f"got {n_source} + {n_target_train} + {n_val}."
        )
    from sklearn.model_selection import train_test_split

    Xs, Xt, ys, yt = train_test_split(X, y, train_size=n_source, stratify=y, random_state=seed)
    Xs_tr, Xs_va, ys_tr, ys_va = train_test_split(Xs, ys, test_size=0.1, stratify=ys, random_state=seed)
    source = ArraySplits(Xs_tr, ys_tr, Xs_va, ys_va, Xs_va[:0], ys_va[:0], list(range(10)))
    zt = relabel(yt)
    Xt_tr, Xt_rest, zt_tr, zt_rest = train_test_split(Xt, zt, train_size=n_target_train, stratify=zt, random_state=seed)
    Xt_va, Xt_te, zt_va, zt_te = train_test_split(Xt_rest, zt_rest, train_size=n_val, stratify=zt_rest, random_state=seed)
    noisy = inject_label_noise(zt_tr, label_noise, n_classes=k, seed=seed)[0] if label_noise > 0 else zt_tr
    target_splits = ArraySplits(
        Xt_tr, noisy, Xt_va, zt_va, Xt_te, zt_te, list(range(k)), y_train_clean=zt_tr if label_noise > 0 else None
    )
    return source, target_splits


def inject_label_noise(
    y, rate: float, n_classes: int | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Flip exactly ``round(rate * n)`` labels, each to a *different* random class.

    Returns the noisy labels and a boolean mask of the flipped rows. Flipping an exact count (rather
    than each label with probability ``rate``) keeps a sweep over rates monotone even on tiny
    sets, so the lesson's "more noise, bigger gap" plot is not blurred by sampling luck.
    """
    y = np.asarray(y)
    if y.ndim != 1 or len(y) == 0:
        raise DataError(f"y must be a non-empty 1-D array of class indices, got shape {y.shape}.")
    if not 0.0 <= rate <= 1.0:
        raise ConfigError(f"rate must be between 0 and 1, got {rate}.")
    n_classes = int(n_classes if n_classes is not None else y.max() + 1)
    if n_classes < 2:
        raise ConfigError("label noise needs at least two classes to flip between.")
    if y.min() < 0 or y.max() >= n_classes:
        raise DataError(f"labels must be class indices in 0..{n_classes - 1}, got values {y.min()}..{y.max()}.")
    rng = np.random.default_rng(seed)
    n_flip = int(round(rate * len(y)))
    flipped = np.zeros(len(y), dtype=bool)
    flipped[rng.choice(len(y), size=n_flip, replace=False)] = True
    noisy = y.astype(np.int64).copy()
    # Adding 1..k-1 modulo k always lands on another class, uniformly.
    offsets = rng.integers(1, n_classes, size=n_flip)
    noisy[flipped] = (noisy[flipped] + offsets) % n_classes
    return noisy, flipped


# --------------------------------------------------------------------------------------------
# Model and training
# --------------------------------------------------------------------------------------------


@dataclass
class MLPConfig:
    """Everything that changes between the lesson's overfitting experiments.

    ``patience`` turns early stopping on: stop after that many epochs without a better validation
    loss. ``restore_best`` then rolls the weights back to the best epoch, which is what the
    transformers Trainer does with ``load_best_model_at_end=True``.
    """

    hidden: tuple[int, ...] = (256, 256)
    dropout: float = 0.0
    weight_decay: float = 0.0
    lr: float = 1e-3
    epochs: int = 100
    batch_size: int = 32
    patience: int | None = None
    restore_best: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        self.hidden = tuple(int(h) for h in self.hidden)
        if any(h < 1 for h in self.hidden):
            raise ConfigError(f"hidden layer sizes must be positive, got {self.hidden}.")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}.")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay}.")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}.")
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError(f"epochs and batch_size must be >= 1, got {self.epochs} and {self.batch_size}.")
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"patience must be None (no early stopping) or >= 1, got {self.patience}.")


def build_mlp(n_features: int, n_classes: int, hidden: Sequence[int] = (256, 256), dropout: float = 0.0) -> nn.Sequential:
    """Lesson 06's network: :func:`course_utils.labs.loop.mlp` with the lesson's default width.

    Taught in lesson 06. One flat ``nn.Sequential`` with optional dropout and the head last, so
    :func:`replace_head` swaps it and :func:`freeze_layers` can freeze any prefix.
    """
    if n_features < 1:
        raise ConfigError(f"need n_features >= 1, got {n_features}.")
    return mlp(n_features, hidden, n_classes, dropout)


def replace_head(model: nn.Sequential, n_classes: int) -> nn.Sequential:
    """Swap the final Linear for a fresh one with ``n_classes`` outputs, as a new fine-tuning task needs."""
    head = model[-1]
    if not isinstance(head, nn.Linear):
        raise ConfigError(f"the model's last module must be nn.Linear to be replaced, found {type(head).__name__}.")
    model[-1] = nn.Linear(head.in_features, n_classes)
    return model


def freeze_layers(model: nn.Module, n_linear: int | None = None) -> int:
    """Freeze the first ``n_linear`` Linear layers (default: all but the head); return trainable params.

    Frozen layers keep their pretrained features; only the rest adapts to the small new data set,
    which leaves the model far fewer ways to memorise it.
    """
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    n_linear = len(linears) - 1 if n_linear is None else n_linear
    if not 0 <= n_linear <= len(linears):
        raise ConfigError(f"n_linear must be between 0 and {len(linears)} (the model's Linear layers), got {n_linear}.")
    for i, layer in enumerate(linears):
        for p in layer.parameters():
            p.requires_grad = i >= n_linear
    return count_parameters(model, trainable_only=True)


def train_mlp(
    X_train,
    y_train,
    X_val,
    y_val,
    config: MLPConfig | None = None,
    model: nn.Module | None = None,
) -> tuple[nn.Module, History]:
    """Lesson 06's run: AdamW with ``config``'s dials, train/validation curves after every epoch.

    Taught in lesson 06. The loop is :func:`course_utils.labs.loop.fit`; this adds what lesson 06
    varies. Pass ``model`` to continue from pretrained (and possibly partly frozen) weights;
    otherwise a fresh :func:`build_mlp` is created from ``config``. Train and validation loss and
    accuracy are measured the same way (eval mode, whole set), so their gap is real. With
    ``config.patience`` set, training stops once the validation loss has not improved for that many
    epochs, and (with ``restore_best``) the best epoch's weights come back.
    """
    config = config or MLPConfig()
    Xt, yt = as_tensors(X_train, y_train, "train")
    Xv, yv = as_tensors(X_val, y_val, "validation")
    if Xt.shape[1] != Xv.shape[1]:
        raise DataError(f"train has {Xt.shape[1]} features but validation has {Xv.shape[1]}.")
    torch.manual_seed(config.seed)
    if model is None:
        n_classes = int(max(yt.max().item(), yv.max().item()) + 1)
        model = build_mlp(Xt.shape[1], n_classes, config.hidden, config.dropout)
    measured: dict[str, tuple[float, float]] = {}

    def measure(split: str, X: torch.Tensor, y: torch.Tensor, index: int):
        def read(m: nn.Module) -> float:
            if index == 0:  # loss first: one pass gives both numbers
                measured[split] = evaluate(m, X, y)
            return measured[split][index]
        return read

    history = fit(
        model, Xt, yt, epochs=config.epochs, lr=config.lr, batch_size=config.batch_size, optimizer="adamw",
        weight_decay=config.weight_decay, record_initial=False, patience=config.patience,
        restore_best=config.restore_best, seed=config.seed,
        evaluate={"train_loss": measure("train", Xt, yt, 0), "val_loss": measure("val", Xv, yv, 0),
                  "train_accuracy": measure("train", Xt, yt, 1), "val_accuracy": measure("val", Xv, yv, 1)},
    )
    model.eval()
    return model, history


# --------------------------------------------------------------------------------------------
# Experiments
# --------------------------------------------------------------------------------------------


def compare_runs(histories: dict[str, History]) -> pd.DataFrame:
    """One row per named run with :meth:`History.summary`, for a side-by-side table."""
    if not histories:
        raise ConfigError("compare_runs needs at least one named history.")
    return pd.DataFrame([{"run": name, **h.summary()} for name, h in histories.items()]).set_index("run")


def label_noise_sweep(
    splits: ArraySplits, rates: Sequence[float], config: MLPConfig | None = None, seed: int = 0
) -> pd.DataFrame:
    """Train the same model on training labels with more and more noise; report the gap.

    ``train_accuracy`` is measured against the labels the model was trained on (noisy ones
    included: that is what "fitting the training set" means), ``val_accuracy`` against the clean
    validation labels. Memorised wrong labels push the first up and the second down.
    """
    config = config or MLPConfig()
    clean = splits.y_train_clean if splits.y_train_clean is not None else splits.y_train
    rows = []
    for rate in rates:
        noisy, flipped = inject_label_noise(clean, rate, n_classes=len(splits.classes), seed=seed)
        model, history = train_mlp(splits.X_train, noisy, splits.X_val, splits.y_val, config)
        train_acc = accuracy(model, splits.X_train, noisy)
        val_acc = accuracy(model, splits.X_val, splits.y_val)
        rows.append(
            {
                "noise_rate": float(rate),
                "flipped": int(flipped.sum()),
                "train_accuracy": train_acc,
                "val_accuracy": val_acc,
                "gap": train_acc - val_acc,
                "best_epoch": history.best_epoch,
            }
        )
    return pd.DataFrame(rows)


def selection_bias_experiment(
    pool_predictions,
    y_pool,
    val_size: int,
    test_size: int,
    n_repeats: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """How much does choosing a configuration *on the test set* inflate the reported score?

    ``pool_predictions`` holds each candidate configuration's predictions (rows) on a pool of
    held-out examples (columns) that none of them trained on. Each repeat cuts the pool at random
    into a validation set, a test set and a large *fresh* set, then plays two strategies:

    - ``"select on test"``: pick the configuration with the best test score, report that score;
    - ``"select on validation"``: pick by validation score, report the test score.

    ``fresh`` is the chosen configuration's accuracy on the unused rest of the pool: the score it
    would really get on new data. ``optimism = reported - fresh``. Repeating over many random cuts
    averages out luck, so the difference between the strategies is the bias itself.
    """
    preds = np.asarray(pool_predictions)
    y = np.asarray(y_pool)
    if preds.ndim != 2 or preds.shape[1] != len(y):
        raise DataError(
            f"pool_predictions must be (configs x examples) with one column per pool label: got {preds.shape} "
            f"for {len(y)} labels."
        )
    if preds.shape[0] < 2:
        raise ConfigError("selection needs at least two candidate configurations.")
    if val_size < 1 or test_size < 1 or val_size + test_size >= len(y):
        raise ConfigError(
            f"val_size ({val_size}) + test_size ({test_size}) must leave a fresh set out of {len(y)} pool examples."
        )
    correct = preds == y[None, :]
    rng = np.random.default_rng(seed)
    rows = []
    for repeat in range(n_repeats):
        order = rng.permutation(len(y))
        val, test, fresh = np.split(order, [val_size, val_size + test_size])
        val_acc, test_acc, fresh_acc = (correct[:, part].mean(axis=1) for part in (val, test, fresh))
        for strategy, chosen in (("select on test", int(test_acc.argmax())), ("select on validation", int(val_acc.argmax()))):
            rows.append(
                {
                    "repeat": repeat,
                    "strategy": strategy,
                    "chosen": chosen,
                    "reported": float(test_acc[chosen]),
                    "fresh": float(fresh_acc[chosen]),
                    "optimism": float(test_acc[chosen] - fresh_acc[chosen]),
                }
            )
    return pd.DataFrame(rows)


def config_grid_sample(n: int, seed: int = 0) -> list[MLPConfig]:
    """``n`` random but reasonable MLP configurations, as a hyperparameter search would try."""
    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}.")
    rng = np.random.default_rng(seed)
    configs = []
    for i in range(n):
        width = int(rng.choice([32, 64, 128, 256]))
        configs.append(
            MLPConfig(
                hidden=(width,) * int(rng.integers(1, 3)),
                dropout=float(rng.choice([0.0, 0.2, 0.5])),
                weight_decay=float(rng.choice([0.0, 1e-3, 1e-2, 1e-1])),
                lr=float(10 ** rng.uniform(-3.3, -2.3)),
                epochs=int(rng.integers(15, 60)),
                seed=seed * 1000 + i,
            )
        )
    return configs


def describe_config(config: MLPConfig) -> dict:
    """A flat dict of a config, for a table of candidates."""
    d = asdict(config)
    d["hidden"] = "x".join(str(h) for h in config.hidden)
    return d
