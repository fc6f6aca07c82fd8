"""Lesson 08's plumbing: the two tweet tasks, the three strategies, the loop, and adapters on disk.

Runs on the tiny random BERT (two layers, hidden size 32), so every test takes well under a second or
two; the lesson runs the same code on the offline MiniLM.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from course_utils.errors import ConfigError, DataError
from course_utils.labs.peft_lab import (
    TASKS,
    folder_bytes,
    lora_delta,
    make_model,
    parameter_counts,
    pooled_features,
    predict_labels,
    predict_logits,
    relative_update,
    train_classifier,
    tweet_task,
)
from course_utils.models import tiny_bert_for_tests

LABELS = TASKS["sentiment"]


@pytest.fixture(scope="module")
def tiny():
    return tiny_bert_for_tests(labels=LABELS)


@pytest.fixture(scope="module")
def frame():
    good = ["what a lovely flight, thank you @united", "great service today", "love it so much", "best day ever"]
    bad = ["my flight was cancelled again", "terrible airline, lost my baggage", "worst app ever", "hate this"]
    texts = [f"{t} {i}" for i in range(12) for t in good + bad]
    labels = ["positive"] * 4 + ["negative"] * 4
    return pd.DataFrame({"text": texts, "label": labels * 12})


def test_tasks_are_split_sized_and_relabelled(frame):
    sentiment = tweet_task("sentiment", n_train=20, n_eval=6, frame=frame)
    assert sentiment.sizes() == {"train": 20, "validation": 6, "test": 6}
    assert set(sentiment.train["label"]) == {"negative", "positive"}
    airlines = tweet_task("airlines", n_train=20, n_eval=6, frame=frame)
    airline_rows = frame["text"].str.contains("flight|airline|@united")
    assert set(airlines.train["label"]) == set(TASKS["airlines"])
    # the same texts as the sentiment split, relabelled by topic
    truth = dict(zip(frame["text"], np.where(airline_rows, "airlines", "other")))
    assert all(truth[t] == label for t, label in zip(airlines.train["text"], airlines.train["label"]))
    with pytest.raises(ConfigError, match="unknown task"):
        tweet_task("topic", frame=frame)
    with pytest.raises(DataError, match="'text' and 'label'"):
        tweet_task(frame=frame.rename(columns={"text": "tweet"}))


def test_each_strategy_trains_what_it_says(tiny):
    _, base = tiny
    head = make_model(base, "head")
    assert parameter_counts(head)[0] == sum(p.numel() for p in base.classifier.parameters())
    full = make_model(base, "full")
    assert parameter_counts(full) == (sum(p.numel() for p in base.parameters()),) * 2
    r = 4
    lora = make_model(base, "lora", r=r, targets=("query", "value"))
    hidden, layers = base.config.hidden_size, base.config.num_hidden_layers
    adapter = layers * 2 * r * (hidden + hidden)  # A (r x in) and B (out x r) on two projections per layer
    assert parameter_counts(lora)[0] == adapter + sum(p.numel() for p in base.classifier.parameters())
    trainable = {n for n, p in lora.named_parameters() if p.requires_grad}
    assert all("lora_" in n or "classifier" in n for n in trainable)
    with pytest.raises(ConfigError, match="unknown strategy"):
        make_model(base, "adapter")
    with pytest.raises(ConfigError, match="rank"):
        make_model(base, "lora", r=0)


def test_lora_starts_at_the_pretrained_model_and_trains_only_the_adapter(tiny, frame):
    tokenizer, base = tiny
    texts = frame["text"].tolist()[:8]
    model = make_model(base, "lora", r=4, alpha=8, seed=1)
    reference = make_model(base, "head", seed=1)  # same classifier init, no adapter
    delta, scaling = lora_delta(model)
    assert scaling == 2.0 and torch.count_nonzero(delta) == 0  # B starts at zero: no change yet
    assert torch.allclose(predict_logits(model, tokenizer, texts), predict_logits(reference, tokenizer, texts), atol=1e-6)

    frozen_before = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    base_before = copy.deepcopy(base.state_dict())
    record = train_classifier(model, tokenizer, frame, LABELS, epochs=2, lr=5e-3, batch_size=8)
    assert all(torch.equal(p, frozen_before[n]) for n, p in model.named_parameters() if not p.requires_grad)
    assert all(torch.equal(v, base_before[k]) for k, v in base.state_dict().items())  # base untouched
    delta, _ = lora_delta(model)
    assert 0 < torch.linalg.matrix_rank(delta) <= 4
    assert record.seconds > 0 and record.cpu_seconds > 0 and len(record.step_losses) == 24
    assert 0 < record.training_state_mb < record.weights_mb


def test_full_fine_tuning_keeps_far_more_training_state_than_lora(tiny, frame):
    tokenizer, base = tiny
    small = train_classifier(make_model(base, "lora", r=2), tokenizer, frame, LABELS, epochs=1)
    large = train_classifier(make_model(base, "full"), tokenizer, frame, LABELS, epochs=1, lr=1e-4)
    # grads + two AdamW moments = 3 floats per trainable parameter
    assert large.training_state_mb == pytest.approx(3 * large.weights_mb, rel=1e-3)  # + one step counter each
    assert small.training_state_mb < large.training_state_mb / 10


def test_adapter_round_trip_and_merge_give_the_same_predictions(tiny, frame, tmp_path):
    from peft import PeftModel

    tokenizer, base = tiny
    model = make_model(base, "lora", r=4)
    train_classifier(model, tokenizer, frame, LABELS, epochs=1, lr=5e-3, batch_size=8)
    texts = frame["text"].tolist()
    logits = predict_logits(model, tokenizer, texts)
    model.save_pretrained(tmp_path / "adapter")
    copy.deepcopy(base).save_pretrained(tmp_path / "whole")
    assert folder_bytes(tmp_path / "adapter") < folder_bytes(tmp_path / "whole")

    loaded = PeftModel.from_pretrained(copy.deepcopy(base), tmp_path / "adapter")
    assert torch.allclose(predict_logits(loaded, tokenizer, texts), logits, atol=1e-6)
    merged = loaded.merge_and_unload()
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    assert torch.allclose(predict_logits(merged, tokenizer, texts), logits, atol=1e-5)
    assert (predict_labels(merged, tokenizer, texts) == logits.argmax(1).numpy()).all()


def test_bad_input_is_one_clear_error(tiny, frame, tmp_path):
    tokenizer, base = tiny
    frozen = make_model(base, "head")
    for p in frozen.parameters():
        p.requires_grad = False
    with pytest.raises(ConfigError, match="frozen"):
        train_classifier(frozen, tokenizer, frame, LABELS)
    with pytest.raises(DataError, match="not among"):
        train_classifier(make_model(base, "head"), tokenizer, frame.assign(label="neutral"), LABELS)
    with pytest.raises(DataError, match="nothing saved"):
        folder_bytes(tmp_path / "missing")
    with pytest.raises(ConfigError, match="no LoRA adapter"):
        lora_delta(make_model(base, "head"))


def test_airline_labels_come_from_the_raw_text(frame):
    raw = frame.assign(raw_text=frame["text"], text=frame["text"].str.replace("@united", "@user", regex=False))
    airlines = tweet_task("airlines", n_train=20, n_eval=6, frame=raw)
    truth = dict(zip(raw["text"], np.where(raw["raw_text"].str.contains("flight|airline|@united"), "airlines", "other")))
    assert all(truth[t] == label for t, label in zip(airlines.train["text"], airlines.train["label"]))
    assert "raw_text" not in airlines.train.columns


def test_rslora_scales_by_the_square_root_of_the_rank(tiny):
    _, base = tiny
    assert lora_delta(make_model(base, "lora", r=4, alpha=8, rslora=True))[1] == pytest.approx(8 / 4**0.5)
    assert lora_delta(make_model(base, "lora", r=4, alpha=8))[1] == pytest.approx(8 / 4)


def test_relative_update_is_zero_at_the_start_and_grows_with_rank_only_under_the_default_scaling(tiny, frame):
    _, base = tiny
    tokenizer = tiny[0]
    assert relative_update(make_model(base, "lora", r=4)) == 0.0   # B starts at zero
    sizes = {}
    for r, rslora in [(4, False), (16, False), (4, True), (16, True)]:
        model = make_model(base, "lora", r=r, alpha=4 if rslora else None, rslora=rslora, seed=0)  # 2 at r=4 either way
        train_classifier(model, tokenizer, frame.iloc[:32], LABELS, epochs=1, lr=1e-2, batch_size=8, seed=0)
        sizes[r, rslora] = relative_update(model)
    default_ratio, rs_ratio = sizes[16, False] / sizes[4, False], sizes[16, True] / sizes[4, True]
    assert default_ratio > 1.5 > rs_ratio, sizes   # predicted: sqrt(16 / 4) = 2 by default, 1 with rsLoRA
    with pytest.raises(ConfigError, match="no LoRA adapter"):
        relative_update(make_model(base, "head"))


def test_early_stopping_keeps_the_best_epoch_and_stops(tiny, frame):
    tokenizer, base = tiny
    model = make_model(base, "lora", r=4, seed=0)
    record = train_classifier(model, tokenizer, frame, LABELS, epochs=6, lr=5e-3, batch_size=16,
                              val_frame=frame.head(16), patience=1)
    best = max(record.val_scores)
    last_best = max(i for i, v in enumerate(record.val_scores) if v == best) + 1   # a tie keeps the later epoch
    assert 1 <= len(record.val_scores) <= 6 and record.best_epoch == last_best
    if len(record.val_scores) < 6:  # stopped early: one epoch without improving on the first best
        assert len(record.val_scores) == int(np.argmax(record.val_scores)) + 2
    from sklearn.metrics import f1_score

    truth = frame.head(16)["label"].map(LABELS.index)
    kept = f1_score(truth, predict_labels(model, tokenizer, frame.head(16)["text"]), average="macro", labels=[0, 1])
    assert kept == pytest.approx(max(record.val_scores))  # the best epoch's weights are the ones left
    assert (record.val_predictions == predict_labels(model, tokenizer, frame.head(16)["text"])).all()
    with pytest.raises(ConfigError, match="patience"):
        train_classifier(model, tokenizer, frame, LABELS, patience=0)


def test_a_head_only_run_trains_on_cached_features_exactly_as_the_full_forward_pass_would(tiny, frame):
    """The cache changes the cost, not the run: without dropout both paths give the same head, to rounding."""
    tokenizer, base = tiny
    quiet = copy.deepcopy(base)
    for module in quiet.modules():   # dropout off: the full path's encoder would otherwise add noise
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    runs = {}
    for cached in (True, False):
        model = make_model(quiet, "head", seed=3)
        record = train_classifier(model, tokenizer, frame, LABELS, epochs=2, lr=5e-2, batch_size=8, seed=1,
                                  val_frame=frame.head(16), cache_features=cached)
        runs[cached] = (model, record)
    (cached_model, cached), (full_model, full) = runs[True], runs[False]
    assert cached.features_cached and not full.features_cached
    assert np.allclose(cached.step_losses, full.step_losses, atol=1e-5) and cached.val_scores == full.val_scores
    assert torch.allclose(cached_model.classifier.weight, full_model.classifier.weight, atol=1e-5)
    assert (cached.val_predictions == predict_labels(cached_model, tokenizer, frame.head(16)["text"])).all()
    # LoRA and full fine-tuning change the encoder: they never take the shortcut
    assert not train_classifier(make_model(base, "lora", r=2), tokenizer, frame.head(8), LABELS, epochs=1).features_cached
    # the features are the pooled output the head reads, in the given order, whatever the batching
    texts = frame["text"].tolist()[:20]
    features = pooled_features(base, tokenizer, texts, batch_size=7)
    with torch.no_grad():
        expected = copy.deepcopy(base).eval().bert(**tokenizer(texts, padding=True, return_tensors="pt")).pooler_output
    assert features.shape == (20, base.config.hidden_size) and torch.allclose(features, expected, atol=1e-5)
    with pytest.raises(DataError, match="^pooled_features: no texts given"):
        pooled_features(base, tokenizer, [])
    with pytest.raises(DataError, match="^predict: no texts given"):
        predict_logits(base, tokenizer, [])


def test_fit_and_score_returns_the_row_the_lesson_tabulates(tiny, frame):
    from course_utils.labs.peft_lab import fit_and_score

    tokenizer, base = tiny
    task = tweet_task("sentiment", n_train=32, n_eval=16, frame=frame)
    model, row = fit_and_score(base, tokenizer, task, LABELS, strategy="lora", lr=5e-3, seed=0, r=4, rslora=True,
                               max_epochs=2, batch_size=16)
    assert row["trainable"] == parameter_counts(model)[0] and 1 <= row["epoch kept"] <= row["epochs run"] <= 2
    assert 0 <= row["val macro-F1"] <= 1 and isinstance(row["failed"], bool) and row["seed"] == 0
