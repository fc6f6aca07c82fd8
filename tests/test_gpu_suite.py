"""The GPU suite (benchmarks/gpu_suite.sh) runs end to end on the CPU, so it cannot rot between GPUs, and
its pieces do what they claim: batches sized to the GPU, steps that fail alone, one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUITE_SH = ROOT / "benchmarks" / "gpu_suite.sh"


@pytest.fixture(scope="module")
def suite(load_benchmark):
    return load_benchmark("gpu_suite")


@pytest.fixture
def make_suite(suite):
    """A Suite object for the given arguments; its working folder is removed afterwards."""
    made = []

    def _make(argv):
        made.append(suite.Suite(suite.parse_args(argv)))
        return made[-1]

    yield _make
    for runner in made:
        shutil.rmtree(runner.work, ignore_errors=True)


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "OUT"}
    env.update(PYTHON=sys.executable, **extra)
    return env


def test_the_batch_is_the_largest_power_of_two_whose_activations_fit_half_the_gpu(suite):
    per_sample = 12 * 256 * 768 * (34 + 5 * 12 * 256 / 768) * 2  # BERT-base, 256 tokens, fp32
    batches = []
    for memory_gib in (8, 16, 24, 40, 79.6, 139.8, 500):
        batch = suite.batch_for_memory(memory_gib)
        assert batch & (batch - 1) == 0 and 8 <= batch <= 256
        half = 0.5 * memory_gib * 2**30
        assert batch == 8 or batch * per_sample <= half
        assert batch == 256 or 2 * batch * per_sample > half
        batches.append(batch)
    assert batches == sorted(batches)
    # the docstring's figures: an H100 (79.6 GiB as torch reports it) and an H200 (139.8 GiB)
    assert suite.batch_for_memory(79.6) == 128 and suite.batch_for_memory(139.8) == 256
    assert suite.batch_for_memory(79.6, max_length=128) > suite.batch_for_memory(79.6)


def test_targets_are_judged_from_the_measured_rows(suite):
    def row(variant, rate, mfu=None):
        return {"variant": variant, "samples_per_second": rate, "mfu": mfu}

    judged = suite.judge_targets([row("naive", 100.0), row("hf", 800.0), row("course", 900.0, 0.30)])
    results = {t["target"]: (round(t["value"], 3), t["met"]) for t in judged if t["variant"] == "course"}
    assert results == {"vs_naive": (9.0, True), "vs_hf": (1.125, True), "mfu": (0.3, False)}
    assert suite.judge_targets([row("naive", 100.0)]) == []  # nothing to judge without the course trainer


@pytest.mark.parametrize("argv, expected", [
    (["--dryrun", "--out", "{tmp}"], "unrecognized arguments: --dryrun (did you mean --dry-run?)"),
    (["--dry-run"], "no output folder: $OUT is unset and --out DIR was not given"),
    (["--dry-run", "--out", "{file}"], "is a file, not a folder"),
    (["--budget", "3", "--out", "{tmp}"], "--budget must be at least"),
])
def test_bad_input_gets_one_clear_line(tmp_path, argv, expected):
    (tmp_path / "f.txt").write_text("x")
    argv = [a.format(tmp=tmp_path, file=tmp_path / "f.txt") for a in argv]
    proc = subprocess.run(["bash", str(SUITE_SH), *argv], capture_output=True, text=True, env=_env(), timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("gpu_suite: error: ") and expected in proc.stderr
    assert not list(tmp_path.glob("gpu_suite.*"))


def test_a_failing_or_overrunning_step_is_recorded_and_the_next_ones_run(suite, make_suite, tmp_path, monkeypatch):
    runner = make_suite(["--dry-run", "--out", str(tmp_path)])

    def environment(self, deadline):
        self.ready = True
        return "ok", "fake", {}

    def overrun(self, deadline):
        self.run("tests", ["sleep", "30"], time.monotonic() + 1)

    def fail(self, deadline):
        raise suite.StepFailed("broken on purpose")

    def ok(self, deadline):
        return "ok", "fine", {}

    for name, method in (("wheels", ok), ("environment", environment), ("bench", fail), ("tests", overrun),
                         ("train_cli", ok), ("bench_compiled", ok)):
        monkeypatch.setattr(suite.Suite, f"step_{name}", method)
    started = time.monotonic()
    assert runner.main() == 1
    assert time.monotonic() - started < 20  # the sleep was stopped at its limit
    payload = json.loads((tmp_path / "gpu_suite.json").read_text())
    statuses = {s["name"]: s["status"] for s in payload["steps"]}
    assert statuses == {"wheels": "ok", "environment": "ok", "bench": "failed", "tests": "timeout",
                        "train_cli": "ok", "bench_compiled": "ok"}
    markdown = (tmp_path / "gpu_suite.md").read_text()
    assert "| bench | failed |" in markdown and "broken on purpose" in markdown and "| tests | timeout |" in markdown


def test_on_a_gpu_the_steps_run_bert_base_at_length_256_and_the_full_profile(suite, make_suite, load_benchmark,
                                                                              tmp_path, monkeypatch):
    """The GPU-sized command lines, which only a GPU runs, parse and say what the README promises."""
    from course_utils.cli.main import build_parser
    from course_utils.device import get_profile

    full = get_profile("cpu", size="full").to_dict()
    runner = make_suite(["--out", str(tmp_path)])
    runner.environment = {"gpu_memory_gib": 79.6, "full_profile": full}
    assert runner.tokenizer is not None
    bench = load_benchmark("bench_trainer").parse_args(runner.bench_args("--variants", "naive,hf,course", "--out", "b.json"))
    assert (bench.model, bench.data, bench.max_length, bench.batch_size, bench.epochs, bench.warm_steps) == (
        "bert-base-random", "imdb-like", 256, 128, 1, 5)
    assert bench.samples == 128 * suite.BENCH_STEPS and bench.tokenizer == str(runner.tokenizer)
    assert bench.peak_tflops is None  # on a GPU the peak comes from its exact model name

    commands = []

    def fake_run(name, cmd, deadline, check=True, **env):
        commands.append(cmd)
        out = Path(cmd[cmd.index("--output-dir") + 1])
        (out / "model").mkdir(parents=True)
        (out / "metrics.json").write_text(json.dumps({
            "accuracy": 0.5, "macro_f1": 0.4, "train_seconds": 60.0, "samples_per_second": 1400.0,
            "tokens_per_second": 5e4, "precision": precision, "sizes": {"train": 27557}, "best_epoch": 3,
            "device": {"name": "NVIDIA H100 80GB HBM3", "kind": kind}, "history": {"epochs": [{}] * 3},
            "config": {"batch_size": 64, "eval_batch_size": 256, "max_length": 128, "epochs": 3}}))
        return 0, ""

    monkeypatch.setattr(runner, "run", fake_run)
    monkeypatch.setattr(runner, "internal", lambda *args: {})
    precision, kind = "bf16", "cuda"
    status, summary, data = runner.step_train_cli(time.monotonic() + 60)
    assert status == "ok" and "bf16" in summary and data["epochs"] == 3
    args = build_parser("train").parse_args(commands[0][3:])
    assert (args.data, args.batch_size, args.eval_batch_size, args.epochs, args.max_length) == (
        "tweets", full["batch_size"], full["eval_batch_size"], full["epochs"], full["max_length"])
    assert args.max_train_samples is None and args.max_eval_samples is None  # the whole corpus
    precision, kind = "fp32", "cpu"
    shutil.rmtree(runner.work / "train")
    with pytest.raises(suite.StepFailed, match="not CUDA bf16"):
        runner.step_train_cli(time.monotonic() + 60)


@pytest.mark.slow
def test_the_dry_run_runs_every_step_on_the_cpu_and_writes_one_json_and_one_table(tmp_path, suite):
    out = tmp_path / "out"
    proc = subprocess.run(["bash", str(SUITE_SH), "--dry-run", "--out", str(out)], capture_output=True, text=True,
                          env=_env(), timeout=1500)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == ["gpu_suite.json", "gpu_suite.md"]
    payload = json.loads((out / "gpu_suite.json").read_text())
    assert payload["dry_run"] and payload["finished"]
    steps = {s["name"]: s for s in payload["steps"]}
    assert list(steps) == [name for name, *_ in suite.STEPS]
    for name, step in steps.items():
        allowed = {"ok", "skipped"} if name == "wheels" else {"ok"}  # CI carries no wheels
        assert step["status"] in allowed and step["summary"], (name, step)
    rows = {r["variant"]: r for r in payload["bench"]["rows"]}
    assert set(rows) == {"naive", "hf", "course", "course_compiled"}
    for r in rows.values():
        assert r["samples_per_second"] > 0 and r["real_tokens_per_second"] > 0 and r["mfu"] > 0
        assert r["peak_memory_gb"] > 0 and r["end_to_end_seconds"] > 0
    assert {t["variant"] for t in payload["bench"]["targets"]} == {"course", "course_compiled"}
    # bench_trainer end to end: every variant on the same data and model, its steady window and MFU as defined
    bench = steps["bench"]["data"]["payload"]
    results = {r["variant"]: r for r in bench["results"]}
    assert set(results) == {"naive", "hf", "course"}
    for r in results.values():
        assert r["n_train"] == 32 and r["n_test"] == 16 and r["steps"] == 4  # dry run: 32 texts, batch 8, 16 test
        steady = r["steady"]  # 4 steps, 1 warm-up: 3 steps of 8 texts in the steady window
        assert steady["steps"] == 3 and steady["samples"] == 24 and 0 < steady["seconds"] < r["end_to_end_seconds"]
        assert 0.0 <= r["test_accuracy"] <= 1.0 and len(r["test_predictions"]) == 16
        assert set(r["test_predictions"]) <= {"negative", "positive"}
        assert steady["mfu"] == pytest.approx(steady["flops"] / (steady["seconds"] * 1e12))  # --peak-tflops 1
    assert len({r["parameters"] for r in results.values()}) == 1  # same model in every variant
    assert len({r["threads"] for r in results.values()}) == 1  # same thread choice in every variant
    assert bench["cpu_target"] is None and bench["environment"]["load_average"] is not None
    assert "agrees with naive loop (fp32, pad to max_length) on" in steps["bench"]["log_tail"]
    counts = steps["tests"]["data"]["counts"]
    assert counts["passed"] > 0 and counts["failed"] == counts["error"] == 0
    assert steps["train_cli"]["data"]["sizes"]["train"] == 64 and 0 <= steps["train_cli"]["data"]["accuracy"] <= 1
    markdown = (out / "gpu_suite.md").read_text()
    for name, step in steps.items():
        assert f"| {name} | {step['status']} |" in markdown
    assert "| variant | samples/s | real tokens/s | MFU |" in markdown
    assert all(r["name"] in markdown for r in rows.values())
    assert markdown in proc.stdout  # the table is printed, so a device call's output shows it
