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
  probabilities in one forward pass per example: what the model knows, apart from its format.

Taught in lesson 09 (instruction tuning a small LLM).
"""

from __future__ import annotations

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
    "chat_messages",
    "encode_example",
    "fast_bf16",
    "few_shot_messages",
    "generate_answers",
    "label_logprobs",
    "likelihood_predictions",
    "pad_batch",
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


@torch.no_grad()
def label_logprobs(model, tokenizer, conversations: Sequence[list[dict]], labels: Sequence[str] = LABELS,
                   batch_size: int = 32, autocast_dtype: torch.dtype | None = None) -> torch.Tensor:
    """Log-probability of each label word as the first token of the reply, one row per conversation.

    One forward pass per prompt (the assistant's turn opened, left padding, logits of the last
    position only): far cheaper than generating, and it measures which sentiment the model prefers
    whatever it would have written around it. Lesson 09 scores every model this way and keeps
    generation for the format check. Prompts are batched by length so little compute goes to padding;
    rows come back in the order given. ``autocast_dtype`` (``torch.bfloat16``) runs the pass in lower
    precision where the hardware has it.
    """
    if not conversations:
        raise DataError("label_logprobs: no conversations.")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be positive, got {batch_size}.")
    label_ids = _first_tokens(tokenizer, labels)
    prompts = [tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in conversations]
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    device = next(model.parameters()).device
    rows = torch.empty(len(prompts), len(labels))
    was_training, side = model.training, tokenizer.padding_side
    model.eval()
    tokenizer.padding_side = "left"
    try:
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch = tokenizer([prompts[i] for i in chunk], return_tensors="pt", padding=True,
                              add_special_tokens=False).to(device)
            with torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
                logits = model(**batch, logits_to_keep=1).logits[:, -1].float()
            rows[chunk] = logits.log_softmax(dim=-1)[:, label_ids].cpu()
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return rows


def likelihood_predictions(logprobs: torch.Tensor, labels: Sequence[str] = LABELS) -> list[str]:
    """The label with the highest log-probability in each row of :func:`label_logprobs`."""
    if logprobs.ndim != 2 or logprobs.shape[1] != len(labels):
        raise DataError(f"expected one column per label ({len(labels)}), got shape {tuple(logprobs.shape)}.")
    return [labels[i] for i in logprobs.argmax(dim=1).tolist()]
