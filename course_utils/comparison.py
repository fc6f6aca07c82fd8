"""Is A better than B? A paired difference over seeds (or resamples), with an interval and a verdict.

When two settings are run on the same seeds, each seed gives both the same data draw, initialisation
and order, so the fair question is how much A beats B *on each seed*: the per-seed differences cancel
the luck the two runs share, which two separate mean ± sd columns cannot. The verdict says "higher" or
"lower" only when the whole interval of the mean difference lies on one side of zero, and "no clear
difference" otherwise, so a lesson that prints the verdict and asserts it fails when a rerun reverses it.

Runs that failed (ended at chance, or never fitted their data) are not noise to average: lessons count
them apart with :func:`failed_runs` and compare the rest.

Taught in lesson 01 (section 6) and used by every lesson that compares settings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from course_utils.errors import DataError

VERDICTS = ("higher", "lower", "no clear difference")


@dataclass(frozen=True)
class PairedDifference:
    """``a - b`` per pair, its mean and a Student-t interval of that mean."""

    differences: tuple[float, ...]
    mean: float
    low: float
    high: float
    confidence: float = 0.95
    basis: str = ""   # what the interval is over, when not the pairs themselves (a bootstrap's resamples)

    @property
    def n(self) -> int:
        return len(self.differences)

    @property
    def verdict(self) -> str:
        if self.low > 0:
            return "higher"
        if self.high < 0:
            return "lower"
        return "no clear difference"

    def __str__(self) -> str:
        runs = self.basis or (f"over {self.n} pairs" if self.n > 1 else "difference of means")
        return f"{self.mean:+.3f} [{self.low:+.3f}, {self.high:+.3f}] {runs} ({self.confidence:.0%} interval): {self.verdict}"


def paired_difference(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> PairedDifference:
    """The paired difference ``a[i] - b[i]`` (same seed ``i``), with a t interval for its mean.

    Needs at least two pairs (one pair has no spread to judge). Identical pairs give a zero-width
    interval around their difference.
    """
    from scipy import stats

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise DataError(f"paired_difference needs two 1-D sequences of the same length, got {x.shape} and {y.shape}.")
    if len(x) < 2:
        raise DataError("paired_difference needs at least two pairs (seeds) to say anything about the spread.")
    if not 0 < confidence < 1:
        raise DataError(f"confidence must be between 0 and 1, got {confidence}.")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise DataError("paired_difference got a NaN or infinite score; drop failed runs first (failed_runs).")
    d = x - y
    mean = float(d.mean())
    half = float(stats.t.ppf(0.5 + confidence / 2, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d)))
    return PairedDifference(tuple(float(v) for v in d), mean, mean - half, mean + half, confidence)


def unpaired_difference(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> PairedDifference:
    """``mean(a) - mean(b)`` for runs that share nothing but the task (Welch's t interval).

    For two procedures whose seeds are unrelated (seed 3 of random search and seed 3 of TPE draw
    different things), pairing by seed number would pretend to cancel luck that is not shared.
    ``differences`` then holds the two means' difference alone.
    """
    from scipy import stats

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.ndim != 1 or y.ndim != 1 or len(x) < 2 or len(y) < 2:
        raise DataError("unpaired_difference needs two 1-D sequences of at least two runs each.")
    if not 0 < confidence < 1:
        raise DataError(f"confidence must be between 0 and 1, got {confidence}.")
    va, vb = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    mean = float(x.mean() - y.mean())
    if va + vb == 0:
        return PairedDifference((mean,), mean, mean, mean, confidence)
    dof = (va + vb) ** 2 / ((va**2 / (len(x) - 1) if va else 0) + (vb**2 / (len(y) - 1) if vb else 0))
    half = float(stats.t.ppf(0.5 + confidence / 2, dof) * math.sqrt(va + vb))
    return PairedDifference((mean,), mean, mean - half, mean + half, confidence)


def failed_runs(scores: Sequence[float], floor: float, margin: float = 0.0) -> list[int]:
    """Positions of runs that ended at or below ``floor`` (+ ``margin``): a majority class, chance, no fit."""
    return [i for i, s in enumerate(scores) if not float(s) > floor + margin]


def predicts_one_class(predicted: Sequence[int], share: float = 0.95) -> bool:
    """Whether a classifier ended at the majority-class floor: one class for at least ``share`` of the texts.

    Such a run learned nothing about the inputs; it says the budget or the learning rate was wrong, not
    how good the method is, so lessons count it as failed instead of averaging it into a spread (lesson 08).
    """
    values = np.asarray(predicted)
    if values.size == 0:
        raise DataError("predicts_one_class: no predictions.")
    if not 0 < share <= 1:
        raise DataError(f"share must be in (0, 1], got {share}.")
    return bool(np.unique(values, return_counts=True)[1].max() >= share * values.size)
