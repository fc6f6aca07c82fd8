"""Tests for course_utils.labs.overfitting: the data, the training loop's bookkeeping, and the experiments."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_utils.errors import ConfigError, DataError
from course_utils.labs.loop import History, accuracy, predict
from course_utils.labs.overfitting import (
    MLPConfig,
    build_mlp,
    compare_runs,
    config_grid_sample,
    describe_config,
    freeze_layers,
    inject_label_noise,
    label_noise_sweep,
    load_digits_splits,
    load_digits_transfer,
    replace_head,
    selection_bias_experiment,
    train_mlp,
)


@pytest.fixture(scope="module")
def small_splits():
    return load_digits_splits(n_train=60, n_val=60, label_noise=0.0, seed=0)


# ---------------------------------------------------------------- data


def test_digits_splits_sizes_scaling_and_disjointness():
    s = load_digits_splits(n_train=100, n_val=200, seed=1)
    assert s.sizes() == {"train": 100, "validation": 200, "test": 1797 - 300}
    assert s.X_train.dtype == np.float32 and 0.0 <= s.X_train.min() and s.X_train.max() <= 1.0
    rows = {tuple(r) for r in s.X_train.tolist()}
    # the digits set contains a handful of identical images, so compare counts rather than demand zero
    assert sum(tuple(r) in rows for r in s.X_test.tolist()) <= 5
    assert set(np.unique(s.y_train)) == set(range(10))
    assert s.y_train_clean is None


def test_digits_splits_label_noise_only_touches_train():
    clean = load_digits_splits(n_train=100, n_val=100, seed=3)
    noisy = load_digits_splits(n_train=100, n_val=100, label_noise=0.3, seed=3)
    np.testing.assert_array_equal(noisy.y_train_clean, clean.y_train)
    assert int((noisy.y_train != clean.y_train).sum()) == 30
    np.testing.assert_array_equal(noisy.y_val, clean.y_val)
    np.testing.assert_array_equal(noisy.y_test, clean.y_test)


def test_digits_splits_class_subset_is_renumbered():
    s = load_digits_splits(n_train=50, n_val=50, classes=[3, 7], seed=0)
    assert s.classes == [3, 7]
    assert set(np.unique(np.r_[s.y_train, s.y_val, s.y_test])) == {0, 1}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_train=1500, n_val=400), "no test set"),
        (dict(n_train=5, n_val=100), "at least the number of classes"),
        (dict(classes=[3, 11]), "distinct digits"),
    ],
)
def test_digits_splits_bad_sizes_raise(kwargs, match):
    with pytest.raises(DataError, match=match):
        load_digits_splits(**kwargs)


def test_transfer_task_is_disjoint_relabelled_and_noisy():
    source, target = load_digits_transfer(n_source=500, n_target_train=80, n_val=200, target="parity", label_noise=0.25)
    assert source.classes == list(range(10)) and target.classes == [0, 1]
    assert len(source.y_train) + len(source.y_val) == 500
    assert len(source.y_test) == 0
    assert len(target.y_train) == 80 and len(target.y_val) == 200
    assert int((target.y_train != target.y_train_clean).sum()) == 20
    assert set(np.unique(target.y_test)) == {0, 1}
    with pytest.raises(ConfigError, match="unknown target task"):
        load_digits_transfer(target="colour")
    with pytest.raises(DataError, match="must be below"):
        load_digits_transfer(n_source=1500, n_target_train=200, n_val=200)


def test_inject_label_noise_flips_exact_count_to_other_classes():
    y = np.repeat(np.arange(4), 25)
    noisy, flipped = inject_label_noise(y, 0.2, seed=5)
    assert flipped.sum() == 20
    assert np.all(noisy[flipped] != y[flipped])
    np.testing.assert_array_equal(noisy[~flipped], y[~flipped])
    assert set(np.unique(noisy)) <= set(range(4))
    again, _ = inject_label_noise(y, 0.2, seed=5)
    np.testing.assert_array_equal(noisy, again)
    zero, none = inject_label_noise(y, 0.0)
    assert not none.any() and np.array_equal(zero, y)


@pytest.mark.parametrize(
    "args, error",
    [((np.array([0, 1, 2]), 1.5), ConfigError), ((np.array([0, 0, 0]), 0.5), ConfigError), ((np.array([]), 0.1), DataError)],
)
def test_inject_label_noise_rejects_bad_input(args, error):
    with pytest.raises(error):
        inject_label_noise(*args)


def test_inject_label_noise_rejects_labels_outside_classes():
    with pytest.raises(DataError, match="class indices"):
        inject_label_noise(np.array([0, 1, 5]), 0.3, n_classes=3)


# ---------------------------------------------------------------- model


@pytest.mark.parametrize(
    "kwargs", [dict(dropout=1.0), dict(weight_decay=-1), dict(lr=0), dict(epochs=0), dict(patience=0), dict(hidden=(0,))]
)
def test_config_validation(kwargs):
    with pytest.raises(ConfigError):
        MLPConfig(**kwargs)


def test_build_mlp_shapes_and_dropout():
    model = build_mlp(64, 10, hidden=(32, 16), dropout=0.5)
    assert model(torch.zeros(3, 64)).shape == (3, 10)
    assert sum(isinstance(m, torch.nn.Dropout) for m in model) == 2
    assert not any(isinstance(m, torch.nn.Dropout) for m in build_mlp(64, 10, hidden=(32,)))
    with pytest.raises(ConfigError):
        build_mlp(64, 1)


def test_replace_head_and_freeze_layers():
    model = replace_head(build_mlp(64, 10, hidden=(32, 16)), 2)
    assert model[-1].out_features == 2
    head_params = 16 * 2 + 2
    assert freeze_layers(model) == head_params
    assert not model[0].weight.requires_grad and model[-1].weight.requires_grad
    assert freeze_layers(model, 0) == sum(p.numel() for p in model.parameters())
    with pytest.raises(ConfigError):
        freeze_layers(model, 4)
    with pytest.raises(ConfigError):
        replace_head(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU()), 3)


def test_train_mlp_records_one_point_per_epoch_and_learns(small_splits):
    s = small_splits
    model, history = train_mlp(s.X_train, s.y_train, s.X_val, s.y_val, MLPConfig(hidden=(64,), epochs=30))
    assert history.stopped_epoch == 30 and len(history.val_loss) == 30 and history.epochs[0] == 1
    assert not history.restored_best
    assert history.train_loss[-1] < history.train_loss[0]
    # 60 training digits are enough to beat chance (10%) by a wide margin
    assert accuracy(model, s.X_test, s.y_test) > 0.6
    assert history.best_epoch == int(np.argmin(history.val_loss)) + 1
    frame = history.to_frame()
    assert list(frame.columns) == ["epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy"]


def test_train_mlp_is_reproducible(small_splits):
    s = small_splits
    cfg = MLPConfig(hidden=(32,), epochs=5, dropout=0.2, seed=7)
    _, h1 = train_mlp(s.X_train, s.y_train, s.X_val, s.y_val, cfg)
    _, h2 = train_mlp(s.X_train, s.y_train, s.X_val, s.y_val, cfg)
    assert h1.val_loss == h2.val_loss


def test_early_stopping_stops_and_restores_best_weights():
    s = load_digits_splits(n_train=100, n_val=200, label_noise=0.3, seed=0)
    cfg = MLPConfig(hidden=(128, 128), epochs=200, patience=5)
    model, h = train_mlp(s.X_train, s.y_train, s.X_val, s.y_val, cfg)
    assert h.stopped_epoch == h.best_epoch + 5 < 200
    assert h.restored_best
    # the returned weights are the best epoch's, not the last one's
    restored_val_acc = accuracy(model, s.X_val, s.y_val)
    assert restored_val_acc == pytest.approx(h.val_accuracy[h.best_epoch - 1], abs=1e-6)
    summary = h.summary()
    assert summary["epochs_run"] == h.stopped_epoch
    assert summary["final_val_accuracy"] == h.val_accuracy[h.best_epoch - 1]
    assert summary["final_gap"] == pytest.approx(summary["final_train_accuracy"] - summary["final_val_accuracy"])


def test_training_continues_from_given_model_and_respects_frozen_layers(small_splits):
    s = small_splits
    model = build_mlp(64, 10, hidden=(32,))
    freeze_layers(model)
    before = model[0].weight.detach().clone()
    head_before = model[-1].weight.detach().clone()
    trained, _ = train_mlp(s.X_train, s.y_train, s.X_val, s.y_val, MLPConfig(epochs=3), model=model)
    assert trained is model
    assert torch.equal(model[0].weight, before)
    assert not torch.equal(model[-1].weight, head_before)
    freeze_layers(model, 2)
    with pytest.raises(ConfigError, match="frozen"):
        train_mlp(s.X_train, s.y_train, s.X_val, s.y_val, MLPConfig(epochs=1), model=model)


def test_train_mlp_rejects_mismatched_inputs(small_splits):
    s = small_splits
    with pytest.raises(DataError, match="one label per row"):
        train_mlp(s.X_train, s.y_train[:-1], s.X_val, s.y_val)
    with pytest.raises(DataError, match="features"):
        train_mlp(s.X_train, s.y_train, s.X_val[:, :10], s.y_val)
    with pytest.raises(DataError, match="2-D"):
        train_mlp(s.X_train[0], s.y_train[:1], s.X_val, s.y_val)


def test_predict_returns_class_indices(small_splits):
    model = build_mlp(64, 10, hidden=(8,))
    pred = predict(model, small_splits.X_val)
    assert pred.shape == (60,) and pred.dtype.kind == "i" and pred.max() < 10


def test_empty_history_summary_raises():
    with pytest.raises(ConfigError, match="empty"):
        History().summary()


# ---------------------------------------------------------------- experiments


def test_compare_runs_table(small_splits):
    s = small_splits
    runs = {
        name: train_mlp(s.X_train, s.y_train, s.X_val, s.y_val, MLPConfig(hidden=(16,), epochs=4, seed=i))[1]
        for i, name in enumerate(["a", "b"])
    }
    table = compare_runs(runs)
    assert list(table.index) == ["a", "b"]
    assert {"best_epoch", "final_gap", "final_val_accuracy"} <= set(table.columns)
    with pytest.raises(ConfigError):
        compare_runs({})


def test_label_noise_sweep_gap_grows_with_noise():
    s = load_digits_splits(n_train=120, n_val=300, seed=0)
    table = label_noise_sweep(s, [0.0, 0.4], MLPConfig(hidden=(128, 128), epochs=100))
    assert list(table["flipped"]) == [0, 48]
    # a big MLP memorises the wrong labels too, so the clean-validation gap widens
    assert table["gap"].iloc[1] > table["gap"].iloc[0] + 0.1
    assert table["val_accuracy"].iloc[1] < table["val_accuracy"].iloc[0]


def test_selection_bias_experiment_favours_validation_selection():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=2000)
    # 40 configurations that are all exactly 70% right, on different examples: any "best" is luck
    preds = np.array([np.where(rng.random(2000) < 0.7, y, 1 - y) for _ in range(40)])
    table = selection_bias_experiment(preds, y, val_size=50, test_size=50, n_repeats=100, seed=0)
    assert len(table) == 200
    means = table.groupby("strategy")["optimism"].mean()
    assert means["select on test"] > 0.05
    assert abs(means["select on validation"]) < 0.02
    on_test = table[table.strategy == "select on test"]
    np.testing.assert_allclose(on_test["reported"] - on_test["fresh"], on_test["optimism"])


@pytest.mark.parametrize(
    "preds, y, sizes, error",
    [
        (np.zeros((3, 10)), np.zeros(9), (2, 2), DataError),
        (np.zeros((1, 10)), np.zeros(10), (2, 2), ConfigError),
        (np.zeros((3, 10)), np.zeros(10), (5, 5), ConfigError),
    ],
)
def test_selection_bias_experiment_rejects_bad_input(preds, y, sizes, error):
    with pytest.raises(error):
        selection_bias_experiment(preds, y, *sizes)


def test_config_grid_sample_is_seeded_and_valid():
    a = config_grid_sample(6, seed=1)
    b = config_grid_sample(6, seed=1)
    assert a == b and len(a) == 6
    assert len({c.seed for c in a}) == 6
    assert describe_config(a[0])["hidden"] == "x".join(map(str, a[0].hidden))
    with pytest.raises(ConfigError):
        config_grid_sample(0)
