"""The datasets a ``--data`` argument can name: ``tweets``, ``imdb`` (online) or a path to a labelled file.

:func:`load_course_dataset` resolves the name; :func:`load_imdb` reads IMDB from the Hub (or a local
``aclImdb`` copy), failing fast with the offline alternative when the Hub is not reachable
(:mod:`course_utils.hub`).

Taught in lesson 05 (fine-tuning BERT, tweets or IMDB); ``course-utils train --data`` uses it.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pandas as pd

from course_utils.data.cleaning import CleaningConfig, clean_tweets, select_labels
from course_utils.data.files import load_text_file
from course_utils.data.tweets import load_tweets
from course_utils.errors import DataError
from course_utils.hub import hub_reachable

__all__ = ["load_course_dataset", "load_imdb"]


def _read_aclimdb(folder: Path, split: str) -> pd.DataFrame:
    """Read the original ``aclImdb`` layout: ``<split>/pos/*.txt`` and ``<split>/neg/*.txt``."""
    rows = []
    for label in ("neg", "pos"):
        for f in sorted((folder / split / label).glob("*.txt")):
            rows.append({"text": f.read_text(encoding="utf-8"), "label": "positive" if label == "pos" else "negative"})
    if not rows:
        raise DataError(f"{folder}: no reviews under {split}/pos or {split}/neg; expected the aclImdb folder layout.")
    return pd.DataFrame(rows)


def load_imdb(split: str = "train", local_dir: str | os.PathLike | None = None, cache_dir: str | None = None) -> pd.DataFrame:
    """IMDB reviews as ``text``/``label`` (``negative``/``positive``).

    With ``local_dir`` it reads a local copy (the ``aclImdb`` folder, or a CSV/JSON file with
    text/label columns), which is how the online path is exercised offline. Otherwise it uses the
    ``datasets`` library and the Hub, failing fast with the offline alternative when unreachable.
    """
    if split not in {"train", "test"}:
        raise DataError(f"load_imdb: split must be 'train' or 'test', got {split!r}.")
    if local_dir is not None:
        p = Path(local_dir)
        if p.is_dir():
            return _read_aclimdb(p, split)
        return load_text_file(p)
    if not hub_reachable():
        raise DataError(
            "load_imdb: the Hugging Face Hub is not reachable (offline, or HF_HUB_OFFLINE=1). "
            "Use the offline tweet corpus instead (load_tweets() / --data tweets), "
            "or pass local_dir= a downloaded aclImdb folder."
        )
    import datasets

    ds = datasets.load_dataset("imdb", split=split, cache_dir=cache_dir)
    names = ds.features["label"].names  # ["neg", "pos"]
    mapping = {i: ("positive" if n.startswith("pos") else "negative") for i, n in enumerate(names)}
    return pd.DataFrame({"text": ds["text"], "label": [mapping[i] for i in ds["label"]]})


def load_course_dataset(name_or_path: str, binary: bool = False, clean: bool = True, keep_raw_text: bool = False,
                        **kwargs) -> pd.DataFrame:
    """Resolve a ``--data`` argument: ``tweets``, ``imdb`` or a path to a labelled file.

    ``binary`` keeps only negative and positive tweets; it is ignored for data that has two classes.
    ``keep_raw_text`` (tweets) adds a ``raw_text`` column: each tweet as the corpus has it, before
    cleaning replaced links and @handles. Lesson 05 finds each tweet's sub-corpus from it, because the
    airline rule needs the handles (``@united``) that the clean text no longer has.

    The tweets are read and cleaned once per process and setting (2.5 s each time on a 2-core CPU;
    lesson 08 builds two tasks from them); every call gets its own copy to change.
    """
    name = str(name_or_path)
    if name == "tweets":
        return _tweet_frame(bool(binary), bool(clean), bool(keep_raw_text)).copy()
    if name == "imdb":
        return load_imdb(**kwargs)
    path = Path(name)
    if not path.exists() and path.suffix == "":
        raise DataError(f"unknown dataset {name!r}: use 'tweets', 'imdb' or a path to a .csv/.json/.jsonl file.")
    return load_text_file(path, **kwargs)


@functools.lru_cache(maxsize=4)
def _tweet_frame(binary: bool, clean: bool, keep_raw_text: bool) -> pd.DataFrame:
    """The bundled tweets as :func:`load_course_dataset` returns them (cached: callers receive copies)."""
    df = load_tweets()
    if keep_raw_text:
        df = df.assign(raw_text=df["text"])
    if clean:
        df, _ = clean_tweets(df, CleaningConfig(labels=("negative", "positive") if binary else None))
    elif binary:
        df, _ = select_labels(df, ("negative", "positive"))
    return df[["text", "label", *(["raw_text"] if keep_raw_text else [])]].reset_index(drop=True)
