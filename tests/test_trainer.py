"""The trainer: it learns, it is repeatable, it resumes exactly, and it fails loudly and clearly."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from course_utils.errors import ConfigError, DataError
from course_utils.models import tiny_bert_for_tests
from course_utils.trainer import (
    CHECKPOINT_DIR,
    MODEL_DIR,
    TrainConfig,
    Trainer,
    TrainingError,
    bucket_length,
    padding_cost,
    plan_epoch,
)

# A task a randomly initialised 2-layer BERT learns in a few dozen steps: the last word carries the label.
_WORDS = np.array([["awful", "bad", "sad", "poor"], ["great", "good", "happy", "nice"]])
_FILL = np.array("the film was long and slow or fast but it had a plot".split())


def toy_frame(n: int, seed: int = 0) -> pd.DataFrame:
    r = np.random.default_rng(seed)
    y = r.integers(0, 2, n)
    texts = [" ".join([*r.choice(_FILL, r.integers(1, 6)), r.choice(_WORDS[label])]) for label in y]
    return pd.DataFrame({"text": texts, "label": np.where(y == 1, "positive", "negative")})


def fast_config(**overrides) -> TrainConfig:
    values = dict(epochs=3, batch_size=8, eval_batch_size=32, learning_rate=1e-2, max_length=16,
                  log_every=4, progress=False, device="cpu")
    values.update(overrides)
    return TrainConfig(**values)


def make_trainer(config: TrainConfig | None = None, callbacks=(), model_seed: int = 0) -> Trainer:
    tokenizer, model = tiny_bert_for_tests(seed=model_seed)
    return Trainer(config or fast_config(), model=model, tokenizer=tokenizer, callbacks=callbacks)


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


@pytest.fixture(scope="module")
def toy():
    return toy_frame(128, seed=0), toy_frame(64, seed=1)


@pytest.fixture(scope="module")
def trained(toy):
    """One uninterrupted reference run that several tests read."""
    trainer = make_trainer(fast_config())
    return trainer, trainer.fit(*toy)


# -- learning -----------------------------------------------------------------------------------------


def test_loss_goes_down_and_the_model_learns_the_toy_task(trained, toy):
    trainer, history = trained
    first, last = np.mean(history.loss[:4]), np.mean(history.loss[-4:])
    assert last < 0.5 * first, (first, last)
    assert history.epochs[-1]["train_loss"] < history.epochs[0]["train_loss"]
    assert history.epochs[-1]["val_accuracy"] >= 0.9
    # one loss and one learning rate per optimizer step; warm-up then linear decay
    assert len(history.loss) == len(history.step) == len(history.learning_rate) == 3 * 16
    lr = history.learning_rate
    assert lr[0] < max(lr) and lr[-1] < 0.2 * max(lr)
    assert history.best_epoch is not None and history.train_seconds > 0 and history.samples_per_second > 0


def test_evaluate_and_predict(trained, toy):
    trainer, _ = trained
    metrics = trainer.evaluate(toy[1])
    assert metrics["accuracy"] >= 0.9 and metrics["labels"] == ["negative", "positive"]
    assert np.asarray(metrics["confusion_matrix"]).sum() == len(toy[1])
    assert set(metrics["per_class"]) == {"negative", "positive"} and math.isfinite(metrics["loss"])
    labels, probs = trainer.predict(["it was a great", "the plot was awful"])
    assert labels == ["positive", "negative"]
    assert probs.shape == (2, 2) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    # a single string is one text, not a list of characters
    assert len(trainer.predict("good").labels) == 1


def test_batches_are_length_grouped_and_a_pure_function_of_seed_and_epoch():
    lengths = np.random.default_rng(0).integers(5, 200, 1000)
    a, b = plan_epoch(lengths, 32, seed=3, epoch=1), plan_epoch(lengths, 32, seed=3, epoch=1)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(np.concatenate(a), np.concatenate(plan_epoch(lengths, 32, seed=3, epoch=2)))
    assert sorted(np.concatenate(a).tolist()) == list(range(1000))  # every example exactly once
    assert lengths[a[0]].max() == lengths.max()  # the longest batch first: out-of-memory shows at step 1
    grouped = [lengths[i].max() * len(i) for i in a]
    ungrouped = [lengths[i].max() * len(i) for i in plan_epoch(lengths, 32, 3, 1, group_by_length=False)]
    assert sum(grouped) < 0.6 * sum(ungrouped)  # padded tokens with grouping vs without
    shapes = {bucket_length(lengths[i].max(), 64, 256) for i in a}
    assert shapes <= {64, 128, 192, 256}


def test_padding_cost_compares_fixed_and_dynamic_padding():
    lengths = np.random.default_rng(1).integers(8, 60, 640)
    table = padding_cost(lengths, batch_size=32, fixed_lengths=(256, 64), pad_multiple=8).set_index("scheme")
    computed = table["tokens_computed"]
    assert computed["pad every text to 256"] == 640 * 256 and computed["pad every text to 64"] == 640 * 64
    dynamic, grouped = computed.iloc[2], computed.iloc[3]
    assert lengths.sum() <= grouped < dynamic < 640 * 64
    assert table["padding_share"].iloc[0] == pytest.approx(1 - lengths.sum() / (640 * 256))


def test_same_seed_same_run_other_seed_other_run(toy):
    runs = [make_trainer(fast_config(epochs=1, seed=s)) for s in (7, 7, 8)]
    histories = [t.fit(*toy) for t in runs]
    assert histories[0].loss == histories[1].loss
    assert all(torch.equal(v, weights(runs[1])[k]) for k, v in weights(runs[0]).items())
    assert histories[0].loss != histories[2].loss


def test_gradient_accumulation_counts_optimizer_steps(toy):
    trainer = make_trainer(fast_config(epochs=1, gradient_accumulation=3))
    history = trainer.fit(*toy)
    assert len(history.step) == math.ceil(16 / 3)  # 16 micro-batches per epoch, last step takes the remaining one


# -- checkpoints and resume ---------------------------------------------------------------------------


class SimulatedKill(Exception):
    pass


def _kill_at(step: int):
    def callback(trainer: Trainer) -> None:
        if trainer.global_step == step:
            raise SimulatedKill

    return callback


@pytest.mark.parametrize("kill_step", [7, 27])  # inside epoch 1, and inside epoch 2 (after a best epoch was saved)
def test_resume_after_a_kill_mid_epoch_ends_exactly_like_an_uninterrupted_run(trained, toy, tmp_path, kill_step):
    reference, ref_history = trained
    config = fast_config(output_dir=str(tmp_path / "run"), save_every=5)
    with pytest.raises(SimulatedKill):
        make_trainer(config, callbacks=[_kill_at(kill_step)]).fit(*toy)
    state = torch.load(tmp_path / "run" / CHECKPOINT_DIR / "trainer_state.pt", weights_only=True)
    assert state["global_step"] == kill_step // 5 * 5 and 0 < state["batch_in_epoch"] < 16
    # a fresh process: another initialisation, restored from the checkpoint
    resumed = make_trainer(config, model_seed=123)
    history = resumed.fit(*toy, resume=True)
    assert history.step == list(range(1, 49))
    assert history.loss == ref_history.loss
    assert [e["val_macro_f1"] for e in history.epochs] == [e["val_macro_f1"] for e in ref_history.epochs]
    assert all(torch.equal(v, weights(reference)[k]) for k, v in weights(resumed).items())
    assert resumed.evaluate(toy[1]) == reference.evaluate(toy[1])


def test_checkpoint_is_safetensors_plus_weights_only_state(toy, tmp_path):
    trainer = make_trainer(fast_config(epochs=1, output_dir=str(tmp_path)))
    trainer.fit(*toy)
    folder = tmp_path / CHECKPOINT_DIR
    assert (folder / "model.safetensors").is_file() and (tmp_path / MODEL_DIR / "model.safetensors").is_file()
    state = torch.load(folder / "trainer_state.pt", weights_only=True)
    assert state["finished"] and state["epoch"] == 1 and state["batch_in_epoch"] == 0
    assert {"optimizer", "scheduler", "rng", "history", "fingerprint"} <= set(state)
    # resuming a finished run trains nothing more and keeps the same model
    again = make_trainer(fast_config(epochs=1, output_dir=str(tmp_path)), model_seed=5)
    history = again.fit(*toy, resume=True)
    assert history.loss == trainer.history.loss
    assert all(torch.equal(v, weights(trainer)[k]) for k, v in weights(again).items())


def test_resume_refuses_a_checkpoint_made_with_other_settings_or_data(toy, tmp_path):
    make_trainer(fast_config(epochs=1, output_dir=str(tmp_path))).fit(*toy)
    with pytest.raises(ConfigError, match="learning_rate"):
        make_trainer(fast_config(epochs=1, output_dir=str(tmp_path), learning_rate=5e-3)).fit(*toy, resume=True)
    with pytest.raises(ConfigError, match="training data differs"):
        make_trainer(fast_config(epochs=1, output_dir=str(tmp_path))).fit(toy_frame(128, seed=9), toy[1], resume=True)


def test_early_stopping_restores_the_best_epoch(toy):
    # with a tiny learning rate validation accuracy does not move: epoch 1 stays best, patience 1 stops at 2
    after_epoch_1 = {}

    def snapshot(trainer: Trainer) -> None:
        if trainer.global_step == 16:
            after_epoch_1.update(weights(trainer))

    trainer = make_trainer(fast_config(epochs=6, learning_rate=1e-7, early_stopping_patience=1,
                                       eval_metric="accuracy"), callbacks=[snapshot])
    history = trainer.fit(*toy)
    assert history.stopped_early and len(history.epochs) == 2 and history.best_epoch == 1
    assert all(torch.equal(v, after_epoch_1[k]) for k, v in weights(trainer).items())
    assert trainer.evaluate(toy[1])["accuracy"] == history.best_metric


# -- faults ---------------------------------------------------------------------------------------------


def test_nan_loss_stops_naming_the_step_and_the_likely_cause(toy):
    def poison(trainer: Trainer) -> None:  # what a far too high learning rate does, made deterministic
        if trainer.global_step == 2:
            with torch.no_grad():
                trainer.model.classifier.weight.fill_(float("nan"))

    trainer = make_trainer(fast_config(log_every=10), callbacks=[poison])
    with pytest.raises(TrainingError, match=r"became nan at step 3 .*learning rate is too high"):
        trainer.fit(*toy)


def test_broken_weights_are_reported_at_step_1(toy):
    trainer = make_trainer()
    with torch.no_grad():
        trainer.model.classifier.bias.fill_(float("inf"))
    with pytest.raises(TrainingError, match=r"step 1 .*before any update"):
        trainer.fit(*toy)


def test_out_of_memory_names_the_batch_size_to_try(toy, monkeypatch):
    trainer = make_trainer(fast_config(batch_size=16))

    def boom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(trainer.model, "forward", boom)
    with pytest.raises(TrainingError, match=r"out of memory.*batch_size=8 .*gradient_accumulation=2"):
        trainer.fit(*toy)


# -- bad input ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(epochs=0), "epochs"),
        (dict(batch_size=2.5), "batch_size"),
        (dict(learning_rate=-1e-5), "learning_rate"),
        (dict(learning_rate=float("nan")), "learning_rate"),
        (dict(warmup_ratio=1.0), "warmup_ratio"),
        (dict(precision="fp16"), "loss scaler"),
        (dict(eval_metric="auc"), "eval_metric"),
        (dict(labels=["a", "a"]), "distinct"),
        (dict(labels="ab"), "list of names"),
        (dict(save_every=0), "save_every"),
        (dict(max_grad_norm=0.0), "max_grad_norm"),
    ],
)
def test_config_validation(overrides, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**overrides)


def _with(df: pd.DataFrame, row: int, **values) -> pd.DataFrame:
    out = df.copy()
    for column, value in values.items():
        out[column] = out[column].astype(object)
        out.loc[row, column] = value
    return out


@pytest.mark.parametrize(
    "case, error, message",
    [
        ("no_label_column", DataError, "no label column"),
        ("one_class", DataError, "only one class"),
        ("empty_text", DataError, "empty text"),
        ("nan_label", DataError, "missing label"),
        ("unknown_validation_label", DataError, r"\['neutral'\] are not among"),
        ("not_a_frame", DataError, "DataFrame"),
        ("patience_without_validation", ConfigError, "validation set"),
        ("resume_without_output_dir", ConfigError, "output_dir"),
    ],
)
def test_bad_inputs_raise_clear_errors(toy, case, error, message):
    train, validation = toy
    trainer, kwargs = make_trainer(), {}
    if case == "no_label_column":
        train = train.rename(columns={"label": "sentiment"})
    elif case == "one_class":
        train = train.assign(label="positive")
    elif case == "empty_text":
        train = _with(train, 3, text="  ")
    elif case == "nan_label":
        train = _with(train, 5, label=np.nan)
    elif case == "unknown_validation_label":
        validation = _with(validation, 0, label="neutral")
    elif case == "not_a_frame":
        train = train.to_dict("records")
    elif case == "patience_without_validation":
        trainer, validation = make_trainer(fast_config(early_stopping_patience=2)), None
    elif case == "resume_without_output_dir":
        kwargs = {"resume": True}
    with pytest.raises(error, match=message):
        trainer.fit(train, validation, **kwargs)


def test_labels_from_config_fix_the_order_and_a_wrong_head_size_is_refused(toy):
    trainer = make_trainer(fast_config(epochs=1, labels=["positive", "negative"]))
    trainer.fit(*toy)
    assert trainer.model.config.id2label == {0: "positive", 1: "negative"}
    assert trainer.evaluate(toy[1])["labels"] == ["positive", "negative"]
    three = make_trainer(fast_config(labels=["negative", "neutral", "positive"]))
    with pytest.raises(ConfigError, match="2 outputs but there are 3 labels"):
        three.fit(*toy)


def test_predict_before_fit_is_a_clear_error():
    with pytest.raises(ConfigError, match="fit"):
        make_trainer().predict(["hello"])


def test_plot_training_history_draws_steps_and_epochs(trained):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from course_utils.plots import plot_training_history

    _, history = trained
    loss_ax, epoch_ax = plot_training_history(history, smooth=5)
    raw, average = loss_ax.get_lines()
    assert list(raw.get_ydata()) == history.loss and len(average.get_ydata()) == len(history.loss) - 4
    assert [list(line.get_ydata()) for line in epoch_ax.get_lines()[:2]] == [
        [e["train_loss"] for e in history.epochs], [e["val_loss"] for e in history.epochs]]
    assert "best epoch" in epoch_ax.get_title()
    assert len(plot_training_history(history.to_dict())) == 2  # the dict form (metrics.json) works too
    plt.close("all")
    with pytest.raises(DataError, match="empty history"):
        plot_training_history({"step": [], "loss": [], "epochs": []})


def test_predict_reads_a_frame_by_its_text_column_and_handles_empty_and_none(trained, toy):
    trainer, _ = trained
    frame = toy[1].head(4)
    from_frame = trainer.predict(frame)
    assert len(from_frame.labels) == 4  # not one prediction for the column name "text"
    assert from_frame.labels == trainer.predict(frame["text"].tolist()).labels
    empty = trainer.predict([])
    assert empty.labels == [] and empty.probabilities.shape == (0, len(trainer.labels))
    with pytest.raises(DataError, match="None"):
        trainer.predict(None)
    with pytest.raises(DataError, match="no 'text' column"):
        trainer.predict(frame.rename(columns={"text": "review"}))


def test_numeric_labels_are_one_class_and_case_variants_need_the_flag(toy):
    numeric = toy[0].head(24).assign(label=[0, 0.0, "0", " 1 ", 1.0, "1"] * 4)
    trainer = make_trainer(fast_config(epochs=1))
    trainer.fit(numeric)
    assert trainer.labels == ("0", "1")
    cased = toy[0].head(24).assign(label=["Positive", "positive", "NEGATIVE", "negative"] * 6)
    with pytest.raises(DataError, match="--fold-label-case"):
        make_trainer(fast_config(epochs=1)).fit(cased)
    folded = make_trainer(fast_config(epochs=1, fold_label_case=True))
    folded.fit(cased)
    assert folded.labels == ("negative", "positive")


# -- atomic writes: a kill at every write step leaves one complete version ------------------------------

_STEPS = ["inside write", "before moving the old version aside", "between the two renames", "while removing the old"]


@pytest.mark.parametrize("kill", _STEPS)
def test_a_kill_at_any_write_step_leaves_a_complete_folder(tmp_path, monkeypatch, kill):
    import shutil
    from pathlib import Path

    from course_utils.trainer import complete_folder, write_folder_atomically

    final = tmp_path / "best"

    def version(tag, fail=False):
        def write(folder):
            folder.mkdir()
            (folder / "a.txt").write_text(tag)
            if fail:
                raise SimulatedKill
            (folder / "b.txt").write_text(tag)
        return write

    write_folder_atomically(final, version("v1"))
    real_rename, real_rmtree = Path.rename, shutil.rmtree
    renames = []

    def rename(self, target):
        renames.append(self.name)
        if (kill == _STEPS[1] and len(renames) == 1) or (kill == _STEPS[2] and len(renames) == 2):
            raise SimulatedKill
        return real_rename(self, target)

    def rmtree(path, *args, **kwargs):
        if kill == _STEPS[3] and len(renames) == 2:
            raise SimulatedKill
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(Path, "rename", rename)
    monkeypatch.setattr(shutil, "rmtree", rmtree)
    with pytest.raises(SimulatedKill):
        write_folder_atomically(final, version("v2", fail=kill == _STEPS[0]))
    monkeypatch.undo()
    found = complete_folder(final)
    assert found is not None
    contents = {p.name: p.read_text() for p in found.iterdir()}
    assert contents in ({"a.txt": "v1", "b.txt": "v1"}, {"a.txt": "v2", "b.txt": "v2"}), (kill, contents)
    if kill == _STEPS[2]:
        assert found.name == "best.old"  # the only complete version left, and resume uses it
    write_folder_atomically(final, version("v3"))  # the next save cleans up and succeeds
    assert complete_folder(final) == final and not (tmp_path / "best.old").exists()


def test_a_kill_between_the_checkpoints_two_renames_resumes_from_the_older_one(trained, toy, tmp_path, monkeypatch):
    from pathlib import Path

    reference, ref_history = trained
    config = fast_config(output_dir=str(tmp_path / "run"), save_every=5)
    real_rename, calls = Path.rename, {"n": 0}

    def rename(self, target):
        if self.name == f"{CHECKPOINT_DIR}.tmp":
            calls["n"] += 1
            if calls["n"] == 2:  # the step-10 checkpoint: step 5's was moved aside, the new one not yet in place
                raise SimulatedKill
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(SimulatedKill):
        make_trainer(config).fit(*toy)
    monkeypatch.undo()
    assert not (tmp_path / "run" / CHECKPOINT_DIR).exists() and (tmp_path / "run" / f"{CHECKPOINT_DIR}.old").is_dir()
    resumed = make_trainer(config, model_seed=123)
    history = resumed.fit(*toy, resume=True)
    assert history.step == list(range(1, 49))
    assert history.loss == ref_history.loss
    assert all(torch.equal(v, weights(reference)[k]) for k, v in weights(resumed).items())


def test_resuming_without_a_checkpoint_says_so_even_without_progress_output(toy, tmp_path, capsys):
    make_trainer(fast_config(epochs=1, output_dir=str(tmp_path / "fresh"))).fit(*toy, resume=True)
    assert "no checkpoint" in capsys.readouterr().out
