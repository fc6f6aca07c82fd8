"""Per-learner data variants: each learner's exercise data come from their own seed.

Exercises with a numeric answer draw their data from :func:`variant_seed`
(``make_fraud_data(**variant_data("fraud"))``), so two learners get different expected answers and
a copied number is wrong for the copier; the grader computes each learner's expected answer for that
learner's seed. Seed 0 is the solutions' data and is never in a grading pool: a learner who copies the
published solution's number is always wrong. Taught in exercise 07.
"""

from __future__ import annotations

import hashlib
import os

from course_utils.errors import ConfigError

VARIANT_ENV = "COURSE_VARIANT_SEED"
FRAUD_RATE_RANGE = (0.01, 0.03)


def variant_seed() -> int:
    """This learner's data seed: set by the grader for each learner, 0 (the solutions' data) otherwise."""
    raw = os.environ.get(VARIANT_ENV, "0")
    try:
        return max(0, int(raw))
    except ValueError:
        return 0


def _unit(seed: int, purpose: str) -> float:
    """A number in [0, 1) fixed by ``seed`` and ``purpose``, spread evenly (not ``seed % k``)."""
    digest = hashlib.sha256(f"{purpose}:{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def variant_data(name: str, seed: int | None = None) -> dict:
    """Keyword arguments of an exercise's data generator for this learner's variant.

    Seed 0 (no grader) is always the solutions' data. ``"fraud"`` -> ``make_fraud_data(**kwargs)``: any
    other seed also sets the fraud rate, spread over 1% to 3% in steps of 0.01 percentage points by a
    hash of the seed, so the answers of two learners differ by more than a rounding step. ``"splits"``
    (exercise 02's split seed), ``"digits"`` (exercise 06's digit split) and ``"cv"`` (exercise 06's
    folds: shuffled, stratified, seeded) vary the other answers that come from drawn data.
    """
    seed = variant_seed() if seed is None else int(seed)
    if name == "fraud":
        if seed == 0:
            return {"seed": 0}
        low, high = FRAUD_RATE_RANGE
        return {"seed": seed, "fraud_rate": round(low + (high - low) * _unit(seed, "fraud_rate"), 4)}
    if name == "splits":  # split_dataset(raw, **variant_data("splits")): exercise 02
        return {"seed": 42 + seed}
    if name == "digits":  # load_digits_splits(n_train=200, n_val=400, **variant_data("digits")): exercise 06
        return {"seed": seed}
    if name == "cv":  # cross_val_score(..., **variant_data("cv")): exercise 06
        if seed == 0:
            return {"cv": 5}
        from sklearn.model_selection import StratifiedKFold

        return {"cv": StratifiedKFold(5, shuffle=True, random_state=seed)}
    raise ConfigError(f"no variant data named {name!r}; known: 'fraud', 'splits', 'digits', 'cv'.")
