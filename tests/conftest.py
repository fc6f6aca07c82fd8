"""Shared fixtures: small labelled files and frames, so tests never depend on the network."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pandas as pd
import pytest

# Tests must behave the same with and without a network: never touch the Hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Several tests compare two training runs bit for bit (resume vs uninterrupted, prefetch on vs off). MKL may
# pick a different summation path for a matrix product depending on how its operands happen to be aligned
# in memory, which differs from one run to the next in a long test process; strict conditional numerical
# reproducibility pins it. Set before torch loads MKL (nothing above imports torch).
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")
# The trainer asks configure_threads() before it trains; left to the load average, a module fixture's reference
# run and a test's later run could get 1 and 2 threads, whose float sums differ in the last bits. One thread for
# the whole session, fixed before any fixture runs (under `pytest -n auto` each worker gets one thread anyway).
os.environ.setdefault("COURSE_TORCH_THREADS", "1")


def pytest_collection_modifyitems(config, items):
    """``@pytest.mark.cuda`` tests skip, saying why, where torch sees no CUDA GPU; the GPU suite's dry run
    (``COURSE_CUDA_TESTS_ON_CPU=1``) runs them on the CPU instead, so they cannot rot between GPUs."""
    marked = [item for item in items if item.get_closest_marker("cuda")]
    if not marked or os.environ.get("COURSE_CUDA_TESTS_ON_CPU") == "1":
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False); "
                                   "benchmarks/gpu_suite.sh runs it on one")
    for item in marked:
        item.add_marker(skip)


@pytest.fixture
def labelled_frame() -> pd.DataFrame:
    texts = [f"great product number {i}" for i in range(12)] + [f"awful service case {i}" for i in range(12)]
    labels = ["positive"] * 12 + ["negative"] * 12
    return pd.DataFrame({"text": texts, "label": labels})


@pytest.fixture
def write_csv(tmp_path):
    def _write(content: str | bytes, name: str = "data.csv"):
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return _write


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's tiny networks on one torch thread, then restore the setting.

    Ops on networks this small are dominated by thread hand-off: with several threads per op (and
    xdist workers sharing two cores) they run many times slower.
    """
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="session")
def load_benchmark():
    """Import ``benchmarks/<name>.py`` as a module (the folder is not a package), for tests of its pieces."""
    def _load(name: str):
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return _load


@pytest.fixture(scope="session")
def llm_tokenizer():
    """The offline LLM's real tokenizer and chat template (read from the GGUF file, no weights)."""
    from transformers import AutoTokenizer

    from course_utils import models

    gguf = models.offline_llm_file()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


@pytest.fixture(scope="session")
def tiny_llama(llm_tokenizer):
    """Make a random two-layer Llama with the offline LLM's vocabulary: lesson 09's architecture in miniature."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    def make(seed: int = 0):
        torch.manual_seed(seed)
        config = LlamaConfig(vocab_size=len(llm_tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, pad_token_id=llm_tokenizer.pad_token_id)
        return LlamaForCausalLM(config).eval()

    return make
