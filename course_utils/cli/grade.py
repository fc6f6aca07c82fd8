"""``course-utils grade``: grade a folder of learners' exercise notebooks into a CSV report."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from course_utils.errors import ConfigError
from course_utils.grading.grade import DEFAULT_TIMEOUT, STATUSES, grade, totals, write_csv, write_json
from course_utils.grading.sandbox import Limits, namespace_command



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("submissions", metavar="SUBMISSIONS_DIR",
                        help="folder with one sub-folder per student, each holding NN_topic.ipynb files")
    parser.add_argument("--out", required=True, metavar="CSV", help="where to write the CSV report")
    parser.add_argument("--json", metavar="JSON", help="also write a JSON report with per-notebook details and totals")
    parser.add_argument("--spec", metavar="PATH",
                        help="the hidden spec (default: grading/spec.json of the course checkout)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help=f"wall-clock limit per notebook, kernel start included (default {DEFAULT_TIMEOUT:g}; "
                             "the BERT exercise needs about 2 minutes on a 2-core CPU)")
    parser.add_argument("--memory-mb", type=int, default=None, metavar="MB",
                        help="address-space limit per notebook (default 8192, or none where an NVIDIA GPU is "
                             "present: CUDA reserves far more address space than it uses; 0 = no limit)")
    parser.add_argument("--notebook", action="append", metavar="NN_topic",
                        help="grade only this notebook (repeatable); default: every gradable notebook anyone submitted")
    parser.add_argument("--jobs", type=int, default=1, metavar="N", help="notebooks graded in parallel (default 1)")
    parser.add_argument("--require-isolation", action="store_true",
                        help="refuse to grade unless Linux namespaces can hide the spec and cut the network "
                             "(use for untrusted submissions outside a container)")


def run(args: argparse.Namespace) -> int:
    if args.timeout <= 0 or args.jobs < 1:
        raise ConfigError("--timeout must be positive and --jobs at least 1.")
    memory_mb = args.memory_mb
    if memory_mb is None:
        gpu = Path("/dev/nvidiactl").exists()
        memory_mb = 0 if gpu else 8192
        if gpu:
            print("note: NVIDIA GPU present: no address-space limit (CUDA needs a large one); "
                  "pass --memory-mb to set one anyway.", file=sys.stderr)
    limits = Limits(timeout=args.timeout, memory_mb=memory_mb or None)
    namespaced = namespace_command() is not None
    if not namespaced:
        if args.require_isolation:
            raise ConfigError("Linux namespaces (unshare + setpriv) are not available here; grade inside a container "
                              "or a throw-away VM, or drop --require-isolation.")
        print("warning: no Linux namespaces here: submissions run with resource limits and a timeout only; they can "
              "read files you can read (the spec included) and use the network. Grade untrusted work in a container.",
              file=sys.stderr)
    started = time.monotonic()
    reports = grade(args.submissions, args.spec, limits, args.notebook, args.jobs,
                    progress=lambda line: print(line, file=sys.stderr, flush=True))
    write_csv(reports, args.out)
    if args.json:
        write_json(reports, args.json, limits)
    counts = {s: sum(r.status == s for rep in reports for r in rep.rows) for s in STATUSES}
    print(f"graded {len(reports)} notebook(s) in {time.monotonic() - started:.0f} s; "
          + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + f"; report: {args.out}")
    for student, t in totals(reports).items():
        print(f"  {student:<24} {t['score']:g} / {t['max_score']:g}")
    return 0

import course_utils.grading.grade as _engine  # noqa: E402

__doc__ = _engine.__doc__  # the engine module documents the workflow; --help shows it
