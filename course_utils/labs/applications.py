"""Small, runnable versions of three industry problems (lesson 07): healthcare, fraud, recommendation.

Each domain turns one lesson of the course into a hard constraint: medicine cannot afford missed
positives, fraud data is 99% negatives so accuracy means nothing, and a recommender is judged by
ranking, not classification. The data here is either bundled with scikit-learn (breast cancer) or
*synthetic and generated with a fixed seed* (transactions, shopping baskets), so every run of the
lesson prints the same numbers without downloading anything; the lesson labels it as synthetic.
The helpers also cover the challenges each domain brings: drift, privacy, explanations, cold start.

Taught in lesson 07 (real-world applications); lesson 04 uses its breast-cancer splits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from course_utils.errors import ConfigError, DataError
from course_utils.labs.loop import ArraySplits
from course_utils.metrics import metrics_at_threshold

# --------------------------------------------------------------------------------------------
# Healthcare
# --------------------------------------------------------------------------------------------


def _three_way_split(X, y, val_size: float, test_size: float, seed: int, names: list[str]) -> ArraySplits:
    from sklearn.model_selection import train_test_split

    if not (0 < val_size < 1 and 0 < test_size < 1 and val_size + test_size < 1):
        raise ConfigError(f"val_size and test_size must be fractions summing below 1, got {val_size} and {test_size}.")
    X_rest, X_test, y_rest, y_test = train_test_split(X, y, test_size=test_size, stratify=y, random_state=seed)
    X_train, X_val, y_train, y_val = train_test_split(
        X_rest, y_rest, test_size=val_size / (1 - test_size), stratify=y_rest, random_state=seed
    )
    return ArraySplits(X_train, y_train, X_val, y_val, X_test, y_test, classes=[0, 1], feature_names=names)


def load_breast_cancer_splits(val_size: float = 0.2, test_size: float = 0.2, seed: int = 0) -> ArraySplits:
    """Wisconsin breast-cancer data with **malignant = 1**, split train/validation/test.

    scikit-learn codes malignant as 0; a screening model is about finding malignant tumours, so the
    course flips it: "positive" then means "the thing we must not miss", and recall is recall of
    cancers. The threshold is chosen on validation, and test is touched once to confirm it.
    """
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    y = (data.target == 0).astype(np.int64)
    return _three_way_split(data.data, y, val_size, test_size, seed, [str(n) for n in data.feature_names])


def expected_cost(metrics: dict, cost_fn: float, cost_fp: float) -> float:
    """Total cost of the errors in a :func:`metrics.metrics_at_threshold` result.

    Putting a price on each kind of mistake (a missed cancer vs an unnecessary biopsy) turns the
    choice of threshold into arithmetic that a clinician can argue with.
    """
    if cost_fn < 0 or cost_fp < 0:
        raise ConfigError(f"costs must be >= 0, got cost_fn={cost_fn}, cost_fp={cost_fp}.")
    return float(metrics["fn"] * cost_fn + metrics["fp"] * cost_fp)


def proportion_interval(successes: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion such as recall (= TP out of TP + FN).

    A test set with 40 cancers measures recall in steps of 2.5 points, and luck moves it by more.
    Reporting the interval, not just the point estimate, is what a clinical validation (and a
    regulator reading it) expects; Wilson's interval behaves well even at 0% or 100%.
    """
    from statistics import NormalDist

    if total < 1 or not 0 <= successes <= total:
        raise DataError(f"need 0 <= successes <= total and total >= 1, got {successes} of {total}.")
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be between 0 and 1, got {confidence}.")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * np.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    # at 0% and 100% the bound is exactly 0 or 1; set it rather than trust floating-point rounding
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == total else min(1.0, centre + half)
    return float(low), float(high)


# --------------------------------------------------------------------------------------------
# Privacy
# --------------------------------------------------------------------------------------------


def true_label_confidence(proba, y) -> np.ndarray:
    """The probability a model gives each example's *true* class."""
    proba = np.asarray(proba, dtype=float)
    y = np.asarray(y).astype(int)
    if proba.ndim != 2 or len(proba) != len(y):
        raise DataError(f"proba must be (examples x classes) with one row per label: got {proba.shape} for {len(y)} labels.")
    if y.min() < 0 or y.max() >= proba.shape[1]:
        raise DataError(f"labels must index proba's {proba.shape[1]} columns, got values {y.min()}..{y.max()}.")
    return proba[np.arange(len(y)), y]


def membership_inference_auc(confidence_members, confidence_nonmembers) -> float:
    """How well "was this record in the training set?" can be guessed from the model's confidence.

    The simplest membership-inference attack: records a model trained on get more confident
    predictions than records it never saw. The ROC AUC of that guess is 0.5 when the model leaks
    nothing and approaches 1.0 when it has memorised its (e.g. patients') training data, which is
    why an overfit model is also a privacy problem.
    """
    from sklearn.metrics import roc_auc_score

    members = np.asarray(confidence_members, dtype=float)
    others = np.asarray(confidence_nonmembers, dtype=float)
    if members.size == 0 or others.size == 0:
        raise DataError("membership_inference_auc needs at least one member and one non-member confidence.")
    is_member = np.r_[np.ones(members.size), np.zeros(others.size)]
    return float(roc_auc_score(is_member, np.r_[members, others]))


def pseudonymise(ids: Sequence, salt: str, length: int = 12) -> list[str]:
    """Replace identifiers with salted SHA-256 digests: stable joins, no readable names.

    The same id always maps to the same pseudonym (so records can still be linked), but without
    the salt nobody can recompute it from a guessed id. This is pseudonymisation, not anonymisation:
    under GDPR pseudonymised data is still personal data, and the salt must be kept secret.
    """
    if not salt:
        raise ConfigError("pseudonymise needs a non-empty secret salt; without it a guessed id can be hashed and matched.")
    if not 6 <= length <= 64:
        raise ConfigError(f"length must be between 6 and 64 hex characters, got {length}.")
    return [hashlib.sha256(f"{salt}:{i}".encode()).hexdigest()[:length] for i in ids]


# --------------------------------------------------------------------------------------------
# Finance: fraud
# --------------------------------------------------------------------------------------------

FRAUD_FEATURES = (
    "amount_z",
    "hour_offset",
    "merchant_risk",
    "distance_home",
    "card_age",
    "tx_last_hour",
    "foreign",
    "online",
    "device_change",
    "velocity_24h",
    "avg_ticket",
    "account_age",
)


class _FreshSamples(np.random.RandomState):
    """A random state for ``make_classification`` that keeps the process of ``seed`` but not its rows.

    ``make_classification`` draws the structure (the cluster centres, each cluster's covariance, the
    redundant features' mixing) and the rows from one generator. This one makes every draw of the
    ``seed`` stream, so the structure comes out identical, but hands back draws of the ``sample_seed``
    stream for the row-level ones: the normal draws of the features and everything after them that has
    one value per row (the label-noise mask and its labels). tests/test_applications.py checks that
    ``sample_seed == seed`` reproduces the plain call exactly and that another seed keeps the process.
    """

    def __init__(self, seed: int, sample_seed: int) -> None:
        super().__init__(seed)
        self._rows = np.random.RandomState(sample_seed)
        self._same = sample_seed == seed
        self._n_rows: int | None = None

    def standard_normal(self, size=None):
        drawn = super().standard_normal(size)
        if self._n_rows is None:  # the first one: rows x informative features
            self._n_rows = int(np.shape(drawn)[0])
        return drawn if self._same else self._rows.standard_normal(size)

    def uniform(self, low=0.0, high=1.0, size=None):
        drawn = super().uniform(low, high, size)
        per_row = self._n_rows is not None and np.shape(drawn)[:1] == (self._n_rows,)
        return self._rows.uniform(low, high, size) if per_row and not self._same else drawn

    def randint(self, low, high=None, size=None, dtype=int):
        drawn = super().randint(low, high, size, dtype)
        if self._n_rows is None or self._same:
            return drawn
        return self._rows.randint(low, high, size, dtype)


def make_fraud_data(
    n_samples: int = 20_000,
    fraud_rate: float = 0.01,
    val_size: float = 0.25,
    test_size: float = 0.25,
    seed: int = 0,
    sample_seed: int | None = None,
) -> ArraySplits:
    """Synthetic card transactions where about ``fraud_rate`` of rows are fraud (label 1).

    Built with ``make_classification(weights=[1 - fraud_rate, fraud_rate])`` and 12 anonymous
    features given transaction-like names for readability (the values are not real amounts or
    hours). The first four features carry the signal and the next two are mixtures of them; a
    little label noise (``flip_y``) keeps some frauds unfindable, as real fraud labels (from
    chargebacks) are noisy too.

    ``seed`` fixes the process (where fraud and normal transactions sit, how the features relate);
    ``sample_seed`` (default: ``seed``) draws other transactions from that same process. The grader
    scores a learner's model on rows drawn with a secret ``sample_seed``: the same problem the learner
    trained for, on rows no one outside the grader can generate.
    """
    from sklearn.datasets import make_classification

    if not 0 < fraud_rate < 0.5:
        raise ConfigError(f"fraud_rate must be between 0 and 0.5 (fraud is the rare class), got {fraud_rate}.")
    if n_samples * fraud_rate < 40:
        raise ConfigError(
            f"n_samples={n_samples} at fraud_rate={fraud_rate} gives fewer than 40 frauds; "
            "increase n_samples so each split has positives to evaluate on."
        )
    X, y = make_classification(
        n_samples=n_samples,
        n_features=len(FRAUD_FEATURES),
        n_informative=4,
        n_redundant=2,
        n_clusters_per_class=1,
        weights=[1 - fraud_rate, fraud_rate],
        flip_y=0.002,
        class_sep=0.5,
        shuffle=False,
        random_state=seed if sample_seed is None else _FreshSamples(seed, sample_seed),
    )
    order = np.random.default_rng(seed if sample_seed is None else sample_seed).permutation(n_samples)
    return _three_way_split(X[order], y[order].astype(np.int64), val_size, test_size, seed, list(FRAUD_FEATURES))


def imbalanced_report(y_true, scores, threshold: float = 0.5) -> dict:
    """The numbers to read on a rare-positive problem, side by side with accuracy.

    ``base_rate`` is the share of positives; ``majority_accuracy`` what "always say no" scores;
    ``average_precision`` the area under the precision-recall curve (its chance level is the base
    rate, not 0.5), and ``roc_auc`` for comparison: ROC AUC looks flattering when negatives
    dominate, because false positives are divided by a huge number of negatives.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    at = metrics_at_threshold(y_true, scores, threshold)
    y = np.asarray(y_true).astype(int)
    n = len(y)
    return {
        "n": n,
        "base_rate": float(y.mean()),
        "majority_accuracy": float(1 - y.mean()),
        "accuracy": (at["tp"] + at["tn"]) / n,
        "precision": at["precision"],
        "recall": at["recall"],
        "f1": at["f1"],
        "average_precision": float(average_precision_score(y, scores)),
        "roc_auc": float(roc_auc_score(y, scores)),
        "flagged": at["tp"] + at["fp"],
    }


def simulate_drift(
    X,
    y,
    covariate_shift: float = 1.0,
    shifted_features: Sequence[int] = (6, 9),
    fraud_adaptation: float = 0.5,
) -> np.ndarray:
    """A later period of the same transactions: customers change, and fraudsters adapt.

    ``covariate_shift`` moves ``shifted_features`` of *every* row by that many standard deviations
    (new customer mix: input drift, visible without labels). ``fraud_adaptation`` pulls the fraud
    rows' signal features (the first four) that fraction of the way towards the legitimate rows'
    average (concept drift: the old pattern stops working, visible only once labels come back).
    Returns a new array; ``y`` is unchanged.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y).astype(int)
    if X.ndim != 2 or len(X) != len(y):
        raise DataError(f"X must be 2-D with one row per label: got {X.shape} for {len(y)} labels.")
    if not 0.0 <= fraud_adaptation <= 1.0:
        raise ConfigError(f"fraud_adaptation must be between 0 and 1, got {fraud_adaptation}.")
    if y.sum() == 0 or y.sum() == len(y):
        raise DataError("simulate_drift needs both fraud and legitimate rows.")
    bad = [f for f in shifted_features if not 0 <= f < X.shape[1]]
    if bad:
        raise ConfigError(f"shifted_features {bad} are out of range for {X.shape[1]} features.")
    out = X.copy()
    cols = list(shifted_features)
    out[:, cols] += covariate_shift * X[:, cols].std(axis=0)
    signal = list(range(min(4, X.shape[1])))
    legit_mean = X[y == 0][:, signal].mean(axis=0)
    fraud = y == 1
    out[np.ix_(fraud, signal)] = (1 - fraud_adaptation) * out[np.ix_(fraud, signal)] + fraud_adaptation * legit_mean
    return out


def population_stability_index(expected, actual, bins: int = 10) -> float:
    """PSI of one feature: how far its distribution moved from a reference period.

    Bins are the reference's deciles; PSI = sum((a - e) * ln(a / e)) over bins. The banking rule of
    thumb: below 0.1 stable, 0.1-0.25 worth a look, above 0.25 a real shift. It needs no labels, so
    it can run on every day's traffic, long before chargebacks arrive.
    """
    expected = np.asarray(expected, dtype=float).ravel()
    actual = np.asarray(actual, dtype=float).ravel()
    if expected.size < bins or actual.size == 0:
        raise DataError(f"need at least {bins} reference values and one current value, got {expected.size} and {actual.size}.")
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)))
    edges[0], edges[-1] = -np.inf, np.inf
    e = np.histogram(expected, edges)[0] / expected.size
    a = np.histogram(actual, edges)[0] / actual.size
    e, a = np.clip(e, 1e-6, None), np.clip(a, 1e-6, None)
    return float(np.sum((a - e) * np.log(a / e)))


def psi_table(X_reference, X_current, feature_names: Sequence[str], bins: int = 10) -> pd.DataFrame:
    """PSI of every feature, largest first, with the rule-of-thumb verdict."""
    X_reference = np.asarray(X_reference, dtype=float)
    X_current = np.asarray(X_current, dtype=float)
    if X_reference.ndim != 2 or X_current.ndim != 2 or X_reference.shape[1] != X_current.shape[1]:
        raise DataError(f"reference and current data need the same columns: got {X_reference.shape} and {X_current.shape}.")
    if len(feature_names) != X_reference.shape[1]:
        raise DataError(f"got {len(feature_names)} feature names for {X_reference.shape[1]} columns.")
    rows = []
    for j, name in enumerate(feature_names):
        psi = population_stability_index(X_reference[:, j], X_current[:, j], bins)
        verdict = "stable" if psi < 0.1 else ("check" if psi < 0.25 else "shifted")
        rows.append({"feature": name, "psi": psi, "verdict": verdict})
    return pd.DataFrame(rows).sort_values("psi", ascending=False, ignore_index=True)


def linear_reasons(pipeline, X, feature_names: Sequence[str], k: int = 3) -> pd.DataFrame:
    """The ``k`` features that pushed each decision of a linear model the most, for audits.

    For a pipeline ending in a linear classifier (e.g. StandardScaler + LogisticRegression), a
    feature's contribution to the log-odds is ``coef * transformed value``. This is the kind of
    answer regulated decisions require (US credit "adverse action" notices must state the main
    reasons for a refusal; the GDPR gives people a right to meaningful information about automated
    decisions): which inputs drove *this* decision. Returns one row per example and rank.
    """
    model = pipeline[-1] if hasattr(pipeline, "steps") else pipeline
    coef = getattr(model, "coef_", None)
    if coef is None or np.asarray(coef).shape[0] != 1:
        raise ConfigError("linear_reasons needs a fitted binary linear model (with coef_ of one row) at the end of the pipeline.")
    Xt = pipeline[:-1].transform(X) if hasattr(pipeline, "steps") and len(pipeline.steps) > 1 else np.asarray(X, dtype=float)
    Xt = np.asarray(Xt, dtype=float)
    if Xt.ndim != 2 or Xt.shape[1] != len(feature_names):
        raise DataError(f"got {len(feature_names)} feature names for inputs of shape {Xt.shape}.")
    if not 1 <= k <= len(feature_names):
        raise ConfigError(f"k must be between 1 and {len(feature_names)}, got {k}.")
    contributions = Xt * np.asarray(coef)[0]
    rows = []
    for i, row in enumerate(contributions):
        for rank, j in enumerate(np.argsort(-np.abs(row))[:k], start=1):
            rows.append({"example": i, "rank": rank, "feature": feature_names[j], "contribution": float(row[j])})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# E-commerce: recommendation from implicit feedback
# --------------------------------------------------------------------------------------------


def make_implicit_feedback(
    n_users: int = 500,
    n_items: int = 150,
    n_segments: int = 6,
    mean_interactions: float = 12.0,
    taste_strength: float = 12.0,
    seed: int = 0,
) -> np.ndarray:
    """A synthetic users x items 0/1 matrix of "bought or clicked", with tastes and best-sellers.

    Each item belongs to one of ``n_segments`` categories and has a Zipf-like popularity; each user
    prefers one category, picked ``taste_strength`` times more often than others, and has a
    long-tailed number of interactions (some users have only one or two: the cold-start case).
    Real click logs look like this: sparse, dominated by best-sellers, with taste clusters that a
    good recommender must find beyond plain popularity.
    """
    if n_users < 2 or n_items < 2 or n_segments < 1 or n_segments > n_items:
        raise ConfigError(f"need n_users >= 2, n_items >= 2 and 1 <= n_segments <= n_items, "
                          f"got {n_users}, {n_items}, {n_segments}.")
    if not 1 <= mean_interactions < n_items:
        raise ConfigError(f"mean_interactions must be between 1 and n_items ({n_items}), got {mean_interactions}.")
    rng = np.random.default_rng(seed)
    segment = rng.integers(0, n_segments, size=n_items)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.8
    popularity = popularity[rng.permutation(n_items)]
    taste = rng.integers(0, n_segments, size=n_users)
    counts = np.clip(rng.lognormal(np.log(mean_interactions) - 0.3, 0.8, size=n_users).round().astype(int), 1, n_items // 2)
    matrix = np.zeros((n_users, n_items), dtype=np.int8)
    for u in range(n_users):
        weights = popularity * np.where(segment == taste[u], taste_strength, 1.0)
        items = rng.choice(n_items, size=counts[u], replace=False, p=weights / weights.sum())
        matrix[u, items] = 1
    return matrix


def _check_interactions(interactions) -> np.ndarray:
    m = np.asarray(interactions)
    if m.ndim != 2 or m.size == 0:
        raise DataError(f"interactions must be a non-empty users x items matrix, got shape {m.shape}.")
    if not np.isin(m, (0, 1)).all():
        raise DataError("interactions must be 0/1 (implicit feedback: interacted or not).")
    return m.astype(np.float64)


def leave_one_out(interactions, min_interactions: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Hide one random interaction per user as the item to predict; the rest is training history.

    Users with fewer than ``min_interactions`` keep everything and get ``-1`` (nothing to test):
    hiding a user's only interaction would leave no history at all. Returns (train matrix,
    held-out item per user).
    """
    m = _check_interactions(interactions)
    if min_interactions < 2:
        raise ConfigError("min_interactions must be >= 2 so that every evaluated user keeps some history.")
    rng = np.random.default_rng(seed)
    train = m.copy()
    held_out = np.full(len(m), -1, dtype=np.int64)
    for u, row in enumerate(m):
        items = np.flatnonzero(row)
        if len(items) >= min_interactions:
            held_out[u] = rng.choice(items)
            train[u, held_out[u]] = 0
    return train, held_out


def popularity_scores(train) -> np.ndarray:
    """Everyone gets the same ranking: the most interacted-with items first. The baseline to beat."""
    m = _check_interactions(train)
    return np.tile(m.sum(axis=0), (len(m), 1))


def item_similarity(train) -> np.ndarray:
    """Cosine similarity between item columns ("people who bought this also bought"), zero diagonal."""
    m = _check_interactions(train)
    norms = np.linalg.norm(m, axis=0)
    norms[norms == 0] = 1.0
    sim = (m.T @ m) / np.outer(norms, norms)
    np.fill_diagonal(sim, 0.0)
    return sim


def item_item_scores(train) -> np.ndarray:
    """Score each item by its summed similarity to the items a user already has."""
    m = _check_interactions(train)
    return m @ item_similarity(m)


def factorisation_scores(train, rank: int = 16) -> np.ndarray:
    """Rank-``rank`` truncated SVD of the interaction matrix: users and items as taste vectors."""
    m = _check_interactions(train)
    if not 1 <= rank <= min(m.shape):
        raise ConfigError(f"rank must be between 1 and {min(m.shape)}, got {rank}.")
    u, s, vt = np.linalg.svd(m, full_matrices=False)
    return (u[:, :rank] * s[:rank]) @ vt[:rank]


def hybrid_scores(train, popularity_weight: float = 0.1) -> np.ndarray:
    """Item-item scores plus ``popularity_weight`` x popularity (scaled to a maximum of 1).

    Item-item scores grow with the length of a user's history, so a fixed popularity term matters
    most for users with little history and fades for users with a lot: best-sellers for a new
    user, personal taste for a regular. This is the simplest answer to cold start; choose the
    weight on validation.
    """
    if popularity_weight < 0:
        raise ConfigError(f"popularity_weight must be >= 0, got {popularity_weight}.")
    pop = popularity_scores(train)
    top = pop.max()
    return item_item_scores(train) + popularity_weight * (pop / top if top > 0 else pop)


def top_k(scores, seen, k: int = 10) -> np.ndarray:
    """Indices of each user's ``k`` best-scored items they have not interacted with yet.

    Ties (e.g. all-zero scores for a user with no history) are broken by item index, so results are
    deterministic, and their arbitrariness is visible in the cold-start section.
    """
    scores = np.asarray(scores, dtype=float)
    seen = np.asarray(seen)
    if scores.shape != seen.shape or scores.ndim != 2:
        raise DataError(f"scores and seen must both be users x items, got {scores.shape} and {seen.shape}.")
    if not 1 <= k <= scores.shape[1]:
        raise ConfigError(f"k must be between 1 and the number of items ({scores.shape[1]}), got {k}.")
    masked = np.where(seen > 0, -np.inf, scores)
    return np.argsort(-masked, axis=1, kind="stable")[:, :k]


def user_hits(scores, train, held_out, k: int = 10) -> np.ndarray:
    """1.0 where a user's held-out item is in their top ``k``, 0.0 where not, NaN for untested users."""
    held_out = np.asarray(held_out)
    recs = top_k(scores, train, k)
    if len(held_out) != len(recs):
        raise DataError(f"held_out has {len(held_out)} users but scores has {len(recs)}.")
    hits = (recs == held_out[:, None]).any(axis=1).astype(float)
    hits[held_out < 0] = np.nan
    return hits


def hit_rate_at_k(scores, train, held_out, k: int = 10) -> float:
    """Share of tested users whose hidden item appears in their top ``k`` recommendations."""
    hits = user_hits(scores, train, held_out, k)
    if np.all(np.isnan(hits)):
        raise DataError("no user has a held-out item: every user had fewer interactions than leave_one_out needs.")
    return float(np.nanmean(hits))
