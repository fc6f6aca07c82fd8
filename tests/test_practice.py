"""The given model of the learning-rate exercise: deterministic, and its curves read as the exercise says."""

from __future__ import annotations

import math

import pytest

from course_utils.errors import ConfigError
from course_utils.labs.practice import LR_BEHAVIOURS, describe_loss_curve, digits_training_set, lr_experiment


def test_lr_experiment_is_seeded_and_starts_before_training():
    short = lr_experiment(0.01, epochs=2)
    assert len(short) == 3 and short == lr_experiment(0.01, epochs=2)
    assert short[0] == pytest.approx(math.log(5), rel=0.15)  # an untrained 5-class model is near chance
    assert short[-1] < short[0]


def test_describe_loss_curve_names_the_three_behaviours():
    assert describe_loss_curve([1.6, 0.8, 0.3, 0.1, 0.05, 0.06, 0.04]) == LR_BEHAVIOURS[0]  # a tiny bump is noise
    assert describe_loss_curve([1.6, 3.4, 0.6, 0.2, 0.4]) == LR_BEHAVIOURS[1]  # above the start
    assert describe_loss_curve([1.0, 0.5, 0.7, 0.4, 0.6, 0.3, 0.5]) == LR_BEHAVIOURS[1]  # keeps bouncing
    assert describe_loss_curve([1.0, 5.0, float("nan")]) == LR_BEHAVIOURS[2]


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ConfigError, match="lr > 0"):
        lr_experiment(0.0)
    with pytest.raises(ConfigError, match="at least two"):
        describe_loss_curve([1.0])
    with pytest.raises(ConfigError, match="n_classes"):
        digits_training_set(1)
    X, y = digits_training_set(3)
    assert X.shape[1] == 64 and set(y.tolist()) == {0, 1, 2} and float(X.max()) <= 1.0
