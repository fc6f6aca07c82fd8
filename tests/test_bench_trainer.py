"""The trainer benchmark runs end to end on small sizes, and its pieces measure what they claim."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_trainer.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_trainer", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_imdb_like_texts_reach_review_lengths_and_keep_their_label(bench):
    frame = pd.DataFrame({"text": ["good fun day here"] * 5 + ["bad sad awful thing"] * 5,
                          "label": ["positive"] * 5 + ["negative"] * 5})
    joined = bench.imdb_like(frame, 200, seed=0)
    words = joined["text"].str.split().str.len()
    assert len(joined) == 200 and set(joined["label"]) == {"negative", "positive"}
    assert 150 <= words.median() <= 320  # median near the 230 words asked for
    assert words.min() >= 20 and words.max() <= 1200
    for text, label in zip(joined["text"], joined["label"]):  # a review is built from its own class only
        assert set(text.split()) <= set(("good fun day here" if label == "positive" else "bad sad awful thing").split())


def test_unknown_variant_is_refused_with_the_choices(bench, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.parse_args(["--variants", "naive,fast"])
    assert exit_info.value.code == 2
    assert "unknown variant(s) ['fast']" in capsys.readouterr().err


def test_all_three_variants_run_on_the_same_data_and_write_a_table(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--model", "tiny", "--data", "imdb-like", "--samples", "32",
         "--eval-samples", "24", "--max-length", "32", "--epochs", "1", "--batch-size", "8", "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "samples/s" in proc.stdout and "course_utils.trainer" in proc.stdout
    payload = json.loads(out.read_text())
    results = {r["variant"]: r for r in payload["results"]}
    assert set(results) == {"naive", "hf", "course"}
    for r in results.values():
        assert r["n_train"] == 32 and r["n_test"] == 24  # same data for every variant
        assert r["samples_per_second"] > 0 and r["real_tokens_per_second"] > 0
        assert 0.0 <= r["test_accuracy"] <= 1.0 and r["peak_memory_gb"] > 0
        assert r["mfu"] is None  # no known peak on a CPU unless --peak-tflops is given
    assert len({r["parameters"] for r in results.values()}) == 1  # same model in every variant
    assert payload["cpu_target"] is None  # only the 768-tweet, 2-epoch run is judged against the target
