"""LoRA through peft in the trainer: only adapters and the head train, checkpoints hold only them, resume is exact."""

from __future__ import annotations

import pytest
import torch
from test_trainer import SimulatedKill, _kill_at, fast_config, make_trainer, toy_frame

from course_utils.errors import ConfigError
from course_utils.models import count_parameters, tiny_bert_for_tests
from course_utils.trainer import CHECKPOINT_DIR, MODEL_DIR, TrainConfig, Trainer

peft = pytest.importorskip("peft")


def lora_config(**overrides) -> TrainConfig:
    # the frozen base is a random 2-layer BERT, so the adapters need a high rate to learn the toy task
    values = {"lora_r": 8, "learning_rate": 3e-2}
    values.update(overrides)
    return fast_config(**values)


@pytest.fixture(scope="module")
def toy():
    return toy_frame(128, seed=0), toy_frame(64, seed=1)


@pytest.fixture(scope="module")
def lora_run(toy):
    _, base = tiny_bert_for_tests(seed=0)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    trainer = make_trainer(lora_config())
    return trainer, trainer.fit(*toy), before


def test_only_the_adapters_and_the_head_train(lora_run):
    trainer, history, before = lora_run
    model = trainer.model
    assert isinstance(model, peft.PeftModel)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "classifier" in n for n in trainable)
    assert any("lora_A" in n for n in trainable) and any("lora_B" in n for n in trainable)
    assert count_parameters(model, trainable_only=True) < 0.2 * count_parameters(model)
    # the frozen base did not move; the adapters did (lora_B starts at zero)
    base = model.get_base_model().state_dict()
    for name, value in before.items():
        key = name.replace("query.weight", "query.base_layer.weight").replace("value.weight", "value.base_layer.weight")
        key = key.replace("query.bias", "query.base_layer.bias").replace("value.bias", "value.base_layer.bias")
        if "classifier" not in name:
            assert torch.equal(base[key], value), name
    assert any(p.abs().sum() > 0 for n, p in model.named_parameters() if "lora_B" in n)
    assert history.epochs[-1]["val_accuracy"] > 0.75  # it learns through the adapters alone


def test_a_kill_mid_run_resumes_from_an_adapter_only_checkpoint_exactly(lora_run, toy, tmp_path):
    reference, ref_history, _ = lora_run
    config = lora_config(output_dir=str(tmp_path / "run"), save_every=5)
    with pytest.raises(SimulatedKill):
        make_trainer(config, callbacks=[_kill_at(27)]).fit(*toy)
    folder = tmp_path / "run" / CHECKPOINT_DIR
    assert (folder / "adapter_model.safetensors").is_file() and not (folder / "model.safetensors").exists()
    from safetensors.torch import load_file

    saved = load_file(folder / "adapter_model.safetensors")
    assert saved and all("lora_" in k or "classifier" in k for k in saved)
    # a fresh process loads the same base model, then the checkpoint's adapters
    resumed = make_trainer(config)
    history = resumed.fit(*toy, resume=True)
    assert history.step == ref_history.step and history.loss == ref_history.loss
    ref = {k: v for k, v in reference.model.state_dict().items()}
    assert all(torch.equal(v, ref[k]) for k, v in resumed.model.state_dict().items())


def test_the_saved_adapter_is_small_and_round_trips_with_identical_predictions(toy, tmp_path):
    full = make_trainer(fast_config(epochs=1, output_dir=str(tmp_path / "full")))
    full.fit(*toy)
    trainer = make_trainer(lora_config(epochs=1, output_dir=str(tmp_path / "lora")))
    trainer.fit(*toy)
    adapter = tmp_path / "lora" / MODEL_DIR / "adapter_model.safetensors"
    assert adapter.stat().st_size < 0.2 * (tmp_path / "full" / MODEL_DIR / "model.safetensors").stat().st_size
    _, base = tiny_bert_for_tests(seed=0)
    loaded = peft.PeftModel.from_pretrained(base, tmp_path / "lora" / MODEL_DIR).eval()
    batch = trainer.tokenizer(list(toy[1]["text"][:16]), padding=True, return_tensors="pt")
    with torch.inference_mode():
        trainer.model.eval()
        assert torch.equal(loaded(**batch).logits, trainer.model(**batch).logits)


def test_resume_refuses_another_rank(toy, tmp_path):
    make_trainer(lora_config(epochs=1, output_dir=str(tmp_path))).fit(*toy)
    with pytest.raises(ConfigError, match="lora_r"):
        make_trainer(lora_config(epochs=1, output_dir=str(tmp_path), lora_r=4)).fit(*toy, resume=True)


@pytest.mark.parametrize("overrides, message", [
    ({"lora_alpha": 16}, "need lora_r"),
    ({"lora_r": 0, "lora_targets": ["query"]}, "need lora_r"),
    ({"lora_r": -1}, "lora_r must be an integer >= 0"),
    ({"lora_r": 2.0}, "lora_r must be an integer"),
    ({"lora_r": 4, "lora_alpha": -1.0}, "lora_alpha"),
    ({"lora_r": 4, "lora_targets": "query"}, "lora_targets"),
])
def test_lora_settings_are_checked(overrides, message):
    with pytest.raises(ConfigError, match=message):
        fast_config(**overrides)


def test_lora_r_0_is_full_fine_tuning(toy):
    trainer = make_trainer(fast_config(epochs=1, lora_r=0))
    trainer.fit(*toy)
    assert not isinstance(trainer.model, peft.PeftModel)
    assert count_parameters(trainer.model, trainable_only=True) == count_parameters(trainer.model)


def test_unknown_target_modules_name_the_linear_layers(toy):
    trainer = make_trainer(lora_config(lora_targets=["q_proj"]))
    with pytest.raises(ConfigError, match="query"):
        trainer.fit(*toy)


def test_a_model_that_already_has_adapters_is_trained_as_given(toy):
    tokenizer, base = tiny_bert_for_tests(seed=0)
    model = peft.get_peft_model(base, peft.LoraConfig(task_type=peft.TaskType.SEQ_CLS, r=2))
    trainer = Trainer(fast_config(epochs=1), model=model, tokenizer=tokenizer)
    trainer.fit(*toy)
    assert {n for n, p in trainer.model.named_parameters() if p.requires_grad} == \
        {n for n, p in model.named_parameters() if p.requires_grad}
    with pytest.raises(ConfigError, match="already has peft adapters"):
        Trainer(lora_config(epochs=1), model=model, tokenizer=tokenizer).fit(*toy)


def test_lora_gets_its_own_default_learning_rate():
    """Full fine-tuning's 1e-4 leaves a new adapter near the majority class; LoRA's default is chosen for it."""
    from course_utils.trainer import DEFAULT_LEARNING_RATE, DEFAULT_LORA_LEARNING_RATE

    assert TrainConfig().learning_rate == DEFAULT_LEARNING_RATE
    assert TrainConfig(lora_r=8).learning_rate == DEFAULT_LORA_LEARNING_RATE > 5 * DEFAULT_LEARNING_RATE
    assert TrainConfig(lora_r=8, learning_rate=1e-4).learning_rate == 1e-4  # a rate you give is kept


def test_the_cli_gives_lora_its_default_rate_unless_told(tmp_path):
    import argparse

    from course_utils.cli import train as cli_train
    from course_utils.trainer import DEFAULT_LEARNING_RATE, DEFAULT_LORA_LEARNING_RATE

    parser = argparse.ArgumentParser()
    cli_train.add_arguments(parser)
    out = ["--data", "tweets", "--output-dir", str(tmp_path / "run")]
    assert cli_train._config(parser.parse_args(out)).learning_rate == DEFAULT_LEARNING_RATE
    assert cli_train._config(parser.parse_args([*out, "--lora-r", "8"])).learning_rate == DEFAULT_LORA_LEARNING_RATE
    assert cli_train._config(parser.parse_args([*out, "--lora-r", "8", "--lr", "3e-4"])).learning_rate == 3e-4
