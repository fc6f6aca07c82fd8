"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Every writer of the course (the trainer's checkpoints, the grader's reports, the exercise builder, the
release) goes through these two functions, so "nothing half-written on disk" is one piece of code.
The temporary name sits in the same folder as the target (``os.replace`` is atomic only within one
file system) and starts with a dot, so a folder listing taken meanwhile does not show it as a result.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def atomic_write(path: str | os.PathLike, write: Callable[[IO[Any]], None] | str | bytes, mode: str = "w") -> Path:
    """Write ``path`` through a temporary file and ``os.replace``.

    ``write`` is the content (``str`` or ``bytes``) or a function that writes into the open file
    handle (``mode`` ``"w"``: text, UTF-8, ``newline=""`` so the csv module controls line ends;
    ``"wb"``: bytes). On any error the temporary file is removed and the target is untouched.
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
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_directory(target: str | os.PathLike, fill: Callable[[Path], None]) -> Path:
    """Build a folder beside ``target`` with ``fill(folder)``, then swap it in for ``target``.

    The old folder (if any) is moved aside and removed only once the new one is in place, so a
    crash leaves either the complete old folder or the complete new one under ``target``.
    """
    target = Path(target)
    staging = target.with_name(f".{target.name}.{os.getpid()}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        fill(staging)
        old = target.with_name(f".{target.name}.{os.getpid()}.old")
        if target.exists():
            os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
