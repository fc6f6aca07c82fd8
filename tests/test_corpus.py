"""The topic rules of labs/corpus.py: they must recover the corpus's sub-corpora, not just run."""

import pandas as pd
import pytest

from course_utils.data import load_tweets, split_dataset
from course_utils.errors import ConfigError, DataError
from course_utils.labs.baselines import compare_training_sets
from course_utils.labs.corpus import topic_table, tweet_topics


def test_rules_pick_the_first_matching_topic_and_leave_the_rest_as_other():
    texts = pd.Series(["@united lost my bag", "Brady and the deflated balls", "new iPhone today",
                       "driverless cars scare me", "Coachella lineup!", "claritin works", "nice weather"])
    assert tweet_topics(texts).tolist() == ["airlines", "NFL / DeflateGate", "Apple", "self-driving cars",
                                            "Coachella", "Claritin", "other"]
    with pytest.raises(DataError):
        tweet_topics(["not a series"])


def test_the_shipped_corpus_is_mostly_not_about_self_driving_cars():
    table = topic_table(load_tweets())
    shares = table["share of corpus"]
    assert table["rows"].sum() == 38_158
    assert shares.idxmax() == "airlines"
    assert shares["self-driving cars"] < 0.2
    assert shares["other"] < 0.02, "the keyword rules should leave only a small remainder"
    # the rows without a confidence value are two whole sub-corpora, not scattered noisy labels
    assert table.loc[["Coachella", "Claritin"], "no confidence"].min() > 0.99
    assert table.drop(index=["Coachella", "Claritin"])["no confidence"].max() < 0.1


def test_comparing_training_sets_refuses_the_test_split():
    df = pd.DataFrame({"text": [f"good {i}" if i % 2 else f"bad {i}" for i in range(60)],
                       "label": ["pos" if i % 2 else "neg" for i in range(60)]})
    splits = split_dataset(df, val_size=0.2, test_size=0.2, seed=0)
    with pytest.raises(ConfigError, match="validation"):
        compare_training_sets({"all": splits.train}, splits.test)
    table = compare_training_sets({"all": splits.train}, splits.validation)
    assert list(table.index) == ["all"] and 0.0 <= table.loc["all", "macro_f1"] <= 1.0


def test_topic_holdout_pairs_in_topic_and_other_topic_training_on_the_same_held_out_tweets():
    import pandas as pd
    import pytest

    from course_utils.errors import ConfigError, DataError
    from course_utils.labs.corpus import topic_holdout

    # airline tweets say "late" when negative; Apple tweets say "crash" when negative: words that do not transfer
    rows = []
    for i in range(240):
        rows.append({"text": f"@united flight {'late delayed' if i % 2 else 'great crew'} {i}",
                     "label": "negative" if i % 2 else "positive"})
        rows.append({"text": f"apple iphone {'crash broken' if i % 2 else 'love it'} {i}",
                     "label": "negative" if i % 2 else "positive"})
    df = pd.DataFrame(rows)
    result = topic_holdout(df, "airlines", n_train=100, n_eval=60, seeds=(0, 1))
    wide = result.pivot(index="seed", columns="training data", values="macro_f1")
    assert (wide["in-topic"] > wide["other topics"]).all()
    assert result["majority floor"].iloc[0] == pytest.approx((2 * 0.5 / 1.5) / 2, abs=0.1)
    with pytest.raises(ConfigError, match="unknown topic"):
        topic_holdout(df, "weather")
    with pytest.raises(DataError, match="Lower n_train"):
        topic_holdout(df, "airlines", n_train=500)
