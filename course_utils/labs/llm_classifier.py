"""A decoder LLM used as a classifier: a linear head on the hidden state of the prompt's last token.

Lesson 09 trains SmolLM2 to *write* the label word. The other way to use a generative model for a labelled
task (as in Raschka's *Build a Large Language Model (From Scratch)*, chapter 6) drops the language-model head
and puts a small classification head on the hidden state of the last token: in a causal model that is the
only position that has attended to the whole prompt. The lesson shows both, with cost and score side by side:

* :func:`course_utils.labs.instruct.last_token_states` -- that hidden state for each prompt, from a frozen
  model in one forward pass (the features of the cheap "head only" route, which a CPU affords);
* :class:`LastTokenClassifier` -- the model body plus a trainable head, for the "LoRA + head" route
  (trained in lesson 09's full profile);
* :func:`train_last_token_classifier` / :func:`predict_last_token` -- its training loop (AdamW, warm-up and
  linear decay, clipped gradients, cross-entropy on the head's logits) and its predictions.

Taught in lesson 09 (instruction tuning a small LLM), section 11.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from course_utils.data import balanced_batches
from course_utils.errors import ConfigError, DataError
from course_utils.labs.instruct import autocast_to, decoder_body, prompt_batches

__all__ = ["LastTokenClassifier", "predict_last_token", "train_last_token_classifier"]


class LastTokenClassifier(torch.nn.Module):
    """A causal LM's decoder body with a new linear head on the last token's hidden state.

    The body is shared with ``causal_lm``, not copied: wrap the LM with ``peft.get_peft_model`` first and the
    body carries the LoRA layers, which then train together with the head (``unload()`` on the peft model
    afterwards gives the base model back unchanged). The head is initialised from ``seed``.
    """

    def __init__(self, causal_lm, n_labels: int, seed: int = 0):
        super().__init__()
        if n_labels < 2:
            raise ConfigError(f"a classifier needs at least 2 labels, got {n_labels}.")
        self.body = decoder_body(causal_lm)
        generator = torch.Generator().manual_seed(seed)
        head = torch.nn.Linear(self.body.config.hidden_size, n_labels)
        with torch.no_grad():
            head.weight.normal_(0.0, 0.02, generator=generator)
            head.bias.zero_()
        self.head = head.to(next(self.body.parameters()).device)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self.body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(states[:, -1].float())


def train_last_token_classifier(classifier: LastTokenClassifier, tokenizer, conversations: Sequence[list[dict]],
                                labels: Sequence[int], *, steps: int, batch_size: int = 8, lr: float = 1e-3,
                                head_lr: float | None = None, warmup: int = 0, seed: int = 0,
                                autocast_dtype: torch.dtype | None = None) -> list[float]:
    """Train the parameters of ``classifier`` that require gradients (the head, and LoRA's if the body has them)
    for ``steps`` class-balanced batches in this seed's order; returns the loss per step.

    The same batches (:func:`course_utils.data.balanced_batches`) and schedule as lesson 09's generative
    loop (linear warm-up, linear decay to zero, gradients clipped at 1), so the two routes differ in what
    they predict, not in how they are trained. The head starts from noise and may take a larger rate
    (``head_lr``, default ``lr``).
    """
    from transformers import get_linear_schedule_with_warmup

    if len(conversations) != len(labels) or not len(labels):
        raise DataError(f"{len(conversations)} conversations but {len(labels)} labels: give one label per conversation.")
    if steps < 1 or batch_size < 1 or not lr > 0:
        raise ConfigError(f"steps and batch_size must be >= 1 and lr > 0, got {steps}, {batch_size}, {lr}.")
    head_params = list(classifier.head.parameters())
    body_params = [p for p in classifier.body.parameters() if p.requires_grad]
    groups = [{"params": head_params, "lr": head_lr or lr}] + ([{"params": body_params, "lr": lr}] if body_params else [])
    optimizer = torch.optim.AdamW(groups, weight_decay=0.0)
    schedule = get_linear_schedule_with_warmup(optimizer, warmup, steps)
    batches = balanced_batches(labels, batch_size, steps, seed=seed)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    device = next(classifier.head.parameters()).device
    classifier.train()
    losses = []
    for batch_rows in batches:
        rows = batch_rows.tolist()
        ((order_in_batch, batch),) = prompt_batches(tokenizer, [conversations[r] for r in rows], batch_size, device)
        with autocast_to(device, autocast_dtype):
            logits = classifier(batch["input_ids"], batch["attention_mask"])
        target = y[[rows[i] for i in order_in_batch]].to(device)   # the batch is sorted by length
        loss = torch.nn.functional.cross_entropy(logits.float(), target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(head_params + body_params, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    classifier.eval()
    return losses


@torch.no_grad()
def predict_last_token(classifier: LastTokenClassifier, tokenizer, conversations: Sequence[list[dict]],
                       batch_size: int = 32, autocast_dtype: torch.dtype | None = None) -> np.ndarray:
    """The index of the highest logit of the head for each conversation, in the order given."""
    device = next(classifier.head.parameters()).device
    out = np.empty(len(conversations), dtype=int)
    classifier.eval()
    for rows, batch in prompt_batches(tokenizer, conversations, batch_size, device):
        with autocast_to(device, autocast_dtype):
            out[rows] = classifier(batch["input_ids"], batch["attention_mask"]).argmax(-1).cpu().numpy()
    return out
