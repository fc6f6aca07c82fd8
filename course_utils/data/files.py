"""A learner's own file of labelled texts (CSV, TSV, JSON or JSON Lines), loaded and checked.

Every problem a file can have (not UTF-8, no such column, an empty text, a missing label, one class)
is reported with the file, the column and the first offending row, as a spreadsheet numbers it.

Taught in lesson 00 (the course's tools) and used by ``course-utils train --data FILE``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from course_utils.data.labels import validate_labelled_frame
from course_utils.errors import DataError

__all__ = ["load_text_file"]


def _check_utf8(path: Path, chunk: int = 1 << 20) -> None:
    """Refuse a file that is not UTF-8, naming the byte and line, reading 1 MB at a time (not the whole file)."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with open(path, "rb") as handle:
        while True:
            block = handle.read(chunk)
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                if not block:
                    where = "an incomplete character at the end of the file"
                else:  # exc.object is the bytes held back from the last block followed by this block
                    bad = max(exc.start - (len(exc.object) - len(block)), 0)
                    bad_line = line + block[:bad].count(b"\n")
                    where = f"byte 0x{block[bad]:02x} on line {bad_line}"
                raise DataError(f"{path}: not valid UTF-8 ({where}); re-save the file as UTF-8 "
                                "(e.g. in pandas: df.to_csv(path, encoding='utf-8')).") from None
            if not block:
                return
            line += block.count(b"\n")


def load_text_file(
    path: str | os.PathLike, text_column: str = "text", label_column: str = "label", fold_label_case: bool = False
) -> pd.DataFrame:
    """Load a CSV, JSON or JSON Lines file of labelled texts and validate it.

    Returns columns ``text`` and ``label`` (labels as strings). Every problem a file can have is
    reported with the file, the column and the first offending row (1-based, as a spreadsheet
    shows it, header being row 1 for CSV), so a learner can fix their data rather than debug ours.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: file not found. Check the path (relative paths start at {Path.cwd()}).")
    if p.is_dir():
        raise DataError(f"{p}: is a folder; give a .csv, .json or .jsonl file.")
    _check_utf8(p)
    suffix = p.suffix.lower()
    import io

    try:
        if suffix in {".jsonl", ".ndjson"}:
            frame = pd.read_json(io.StringIO(p.read_text(encoding="utf-8-sig")), lines=True)
        elif suffix == ".json":
            frame = pd.DataFrame(json.loads(p.read_text(encoding="utf-8-sig")))
        elif suffix in {".csv", ".tsv", ".txt"}:
            sep = "\t" if suffix == ".tsv" else ","
            header = pd.read_csv(p, sep=sep, nrows=0, encoding="utf-8-sig").columns
            # Only the two needed columns, as strings, parsed straight from the file: a wide 200 MB
            # export once took 1.86 GB when decoded into one string and parsed with every column.
            wanted = [c for c in (text_column, label_column) if c in header]
            frame = pd.read_csv(p, sep=sep, dtype=str, keep_default_na=True, encoding="utf-8-sig",
                                usecols=wanted if len(wanted) == 2 else None)
        else:
            raise DataError(f"{p}: unsupported file type {suffix!r}; use .csv, .tsv, .json or .jsonl.")
    except DataError:
        raise
    except (ValueError, pd.errors.ParserError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{p}: could not be parsed as {suffix[1:].upper()}: {first}") from None
    return validate_labelled_frame(frame, text_column, label_column, source=str(p),
                                   header_offset=2 if suffix not in {".jsonl", ".json"} else 1,
                                   fold_label_case=fold_label_case)
