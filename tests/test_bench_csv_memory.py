"""The CSV memory benchmark writes a wide CSV, loads it both ways in fresh processes and reports the peaks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_csv_memory.py"


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark("bench_csv_memory")


def test_the_wide_csv_has_the_size_asked_for_and_nine_columns(bench, tmp_path):
    path = tmp_path / "wide.csv"
    rows = bench.write_wide_csv(path, 1.0)
    frame = pd.read_csv(path)
    assert len(frame) == rows and len(frame.columns) == 9 and {"text", "label"} <= set(frame.columns)
    assert 1.0 <= path.stat().st_size / 2**20 < 1.0 + 8  # at least the size asked for, at most one chunk more


def test_the_loader_keeps_two_columns_and_peaks_lower_than_a_plain_read(tmp_path):
    out = tmp_path / "csv.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--mb", "12", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "peak growth MB" in proc.stdout
    results = {r["reader"]: r for r in json.loads(out.read_text())["results"]}
    assert results["pandas"]["rows"] == results["course"]["rows"] > 0
    assert results["pandas"]["columns"] == 9 and results["course"]["columns"] == 2
    assert results["course"]["frame_mb"] < results["pandas"]["frame_mb"]  # seven unneeded columns never kept
    # the peaks are reported, not compared: at this size the loader's validation copies outweigh the
    # columns it skips (benchmarks/README.md gives the figures at 50 and 200 MB)
    assert all(r["peak_growth_mb"] > 0 and r["seconds"] > 0 for r in results.values())
