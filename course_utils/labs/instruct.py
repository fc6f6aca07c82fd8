"""Instruction-tuning a small generative model: the plumbing around lesson 09's loop.

The task is built from the course's tweet corpus: a chat prompt asks for the sentiment of a tweet and
the answer is exactly one lower-case word, so success is measured automatically on held-out tweets.
Lesson 09 uses lesson 05's binary task (``negative`` / ``positive``, passed as ``labels``); the defaults
(:data:`LABELS`, :data:`INSTRUCTION`) keep the three-word version that exercise 09 scores. The lesson
writes the training loop and shows the loss mask; this module holds what is not worth reading twice:

* :func:`chat_messages` / :func:`few_shot_messages` -- the prompt as chat turns;
* :func:`encode_example` -- prompt + answer as token ids with the prompt masked (labels ``-100``),
  so the loss is computed on the answer tokens only;
* :func:`pad_batch` -- right-padding for training (padding is masked too);
* :func:`generate_answers` -- batched greedy (or sampled) generation with left padding;
* :func:`score_answers` -- exact match, valid-format rate and a lenient accuracy;
* :func:`shorten` -- a text cut to a number of tokens (long tweets are shortened, never dropped);
* :func:`label_logprobs` / :func:`likelihood_predictions` -- the sentiment read from the label words'
  probabilities in one forward pass per example: what the model knows, apart from its format;
* :func:`last_token_states` / :func:`logprobs_from_states` -- the same pass in two halves: the hidden state
  the model answers from, then its language-model head (the classifier route of section 11 reuses the first).

Taught in lesson 09 (instruction tuning a small LLM).
"""

from __future__ import annotations

import copy
import inspect
import re
from collections.abc import Sequence

import pandas as pd
import torch

from course_utils.errors import ConfigError, DataError

__all__ = [
    "IGNORE_INDEX",
    "INSTRUCTION",
    "LABELS",
    "SYSTEM",
    "autocast_to",
    "chat_messages",
    "decoder_body",
    "encode_example",
    "fast_bf16",
    "few_shot_messages",
    "generate_answers",
    "label_logprobs",
    "last_token_states",
    "likelihood_predictions",
    "logprobs_from_states",
    "pad_batch",
    "prompt_batches",
    "score_answers",
    "shorten",
    "token_view",
]

LABELS = ("negative", "neutral", "positive")
SYSTEM = "Answer with one word."
INSTRUCTION = "Sentiment of this tweet (negative, neutral or positive)?"
IGNORE_INDEX = -100  # what torch's cross-entropy (and every transformers model) skips


def _question(text: str, instruction: str | None) -> str:
    return str(text) if instruction is None else f"{instruction}\nTweet: {text}"


def chat_messages(text: str, system: str = SYSTEM, instruction: str | None = INSTRUCTION) -> list[dict]:
    """The chat turns that ask for one tweet's sentiment (no answer).

    ``instruction=None`` leaves the user turn as the bare tweet, with the whole request in ``system``:
    the shortest prompt, which lesson 09 uses because every prompt token costs compute at every step.
    """
    return [{"role": "system", "content": system}, {"role": "user", "content": _question(text, instruction)}]


def few_shot_messages(text: str, shots: pd.DataFrame, system: str = SYSTEM,
                      instruction: str | None = INSTRUCTION) -> list[dict]:
    """Like :func:`chat_messages`, preceded by solved examples (``shots``: columns text, label) as earlier turns."""
    messages = [{"role": "system", "content": system}]
    for shot_text, label in zip(shots["text"], shots["label"]):
        messages += [
            {"role": "user", "content": _question(shot_text, instruction)},
            {"role": "assistant", "content": str(label)},
        ]
    messages.append({"role": "user", "content": _question(text, instruction)})
    return messages


def encode_example(tokenizer, messages: list[dict], answer: str, max_length: int = 96) -> dict[str, list[int]]:
    """Token ids of prompt + answer, and labels that count only the answer.

    The prompt is the chat template with the assistant's turn opened
    (``add_generation_prompt=True``); the answer is followed by the end-of-turn token so the model
    learns to stop. Labels are :data:`IGNORE_INDEX` on every prompt token. An example longer than
    ``max_length`` is an error (the caller drops or shortens it), never silently cut: a cut answer
    would teach the wrong thing.
    """
    prompt_ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    if isinstance(prompt_ids, dict) or hasattr(prompt_ids, "keys"):  # newer tokenizers return a BatchEncoding
        prompt_ids = prompt_ids["input_ids"]
    prompt_ids = list(prompt_ids)
    answer_ids = tokenizer(answer + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
    if len(prompt_ids) + len(answer_ids) > max_length:
        raise DataError(
            f"example of {len(prompt_ids) + len(answer_ids)} tokens exceeds max_length={max_length}; "
            "drop it or raise max_length."
        )
    return {
        "input_ids": prompt_ids + answer_ids,
        "labels": [IGNORE_INDEX] * len(prompt_ids) + answer_ids,
    }


def pad_batch(examples: Sequence[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad encoded examples into tensors; padded positions get label -100 and attention 0."""
    if not examples:
        raise DataError("pad_batch: no examples.")
    width = max(len(e["input_ids"]) for e in examples)
    ids, labels, mask = [], [], []
    for e in examples:
        gap = width - len(e["input_ids"])
        ids.append(e["input_ids"] + [pad_id] * gap)
        labels.append(e["labels"] + [IGNORE_INDEX] * gap)
        mask.append([1] * len(e["input_ids"]) + [0] * gap)
    return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels), "attention_mask": torch.tensor(mask)}


@torch.no_grad()
def generate_answers(
    model,
    tokenizer,
    conversations: Sequence[list[dict]],
    batch_size: int = 16,
    max_new_tokens: int = 4,
    do_sample: bool = False,
    temperature: float = 1.0,
    seed: int = 0,
) -> list[str]:
    """The model's reply to each conversation, decoded without special tokens and stripped.

    Prompts are left-padded (generation continues from the right end of every row). Greedy by
    default: evaluation should not depend on the dice; ``do_sample=True`` shows what sampling does.
    """
    if batch_size < 1 or max_new_tokens < 1:
        raise ConfigError(f"batch_size and max_new_tokens must be positive, got {batch_size}, {max_new_tokens}.")
    was_training = model.training
    model.eval()
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    if do_sample:
        torch.manual_seed(seed)
    replies: list[str] = []
    try:
        for start in range(0, len(conversations), batch_size):
            chunk = conversations[start : start + batch_size]
            prompts = [tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in chunk]
            batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
            sampling = {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0} if do_sample else {
                "do_sample": False, "temperature": None, "top_k": None, "top_p": None}
            out = model.generate(**batch, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id, **sampling)
            new = out[:, batch["input_ids"].shape[1] :]
            replies += [t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)]
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return replies


def _first_word(reply: str) -> str:
    words = re.findall(r"[a-z]+", reply.lower())
    return words[0] if words else ""


def score_answers(replies: Sequence[str], gold: Sequence[str], labels: Sequence[str] = LABELS) -> dict[str, float]:
    """Three views of the same replies.

    ``exact_match``: the reply is exactly the gold word (the format asked for);
    ``valid_format``: the reply is exactly one of ``labels``, right or wrong;
    ``lenient_accuracy``: the first word, lower-cased, is the gold word (forgives "Positive." or
    "Negative sentiment"), so the gap to exact match is what the format costs.
    """
    if len(replies) != len(gold) or not gold:
        raise DataError(f"score_answers: {len(replies)} replies for {len(gold)} gold labels.")
    n = len(gold)
    return {
        "exact_match": sum(r == g for r, g in zip(replies, gold)) / n,
        "valid_format": sum(r in labels for r in replies) / n,
        "lenient_accuracy": sum(_first_word(r) == g for r, g in zip(replies, gold)) / n,
    }


def token_view(tokenizer, example: dict[str, list[int]]) -> pd.DataFrame:
    """One row per token of an encoded example: the token, its id, its label and whether the loss counts it."""
    return pd.DataFrame({
        "token": tokenizer.convert_ids_to_tokens(example["input_ids"]),
        "input_id": example["input_ids"],
        "label": example["labels"],
        "in_loss": [label != IGNORE_INDEX for label in example["labels"]],
    })


def fast_bf16(device: torch.device | str) -> bool:
    """Whether bfloat16 matrix products are native (fast) on ``device``.

    CUDA GPUs with bf16 support, and CPUs with bf16 matrix instructions (Intel AMX or AVX512-BF16, read from
    ``/proc/cpuinfo`` on Linux). Lesson 09 autocasts its LLM's forward passes to bf16 where this is true:
    about 2.5 times faster than float32 on a 2-core Xeon with AMX; on a CPU without them bf16 would be
    slower, so the lesson stays in float32 there. (The course trainer keeps float32 on every CPU:
    ``course_utils.device.bf16_supported``.)
    """
    device = torch.device(device)
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type != "cpu":
        return False
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            flags = next((line.split(":", 1)[1].split() for line in info if line.startswith("flags")), [])
    except OSError:
        return False
    return bool({"amx_bf16", "avx512_bf16"} & set(flags))


def shorten(tokenizer, text: str, max_tokens: int) -> str:
    """``text`` cut to its first ``max_tokens`` tokens (unchanged when it is shorter).

    Lesson 09 bounds every example's length this way instead of dropping long tweets: dropping them
    would make the validation and test sets easier than the data they stand for.
    """
    if max_tokens < 1:
        raise ConfigError(f"max_tokens must be at least 1, got {max_tokens}.")
    ids = tokenizer(str(text), add_special_tokens=False)["input_ids"]
    return str(text) if len(ids) <= max_tokens else tokenizer.decode(ids[:max_tokens]).strip()


def _first_tokens(tokenizer, labels: Sequence[str]) -> list[int]:
    firsts = [tokenizer(label, add_special_tokens=False)["input_ids"][:1] for label in labels]
    if any(not f for f in firsts) or len({f[0] for f in firsts}) != len(labels):
        raise ConfigError(f"the labels {list(labels)} must start with distinct tokens to be scored by likelihood.")
    return [f[0] for f in firsts]


def autocast_to(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` to ``dtype`` on ``device``'s kind, or a no-op context when ``dtype`` is None (float32)."""
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def prompt_batches(tokenizer, conversations: Sequence[list[dict]], batch_size: int, device):
    """Yield ``(rows, batch)``: the conversations as prompts with the assistant's turn opened, left-padded.

    With left padding the last position of every row is its prompt's last token, the one a causal model
    answers from: :func:`course_utils.labs.llm_classifier.predict_last_token` reads its head there, and
    :func:`last_token_states` the hidden state (when the prompts share no prefix worth caching). Prompts are batched by
    length (little compute goes to padding); ``rows`` are the indices of the batch's conversations.
    """
    if not conversations:
        raise DataError("no conversations to score.")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be positive, got {batch_size}.")
    prompts = [tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in conversations]
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        batch = tokenizer([prompts[i] for i in rows], return_tensors="pt", padding=True, padding_side="left",
                          add_special_tokens=False)
        yield rows, batch.to(device)


#: A shared prefix shorter than this is not worth a cache (lesson 09's system turn is about 25 tokens).
MIN_SHARED_PREFIX = 8


def _shared_prefix(id_lists: Sequence[list[int]]) -> int:
    """Length of the token prefix every list starts with, leaving each at least its last token."""
    n = min(len(ids) for ids in id_lists) - 1
    first = id_lists[0]
    for ids in id_lists[1:]:
        k = 0
        while k < n and ids[k] == first[k]:
            k += 1
        n = k
    return max(n, 0)


@torch.no_grad()
def last_token_states(model, tokenizer, conversations: Sequence[list[dict]], batch_size: int = 32,
                      autocast_dtype: torch.dtype | None = None) -> torch.Tensor:
    """The final hidden state (after the last norm) at each prompt's last token: shape ``(n, hidden)``, float32.

    The prompts end with the assistant's turn opened, so this is the state the model answers from: its
    language-model head turns it into the next token's logits (:func:`label_logprobs`), and lesson 09's
    classifier route trains a new head on it (:mod:`course_utils.labs.llm_classifier`). No gradients; rows in
    the order given. ``autocast_dtype`` (``torch.bfloat16``) runs the pass in lower precision where the
    hardware has it.

    Every prompt of a lesson starts with the same tokens (the template and the system turn, and for few-shot
    prompts the solved examples too). Those are run once and their keys and values cached; each batch then
    runs only the rest of its prompts on top of a copy of that cache (right-padded, reading each row at its
    own last token). The states are those of a full pass (to float rounding) at about half the cost on
    lesson 09's prompts, where the shared part is about half of every prompt.
    """
    if not conversations:
        raise DataError("no conversations to score.")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be positive, got {batch_size}.")
    body = decoder_body(model)
    device = next(body.parameters()).device
    prompts = [tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in conversations]
    ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    n_prefix = _shared_prefix(ids) if len(ids) > 1 else 0
    out = torch.empty(len(conversations), body.config.hidden_size)
    was_training = body.training
    body.eval()
    try:
        with autocast_to(device, autocast_dtype):
            if n_prefix < MIN_SHARED_PREFIX:   # nothing worth caching: whole prompts, left-padded
                for rows, batch in prompt_batches(tokenizer, conversations, batch_size, device):
                    out[rows] = body(**batch).last_hidden_state[:, -1].float().cpu()
                return out
            # transformers 5 names the cache `cache`; earlier releases `past_key_values`
            cache_arg = "cache" if "cache" in inspect.signature(body.forward).parameters else "past_key_values"
            first = body(input_ids=torch.tensor([ids[0][:n_prefix]], device=device), use_cache=True)
            prefix = getattr(first, cache_arg)
            order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                rests = [ids[i][n_prefix:] for i in rows]
                width = max(len(r) for r in rests)
                rest_ids = torch.tensor([r + [tokenizer.pad_token_id] * (width - len(r)) for r in rests], device=device)
                rest_mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rests], device=device)
                cache = copy.deepcopy(prefix)
                cache.batch_repeat_interleave(len(rows))
                mask = torch.cat([torch.ones(len(rows), n_prefix, dtype=rest_mask.dtype, device=device), rest_mask], 1)
                states = body(input_ids=rest_ids, attention_mask=mask, **{cache_arg: cache}).last_hidden_state
                last = rest_mask.sum(dim=1) - 1   # right padding: each row's own last real token
                out[rows] = states[torch.arange(len(rows), device=device), last].float().cpu()
    finally:
        body.train(was_training)
    return out


def decoder_body(model) -> torch.nn.Module:
    """The decoder stack of a causal LM (or of a peft model wrapping one), without its language-model head."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    body = getattr(inner, "model", None)
    if body is None or not hasattr(getattr(body, "config", None), "hidden_size"):
        raise ConfigError(f"{type(inner).__name__} has no decoder body at `.model`: pass a causal LM such as "
                          "the one load_causal_lm() returns.")
    return body


@torch.no_grad()
def logprobs_from_states(model, tokenizer, states: torch.Tensor, labels: Sequence[str] = LABELS) -> torch.Tensor:
    """Log-probability of each label word as the next token, from :func:`last_token_states`.

    The model's language-model head applied to the last hidden state gives the next token's logits, exactly
    what a full forward pass would end with; only the first token of each label is read (the labels must start
    with distinct tokens).
    """
    label_ids = _first_tokens(tokenizer, labels)
    head = model.get_output_embeddings()
    weight = head.weight
    logits = states.to(weight.device, weight.dtype) @ weight.T
    if getattr(head, "bias", None) is not None:
        logits = logits + head.bias
    return logits.float().log_softmax(dim=-1)[:, label_ids].cpu()


def label_logprobs(model, tokenizer, conversations: Sequence[list[dict]], labels: Sequence[str] = LABELS,
                   batch_size: int = 32, autocast_dtype: torch.dtype | None = None) -> torch.Tensor:
    """Log-probability of each label word as the first token of the reply, one row per conversation.

    One forward pass per prompt (:func:`last_token_states`, then the language-model head on the last position
    only): far cheaper than generating, and it measures which sentiment the model prefers whatever it would
    have written around it. Lesson 09 scores every model this way and keeps generation for the format check.
    """
    _first_tokens(tokenizer, labels)   # a bad label list fails before the forward passes
    states = last_token_states(model, tokenizer, conversations, batch_size, autocast_dtype)
    return logprobs_from_states(model, tokenizer, states, labels)


def likelihood_predictions(logprobs: torch.Tensor, labels: Sequence[str] = LABELS) -> list[str]:
    """The label with the highest log-probability in each row of :func:`label_logprobs`."""
    if logprobs.ndim != 2 or logprobs.shape[1] != len(labels):
        raise DataError(f"expected one column per label ({len(labels)}), got shape {tuple(logprobs.shape)}.")
    return [labels[i] for i in logprobs.argmax(dim=1).tolist()]
