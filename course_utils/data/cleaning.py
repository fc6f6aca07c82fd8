"""Cleaning the tweet corpus, one step a function, each returning a new frame and a :class:`StepReport`.

The steps, in the order lesson 02 teaches them and :func:`clean_tweets` runs them: repair mojibake
(:func:`fix_mojibake`), replace links and @handles (:func:`normalise_urls_and_handles`), drop exact and
near duplicates (:func:`drop_duplicates`), keep confident annotations (:func:`filter_confidence`) and the
wanted labels (:func:`select_labels`). No step modifies its input in place.

Taught in lesson 02 (cleaning, splits, leakage).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import ftfy
import pandas as pd

from course_utils.errors import DataError

__all__ = ["CleaningConfig", "StepReport", "clean_tweets", "drop_duplicates", "filter_confidence", "fix_mojibake",
           "mojibake_outcomes", "near_duplicate_key", "normalise_urls_and_handles", "reports_table",
           "select_labels"]


@dataclass
class StepReport:
    """What one cleaning step did, so a lesson can print a table of the whole pipeline."""

    step: str
    rows_before: int
    rows_after: int
    rows_changed: int = 0
    examples: list = field(default_factory=list)

    @property
    def rows_removed(self) -> int:
        return self.rows_before - self.rows_after

    def __str__(self) -> str:
        return (
            f"{self.step}: {self.rows_before} -> {self.rows_after} rows "
            f"({self.rows_removed} removed, {self.rows_changed} changed)"
        )


def reports_table(reports: Sequence[StepReport]) -> pd.DataFrame:
    """The reports of a pipeline as one frame, one row a step."""
    return pd.DataFrame(
        [
            {
                "step": r.step,
                "rows_before": r.rows_before,
                "rows_after": r.rows_after,
                "removed": r.rows_removed,
                "changed": r.rows_changed,
            }
            for r in reports
        ]
    )


# Characters a Mac Roman decode of UTF-8 bytes can produce. In this corpus the original bytes are
# gone, so ftfy cannot always undo the damage; runs of these characters (often glued with "_")
# are what is left of emoji and curly quotes, and carry no sentiment a model could use reliably.
_MAC_ROMAN_CHARS = "".join(sorted(set(bytes(range(128, 256)).decode("mac_roman")) - {"\u00a0"}))
_JUNK_CLASS = "[" + re.escape(_MAC_ROMAN_CHARS) + "]"
_JUNK_RUN = re.compile(rf"(?:_*{_JUNK_CLASS}){{2,}}_*|_+{_JUNK_CLASS}_*|{_JUNK_CLASS}_+")
_SPACES = re.compile(r"\s+")


def _repair(text: str) -> str:
    return _strip_junk(ftfy.fix_text(text))


def _strip_junk(fixed: str) -> str:
    """What :func:`_repair` does after ftfy: cut the mojibake runs ftfy could not undo."""
    fixed = _JUNK_RUN.sub(" ", fixed)
    # A junk run inside a contraction ("don' t") leaves a space after the apostrophe.
    fixed = re.sub(r"(\w)' (?=(t|s|re|ll|ve|d|m)\b)", r"\1'", fixed)
    return _SPACES.sub(" ", fixed).strip()


def _changed_examples(before: pd.Series, after: pd.Series, limit: int = 5) -> list[tuple[str, str]]:
    mask = before.values != after.values
    pairs = list(zip(before[mask].head(limit), after[mask].head(limit)))
    return [(str(a), str(b)) for a, b in pairs]


def check_text_frame(df: pd.DataFrame, where: str) -> None:
    """Refuse anything but a frame with a ``text`` column, naming ``where`` (the step or function)."""
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{where}: expected a pandas DataFrame, got {type(df).__name__}.")
    if "text" not in df.columns:
        raise DataError(f"{where}: the frame has no 'text' column (columns: {list(df.columns)}).")


def fix_mojibake(df: pd.DataFrame) -> tuple[pd.DataFrame, StepReport]:
    """Repair broken Unicode with ftfy, then strip the mojibake ftfy cannot undo.

    Also decodes HTML entities (``&amp;``) and collapses whitespace. Rows that end up empty are
    dropped: a text with no characters left teaches the model nothing.
    """
    check_text_frame(df, "fix_mojibake")
    out = df.copy()
    out["text"] = out["text"].astype(str).map(_repair)
    changed = int((out["text"].values != df["text"].astype(str).values).sum())
    examples = _changed_examples(df["text"].astype(str), out["text"])
    out = out[out["text"].str.len() > 0].reset_index(drop=True)
    return out, StepReport("fix_mojibake", len(df), len(out), changed, examples)


def mojibake_outcomes(texts: pd.Series) -> pd.Series:
    """What :func:`fix_mojibake` does to each text: unchanged, spacing, repaired, re-decoded, stripped or emptied.

    ``spacing``: only runs of white space were collapsed. ``repaired``: ftfy turned it into clean text
    by rules that are certain (HTML entities such as ``&amp;``, line breaks, curly quotes).
    ``re-decoded``: ftfy *guessed* that the text was UTF-8 read with another encoding and decoded it
    again; a guess can be wrong (in this corpus "FiancÌ©" becomes "Fianc̩", not "Fiancé"), so these are
    counted apart from the repairs and lesson 02 shows them. ``stripped``: mojibake ftfy could not undo
    (the original bytes are gone from this corpus) was cut out, so an emoji or an accented letter is
    lost rather than restored. ``emptied``: nothing was left, and the row is dropped. Lesson 02 counts
    these, so the lesson says what cleaning can and cannot recover.
    """
    if not isinstance(texts, pd.Series):
        raise DataError(f"mojibake_outcomes: expected a pandas Series of texts, got {type(texts).__name__}.")
    original = texts.astype(str)
    explained = original.map(ftfy.fix_and_explain)  # the text fix_text returns, and the steps that made it
    after_ftfy = explained.map(lambda pair: pair[0])
    redecoded = explained.map(lambda pair: any(step.action in ("encode", "decode") for step in pair[1] or []))
    final = after_ftfy.map(_strip_junk)  # = original.map(_repair), without running ftfy a second time
    outcome = pd.Series("unchanged", index=texts.index, dtype=object)
    outcome[final != original] = "spacing"
    outcome[after_ftfy != original] = "repaired"
    outcome[(after_ftfy != original) & redecoded] = "re-decoded"
    outcome[after_ftfy.map(lambda text: _JUNK_RUN.search(text) is not None)] = "stripped"
    outcome[final.str.len() == 0] = "emptied"
    return outcome.rename("outcome")


_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_HANDLE = re.compile(r"(?<!\w)@\w{1,30}")


def normalise_urls_and_handles(df: pd.DataFrame) -> tuple[pd.DataFrame, StepReport]:
    """Replace every URL with ``http`` and every @mention with ``@user``.

    Shortened links and user names are near-unique tokens: a model memorises them instead of
    learning sentiment, and they make true duplicates look different.
    """
    check_text_frame(df, "normalise_urls_and_handles")
    out = df.copy()
    out["text"] = out["text"].astype(str).map(lambda t: _HANDLE.sub("@user", _URL.sub("http", t)))
    changed = int((out["text"].values != df["text"].astype(str).values).sum())
    examples = _changed_examples(df["text"].astype(str), out["text"])
    return out, StepReport("normalise_urls_and_handles", len(df), len(out), changed, examples)


_NON_WORD = re.compile(r"[^\w]+")
_RETWEET = re.compile(r"^(rt\s+)+", re.IGNORECASE)


def near_duplicate_key(text: str) -> str:
    """A key equal for texts that differ only in case, punctuation, links, handles or "RT".

    Two tweets with the same key are the same message for a classifier; if one lands in train and
    the other in test, the test score measures memory, not generalisation.
    """
    t = _HANDLE.sub(" ", _URL.sub(" ", str(text)))
    t = _RETWEET.sub("", t.strip())
    return _NON_WORD.sub(" ", t.lower()).strip()


def drop_duplicates(df: pd.DataFrame, near: bool = True) -> tuple[pd.DataFrame, StepReport]:
    """Keep one copy of each text; drop every copy of a text whose copies disagree on the label.

    With ``near=True`` texts are compared by :func:`near_duplicate_key`. A text labelled both
    positive and negative is annotation noise: keeping either copy would teach a coin flip.
    """
    check_text_frame(df, "drop_duplicates")
    key = df["text"].map(near_duplicate_key) if near else df["text"].astype(str)
    if "label" in df.columns:
        n_labels = df.groupby(key)["label"].transform("nunique")
        conflicted = n_labels > 1
    else:
        conflicted = pd.Series(False, index=df.index)
    keep = ~conflicted & ~key.duplicated(keep="first")
    out = df[keep].reset_index(drop=True)
    removed = df[~keep]
    examples = [(str(t), "dropped") for t in removed["text"].head(5)]
    report = StepReport("drop_duplicates" + (" (near)" if near else ""), len(df), len(out), 0, examples)
    report.conflicting_label_rows = int(conflicted.sum())
    return out, report


def filter_confidence(
    df: pd.DataFrame, min_confidence: float, keep_missing: bool = False
) -> tuple[pd.DataFrame, StepReport]:
    """Keep rows whose annotator agreement is at least ``min_confidence``.

    Low-agreement rows are where humans disagreed; a model cannot be expected to be right on them,
    and training on them adds label noise. About one tweet in seven has no agreement recorded at
    all; those rows are dropped too unless ``keep_missing=True``, because unknown is not high. In
    the course corpus those rows are whole sub-corpora (lesson 02's topic table), so dropping them
    drops topics, not noise: lesson 02 measures both effects separately.
    """
    check_text_frame(df, "filter_confidence")
    if "confidence" not in df.columns:
        raise DataError("filter_confidence: the frame has no 'confidence' column.")
    if not 0.0 <= float(min_confidence) <= 1.0:
        raise DataError(f"filter_confidence: min_confidence must be between 0 and 1, got {min_confidence}.")
    conf = df["confidence"]
    keep = (conf >= float(min_confidence)) | (conf.isna() & keep_missing)
    out = df[keep].reset_index(drop=True)
    report = StepReport(f"filter_confidence (>= {min_confidence:g})", len(df), len(out))
    report.missing_confidence_rows = int(conf.isna().sum())
    return out, report


def select_labels(df: pd.DataFrame, labels: Sequence[str]) -> tuple[pd.DataFrame, StepReport]:
    """Keep only rows with one of ``labels`` (for example drop ``neutral`` for a binary task)."""
    check_text_frame(df, "select_labels")
    wanted = [str(label) for label in labels]
    unknown = sorted(set(wanted) - set(df["label"].astype(str).unique()))
    if unknown:
        raise DataError(
            f"select_labels: label(s) {unknown} do not occur in the data; "
            f"labels present: {sorted(df['label'].astype(str).unique())}."
        )
    out = df[df["label"].astype(str).isin(wanted)].reset_index(drop=True)
    return out, StepReport(f"select_labels {wanted}", len(df), len(out))


@dataclass
class CleaningConfig:
    """Which cleaning steps to run, in the order the lesson teaches them."""

    fix_text: bool = True
    normalise: bool = True
    dedupe: bool = True
    min_confidence: float = 0.0
    labels: Sequence[str] | None = None


def clean_tweets(
    df: pd.DataFrame, config: CleaningConfig | None = None
) -> tuple[pd.DataFrame, list[StepReport]]:
    """Run the cleaning pipeline; return the clean frame and one report per step.

    Deduplication runs after the text repairs so that copies differing only in mojibake or links
    are recognised as the same tweet.
    """
    config = config or CleaningConfig()
    reports: list[StepReport] = []
    steps = []
    if config.fix_text:
        steps.append(fix_mojibake)
    if config.normalise:
        steps.append(normalise_urls_and_handles)
    if config.dedupe:
        steps.append(drop_duplicates)
    if config.min_confidence > 0:
        steps.append(lambda d: filter_confidence(d, config.min_confidence))
    if config.labels is not None:
        steps.append(lambda d: select_labels(d, config.labels))
    for step in steps:
        df, report = step(df)
        reports.append(report)
    return df, reports
