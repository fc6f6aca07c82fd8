"""``course-utils grade``: grade a folder of learners' exercise notebooks into a CSV report."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from course_utils.errors import ConfigError
from course_utils.grading.batch import DEFAULT_TIMEOUT, grade
from course_utils.grading.evaluation import PRIVATE_FILE_COLUMNS, read_private_set
from course_utils.grading.reports import (
    EXPORT_FORMATS,
    STATUSES,
    clean_text,
    isolated,
    totals,
    write_csv,
    write_feedback,
    write_json,
    write_totals,
)
from course_utils.grading.sandbox import Limits, namespace_command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("submissions", metavar="SUBMISSIONS_DIR",
                        help="folder with one sub-folder per learner, each holding NN_topic.ipynb files")
    parser.add_argument("--spec", required=True, metavar="PATH",
                        help="the private spec, generated outside the checkout by `python grading/build_spec.py --out DIR`")
    parser.add_argument("--out", required=True, metavar="CSV", help="where to write the per-question CSV report")
    parser.add_argument("--json", metavar="JSON", help="also write a JSON report with isolation records and totals")
    parser.add_argument("--feedback", metavar="DIR", help="write one Markdown feedback file per learner into DIR")
    parser.add_argument("--totals", metavar="CSV", help="write one row per learner (see --format)")
    parser.add_argument("--format", choices=EXPORT_FORMATS, default="plain",
                        help="layout of --totals: plain (learner,score,max_score,manual_pending), gradescope or canvas")
    parser.add_argument("--assignment", default="Exercises", help="the assignment's column name for --format canvas")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help=f"wall-clock limit per notebook, kernel start included (default {DEFAULT_TIMEOUT:g}; "
                             "the BERT exercise needs about 2 minutes on a 2-core CPU)")
    parser.add_argument("--memory-mb", type=int, default=None, metavar="MB",
                        help="address-space limit per notebook (default 8192, or none where an NVIDIA GPU is "
                             "present: CUDA reserves far more address space than it uses; 0 = no limit)")
    parser.add_argument("--max-processes", type=int, default=512, metavar="N",
                        help="processes and threads a submission may run at once (default 512)")
    parser.add_argument("--cpus", type=float, default=None, metavar="N",
                        help="CPU time per second for each notebook's cgroup, where the host allows one (default: every core)")
    parser.add_argument("--scratch-mb", type=int, default=1024, metavar="MB",
                        help="what a notebook may write: the size of its in-memory scratch folder (default 1024)")
    parser.add_argument("--eval-set", action="append", default=[], metavar="NAME=FILE",
                        help="score a model question on your own rows instead of the course's public split: "
                             + "; ".join(f"{k} ({v})" for k, v in PRIVATE_FILE_COLUMNS.items())
                             + ". Without it the report marks those answers 'public evaluation data'")
    parser.add_argument("--notebook", action="append", metavar="NN_topic",
                        help="grade only this notebook (repeatable); default: every gradable notebook anyone submitted")
    parser.add_argument("--jobs", type=int, default=1, metavar="N", help="notebooks graded in parallel (default 1)")
    parser.add_argument("--allow-unisolated", action="store_true",
                        help="grade even where Linux namespaces are unavailable (submissions can then read your "
                             "files, including the spec, use the network and outlive the grader); recorded in the report")
    parser.add_argument("--require-isolation", action="store_true", help=argparse.SUPPRESS)  # the default now


def run(args: argparse.Namespace) -> int:
    if args.timeout <= 0 or args.jobs < 1 or args.max_processes < 1:
        raise ConfigError("--timeout must be positive, --jobs and --max-processes at least 1.")
    if args.allow_unisolated and args.require_isolation:
        raise ConfigError("--allow-unisolated and --require-isolation contradict each other; pass one.")
    memory_mb = args.memory_mb
    if memory_mb is None:
        gpu = Path("/dev/nvidiactl").exists()
        memory_mb = 0 if gpu else 8192
        if gpu:
            print("note: NVIDIA GPU present: no address-space limit (CUDA needs a large one); "
                  "pass --memory-mb to set one anyway.", file=sys.stderr)
    limits = Limits(timeout=args.timeout, memory_mb=memory_mb or None, max_processes=args.max_processes,
                    scratch_mb=args.scratch_mb, cpus=args.cpus)
    private = {}
    for item in args.eval_set:
        name, sep, path = item.partition("=")
        if not sep or not path:
            raise ConfigError(f"--eval-set takes NAME=FILE, got {item!r}; names: {sorted(PRIVATE_FILE_COLUMNS)}.")
        private[name.strip()] = read_private_set(name.strip(), path)
    if namespace_command() is None and args.allow_unisolated:
        print("WARNING: grading UNISOLATED (--allow-unisolated): submissions can read your files, the spec included, "
              "use the network and outlive this run. The report records it.", file=sys.stderr)
    started = time.monotonic()
    reports = grade(args.submissions, args.spec, limits, args.notebook, args.jobs,
                    allow_unisolated=args.allow_unisolated,
                    progress=lambda line: print(line, file=sys.stderr, flush=True), private_sets=private)
    for line in reports.skipped + reports.collisions:
        print(f"note: {line}", file=sys.stderr)
    # every process of every run is gone by now (run_notebook waits for its namespace to die)
    write_csv(reports, args.out)
    if args.json:
        write_json(reports, args.json, limits, allow_unisolated=args.allow_unisolated)
    if args.feedback:
        write_feedback(reports, args.feedback)
    if args.totals:
        write_totals(reports, args.totals, args.format, args.assignment)
    counts = {s: sum(r.status == s for rep in reports for r in rep.rows) for s in STATUSES}
    unisolated = not isolated(reports)
    print(f"graded {len(reports)} notebook(s) in {time.monotonic() - started:.0f} s; "
          + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + f"; report: {args.out}"
          + (" (UNISOLATED)" if unisolated else ""))
    for student, t in totals(reports).items():
        manual = f" (+{t['manual']:g} manual)" if t["manual"] else ""
        print(f"  {clean_text(student, 24):<24} {t['score']:g} / {t['max_score']:g}{manual}")
    return 0

import course_utils.grading.grade as _engine  # noqa: E402

__doc__ = _engine.__doc__  # the engine module documents the workflow; --help shows it
