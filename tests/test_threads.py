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


def test_a_decaying_load_average_is_checked_against_the_cpus_use_now(monkeypatch):
    from course_utils import device

    monkeypatch.setattr(device.os, "getloadavg", lambda: (1.8, 1.5, 1.0))   # a heavy notebook just ended
    monkeypatch.setattr(device, "_busy_now", lambda window=0.1: 0.05)       # ... and the CPUs are idle now
    assert device._busy_cores(2) == 0 and choose_threads(cores=2, workers=1, env={}).threads == 2
    monkeypatch.setattr(device, "_busy_now", lambda window=0.1: 0.97)       # another process still computes
    assert device._busy_cores(2) == 1 and choose_threads(cores=2, workers=1, env={}).threads == 1
    monkeypatch.setattr(device, "_busy_now", lambda window=0.1: None)       # no /proc/stat: the load average alone
    assert device._busy_cores(2) == 1
    monkeypatch.setattr(device, "_busy_cores", lambda cores: pytest.fail("one thread per worker needs no look"))
    assert choose_threads(cores=2, env={"PYTEST_XDIST_WORKER_COUNT": "2"}).threads == 1
    monkeypatch.undo()
    monkeypatch.setattr(device.os, "getloadavg", lambda: (0.4, 0.3, 0.2))
    monkeypatch.setattr(device, "_busy_now", lambda window=0.1: pytest.fail("an idle load average needs no look"))
    assert device._busy_cores(2) == 0


def test_cpu_use_now_is_read_from_proc_stat(monkeypatch, tmp_path):
    from course_utils import device

    stat = tmp_path / "stat"
    stat.write_text("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 50 0 50 350 50 0 0 0 0 0\ncpu1 50 0 50 350 50 0 0 0 0 0\nintr 1\n")
    assert device._cpu_times(str(stat)) == (200.0, 1000.0, 2)   # idle and iowait are not busy
    assert device._cpu_times(str(tmp_path / "missing")) is None
    samples = iter([(200.0, 1000.0, 2), (300.0, 1200.0, 2)])
    monkeypatch.setattr(device, "_cpu_times", lambda: next(samples))
    monkeypatch.setattr(device.time, "sleep", lambda seconds: None)
    assert device._busy_now() == pytest.approx(1.0)   # 100 busy ticks of 200 on 2 CPUs: one core
