"""The trainer's GPU path on a CUDA device: bf16 autocast, prefetching into pinned memory, no host sync per
step, LoRA, checkpoint and resume, and a real out-of-memory error.

Marked ``cuda``: skipped where torch sees no GPU. ``benchmarks/gpu_suite.sh`` runs them on one, and its
dry run runs them on the CPU (``COURSE_CUDA_TESTS_ON_CPU=1``), so they cannot rot between GPUs. On the
CPU the comparisons are exact and host reads are counted at the Python level (``test_trainer_sync.py``);
on CUDA ``torch.cuda.set_sync_debug_mode`` counts every synchronising operation, and comparisons allow
the last bits that parallel reductions change between runs.

The tokenizer is a word-level vocabulary built here: the GPU machine has no offline model.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from test_trainer import _FILL, _WORDS, SimulatedKill, _kill_at, fast_config, toy_frame
from test_trainer_sync import count_reads

from course_utils.models import tiny_bert_for_tests
from course_utils.trainer import CHECKPOINT_DIR, MODEL_DIR, EncodedTexts, Trainer, TrainingError

pytestmark = pytest.mark.cuda

CUDA = torch.cuda.is_available()
DEVICE = "cuda" if CUDA else "cpu"
# Two runs of the same work on a GPU may differ in the last bits (atomics in some backward kernels).
TOLERANCE = {"rtol": 1e-3, "atol": 1e-5} if CUDA else {"rtol": 0.0, "atol": 0.0}
# Adapters on every linear layer: on a random base with this small vocabulary, query and value alone
# learned the toy task in some seeds only (validation accuracy 0.44 to 0.80 over learning rates and seeds).
LORA = {"lora_r": 8, "lora_targets": ["query", "key", "value", "dense"], "learning_rate": 1e-2}


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    from transformers import BertTokenizer

    folder = tmp_path_factory.mktemp("vocab")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted({*_FILL, *_WORDS.ravel()})]
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    tokenizer = BertTokenizer.from_pretrained(str(folder))
    assert tokenizer.vocab_size == len(words)
    return tokenizer


@pytest.fixture(scope="module")
def toy():
    return toy_frame(128, seed=0), toy_frame(64, seed=1)


def config(**overrides):
    return fast_config(device=DEVICE, **overrides)


def make(tokenizer, cfg, seed: int = 0, callbacks=()) -> Trainer:
    _, model = tiny_bert_for_tests(seed=seed, tokenizer=tokenizer)
    return Trainer(cfg, model=model, tokenizer=tokenizer, callbacks=callbacks)


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in trainer.model.state_dict().items()}


def host_syncs(monkeypatch, trainer: Trainer, train) -> int:
    """Host-device syncs from the end of the first optimizer step to the end of ``fit``.

    On CUDA, every operation torch reports as synchronising (``set_sync_debug_mode``, which also sees
    syncs inside C++ code, such as a transformers mask check); on the CPU, the Python-level reads that
    would be syncs on a GPU (``.item()``, ``bool()``, ``.tolist()`` ...).
    """
    if not CUDA:
        return sum(count_reads(monkeypatch, trainer, train).values())
    start: list[int] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.callbacks.append(lambda t: start or start.append(len(caught)))
        torch.cuda.set_sync_debug_mode("warn")
        try:
            trainer.fit(train)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchronizing" in str(w.message) for w in caught[start[0]:])


def test_bf16_autocast_runs_the_layers_in_bf16_keeps_fp32_weights_and_learns(tokenizer, toy):
    trainer = make(tokenizer, config(precision="auto" if CUDA else "bf16"))
    assert trainer.bf16  # on CUDA: chosen by "auto" (Ampere or newer)
    dtypes = []
    layer = trainer.model.bert.encoder.layer[0].attention.self.query
    handle = layer.register_forward_hook(lambda module, args, out: dtypes.append(out.dtype))
    history = trainer.fit(*toy)
    handle.remove()
    assert dtypes and set(dtypes) == {torch.bfloat16}
    assert all(p.dtype == torch.float32 and p.device.type == DEVICE for p in trainer.model.parameters())
    assert all(math.isfinite(v) for v in history.loss)
    assert np.mean(history.loss[-4:]) < 0.5 * np.mean(history.loss[:4])
    assert history.epochs[-1]["val_accuracy"] >= 0.9


def test_prefetched_batches_are_pinned_and_train_like_unprefetched_ones(tokenizer, toy):
    prefetched = make(tokenizer, config(epochs=1, precision="fp32", prefetch=True if not CUDA else None))
    assert prefetched._prefetch  # on CUDA by default
    data = EncodedTexts(np.ones((3, 8), np.int32), np.array([8, 5, 3]), np.array([0, 1, 0]))
    host, _ = prefetched._host_batch(data, np.array([0, 1, 2]))
    assert all(t.is_pinned() == CUDA for t in host if t is not None)  # non_blocking copies need pinned memory
    plain = make(tokenizer, config(epochs=1, precision="fp32", prefetch=False))
    a, b = prefetched.fit(*toy), plain.fit(*toy)
    assert prefetched.shapes_seen == plain.shapes_seen
    np.testing.assert_allclose(a.loss, b.loss, **TOLERANCE)
    reference = weights(plain)
    for name, value in weights(prefetched).items():
        torch.testing.assert_close(value, reference[name], **TOLERANCE)


@pytest.mark.parametrize("padded", [True, False], ids=["4d-mask", "no-mask"])
def test_the_step_loop_syncs_with_the_host_only_to_log(tokenizer, toy, monkeypatch, padded):
    """Padded batches get the host-built 4D mask; batches of texts that all fill max_length get none."""
    train = toy[0] if padded else toy[0].assign(text=toy[0]["text"] + " " + " ".join(_FILL))  # >= 14 words
    trainer = make(tokenizer, config(epochs=1, log_every=4, max_length=16 if padded else 8))
    syncs = host_syncs(monkeypatch, trainer, train)
    steps, log_reads = trainer.global_step, math.ceil(trainer.global_step / 4)
    assert steps == 16 and (padded or trainer.shapes_seen == {(8, 8)})
    # one read of the queued losses per log step, at most one more at the epoch's end; none per step
    assert log_reads <= syncs <= log_reads + 1, (syncs, steps)


def test_the_sync_counter_sees_the_per_step_sync_of_a_2d_mask(tokenizer, toy, monkeypatch):
    """What prebuilt_mask removes, and proof that the count above can fail: transformers asks
    ``padding_mask.all()`` of a 2D mask in every forward."""
    trainer = make(tokenizer, config(epochs=1, log_every=4, prebuilt_mask=False))
    assert host_syncs(monkeypatch, trainer, toy[0]) >= trainer.global_step - 1


def test_lora_trains_the_adapters_and_head_on_the_device_and_saves_them_alone(tokenizer, toy, tmp_path):
    peft = pytest.importorskip("peft")
    trainer = make(tokenizer, config(output_dir=str(tmp_path), **LORA))
    before = {k: v.detach().cpu().clone() for k, v in trainer.model.state_dict().items()}
    history = trainer.fit(*toy)
    model = trainer.model
    assert isinstance(model, peft.PeftModel)
    assert all(p.device.type == DEVICE for p in model.parameters())
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "classifier" in n for n in trainable)
    base = model.get_base_model().state_dict()
    for name, value in before.items():
        if "classifier" in name:
            continue
        prefix, leaf = name.rsplit(".", 1)
        wrapped = f"{prefix}.base_layer.{leaf}"  # where peft keeps an adapted layer's own weight
        assert torch.equal(base[wrapped if wrapped in base else name].cpu(), value), name  # the base did not move
    assert any(p.abs().sum() > 0 for n, p in model.named_parameters() if "lora_B" in n)
    assert np.mean(history.loss[-8:]) < 0.8 * np.mean(history.loss[:8])
    assert history.epochs[-1]["val_accuracy"] > 0.6  # above the majority class (0.56): it learns through the adapters
    assert (tmp_path / MODEL_DIR / "adapter_model.safetensors").is_file()
    assert not (tmp_path / MODEL_DIR / "model.safetensors").exists()


@pytest.mark.parametrize("lora_r", [0, LORA["lora_r"]], ids=["full", "lora"])
def test_a_kill_mid_run_resumes_on_the_device_like_an_uninterrupted_run(tokenizer, toy, tmp_path, lora_r):
    settings = {"epochs": 2, **(LORA if lora_r else {})}
    reference = make(tokenizer, config(**settings))
    ref_history = reference.fit(*toy)
    cfg = config(output_dir=str(tmp_path / "run"), save_every=5, **settings)
    with pytest.raises(SimulatedKill):
        make(tokenizer, cfg, callbacks=[_kill_at(23)]).fit(*toy)  # inside epoch 2
    state = torch.load(tmp_path / "run" / CHECKPOINT_DIR / "trainer_state.pt", weights_only=True)
    assert state["global_step"] == 20 and 0 < state["batch_in_epoch"] < 16
    assert bool(state["rng"][0]["cuda"]) == CUDA  # the GPU's generator (dropout) is restored too
    resumed = make(tokenizer, cfg, seed=0 if lora_r else 123)  # LoRA needs the same base; full fine-tuning any
    history = resumed.fit(*toy, resume=True)
    assert history.step == ref_history.step == list(range(1, 33))
    assert all(p.device.type == DEVICE for p in resumed.model.parameters())
    np.testing.assert_allclose(history.loss, ref_history.loss, **TOLERANCE)
    reference_weights = weights(reference)
    for name, value in weights(resumed).items():
        torch.testing.assert_close(value, reference_weights[name], **TOLERANCE)


@pytest.mark.skipif(not CUDA, reason="a real out-of-memory error needs the CUDA allocator "
                                     "(test_trainer.py fakes one on the CPU)")
def test_a_real_out_of_memory_error_names_the_batch_size_to_try(tokenizer):
    texts = [" ".join(np.resize(_FILL, 600))] * 2048
    frame = pd.DataFrame({"text": texts, "label": ["negative", "positive"] * 1024})
    trainer = make(tokenizer, config(batch_size=2048, max_length=512, epochs=1))
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(256 * 2**20 / total)  # 256 MiB: a batch of 2048 x 512 needs GBs
    try:
        with pytest.raises(TrainingError, match=r"out of memory during training on cuda.*2048 x 512 tokens.*"
                                                 r"batch_size=1024 with gradient_accumulation=2"):
            trainer.fit(frame)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
