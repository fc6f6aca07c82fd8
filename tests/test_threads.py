"""The thread policy: one place decides torch's intra-op threads, from the cores really free."""

from __future__ import annotations

import pytest
import torch

from course_utils.device import choose_threads, configure_threads
from course_utils.errors import ConfigError


def test_an_idle_machine_uses_every_usable_core():
    assert choose_threads(cores=8, workers=1, busy=0, env={}).threads == 8


def test_parallel_workers_share_the_cores():
    choice = choose_threads(cores=8, workers=4, busy=0, env={"PYTEST_XDIST_WORKER_COUNT": "4"})
    assert choice.threads == 2 and "4 parallel workers" in choice.reason
    assert choose_threads(cores=2, busy=0, env={"PYTEST_XDIST_WORKER_COUNT": "2"}).threads == 1


def test_cores_busy_with_other_work_are_left_alone():
    choice = choose_threads(cores=2, workers=1, busy=1, env={})
    assert choice.threads == 1 and "busy" in choice.reason
    assert choose_threads(cores=2, workers=1, busy=5, env={}).threads == 1  # never fewer than one


def test_the_environment_variable_overrides_and_bad_values_are_named():
    assert choose_threads(cores=2, busy=1, env={"COURSE_TORCH_THREADS": "3"}).threads == 3
    with pytest.raises(ConfigError, match="COURSE_TORCH_THREADS"):
        choose_threads(env={"COURSE_TORCH_THREADS": "many"})
    with pytest.raises(ConfigError, match="COURSE_TORCH_THREADS"):
        choose_threads(env={"COURSE_TORCH_THREADS": "0"})


def test_configure_threads_applies_the_choice_to_torch():
    before = torch.get_num_threads()
    try:
        assert configure_threads(1).threads == 1 and torch.get_num_threads() == 1
        choice = configure_threads()
        assert torch.get_num_threads() == choice.threads >= 1
        with pytest.raises(ConfigError):
            configure_threads(0)
    finally:
        torch.set_num_threads(before)
