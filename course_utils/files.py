"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Every writer of the course (the trainer's checkpoints, ``best/`` and ``model/``, the grader's reports and
submissions, the exercise builder's spec, the release, ``course-utils train``'s metrics) goes through
these functions, so "nothing half-written on disk" is one piece of code. A temporary name sits in the
same folder as its target (a rename is atomic only within one file system).

By default the temporary names start with a dot and carry the process id, so a folder listing taken
meanwhile does not show them as results and two processes do not collide. ``recoverable=True`` (the
trainer's folders) uses fixed visible names instead, ``NAME.tmp`` and ``NAME.old``: a kill between the
two renames of a swap then leaves the complete previous version under ``NAME.old``, which
:func:`complete_folder` finds, so ``fit(..., resume=True)`` works after a kill at any instant.
``fsync=True`` flushes what was written to disk before it is renamed into place (the trainer's files
must survive a power cut, not only a killed process).

Used by lesson 05 (the trainer's checkpoints) and by the grading wing; no lesson teaches it directly.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write", "atomic_directory", "complete_folder", "fsync_tree"]


def atomic_write(path: str | os.PathLike, write: Callable[[IO[Any]], None] | str | bytes, mode: str = "w",
                 fsync: bool = False) -> Path:
    """Write ``path`` through a temporary file and ``os.replace``.

    ``write`` is the content (``str`` or ``bytes``) or a function that writes into the open file
    handle (``mode`` ``"w"``: text, UTF-8, ``newline=""`` so the csv module controls line ends;
    ``"wb"``: bytes). ``fsync=True`` flushes the file to disk before the rename. On any error the
    temporary file is removed and the target is untouched.
    """
    path = Path(path)
    if isinstance(write, bytes):
        mode = "wb"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        kwargs = {} if "b" in mode else {"encoding": "utf-8", "newline": ""}
        with open(tmp, mode, **kwargs) as fh:
            if callable(write):
                write(fh)
            else:
                fh.write(write)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def fsync_tree(folder: Path) -> None:
    """Flush every file of ``folder`` to disk, so a rename after it publishes complete files only."""
    for f in Path(folder).rglob("*"):
        if f.is_file():
            with open(f, "rb") as handle:
                os.fsync(handle.fileno())


def atomic_directory(target: str | os.PathLike, fill: Callable[[Path], None], fsync: bool = False,
                     recoverable: bool = False) -> Path:
    """Build a folder beside ``target`` with ``fill(folder)``, then swap it in for ``target`` by renames.

    The old folder (if any) is moved aside and removed only once the new one is in place, so a crash
    leaves either the complete old folder or the complete new one. By default ``fill`` gets an empty
    folder under a hidden per-process name. With ``recoverable=True`` it gets the path ``target.tmp``,
    which does not exist yet (``save_pretrained`` creates it), and the old version waits under
    ``target.old``, where :func:`complete_folder` finds it if the process dies between the renames.
    ``fsync=True`` flushes every file written before the swap.
    """
    target = Path(target)
    if recoverable:
        staging, old = target.with_name(f"{target.name}.tmp"), target.with_name(f"{target.name}.old")
    else:
        staging = target.with_name(f".{target.name}.{os.getpid()}.staging")
        old = target.with_name(f".{target.name}.{os.getpid()}.old")
    shutil.rmtree(staging, ignore_errors=True)
    if not recoverable:
        staging.mkdir(parents=True)
    try:
        fill(staging)
        if fsync:
            fsync_tree(staging)
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def complete_folder(target: str | os.PathLike) -> Path | None:
    """The complete version of a folder written with ``atomic_directory(..., recoverable=True)``, or None."""
    target = Path(target)
    if target.is_dir():
        return target
    old = target.with_name(target.name + ".old")
    return old if old.is_dir() else None
