"""Peak memory of loading a learner's CSV: ``course_utils.data.load_text_file`` against a plain ``pd.read_csv``.

A real export has more than the two columns the trainer needs (ids, dates, users, URLs, free-text
notes). The script writes such a CSV of about ``--mb`` megabytes (``text``, ``label`` and seven other
columns), then loads it in a fresh process per reader and reports the growth of that process's peak
resident memory (``ru_maxrss`` after loading minus before, libraries already imported) and the seconds.

  python benchmarks/bench_csv_memory.py --mb 200
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __name__ == "__main__":  # run as a script from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

READERS = {
    "pandas": "pd.read_csv(path): every column, inferred types",
    "course": "course_utils.data.load_text_file(path): text and label only, as strings, validated",
}


def write_wide_csv(path: Path, megabytes: float, seed: int = 0) -> int:
    """A CSV of about ``megabytes`` MB with 9 columns, 2 of which the trainer needs; returns the rows."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    words = np.array("the flight was late again great crew lost my bag thanks for nothing seat food "
                     "delayed cancelled lovely staff never again best airline ever rude".split())
    rows, written, chunk = 0, 0, 20_000
    target = megabytes * 2**20
    with path.open("w", encoding="utf-8", newline="") as f:
        while written < target:
            n_words = rng.integers(5, 30, chunk)
            frame = pd.DataFrame({
                "id": np.arange(rows, rows + chunk),
                "created_at": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**7, chunk), unit="s"),
                "user": [f"user_{i}" for i in rng.integers(0, 10**6, chunk)],
                "text": [" ".join(rng.choice(words, k)) for k in n_words],
                "label": rng.choice(["negative", "neutral", "positive"], chunk),
                "retweets": rng.integers(0, 1000, chunk),
                "score": rng.random(chunk),
                "url": [f"https://example.org/status/{i}" for i in rng.integers(0, 10**12, chunk)],
                "notes": [" ".join(rng.choice(words, k)) for k in rng.integers(0, 20, chunk)],
            })
            text = frame.to_csv(index=False, header=rows == 0)
            f.write(text)
            written += len(text.encode())
            rows += chunk
    return rows


def measure(reader: str, path: str) -> dict:
    """Runs in the subprocess: load once, report peak RSS growth (MB) and seconds."""
    import pandas as pd

    from course_utils.data import load_text_file

    load = {"pandas": lambda: pd.read_csv(path), "course": lambda: load_text_file(path)}[reader]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    start = time.perf_counter()
    frame = load()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"reader": reader, "peak_growth_mb": (peak - before) / 1024, "seconds": seconds, "rows": len(frame),
            "columns": len(frame.columns), "frame_mb": frame.memory_usage(deep=True).sum() / 2**20}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mb", type=float, default=200.0, help="size of the CSV to write, in MB")
    p.add_argument("--out", default="bench_csv_memory.json", help="where to write the JSON results")
    p.add_argument("--reader", choices=READERS, help=argparse.SUPPRESS)  # internal: one reader in this process
    p.add_argument("--path", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.reader:
        print(json.dumps(measure(args.reader, args.path)))
        return 0
    if not args.mb > 0:
        p.error(f"--mb must be > 0, got {args.mb}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "wide.csv"
        rows = write_wide_csv(path, args.mb)
        size_mb = path.stat().st_size / 2**20
        results = []
        for reader in READERS:
            proc = subprocess.run([sys.executable, __file__, "--reader", reader, "--path", str(path)],
                                  capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                print(f"{reader} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
                return proc.returncode
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"\nCSV of {size_mb:.0f} MB, {rows} rows, 9 columns (the trainer needs 2)")
    header = f"{'reader':<80} {'peak growth MB':>14} {'frame MB':>9} {'seconds':>8}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{READERS[r['reader']]:<80} {r['peak_growth_mb']:>14.0f} {r['frame_mb']:>9.0f} {r['seconds']:>8.1f}")
    print("(peak growth: the process's peak resident memory after loading minus before, libraries already loaded)")
    payload = {"csv_mb": size_mb, "rows": rows, "results": results,
               "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None}
    Path(args.out).write_text(json.dumps(payload, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
