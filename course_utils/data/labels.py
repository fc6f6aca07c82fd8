"""Labels as the course handles them: one spelling per class, one check of a labelled frame, ids for a model.

:func:`canonical_labels` makes ``0``, ``0.0`` and ``"0"`` one class; :func:`validate_labelled_frame` is
the one check of labelled texts (a learner's file and every frame the trainer gets go through it);
:func:`label_ids` turns names into the integer ids a model predicts.

Taught in lesson 05 (fine-tuning BERT: names in the data, ids in the model); lesson 00 shows the checks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from course_utils.errors import DataError

__all__ = ["canonical_labels", "label_ids", "validate_labelled_frame"]


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
