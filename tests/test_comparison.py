"""Paired differences: the verdict follows the interval, so a reversed result flips it."""

import pytest

from course_utils.comparison import failed_runs, paired_difference, predicts_one_class, unpaired_difference
from course_utils.errors import DataError


def test_a_consistent_gain_is_higher_and_a_reversal_is_lower():
    a, b = [0.80, 0.82, 0.79, 0.81], [0.70, 0.71, 0.70, 0.72]
    assert paired_difference(a, b).verdict == "higher"
    assert paired_difference(b, a).verdict == "lower"


def test_pairing_removes_shared_luck():
    """Seeds differ a lot, A beats B by 0.01 on every one: unpaired ranges overlap, the paired verdict is clear."""
    b = [0.60, 0.70, 0.80, 0.90]
    a = [x + 0.01 for x in b]
    assert max(b) > min(a)  # the marginal ranges overlap
    diff = paired_difference(a, b)
    assert diff.verdict == "higher" and diff.mean == pytest.approx(0.01)


def test_mixed_signs_are_no_clear_difference_and_the_text_says_so():
    diff = paired_difference([0.7, 0.6, 0.8], [0.65, 0.7, 0.75])
    assert diff.verdict == "no clear difference" and diff.low < 0 < diff.high
    assert "no clear difference" in str(diff) and "3 pairs" in str(diff)


def test_bad_input_is_one_clear_error():
    with pytest.raises(DataError, match="at least two pairs"):
        paired_difference([0.5], [0.4])
    with pytest.raises(DataError, match="same length"):
        paired_difference([0.5, 0.6], [0.4])
    with pytest.raises(DataError, match="failed runs"):
        paired_difference([0.5, float("nan")], [0.4, 0.3])


def test_failed_runs_are_the_ones_at_the_floor():
    assert failed_runs([0.41, 0.80, 0.412, 0.75], floor=0.412) == [0, 2]
    assert failed_runs([0.45, 0.8], floor=0.412, margin=0.05) == [0]


def test_unpaired_difference_for_unrelated_seeds():
    clear = unpaired_difference([0.90, 0.91, 0.92], [0.80, 0.81, 0.79])
    assert clear.verdict == "higher" and "difference of means" in str(clear)
    assert unpaired_difference([0.90, 0.80, 0.85], [0.86, 0.84, 0.83]).verdict == "no clear difference"
    with pytest.raises(DataError, match="at least two runs"):
        unpaired_difference([0.9], [0.8, 0.7])


def test_a_run_that_predicts_one_class_failed():
    assert predicts_one_class([0] * 19 + [1]) and not predicts_one_class([0] * 15 + [1] * 5)
    assert predicts_one_class([2, 2, 2, 1], share=0.75)
    with pytest.raises(DataError, match="no predictions"):
        predicts_one_class([])
