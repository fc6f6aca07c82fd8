"""Datasets for the course: the labelled tweet corpus, its cleaning, splits and leakage, a learner's own file, IMDB.

Loading and cleaning are separate on purpose. :func:`load_tweets` returns the corpus *as shipped*
(mojibake, duplicates and all) so that lesson 02 can show what each cleaning step removes; the
cleaning helpers each return a new frame plus a :class:`StepReport`, never modify in place.

One module a concern, every public name re-exported here (``from course_utils.data import ...``):

=============  ===============================================================  ==========
module         holds                                                            lesson
=============  ===============================================================  ==========
``tweets``     the corpus as shipped (:func:`load_tweets`, ``LABELS``)          02 (00, 05)
``cleaning``   the cleaning steps, :func:`clean_tweets`, :class:`StepReport`    02
``splits``     :func:`split_dataset`, :func:`check_leakage`, samples            02
``files``      a learner's own labelled file (:func:`load_text_file`)           00
``labels``     one spelling per class, the frame check, :func:`label_ids`       05
``datasets``   ``--data`` names: tweets, IMDB (online), a file                  05
=============  ===============================================================  ==========

The Hub check (:func:`hub_reachable`) lives in :mod:`course_utils.hub` and is re-exported here because
lessons 05 and 09 import it from ``course_utils.data``.
"""

from course_utils.data.cleaning import (
    CleaningConfig,
    StepReport,
    clean_tweets,
    drop_duplicates,
    filter_confidence,
    fix_mojibake,
    mojibake_outcomes,
    near_duplicate_key,
    normalise_urls_and_handles,
    reports_table,
    select_labels,
)
from course_utils.data.datasets import load_course_dataset, load_imdb
from course_utils.data.files import _check_utf8, load_text_file  # noqa: F401  (_check_utf8: tests call it)
from course_utils.data.labels import canonical_labels, label_ids, validate_labelled_frame
from course_utils.data.splits import (
    LeakageReport,
    Splits,
    balanced_batches,
    check_leakage,
    split_dataset,
    stratified_sample,
)
from course_utils.data.tweets import LABELS, TWEETS_RELATIVE_PATH, load_tweets, tweets_csv_path
from course_utils.errors import DataError  # noqa: F401  (tests and lessons import it from here)
from course_utils.hub import HF_HOST, hub_reachable

__all__ = [
    "LABELS",
    "TWEETS_RELATIVE_PATH",
    "load_tweets",
    "tweets_csv_path",
    "CleaningConfig",
    "StepReport",
    "clean_tweets",
    "drop_duplicates",
    "filter_confidence",
    "fix_mojibake",
    "mojibake_outcomes",
    "near_duplicate_key",
    "normalise_urls_and_handles",
    "reports_table",
    "select_labels",
    "LeakageReport",
    "Splits",
    "balanced_batches",
    "check_leakage",
    "split_dataset",
    "stratified_sample",
    "load_text_file",
    "canonical_labels",
    "label_ids",
    "validate_labelled_frame",
    "load_course_dataset",
    "load_imdb",
    "HF_HOST",
    "hub_reachable",
]
