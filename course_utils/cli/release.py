"""``course-utils release OUTDIR``: the tree a class gets, without solutions or anything that grades.

Copies, from the course checkout this package runs from: README.md, pyproject.toml, environment.yml,
the lessons (notebooks/), the exercises (exercises/) and the ``course_utils`` package. Everything
else stays behind: solutions/, grading/ (the spec builder), tests/ (they hold the grading fixtures),
benchmarks/, INSTRUCTORS.md, the git history and any spec. Files come from ``git ls-files`` when
the checkout is a git repository (so untracked notes and caches never ship), else from a walk.

OUTDIR must be outside the checkout and empty or absent; the tree is written to a temporary sibling
and renamed into place (``course_utils.files.atomic_directory``), so a failed release leaves nothing half-written.

Example:
  course-utils release ../course-2026-spring
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from pathlib import Path

from course_utils.cli.checkout import checkout_root
from course_utils.errors import ConfigError
from course_utils.files import atomic_directory

INCLUDE_FILES = ("README.md", "pyproject.toml", "environment.yml")
INCLUDE_DIRS = ("notebooks", "exercises", "course_utils")
_SKIP_PARTS = {"__pycache__", ".ipynb_checkpoints"}


def release_files(root: Path) -> list[Path]:
    """Relative paths that go into a learners' release."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
        candidates = [Path(p) for p in listed.decode("utf-8").split("\0") if p]
    except (OSError, subprocess.CalledProcessError):
        candidates = [p.relative_to(root) for p in root.rglob("*") if p.is_file()]
    keep = []
    for rel in candidates:
        if _SKIP_PARTS & set(rel.parts) or rel.suffix in (".pyc",) or rel.name == "spec.json":
            continue
        if (len(rel.parts) == 1 and rel.name in INCLUDE_FILES) or (len(rel.parts) > 1 and rel.parts[0] in INCLUDE_DIRS):
            if (root / rel).is_file():
                keep.append(rel)
    return sorted(keep)


def make_release(out: str | os.PathLike, root: Path | None = None) -> list[Path]:
    """Write the release into ``out``; returns the relative paths written."""
    root = (root or checkout_root()).resolve()
    out = Path(out).resolve()
    if out == root or root in out.parents:
        raise ConfigError(f"{out} is inside the course checkout {root}; release to a folder outside it.")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out} exists and is not an empty folder; choose a new one.")
    files = release_files(root)
    if not any(p.parts[0] == "exercises" for p in files):
        raise ConfigError(f"no exercises found under {root}; run `course-utils exercises build` first.")
    out.parent.mkdir(parents=True, exist_ok=True)

    def fill(staging: Path) -> None:
        for rel in files:
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / rel, staging / rel)

    atomic_directory(out, fill)
    return files


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("outdir", metavar="OUTDIR", help="new folder outside the checkout for the learners' copy")


def run(args: argparse.Namespace) -> int:
    files = make_release(args.outdir)
    print(f"released {len(files)} files to {args.outdir} (no solutions/, grading/, tests/ or spec)")
    return 0
