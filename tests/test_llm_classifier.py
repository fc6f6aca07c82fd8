"""Lesson 09's second route: a decoder LLM as a classifier (a head on the last token's hidden state).

Runs on a tiny random Llama (two layers, hidden size 32) with the offline model's real tokenizer and chat
template, so every test takes a second or two; the lesson runs the same code on SmolLM2-135M.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_utils.errors import ConfigError, DataError
from course_utils.labs import instruct
from course_utils.labs.instruct import last_token_states
from course_utils.labs.llm_classifier import LastTokenClassifier, predict_last_token, train_last_token_classifier


def chats(texts):
    return [instruct.chat_messages(t, system="Is the tweet negative or positive?", instruction=None) for t in texts]


def test_last_token_states_read_the_last_prompt_token_whatever_the_padding(llm_tokenizer, tiny_llama):
    lm = tiny_llama()
    texts = ["short", "a much longer tweet than the first one, with many more words in it"]
    together = last_token_states(lm, llm_tokenizer, chats(texts), batch_size=2)
    alone = torch.cat([last_token_states(lm, llm_tokenizer, chats([t])) for t in texts])
    assert together.shape == (2, 32) and together.dtype == torch.float32
    assert torch.allclose(together, alone, atol=1e-5)   # left padding does not change the state
    assert not torch.allclose(together[0], together[1])


def test_the_head_learns_a_separable_task_and_only_what_requires_grad_trains(llm_tokenizer, tiny_llama):
    lm = tiny_llama()
    for p in lm.parameters():
        p.requires_grad = False   # "head only": the body is frozen
    texts = [f"{w} {i}" for i in range(8) for w in ("awful awful awful", "lovely")]
    labels = [0, 1] * 8
    classifier = LastTokenClassifier(lm, n_labels=2, seed=0)
    body_before = [p.clone() for p in classifier.body.parameters()]
    losses = train_last_token_classifier(classifier, llm_tokenizer, chats(texts), labels, steps=30, batch_size=8, lr=5e-2)
    assert losses[-1] < losses[0]
    assert (predict_last_token(classifier, llm_tokenizer, chats(texts)) == np.array(labels)).mean() == 1.0
    assert all(torch.equal(a, b) for a, b in zip(body_before, classifier.body.parameters()))


def test_lora_on_the_body_trains_with_the_head_and_unloads_to_the_base(llm_tokenizer, tiny_llama):
    from peft import LoraConfig, get_peft_model

    lm = tiny_llama()
    before = {k: v.clone() for k, v in lm.state_dict().items()}
    lora = get_peft_model(lm, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    classifier = LastTokenClassifier(lora, n_labels=2, seed=1)
    assert any("lora_" in name for name, p in classifier.body.named_parameters() if p.requires_grad)
    train_last_token_classifier(classifier, llm_tokenizer, chats(["bad", "good"] * 4), [0, 1] * 4, steps=3, batch_size=4,
                                lr=1e-2, head_lr=1e-1, warmup=1)
    lora_b = [p for name, p in classifier.body.named_parameters() if "lora_B" in name]
    assert any(p.abs().sum() > 0 for p in lora_b)   # B left zero: the adapter trained
    base = lora.unload()
    assert all(torch.equal(before[k], v) for k, v in base.state_dict().items())


def test_bad_input_is_one_clear_error(llm_tokenizer, tiny_llama):
    lm = tiny_llama()
    with pytest.raises(ConfigError, match="at least 2 labels"):
        LastTokenClassifier(lm, n_labels=1)
    with pytest.raises(ConfigError, match="decoder body"):
        LastTokenClassifier(torch.nn.Linear(2, 2), n_labels=2)
    classifier = LastTokenClassifier(lm, n_labels=2)
    with pytest.raises(DataError, match="one label per conversation"):
        train_last_token_classifier(classifier, llm_tokenizer, chats(["a", "b"]), [0], steps=1)
    with pytest.raises(ConfigError, match="steps"):
        train_last_token_classifier(classifier, llm_tokenizer, chats(["a"]), [0], steps=0)
    with pytest.raises(DataError, match="no conversations"):
        last_token_states(lm, llm_tokenizer, [])


def test_the_shared_prefix_cache_gives_the_states_of_whole_prompts(llm_tokenizer, tiny_llama, monkeypatch):
    lm = tiny_llama()
    texts = ["short", "a much longer tweet than the first one", "medium length tweet", "ok"]
    conversations = chats(texts)
    cached = last_token_states(lm, llm_tokenizer, conversations, batch_size=3)
    monkeypatch.setattr(instruct, "MIN_SHARED_PREFIX", 10**6)   # whole prompts, left-padded
    whole = last_token_states(lm, llm_tokenizer, conversations, batch_size=3)
    assert torch.allclose(cached, whole, atol=1e-5)
    ids = [[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]]
    assert instruct._shared_prefix(ids) == 2 and instruct._shared_prefix([[7, 8, 9], [7, 8, 9]]) == 2
