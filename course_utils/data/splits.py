"""Train, validation and test splits, the leakage between them, and class-preserving samples.

:func:`split_dataset` makes stratified, seeded splits; :func:`check_leakage` finds texts that sit in
more than one split, exactly or up to :func:`course_utils.data.cleaning.near_duplicate_key`;
:func:`stratified_sample` shrinks a lesson to the CPU profile without changing its class balance;
:func:`balanced_batches` orders training rows into batches that hold every class equally.

Taught in lesson 02 (cleaning, splits, leakage); every later lesson splits with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from course_utils.data.cleaning import check_text_frame, near_duplicate_key
from course_utils.errors import ConfigError, DataError

__all__ = ["LeakageReport", "Splits", "balanced_batches", "check_leakage", "split_dataset", "stratified_sample"]


@dataclass
class Splits:
    """Train, validation and test frames: tune on validation, report on test once."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}

    def items(self):
        return [("train", self.train), ("validation", self.validation), ("test", self.test)]


def _check_labels(df: pd.DataFrame, label_column: str, where: str) -> None:
    check_text_frame(df, where)
    if label_column not in df.columns:
        raise DataError(f"{where}: no label column {label_column!r} (columns: {list(df.columns)}).")
    counts = df[label_column].value_counts()
    if len(counts) < 2:
        raise DataError(f"{where}: need at least two classes in {label_column!r}, found {list(counts.index)}.")


def split_dataset(
    df: pd.DataFrame,
    val_size: float = 0.1,
    test_size: float = 0.1,
    seed: int = 42,
    label_column: str = "label",
) -> Splits:
    """Stratified train/validation/test split, reproducible with ``seed``.

    Stratifying keeps the class shares equal in every split, so a metric difference between
    validation and test is about the model, not about a different class mix.
    """
    _check_labels(df, label_column, "split_dataset")
    if not (0 < val_size < 1 and 0 < test_size < 1 and val_size + test_size < 1):
        raise DataError(f"split_dataset: val_size and test_size must be in (0, 1) with sum < 1, got {val_size}, {test_size}.")
    counts = df[label_column].value_counts()
    if counts.min() < 3:
        raise DataError(
            f"split_dataset: class {counts.idxmin()!r} has only {counts.min()} row(s); "
            "each class needs at least 3 to appear in train, validation and test."
        )
    rest, test = train_test_split(df, test_size=test_size, random_state=seed, stratify=df[label_column])
    relative_val = val_size / (1.0 - test_size)
    train, val = train_test_split(rest, test_size=relative_val, random_state=seed, stratify=rest[label_column])
    frames = {"train": train, "validation": val, "test": test}
    # Stratification rounds: a class with 3-9 rows can come out with none in validation or test.
    # Move one row of it from the split that has the most, so every split sees every class.
    for label in counts.index:
        for name in ("validation", "test"):
            if (frames[name][label_column] == label).any():
                continue
            donor = max(("train", "validation", "test"), key=lambda n: int((frames[n][label_column] == label).sum()))
            row = frames[donor].index[frames[donor][label_column] == label][0]
            frames[name] = pd.concat([frames[name], frames[donor].loc[[row]]])
            frames[donor] = frames[donor].drop(index=row)
    for name, frame in frames.items():
        frame = frame.reset_index(drop=True)
        # The split travels with the frame, so helpers that make a choice can refuse the test split.
        frame.attrs["split"] = name
        frames[name] = frame
    return Splits(**frames)


@dataclass
class LeakageReport:
    """Texts that appear in more than one split.

    ``pairs`` has one row per shared text and pair of splits, with how many rows of each split
    carry it; ``leaked_rows`` counts, per evaluation split, the rows whose text is also in an
    earlier split (train before validation before test): those rows score memory, not skill.
    """

    pairs: pd.DataFrame
    leaked_rows: dict

    @property
    def n_pairs(self) -> int:
        return len(self.pairs)

    @property
    def ok(self) -> bool:
        return self.pairs.empty

    def __str__(self) -> str:
        if self.ok:
            return "no leakage: no text appears in two splits"
        rows = ", ".join(f"{k}: {v}" for k, v in self.leaked_rows.items())
        return f"LEAKAGE: {self.n_pairs} shared text(s) between splits; rows that also occur in an earlier split: {rows}"


def check_leakage(splits: Splits, near: bool = True) -> LeakageReport:
    """Find texts shared between splits, exactly or (``near=True``) up to :func:`near_duplicate_key`."""
    keyed = {}
    for name, frame in splits.items():
        keys = frame["text"].map(near_duplicate_key) if near else frame["text"].astype(str)
        keyed[name] = pd.DataFrame({"key": keys.values, "text": frame["text"].astype(str).values})
        keyed[name] = keyed[name][keyed[name]["key"] != ""]
    names = [name for name, _ in splits.items()]
    parts, leaked = [], {}
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            ca = keyed[a].groupby("key").agg(text_a=("text", "first"), rows_a=("text", "size"))
            cb = keyed[b].groupby("key").agg(text_b=("text", "first"), rows_b=("text", "size"))
            shared = ca.join(cb, how="inner").reset_index()
            shared.insert(0, "split_b", b)
            shared.insert(0, "split_a", a)
            parts.append(shared)
        if i > 0:
            earlier = set().union(*(set(keyed[n]["key"]) for n in names[:i]))
            leaked[a] = int(keyed[a]["key"].isin(earlier).sum())
    columns = ["split_a", "split_b", "key", "text_a", "rows_a", "text_b", "rows_b"]
    pairs = pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)
    return LeakageReport(pairs, leaked)


def stratified_sample(df: pd.DataFrame, n: int | None, seed: int = 42, label_column: str = "label") -> pd.DataFrame:
    """At most ``n`` rows with the class shares of ``df``; ``None`` or ``n >= len(df)`` keeps all.

    Used to shrink a lesson to the CPU profile without changing the class balance it teaches on.
    """
    if n is None or n >= len(df):
        return df.reset_index(drop=True)
    if n < 1:
        raise DataError(f"stratified_sample: n must be positive, got {n}.")
    n_classes = df[label_column].nunique()
    if n < n_classes:
        return df.sample(n=n, random_state=seed).reset_index(drop=True)
    sample, _ = train_test_split(df, train_size=n, random_state=seed, stratify=df[label_column])
    return sample.reset_index(drop=True)


def balanced_batches(labels: Sequence, batch_size: int, steps: int, seed: int = 0) -> np.ndarray:
    """Row positions for ``steps`` batches that each hold ``batch_size / n_classes`` rows of every class.

    Why: a short run on imbalanced labels (lesson 09: 70% negative, 20 steps) can lower its loss fastest
    by answering the majority label, and some seeds end there, at the floor. Batches with every class in
    equal numbers remove that shortcut. Each class's rows come in a seeded random order and start again
    (a new order) only once all of them were used, so minority rows repeat sooner than majority rows.
    Returns an int array of shape ``(steps, batch_size)``, each batch's rows grouped by class.
    """
    labels = np.asarray(labels)
    classes = np.unique(labels)
    if len(classes) < 2:
        raise DataError(f"balanced_batches needs at least two classes, got {classes.tolist()}.")
    if steps < 1 or batch_size < 1 or batch_size % len(classes):
        raise ConfigError(f"balanced_batches: steps must be >= 1 and batch_size a multiple of the {len(classes)} "
                          f"classes, got steps={steps}, batch_size={batch_size}.")
    per_class, rng = batch_size // len(classes), np.random.default_rng(seed)
    columns = []
    for label in classes:
        rows = np.flatnonzero(labels == label)
        laps = -(-steps * per_class // len(rows))   # ceil: how many passes over this class's rows
        stream = np.concatenate([rng.permutation(rows) for _ in range(laps)])[: steps * per_class]
        columns.append(stream.reshape(steps, per_class))
    return np.concatenate(columns, axis=1)
