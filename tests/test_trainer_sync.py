"""The step loop never reads a tensor back to the host between log steps, and the GPU-minded options
(host-built masks, prefetching) change nothing but speed. Counted on the CPU: every ``.item()``,
``bool(tensor)``, ``int(tensor)``, ``float(tensor)`` and ``.tolist()`` is a point where a GPU run
would wait for the device."""

from __future__ import annotations

import collections
import math

import numpy as np
import pytest
import torch
from test_trainer import fast_config, make_trainer, toy_frame, weights

from course_utils.models import tiny_bert_for_tests
from course_utils.trainer import EncodedTexts, Trainer

_READS = ("item", "__bool__", "__int__", "__float__", "__index__", "tolist")


@pytest.fixture(scope="module")
def toy():
    return toy_frame(128, seed=0), toy_frame(64, seed=1)


def count_reads(monkeypatch, trainer: Trainer, train) -> collections.Counter:
    """Tensor read-backs from the end of the first optimizer step to the end of fit()."""
    counts, active = collections.Counter(), {"on": False}
    for name in _READS:
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _name=name, _original=original, **kwargs):
            if active["on"]:
                counts[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    trainer.callbacks.append(lambda t: active.update(on=True))
    trainer.fit(train)
    active["on"] = False
    monkeypatch.undo()
    return counts


def test_the_step_loop_reads_the_device_only_to_log(toy, monkeypatch):
    trainer = make_trainer(fast_config(epochs=1, log_every=4))
    counts = count_reads(monkeypatch, trainer, toy[0])
    steps = trainer.global_step
    assert steps == 16
    assert counts["tolist"] == math.ceil(steps / 4)  # one read of the queued losses per log step
    assert sum(counts[name] for name in _READS if name != "tolist") == 0, counts


def test_with_a_2d_mask_transformers_syncs_every_forward(toy, monkeypatch):
    """What prebuilt_mask removes: transformers asks ``padding_mask.all()`` in every forward."""
    trainer = make_trainer(fast_config(epochs=1, log_every=4, prebuilt_mask=False))
    counts = count_reads(monkeypatch, trainer, toy[0])
    assert counts["__bool__"] >= trainer.global_step - 1


@pytest.mark.parametrize("options", [{"prebuilt_mask": False}, {"prefetch": True},
                                     {"prefetch": True, "prebuilt_mask": False}])
def test_masks_and_prefetching_change_nothing_but_speed(toy, options):
    reference = make_trainer(fast_config(epochs=2))
    ref_history = reference.fit(*toy)
    other = make_trainer(fast_config(epochs=2, **options))
    history = other.fit(*toy)
    assert history.loss == ref_history.loss
    assert all(torch.equal(v, weights(reference)[k]) for k, v in weights(other).items())
    assert np.array_equal(other.predict(toy[1]).probabilities, reference.predict(toy[1]).probabilities)


def test_host_batches_carry_no_mask_without_padding_and_a_4d_mask_with_it():
    trainer = make_trainer(fast_config(pad_multiple=4))
    ids = np.arange(1, 25, dtype=np.int32).reshape(3, 8)
    data = EncodedTexts(ids, np.array([4, 4, 3]), np.array([0, 1, 0]))
    (_, mask, _), length = trainer._host_batch(data, np.array([0, 1]))
    assert length == 4 and mask is None  # no padding: SDPA needs no mask at all
    (batch_ids, mask, labels), length = trainer._host_batch(data, np.array([0, 2]))
    assert length == 4 and mask.dtype == torch.bool and mask.shape == (2, 1, 1, 4)
    assert mask[:, 0, 0].tolist() == [[True] * 4, [True, True, True, False]]
    assert batch_ids.shape == (2, 4) and labels.tolist() == [0, 0]


def test_a_model_on_eager_attention_gets_the_usual_2d_mask(toy):
    tokenizer, model = tiny_bert_for_tests(seed=0)
    model.set_attn_implementation("eager")
    trainer = Trainer(fast_config(epochs=1), model=model, tokenizer=tokenizer)
    data = EncodedTexts(np.ones((2, 8), np.int32), np.array([8, 5]), np.array([0, 1]))
    (_, mask, _), _ = trainer._host_batch(data, np.array([0, 1]))
    assert mask.shape == (2, 8) and mask.dtype == torch.int64
    history = trainer.fit(*toy)
    assert all(math.isfinite(v) for v in history.loss)


@pytest.mark.parametrize("family", ["bert", "roberta", "distilbert", "electra"])
def test_the_host_built_4d_mask_gives_the_same_logits_as_the_2d_mask(family):
    """prebuilt_mask is on by default for every SDPA model, so check the encoder families people fine-tune."""
    import transformers as T

    small = {"vocab_size": 100, "num_attention_heads": 2}
    config = {
        "bert": lambda: T.BertConfig(hidden_size=32, num_hidden_layers=2, intermediate_size=64, **small),
        "roberta": lambda: T.RobertaConfig(hidden_size=32, num_hidden_layers=2, intermediate_size=64, **small),
        "distilbert": lambda: T.DistilBertConfig(vocab_size=100, dim=32, n_layers=2, n_heads=2, hidden_dim=64),
        "electra": lambda: T.ElectraConfig(embedding_size=16, hidden_size=32, num_hidden_layers=2,
                                           intermediate_size=64, **small),
    }[family]()
    torch.manual_seed(0)
    model = T.AutoModelForSequenceClassification.from_config(config, attn_implementation="sdpa").eval()
    ids = torch.randint(5, 100, (3, 10))
    keep = torch.arange(10) < torch.tensor([10, 7, 4])[:, None]
    with torch.inference_mode():
        usual = model(input_ids=ids, attention_mask=keep.long()).logits
        prebuilt = model(input_ids=ids, attention_mask=keep[:, None, None, :]).logits
    assert torch.equal(usual, prebuilt)
