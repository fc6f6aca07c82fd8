"""The ``course-utils`` command: ``doctor``, ``train``, ``grade``, ``exercises`` and ``release``.

Each subcommand lives in its own module and is imported only when used, so ``course-utils doctor``
answers in seconds even on a machine where torch itself is broken (it says so instead of crashing).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from collections.abc import Sequence

from course_utils.errors import CourseError

# name -> (module, one-line help). The module provides add_arguments(parser) and run(args) -> int.
SUBCOMMANDS = {
    "doctor": ("course_utils.cli.doctor", "check that this machine can run the course (works offline)"),
    "train": ("course_utils.cli.train", "fine-tune a BERT classifier on tweets, IMDB or your own file"),
    "grade": ("course_utils.cli.grade", "grade a folder of learners' exercise notebooks into a CSV report"),
    "site": ("course_utils.cli.site", "build the course website from the executed notebooks (offline), or check one"),
    "exercises": ("course_utils.cli.exercises", "build exercise notebooks from the solutions, or check they are in sync"),
    "release": ("course_utils.cli.release",
                "write what a class gets (lessons, exercises, package) without solutions or the spec"),
}


def _load(module_name: str):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None  # a subcommand whose module is absent stays hidden instead of breaking the rest
        raise


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``selected``'s module is imported, so one command never pays for another."""
    from course_utils import __version__

    parser = argparse.ArgumentParser(
        prog="course-utils",
        description="Tools for the fine-tuning course. Run `course-utils doctor` first.",
    )
    parser.add_argument("--version", action="version", version=f"course-utils {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        if name != selected:
            if importlib.util.find_spec(module_name) is not None:
                sub.add_parser(name, help=help_text)
            continue
        module = _load(module_name)
        if module is None:
            continue
        sp = sub.add_parser(
            name,
            help=help_text,
            description=(module.__doc__ or help_text).strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(sp)
        sp.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code so tests can call it in-process."""
    argv = list(sys.argv[1:] if argv is None else argv)
    selected = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(selected if selected in SUBCOMMANDS else None)
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except CourseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError, RuntimeError) as exc:
        # A library's error on bad input (a file it cannot read, a shape it refuses): one line, exit 1.
        # COURSE_DEBUG=1 shows the traceback for a bug report.
        if os.environ.get("COURSE_DEBUG") == "1":
            raise
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        print(f"error: {type(exc).__name__}: {first} (COURSE_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
