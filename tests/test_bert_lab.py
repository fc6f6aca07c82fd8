"""Lesson 05's plumbing: shared subsets, the stopwatch, and the analysis tables."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score

from course_utils.errors import ConfigError, DataError
from course_utils.labs.bert_lab import (
    Stopwatch,
    bootstrap_macro_f1,
    bootstrap_macro_f1_difference,
    error_rate_by_length,
    errors_by_topic,
    label_ids,
    lesson_subsets,
)


def _corpus(n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    labels = np.where(rng.random(n) < 0.3, "positive", "negative")
    return pd.DataFrame({"text": [f"tweet number {i}" for i in range(n)], "label": labels})


def test_subsets_are_disjoint_stratified_and_reproducible():
    df = _corpus()
    data = lesson_subsets(df, 100, 40, 40, seed=3)
    assert (len(data.train), len(data.validation), len(data.test)) == (100, 40, 40)
    seen = [set(frame["text"]) for frame in (data.train, data.validation, data.test)]
    assert not (seen[0] & seen[1]) and not (seen[0] & seen[2]) and not (seen[1] & seen[2])
    share = (df["label"] == "positive").mean()
    assert abs((data.train["label"] == "positive").mean() - share) < 0.03
    again = lesson_subsets(df, 100, 40, 40, seed=3)
    assert again.train["text"].tolist() == data.train["text"].tolist()
    other = lesson_subsets(df, 100, 40, 40, seed=4)
    assert other.train["text"].tolist() != data.train["text"].tolist()
    assert data.labels == ["negative", "positive"]
    sizes = data.sizes()
    assert sizes.loc["train", "tweets"] == 100 and sizes.loc["train"][["negative", "positive"]].sum() == 100
    assert data.majority_share("validation") == pytest.approx((data.validation["label"] == "negative").mean())


def test_subsets_none_keeps_the_whole_split_and_bad_sizes_are_one_clear_error():
    df = _corpus()
    data = lesson_subsets(df, None, 10, 10)
    assert len(data.train) == 320  # split_dataset keeps 80% for training
    with pytest.raises(ConfigError, match="n_train"):
        lesson_subsets(df, 0, 10, 10)
    with pytest.raises(ConfigError, match="n_test"):
        lesson_subsets(df, 10, 10, 2.5)
    with pytest.raises(DataError, match="'text' and 'label'"):
        lesson_subsets(df.rename(columns={"text": "tweet"}), 10, 10, 10)


def test_label_ids_follow_the_given_order_and_name_unknown_labels():
    assert label_ids(pd.Series(["b", "a", "b"]), ["b", "a"]).tolist() == [0, 1, 0]
    with pytest.raises(DataError, match="neutral"):
        label_ids(["neutral", "a"], ["a", "b"])


def test_stopwatch_times_the_block_and_gives_a_rate():
    with Stopwatch() as watch:
        time.sleep(0.05)
    assert 0.04 < watch.seconds < 1.0
    assert watch.rate(10) == pytest.approx(10 / watch.seconds)
    with pytest.raises(ConfigError, match="time a block first"):
        Stopwatch().rate(3)


def test_bootstrap_macro_f1_matches_sklearn_and_brackets_it():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    good = np.where(rng.random(300) < 0.9, y, 1 - y)
    bad = np.where(rng.random(300) < 0.6, y, 1 - y)
    table = bootstrap_macro_f1(y, {"good": good, "bad": bad}, n_boot=300)
    for name, pred in [("good", good), ("bad", bad)]:
        assert table.loc[name, "macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
        assert table.loc[name, "low"] < table.loc[name, "macro_f1"] < table.loc[name, "high"]
    assert table.loc["bad", "high"] < table.loc["good", "low"]  # a real gap is not hidden by the spread
    with pytest.raises(DataError, match="'short'"):
        bootstrap_macro_f1(y, {"short": good[:10]})


def test_the_paired_bootstrap_sees_a_gap_that_overlapping_intervals_hide():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 300)
    hard = rng.permutation(300)
    a = y.copy()
    a[hard[:60]] = 1 - a[hard[:60]]        # a errs on 60 hard texts
    b = a.copy()
    b[hard[60:75]] = 1 - b[hard[60:75]]    # b errs on the same 60 and 15 more
    table = bootstrap_macro_f1(y, {"a": a, "b": b}, n_boot=500)
    assert table.loc["b", "high"] > table.loc["a", "low"]   # the two marginal intervals overlap...
    gap = bootstrap_macro_f1_difference(y, a, b, n_boot=500)
    assert gap.mean == pytest.approx(f1_score(y, a, average="macro") - f1_score(y, b, average="macro"))
    assert gap.low > 0 and gap.verdict == "higher"          # ...yet on shared resamples a is always ahead
    assert bootstrap_macro_f1_difference(y, b, a, n_boot=500).verdict == "lower"
    assert "paired bootstrap over 300 texts, 500 resamples" in str(gap)
    same = bootstrap_macro_f1_difference(y, a, a.copy(), n_boot=200)
    assert (same.mean, same.low, same.high, same.verdict) == (0.0, 0.0, 0.0, "no clear difference")
    with pytest.raises(DataError, match="'b' has 10 predictions"):
        bootstrap_macro_f1_difference(y, a, b[:10])


def test_error_rate_by_length_orders_groups_and_finds_the_harder_one():
    tokens = np.arange(1, 201)
    correct = tokens > 50  # every error is in the shortest quarter
    table = error_rate_by_length(correct, tokens, groups=4)
    assert table["texts"].tolist() == [50, 50, 50, 50]
    assert table["error_rate"].tolist() == [1.0, 0.0, 0.0, 0.0]
    assert table["tokens"].iloc[0] == "1-50" and table["tokens"].iloc[-1] == "151-200"
    assert (table["low"] <= table["error_rate"]).all() and (table["error_rate"] <= table["high"]).all()
    with pytest.raises(DataError, match="one length per prediction"):
        error_rate_by_length(correct, tokens[:10])


def test_errors_by_topic_counts_confident_errors_per_sub_corpus():
    texts = pd.Series(["@united my flight is late", "the Patriots deflated balls", "new iPhone today",
                       "@jetblue lost my baggage", "a driverless car"], index=[10, 11, 12, 13, 14])
    correct = [False, False, True, False, True]
    confidence = [0.99, 0.6, 0.9, 0.95, 0.7]
    train = pd.DataFrame({"text": ["@united great crew", "@delta awful", "Brady is the best"],
                          "label": ["positive", "negative", "positive"]})
    table = errors_by_topic(texts, correct, confidence, top=2, train=train)
    assert table.loc["airlines", "texts"] == 2 and table.loc["airlines", "error_rate"] == 1.0
    assert table.loc["airlines", "confident_errors"] == 2  # the two most confident errors are both airline tweets
    assert table.loc["NFL / DeflateGate", "confident_errors"] == 0
    assert table.loc["Apple", "error_rate"] == 0.0
    assert table.loc["airlines", "train positive share"] == 0.5
    assert table["confident_errors"].sum() == 2
    with pytest.raises(DataError, match="same length"):
        errors_by_topic(texts, correct[:2], confidence)


def test_errors_by_topic_reads_the_raw_text_of_the_training_tweets():
    """Cleaning turns @united into @user; the airline rule needs the handle, so raw_text is used when present."""
    texts = pd.Series(["@united my flight is late", "@united lost my bag"])
    train = pd.DataFrame({"text": ["@user great crew", "@user awful"], "raw_text": ["@united great crew", "@delta awful"],
                          "label": ["positive", "negative"]})
    table = errors_by_topic(texts, [False, True], [0.9, 0.8], top=1, train=train)
    assert list(table.index) == ["airlines"] and table.loc["airlines", "train positive share"] == 0.5


def test_the_course_tweets_can_keep_their_raw_text():
    from course_utils.data import load_course_dataset

    clean = load_course_dataset("tweets", binary=True)
    kept = load_course_dataset("tweets", binary=True, keep_raw_text=True)
    assert list(kept.columns) == ["text", "label", "raw_text"]
    assert kept["text"].equals(clean["text"]) and kept["label"].equals(clean["label"])
    assert kept["raw_text"].str.contains("@united", case=False).sum() > 1000  # handles the clean text replaced
    assert not clean["text"].str.contains("@united", case=False).any()


# --- issue 11: the lesson's three routes reach the same validation score on a toy task ----------------------------

_WORDS = np.array([["awful", "bad", "sad", "poor"], ["great", "good", "happy", "nice"]])
_FILL = np.array(["the", "film", "was", "long", "and", "slow", "or", "fast", "but", "it", "had", "a", "plot"])


def _toy(n: int, seed: int) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    y = r.integers(0, 2, n)
    texts = [" ".join([*r.choice(_FILL, r.integers(1, 6)), r.choice(_WORDS[label])]) for label in y]
    return pd.DataFrame({"text": texts, "label": np.where(y == 1, "positive", "negative")})


@pytest.mark.slow
def test_the_three_routes_of_lesson_05_agree_on_a_toy_task(tmp_path):
    """The hand-written loop, transformers.Trainer and course_utils.trainer, with lesson 05's settings."""
    import datasets
    import torch
    from torch.utils.data import DataLoader
    from transformers import (
        DataCollatorWithPadding,
        TrainingArguments,
        get_linear_schedule_with_warmup,
    )
    from transformers import Trainer as HFTrainer

    from course_utils.models import tiny_bert_for_tests
    from course_utils.seed import set_seed
    from course_utils.trainer import TrainConfig, Trainer

    data = lesson_subsets(pd.concat([_toy(200, 0), _toy(60, 1)], ignore_index=True), 160, 60, 20, seed=0)
    names, epochs, lr, batch = data.labels, 4, 1e-2, 8
    y_val = label_ids(data.validation["label"], names)

    def to_dataset(frame, tokenizer):
        ids = pd.DataFrame({"text": frame["text"], "label": label_ids(frame["label"], names)})
        return datasets.Dataset.from_pandas(ids, preserve_index=False).map(
            lambda b: tokenizer(b["text"], truncation=True, max_length=16), batched=True)

    # 1. the loop of the lesson
    set_seed(0)
    tokenizer, model = tiny_bert_for_tests(seed=0)
    train_set, val_set = to_dataset(data.train, tokenizer), to_dataset(data.validation, tokenizer)
    columns = ["input_ids", "attention_mask", "label"]
    collate = DataCollatorWithPadding(tokenizer)
    loader = DataLoader(train_set.select_columns(columns), batch_size=batch, shuffle=True, collate_fn=collate)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(0.1 * epochs * len(loader)), epochs * len(loader))
    for _ in range(epochs):
        model.train()
        for b in loader:
            model(**b).loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
    model.eval()
    with torch.no_grad():
        loop_pred = [p for b in DataLoader(val_set.select_columns(columns), batch_size=32, collate_fn=collate)
                     for p in model(**b).logits.argmax(-1).tolist()]

    # 2. transformers.Trainer
    tokenizer, model = tiny_bert_for_tests(seed=0)
    args = TrainingArguments(output_dir=str(tmp_path / "hf"), num_train_epochs=epochs, per_device_train_batch_size=batch,
                             learning_rate=lr, weight_decay=0.01, warmup_steps=0.1, max_grad_norm=1.0,
                             save_strategy="no", report_to="none", seed=0, disable_tqdm=True, use_cpu=True)
    hf = HFTrainer(model=model, args=args, train_dataset=to_dataset(data.train, tokenizer),
                   data_collator=DataCollatorWithPadding(tokenizer))
    hf.train()
    hf_pred = hf.predict(to_dataset(data.validation, tokenizer)).predictions.argmax(-1)

    # 3. course_utils.trainer
    tokenizer, model = tiny_bert_for_tests(seed=0)
    trainer = Trainer(TrainConfig(epochs=epochs, batch_size=batch, learning_rate=lr, max_length=16, seed=0,
                                  progress=False, device="cpu"), model=model, tokenizer=tokenizer)
    trainer.fit(data.train, data.validation)
    course_pred = label_ids(pd.Series(trainer.predict(data.validation).labels), names)

    table = bootstrap_macro_f1(y_val, {"loop": loop_pred, "hf": hf_pred, "course": course_pred}, n_boot=200)
    assert (table["macro_f1"] > 0.85).all(), table
    assert table["macro_f1"].max() - table["macro_f1"].min() < 0.1, table


def test_label_audit_counts_openly_negative_words_per_topic_and_label():
    import pandas as pd
    import pytest

    from course_utils.errors import DataError
    from course_utils.labs.bert_lab import label_audit

    texts = pd.Series(["#DeflateGate they cheat", "Brady is a liar", "Patriots win #DeflateGate", "@united worst flight",
                       "@united great crew"])
    labels = ["positive", "positive", "negative", "negative", "positive"]
    table = label_audit(texts, labels).set_index(["topic", "label"])
    assert table.loc[("NFL / DeflateGate", "positive"), "negative_word_share"] == 1.0
    assert table.loc[("NFL / DeflateGate", "negative"), "negative_word_share"] == 0.0
    assert table.loc[("airlines", "negative"), "negative_word_share"] == 1.0
    assert table.loc[("airlines", "positive"), "tweets"] == 1
    with pytest.raises(DataError, match="same length"):
        label_audit(texts, labels[:2])


def test_errors_by_topic_gives_each_rate_an_interval():
    import numpy as np
    import pandas as pd

    from course_utils.labs.bert_lab import errors_by_topic

    texts = pd.Series(["claritin works"] * 2 + ["@united late"] * 200)
    correct = np.array([False, True] + [True] * 150 + [False] * 50)
    table = errors_by_topic(texts, correct, np.linspace(0.5, 1, len(texts)), top=5)
    small, large = table.loc["Claritin"], table.loc["airlines"]
    assert small["low"] < small["error_rate"] < small["high"] and small["high"] - small["low"] > 0.5
    assert large["high"] - large["low"] < 0.15
