"""The digits transfer experiment of lesson 01: data split, networks, training loop, strategies."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_utils.errors import ConfigError, DataError
from course_utils.labs.loop import accuracy, fit
from course_utils.labs.transfer import (
    MLP,
    STRATEGIES,
    SmallCNN,
    TransferConfig,
    compare_strategies,
    fine_tune,
    label_efficiency,
    make_digit_tasks,
    place_on_canvas,
    pretrain,
)

FAST = TransferConfig(pretrain_epochs=3, finetune_epochs=3, seed=0)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tasks():
    return make_digit_tasks(labels_per_class=5, canvas=10, pretrain_copies=1, seed=0)


@pytest.fixture(scope="module")
def pretrained(tasks):
    return pretrain(tasks, FAST)


def test_tasks_have_disjoint_digits_few_labels_and_canvas_size(tasks):
    assert tasks.old_classes == (0, 1, 2, 3, 4) and tasks.new_classes == (5, 6, 7, 8, 9)
    assert tasks.X_new_train.shape[1] == 100 and tasks.X_old_test.shape[1] == 100
    assert torch.bincount(tasks.y_new_train).tolist() == [5] * 5
    assert set(tasks.y_old_train.tolist()) == set(range(5)) and set(tasks.y_new_test.tolist()) == set(range(5))
    # new-task training rows come from the pool, never from the test set
    pool = {tuple(r) for r in tasks.X_new_pool.numpy().round(4)}
    assert all(tuple(r) in pool for r in tasks.X_new_train.numpy().round(4))
    assert sum(tasks.sizes().values()) == len(tasks.y_old_train) + len(tasks.y_old_test) + 25 + len(tasks.y_new_test)


def test_pretraining_data_grows_with_copies_and_tests_do_not_depend_on_label_draws():
    one = make_digit_tasks(labels_per_class=3, canvas=10, pretrain_copies=1, seed=1)
    three = make_digit_tasks(labels_per_class=3, canvas=10, pretrain_copies=3, seed=1)
    assert len(three.y_old_train) == 3 * len(one.y_old_train)
    other = one.with_labels_per_class(7, sample_seed=4)
    assert torch.equal(one.X_new_test, other.X_new_test) and torch.equal(one.X_old_train, other.X_old_train)
    assert len(other.y_new_train) == 35
    assert not torch.equal(one.with_labels_per_class(3, 0).X_new_train, one.with_labels_per_class(3, 1).X_new_train)
    assert len(one.with_labels_per_class(None).y_new_train) == len(one.y_new_pool)


def test_tasks_are_reproducible_for_a_seed():
    a = make_digit_tasks(canvas=10, pretrain_copies=1, seed=3)
    b = make_digit_tasks(canvas=10, pretrain_copies=1, seed=3)
    assert torch.equal(a.X_new_train, b.X_new_train) and torch.equal(a.X_old_test, b.X_old_test)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(old_classes=(0, 1, 5), new_classes=(5, 6)), "different digits"),
        (dict(labels_per_class=500), "labels_per_class must be between"),
        (dict(canvas=6), "canvas"),
        (dict(new_classes=(5,)), "at least two digits"),
        (dict(new_classes=(5, 12)), "between 0 and 9"),
        (dict(pretrain_copies=0), "pretrain_copies"),
    ],
)
def test_bad_task_settings_name_the_problem(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        make_digit_tasks(**{"pretrain_copies": 1, **kwargs})


def test_place_on_canvas_keeps_the_digit_and_moves_it():
    rng = np.random.default_rng(0)
    images = rng.random((20, 64)).astype(np.float32)
    placed = place_on_canvas(images, 12, rng)
    assert placed.shape == (20, 144)
    np.testing.assert_allclose(placed.sum(axis=1), images.sum(axis=1), rtol=1e-5)
    positions = {tuple(np.argwhere(p.reshape(12, 12) > 0).min(axis=0)) for p in placed}
    assert len(positions) > 1
    np.testing.assert_array_equal(place_on_canvas(images, 8, rng), images)


def test_networks_split_into_body_and_head():
    x = torch.rand(4, 144)
    for net in (MLP(144, (32, 16), 5), SmallCNN(144, (4, 8), 5)):
        assert net(x).shape == (4, 5)
        old = net.replace_head(3)
        assert old.out_features == 5 and net(x).shape == (4, 3)
        net.freeze_body()
        assert all(not p.requires_grad for p in net.body.parameters())
        assert all(p.requires_grad for p in net.head.parameters())
    with pytest.raises(ConfigError, match="square"):
        SmallCNN(in_features=50)
    with pytest.raises(ConfigError, match="hidden"):
        MLP(hidden=())


def test_train_classifier_learns_and_records_every_epoch():
    torch.manual_seed(0)
    X = torch.randn(64, 4)
    y = (X[:, 0] > 0).long()
    net = MLP(4, (8,), 2)
    hist = fit(net, X, y, epochs=20, lr=0.05, evaluate={"acc": lambda m: accuracy(m, X, y)})
    assert len(hist["train_loss"]) == 21 and len(hist["acc"]) == 21
    assert hist["train_loss"][-1] < hist["train_loss"][0] / 2
    assert hist.final("acc") >= 0.9


def test_train_classifier_eval_every_skips_middle_epochs():
    X, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    hist = fit(MLP(4, (8,), 2), X, y, epochs=5, lr=0.01, eval_every=5,
                            evaluate={"acc": lambda m: accuracy(m, X, y)})
    acc = np.array(hist["acc"])
    assert not np.isnan(acc[0]) and not np.isnan(acc[-1]) and np.isnan(acc[1:-1]).all()


def test_train_classifier_rejects_bad_settings():
    X, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    net = MLP(4, (8,), 2)
    with pytest.raises(ConfigError, match="optimizer"):
        fit(net, X, y, epochs=1, lr=0.1, optimizer="lbfgs")
    with pytest.raises(ConfigError, match="learning rate"):
        fit(net, X, y, epochs=1, lr=0.0)
    with pytest.raises(DataError, match="same length"):
        fit(net, X, y[:4], epochs=1, lr=0.1)
    for p in net.parameters():
        p.requires_grad_(False)
    with pytest.raises(ConfigError, match="frozen"):
        fit(net, X, y, epochs=1, lr=0.1)


def test_frozen_body_keeps_old_task_exactly_and_leaves_pretrained_untouched(tasks, pretrained):
    model, history = pretrained
    before = {k: v.clone() for k, v in model.state_dict().items()}
    run = fine_tune(model, tasks, "frozen body (head only)", FAST)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert run.history["old_task_acc"][-1] == pytest.approx(history.final("old_task_acc"))
    assert run.trainable_params == sum(p.numel() for p in run.model.head.parameters())
    assert all(torch.equal(a, b) for a, b in zip(run.model.body.parameters(), model.body.parameters()))


def test_scratch_has_no_old_head_and_full_fine_tune_moves_the_body(tasks, pretrained):
    model, _ = pretrained
    scratch = fine_tune(model, tasks, "from scratch", FAST)
    assert np.isnan(scratch.final("old_task_acc"))
    full = fine_tune(model, tasks, "fine-tune (small lr)", FAST)
    assert full.trainable_params == sum(p.numel() for p in full.model.parameters())
    assert not all(torch.equal(a, b) for a, b in zip(full.model.body.parameters(), model.body.parameters()))


def test_large_learning_rate_forgets_more_of_the_old_task(tasks, pretrained):
    config = TransferConfig(pretrain_epochs=3, finetune_epochs=6, seed=0)
    comparison = compare_strategies(tasks, config, pretrained=pretrained)
    summary = comparison.summary()
    assert list(summary.index) == list(STRATEGIES)
    assert summary.loc["fine-tune (large lr)", "old_task_drop"] > summary.loc["fine-tune (small lr)", "old_task_drop"]
    assert summary.loc["frozen body (head only)", "old_task_drop"] == pytest.approx(0.0)
    curves = comparison.curves("old_task_acc")
    assert "from scratch" not in curves and len(curves["fine-tune (large lr)"]) == 7


def test_compare_strategies_validates_names_before_training(tasks):
    with pytest.raises(ConfigError, match="unknown strategy"):
        compare_strategies(tasks, FAST, strategies=("from scratch", "magic"))
    with pytest.raises(ConfigError, match="arch"):
        pretrain(tasks, TransferConfig(arch="transformer"))


def test_label_efficiency_one_row_per_size_and_strategy(tasks, pretrained):
    table = label_efficiency(tasks, [1, 3], FAST, sample_seeds=(0, 1), pretrained=pretrained)
    assert len(table) == 2 * 3
    assert set(table["labels_per_class"]) == {1, 3}
    assert table["new_task_acc"].between(0, 1).all() and table["new_task_std"].notna().all()
    with pytest.raises(ConfigError):
        label_efficiency(tasks, [], FAST, pretrained=pretrained)


def test_learning_rate_sweep_reports_each_rate_and_seed_on_both_tasks():
    from course_utils.labs.transfer import learning_rate_sweep

    tasks = make_digit_tasks(labels_per_class=5, canvas=12, seed=0)
    pre = pretrain(tasks, FAST)
    table = learning_rate_sweep(pre, tasks, {"small": 1e-3, "large": 3e-2}, FAST, seeds=(0, 1), epochs=3)
    assert len(table) == 4 and set(table["learning_rate"]) == {"small", "large"}
    assert table["old_task_acc"].between(0, 1).all() and table["new_task_acc"].between(0, 1).all()
    assert (table["old_task_drop"] == pre[1].final("old_task_acc") - table["old_task_acc"]).all()
    # seeds draw different labelled sets, so two seeds do not give the same run
    small = table[table["learning_rate"] == "small"]
    assert small["final_train_loss"].nunique() == 2
    with pytest.raises(ConfigError):
        learning_rate_sweep(pre, tasks, {"bad": 0.0}, FAST)
