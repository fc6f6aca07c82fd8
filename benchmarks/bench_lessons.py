"""Time lessons with the course's thread policy and with torch's default, idle and under load.

Each lesson is executed top to bottom with nbclient, as a learner's "Restart & Run All" would,
under two thread settings:

* ``policy``: ``course_utils.device.configure_threads()`` decides (the lessons call it first);
* ``torch default``: ``COURSE_TORCH_THREADS`` set to the number of usable cores, which is what torch
  does on its own (one intra-op thread per core).

``--load`` adds a competing process for the whole run (by default another lesson executed in a
loop, as a learner running two notebooks would; ``--load spin`` burns one core instead), started
60 s before timing so the load average the policy reads has risen.

    python benchmarks/bench_lessons.py 05_fine_tuning_bert 06_overfitting_and_best_practices
    python benchmarks/bench_lessons.py 06_overfitting_and_best_practices --load lesson --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def run_notebook(stem: str, env: dict[str, str], timeout: int = 1800) -> float:
    """Seconds to execute notebooks/<stem>.ipynb in a fresh kernel (outputs are discarded)."""
    code = (
        "import nbformat, sys\n"
        "from nbclient import NotebookClient\n"
        f"nb = nbformat.read({str(ROOT / 'notebooks' / (stem + '.ipynb'))!r}, as_version=4)\n"
        f"NotebookClient(nb, timeout={timeout}, kernel_name='python3', "
        f"resources={{'metadata': {{'path': {str(ROOT / 'notebooks')!r}}}}}).execute()\n"
    )
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=ROOT)
    return time.perf_counter() - start


def start_load(kind: str, lesson: str) -> subprocess.Popen:
    if kind == "spin":
        return subprocess.Popen([sys.executable, "-c", "while True: pass"])
    loop = (
        "import subprocess, sys\n"
        "while True:\n"
        f"    subprocess.run([sys.executable, {str(Path(__file__).resolve())!r}, {lesson!r}, '--settings', 'policy'],"
        " stdout=subprocess.DEVNULL)\n"
    )
    return subprocess.Popen([sys.executable, "-c", loop], start_new_session=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lessons", nargs="+", metavar="NN_topic")
    parser.add_argument("--settings", nargs="+", choices=("policy", "default"), default=["policy", "default"])
    parser.add_argument("--load", choices=("none", "lesson", "spin"), default="none",
                        help="competing work during the timing (default none)")
    parser.add_argument("--load-lesson", default="06_overfitting_and_best_practices",
                        help="the lesson --load lesson runs in a loop")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args(argv)
    for stem in args.lessons:
        if not (ROOT / "notebooks" / f"{stem}.ipynb").is_file():
            parser.error(f"no notebooks/{stem}.ipynb")
    load = None
    if args.load != "none":
        load = start_load(args.load, args.load_lesson)
        time.sleep(60)
    rows = []
    try:
        for stem in args.lessons:
            for setting in args.settings:
                env = {k: v for k, v in os.environ.items() if k != "COURSE_TORCH_THREADS"}
                if setting == "default":
                    env["COURSE_TORCH_THREADS"] = str(usable_cores())
                seconds = run_notebook(stem, env)
                row = {"lesson": stem, "threads": setting, "load": args.load, "seconds": round(seconds, 1),
                       "load_average": round(os.getloadavg()[0], 2)}
                rows.append(row)
                print(f"{stem:<40} {setting:<8} load={args.load:<6} {seconds:7.1f} s", flush=True)
    finally:
        if load is not None:
            try:
                os.killpg(load.pid, 15)
            except (ProcessLookupError, PermissionError):
                load.kill()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
