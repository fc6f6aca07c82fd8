"""Tests for course_utils.labs.applications: healthcare, fraud, drift, privacy and recommendation helpers."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from course_utils.errors import ConfigError, DataError
from course_utils.labs.applications import (
    FRAUD_FEATURES,
    expected_cost,
    factorisation_scores,
    hit_rate_at_k,
    hybrid_scores,
    imbalanced_report,
    item_item_scores,
    item_similarity,
    leave_one_out,
    linear_reasons,
    load_breast_cancer_splits,
    make_fraud_data,
    make_implicit_feedback,
    membership_inference_auc,
    popularity_scores,
    population_stability_index,
    proportion_interval,
    pseudonymise,
    psi_table,
    simulate_drift,
    top_k,
    true_label_confidence,
    user_hits,
)

# ---------------------------------------------------------------- healthcare


def test_breast_cancer_malignant_is_positive_and_splits_are_stratified():
    s = load_breast_cancer_splits(seed=0)
    assert sum(s.sizes().values()) == 569
    # 212 of 569 tumours are malignant; every split keeps that share
    for rate in s.positive_rate().values():
        assert rate == pytest.approx(212 / 569, abs=0.01)
    assert len(s.feature_names) == s.X_train.shape[1] == 30
    with pytest.raises(ConfigError):
        load_breast_cancer_splits(val_size=0.6, test_size=0.5)


def test_expected_cost():
    assert expected_cost({"fn": 2, "fp": 5}, cost_fn=10, cost_fp=1) == 25.0
    with pytest.raises(ConfigError):
        expected_cost({"fn": 1, "fp": 1}, cost_fn=-1, cost_fp=1)


def test_proportion_interval_contains_estimate_and_narrows_with_more_data():
    lo, hi = proportion_interval(38, 40)
    assert lo < 38 / 40 < hi <= 1.0
    # known value: Wilson 95% interval for 38/40 is about (0.835, 0.986)
    assert lo == pytest.approx(0.835, abs=0.002) and hi == pytest.approx(0.986, abs=0.002)
    lo_big, hi_big = proportion_interval(380, 400)
    assert hi_big - lo_big < hi - lo
    assert proportion_interval(40, 40)[1] == 1.0 and proportion_interval(0, 40)[0] == 0.0
    with pytest.raises(DataError):
        proportion_interval(5, 4)
    with pytest.raises(ConfigError):
        proportion_interval(1, 4, confidence=1.5)


# ---------------------------------------------------------------- privacy


def test_true_label_confidence_picks_the_true_column():
    proba = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]])
    np.testing.assert_allclose(true_label_confidence(proba, [0, 1, 1]), [0.9, 0.7, 0.4])
    with pytest.raises(DataError):
        true_label_confidence(proba, [0, 2, 1])
    with pytest.raises(DataError):
        true_label_confidence(proba, [0, 1])


def test_membership_inference_auc_extremes():
    assert membership_inference_auc([0.99, 0.98, 0.97], [0.5, 0.6, 0.4]) == 1.0
    assert membership_inference_auc([0.5, 0.7], [0.5, 0.7]) == 0.5
    with pytest.raises(DataError):
        membership_inference_auc([], [0.5])


def test_pseudonymise_is_stable_salted_and_unreadable():
    a = pseudonymise(["alice", "bob", "alice"], salt="s3cret")
    assert a[0] == a[2] and a[0] != a[1]
    assert all(len(p) == 12 and "alice" not in p for p in a)
    assert pseudonymise(["alice"], salt="other")[0] != a[0]
    with pytest.raises(ConfigError, match="salt"):
        pseudonymise(["alice"], salt="")


# ---------------------------------------------------------------- fraud


@pytest.fixture(scope="module")
def fraud():
    return make_fraud_data(seed=0)


def test_fraud_data_is_rare_positive_and_named(fraud):
    rates = fraud.positive_rate()
    assert all(0.005 < r < 0.02 for r in rates.values())
    assert fraud.feature_names == list(FRAUD_FEATURES)
    assert fraud.X_train.shape == (10_000, len(FRAUD_FEATURES))
    with pytest.raises(ConfigError, match="fewer than 40"):
        make_fraud_data(n_samples=1000, fraud_rate=0.01)
    with pytest.raises(ConfigError, match="rare class"):
        make_fraud_data(fraud_rate=0.7)


def test_imbalanced_report_exposes_the_accuracy_trap():
    y = np.r_[np.zeros(990), np.ones(10)].astype(int)
    report = imbalanced_report(y, np.zeros(1000), threshold=0.5)  # "never fraud"
    assert report["accuracy"] == report["majority_accuracy"] == 0.99
    assert report["recall"] == 0.0 and report["flagged"] == 0
    assert report["average_precision"] == pytest.approx(0.01)  # a constant score is at chance: the base rate
    perfect = imbalanced_report(y, y.astype(float))
    assert perfect["average_precision"] == 1.0 and perfect["recall"] == 1.0 and perfect["base_rate"] == 0.01


def test_drift_moves_inputs_and_hurts_a_trained_model(fraud):
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(fraud.X_train, fraud.y_train)
    before = imbalanced_report(fraud.y_test, model.predict_proba(fraud.X_test)[:, 1])
    drifted = simulate_drift(fraud.X_test, fraud.y_test, covariate_shift=1.0, fraud_adaptation=0.7)
    after = imbalanced_report(fraud.y_test, model.predict_proba(drifted)[:, 1])
    assert after["recall"] < before["recall"]
    # legitimate rows move only in the covariate-shifted columns
    legit = fraud.y_test == 0
    changed = np.flatnonzero(np.abs(drifted[legit] - fraud.X_test[legit]).max(axis=0) > 1e-9)
    assert list(changed) == [6, 9]
    table = psi_table(fraud.X_train, drifted, fraud.feature_names)
    assert set(table.head(2)["feature"]) == {FRAUD_FEATURES[6], FRAUD_FEATURES[9]}
    assert (table.head(2)["verdict"] == "shifted").all()
    assert (table.iloc[2:]["verdict"] == "stable").all()


def test_simulate_drift_rejects_bad_input(fraud):
    with pytest.raises(ConfigError):
        simulate_drift(fraud.X_test, fraud.y_test, fraud_adaptation=2.0)
    with pytest.raises(ConfigError):
        simulate_drift(fraud.X_test, fraud.y_test, shifted_features=(40,))
    with pytest.raises(DataError):
        simulate_drift(fraud.X_test, np.zeros(len(fraud.y_test)))


def test_population_stability_index_zero_for_same_and_large_for_shifted():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=5000)
    assert population_stability_index(ref, rng.normal(size=5000)) < 0.02
    assert population_stability_index(ref, rng.normal(loc=1.0, size=5000)) > 0.25
    with pytest.raises(DataError):
        population_stability_index([1.0, 2.0], [1.0])
    with pytest.raises(DataError):
        psi_table(np.zeros((10, 2)), np.zeros((10, 3)), ["a", "b"])


def test_linear_reasons_match_coefficients_times_scaled_inputs(fraud):
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(fraud.X_train, fraud.y_train)
    reasons = linear_reasons(model, fraud.X_test[:3], fraud.feature_names, k=2)
    assert len(reasons) == 6 and list(reasons["rank"][:2]) == [1, 2]
    scaled = model[0].transform(fraud.X_test[:1])[0]
    contrib = scaled * model[-1].coef_[0]
    top = int(np.argmax(np.abs(contrib)))
    assert reasons.iloc[0]["feature"] == fraud.feature_names[top]
    assert reasons.iloc[0]["contribution"] == pytest.approx(contrib[top])
    # the log-odds decomposes into the contributions plus the intercept
    logit = model.decision_function(fraud.X_test[:1])[0]
    assert contrib.sum() + model[-1].intercept_[0] == pytest.approx(logit)
    with pytest.raises(ConfigError):
        linear_reasons(model, fraud.X_test[:1], fraud.feature_names, k=0)
    with pytest.raises(DataError):
        linear_reasons(model, fraud.X_test[:1], fraud.feature_names[:3])


# ---------------------------------------------------------------- recommendation


@pytest.fixture(scope="module")
def feedback():
    return make_implicit_feedback(n_users=300, n_items=80, seed=0)


def test_implicit_feedback_shape_sparsity_and_long_tail(feedback):
    assert feedback.shape == (300, 80)
    assert set(np.unique(feedback)) == {0, 1}
    per_user = feedback.sum(axis=1)
    assert per_user.min() >= 1 and (per_user <= 2).any()  # some cold-start users
    per_item = np.sort(feedback.sum(axis=0))[::-1]
    assert per_item[:8].sum() > 3 * per_item[-8:].sum()  # best-sellers dominate
    np.testing.assert_array_equal(feedback, make_implicit_feedback(n_users=300, n_items=80, seed=0))
    with pytest.raises(ConfigError):
        make_implicit_feedback(n_items=10, mean_interactions=20)


def test_leave_one_out_hides_exactly_one_item(feedback):
    train, held = leave_one_out(feedback, seed=0)
    counts = feedback.sum(axis=1)
    assert np.all(held[counts < 2] == -1)
    tested = np.flatnonzero(held >= 0)
    assert np.all(feedback[tested, held[tested]] == 1) and np.all(train[tested, held[tested]] == 0)
    assert (feedback.sum() - train.sum()) == len(tested)
    with pytest.raises(DataError):
        leave_one_out(np.array([[0, 2]]))
    with pytest.raises(ConfigError):
        leave_one_out(feedback, min_interactions=1)


def test_item_similarity_is_cosine_with_zero_diagonal():
    m = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1]])
    sim = item_similarity(m)
    np.testing.assert_allclose(np.diag(sim), 0)
    assert sim[0, 1] == pytest.approx(1.0) and sim[0, 2] == 0.0
    # a user holding item 0 gets item 1 (always bought together) ranked above item 2
    scores = item_item_scores(np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1]]))
    assert scores[0, 1] > scores[0, 2]


def test_top_k_excludes_seen_items_and_breaks_ties_by_index():
    scores = np.array([[5.0, 4.0, 3.0, 3.0]])
    seen = np.array([[1, 0, 0, 0]])
    np.testing.assert_array_equal(top_k(scores, seen, k=2), [[1, 2]])
    with pytest.raises(ConfigError):
        top_k(scores, seen, k=5)
    with pytest.raises(DataError):
        top_k(scores, seen[:, :2], k=1)


def test_hit_rate_counts_only_tested_users():
    scores = np.array([[3.0, 2.0, 1.0], [3.0, 2.0, 1.0], [1.0, 1.0, 1.0]])
    train = np.zeros((3, 3))
    held = np.array([0, 2, -1])
    hits = user_hits(scores, train, held, k=1)
    assert hits[0] == 1.0 and hits[1] == 0.0 and np.isnan(hits[2])
    assert hit_rate_at_k(scores, train, held, k=1) == 0.5
    assert hit_rate_at_k(scores, train, held, k=3) == 1.0
    with pytest.raises(DataError, match="no user"):
        hit_rate_at_k(scores, train, np.array([-1, -1, -1]), k=1)


def test_item_item_beats_popularity_on_taste_clusters(feedback):
    train, held = leave_one_out(feedback, seed=0)
    pop = hit_rate_at_k(popularity_scores(train), train, held, k=10)
    item = hit_rate_at_k(item_item_scores(train), train, held, k=10)
    assert item > pop
    svd = factorisation_scores(train, rank=4)
    assert svd.shape == train.shape
    assert hit_rate_at_k(svd, train, held, k=10) > hit_rate_at_k(np.zeros_like(svd), train, held, k=10)
    with pytest.raises(ConfigError):
        factorisation_scores(train, rank=0)


def test_hybrid_falls_back_to_best_sellers_for_a_user_without_history(feedback):
    train = np.vstack([feedback, np.zeros((1, feedback.shape[1]), dtype=feedback.dtype)])
    new_user_recs = top_k(hybrid_scores(train, 0.1)[-1:], train[-1:], k=5)[0]
    best_sellers = np.argsort(-train.sum(axis=0), kind="stable")[:5]
    np.testing.assert_array_equal(new_user_recs, best_sellers)
    # with weight 0 it is plain item-item
    np.testing.assert_allclose(hybrid_scores(train, 0.0), item_item_scores(train))
    with pytest.raises(ConfigError):
        hybrid_scores(train, -1.0)
