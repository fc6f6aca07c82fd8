"""What the tweet corpus contains: the topic of each tweet, and the corpus described per topic.

The corpus ships as one file of 38,158 labelled tweets, but it was aggregated from several
sentiment collections about different things (airlines, the NFL's DeflateGate, Apple, self-driving
cars, a music festival, an allergy drug). Which topic a tweet belongs to is not a column of the file,
so it is recovered here with keyword rules, and the rules are checked by what they leave over
(``topic == "other"`` should be a small remainder a reader can inspect).

Why it matters: the sub-corpora were labelled by different annotation jobs, with different label
mixes (most self-driving-car tweets are neutral, most airline tweets negative), and some of them
record no annotator confidence at all. A cleaning step that looks like "drop noisy labels" can in
fact drop a whole topic. Lesson 02 measures exactly that.

Taught in lesson 02 (selecting and cleaning a custom dataset).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pandas as pd

from course_utils.errors import ConfigError, DataError

__all__ = ["TOPIC_PATTERNS", "topic_holdout", "tweet_topics", "topic_table"]

#: Topic -> regular expression on the lower-cased text. The first topic that matches wins, in this
#: order; tweets that match none are ``"other"``. Built by reading the corpus's most frequent words
#: and hashtags (lesson 02 prints what is left unmatched, so a reader can check the rules).
TOPIC_PATTERNS: dict[str, str] = {
    "airlines": (
        r"@(?:united|usairways|americanair|southwestair|jetblue|virginamerica|deltaassist|delta)\b"
        r"|\bflight|\bairline|\bairport|\bplane\b|\bbaggage|\bluggage"
    ),
    "NFL / DeflateGate": r"deflat|patriots|\bbrady|belichick|\bnfl\b|super ?bowl|football|seahawks",
    "Apple": r"\bapple\b|@apple|\baapl\b|\biphone|\bipad|\bmacbook|\bitunes|\bios\b",
    "self-driving cars": (
        r"driverless|driver[- ]+less|self[- ]?driving|autonomous|automous|automated (?:car|vehicle)"
        r"|connected car|\bgoogle ?cars?\b|\brobot ?cars?\b"
    ),
    "Coachella": r"coachella",
    "Claritin": r"claritin|allerg",
}
_COMPILED = {topic: re.compile(pattern) for topic, pattern in TOPIC_PATTERNS.items()}


def tweet_topics(texts: pd.Series) -> pd.Series:
    """The topic of each text by :data:`TOPIC_PATTERNS` (first match wins, else ``"other"``)."""
    if not isinstance(texts, pd.Series):
        raise DataError(f"tweet_topics: expected a pandas Series of texts, got {type(texts).__name__}.")
    lowered = texts.astype(str).str.lower()
    topic = pd.Series("other", index=texts.index, dtype=object)
    undecided = pd.Series(True, index=texts.index)
    for name, pattern in _COMPILED.items():
        hit = undecided & lowered.str.contains(pattern, regex=True)
        topic[hit] = name
        undecided &= ~hit
    return topic.rename("topic")


def topic_table(df: pd.DataFrame) -> pd.DataFrame:
    """Rows, share of the corpus, label shares and share without a confidence value, per topic.

    Sorted by size. The ``no confidence`` column is what lesson 02's confidence filter silently
    removes along with low-agreement rows.
    """
    for column in ("text", "label"):
        if column not in df.columns:
            raise DataError(f"topic_table: the frame has no {column!r} column (columns: {list(df.columns)}).")
    topics = tweet_topics(df["text"])
    table = pd.crosstab(topics, df["label"], normalize="index")
    table.columns = [f"{label} share" for label in table.columns]
    table.insert(0, "rows", topics.value_counts())
    table.insert(1, "share of corpus", topics.value_counts(normalize=True))
    if "confidence" in df.columns:
        table["no confidence"] = df["confidence"].isna().groupby(topics).mean()
    return table.sort_values("rows", ascending=False)


def topic_holdout(df: pd.DataFrame, topic: str, n_train: int = 2000, n_eval: int = 1000,
                  seeds: Sequence[int] = (0, 1, 2, 3, 4), topics: pd.Series | None = None) -> pd.DataFrame:
    """Does data from the target domain beat the same amount of data from elsewhere? One row per seed.

    For each seed, ``n_eval`` tweets of ``topic`` are held out; the TF-IDF baseline (lesson 02) is
    trained twice on ``n_train`` tweets, once drawn from the rest of ``topic`` ("in-topic") and once from
    the other topics ("other topics"), and both are scored (macro-F1) on the same held-out tweets, so
    the two scores of a seed are a pair. ``majority floor`` is the macro-F1 of always answering the held-out
    tweets' most common label. ``topics`` (default: :func:`tweet_topics` of the texts) lets a caller pass
    topics found on the raw text while training on the clean one.
    """
    from course_utils.labs.baselines import evaluate_baseline, fit_baseline

    topics = tweet_topics(df["text"]) if topics is None else topics.reindex(df.index)
    inside, outside = df[topics == topic], df[(topics != topic) & (topics != "other")]
    if topic not in TOPIC_PATTERNS:
        raise ConfigError(f"topic_holdout: unknown topic {topic!r}; known: {list(TOPIC_PATTERNS)}.")
    if len(inside) < n_train + n_eval or len(outside) < n_train:
        raise DataError(f"topic_holdout: {topic!r} has {len(inside)} tweets and the other topics {len(outside)}; "
                        f"n_train + n_eval = {n_train + n_eval} need more. Lower n_train or n_eval.")
    rows = []
    for seed in seeds:
        held_out = inside.sample(n=n_eval, random_state=seed)
        rest = inside.drop(held_out.index)
        majority = held_out["label"].value_counts(normalize=True).iloc[0]
        floor = (2 * majority / (1 + majority)) / held_out["label"].nunique()  # always the majority class
        for name, pool in (("in-topic", rest), ("other topics", outside)):
            model = fit_baseline(pool.sample(n=n_train, random_state=seed))
            rows.append({"seed": seed, "training data": name, "macro_f1": evaluate_baseline(model, held_out)["macro_f1"],
                         "majority floor": floor})
    return pd.DataFrame(rows)
