"""``course-utils exercises``: build the exercise notebooks from the solutions, or check they are in sync."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from course_utils.cli.checkout import checkout_root
from course_utils.grading import questions as registry
from course_utils.grading.exercises import sync


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=("build", "list"), default="build",
                        help="build: write exercises/ from solutions/ (default); list: show the questions")
    parser.add_argument("topics", nargs="*", metavar="NN_topic", help="only these notebooks (default: all)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if any exercise differs from what its solution generates")
    parser.add_argument("--solutions", type=Path, default=None, help="solutions folder (default: solutions/ of the checkout)")
    parser.add_argument("--exercises", type=Path, default=None, help="exercises folder (default: exercises/ of the checkout)")


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        for q in registry.QUESTIONS:
            print(f"{q.id:<6} {q.notebook:<36} {q.variable:<26} {q.channel:<9} {q.kind:<13} {q.points:g} pt  {q.prompt}")
        return 0
    root = Path.cwd() if (Path.cwd() / "solutions").is_dir() else checkout_root()
    solutions = args.solutions or root / "solutions"
    exercises = args.exercises or root / "exercises"
    results = sync(solutions, exercises, check_only=args.check, topics=args.topics or None)
    bad = [r for r in results if not r.in_sync]
    for r in results:
        mark = "ok " if r.in_sync else "DRIFT"
        print(f"{mark} {r.topic}: {r.problem or 'in sync'}")
    if bad:
        print(f"{len(bad)} exercise notebook(s) out of sync; run `course-utils exercises build`.", file=sys.stderr)
        return 1
    return 0


import course_utils.grading.exercises as _engine  # noqa: E402

__doc__ = _engine.__doc__  # the engine module documents the workflow; --help shows it
