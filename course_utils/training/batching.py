"""Batches for the trainer: tokenise every text once, plan length-grouped batches, pad each to a few shapes.

* :func:`encode_texts` tokenises all texts in one fast-tokenizer call, without padding;
* :func:`plan_epoch` decides an epoch's batches as a pure function of ``(seed, epoch)`` (what makes an
  exact resume possible), grouping texts of similar length;
* :func:`host_batch` slices and pads one batch to its longest text rounded up to a multiple
  (:func:`bucket_length`), with the attention mask the model needs; :func:`host_batches` builds the
  next one in a thread while the current step runs;
* :func:`padding_cost` is the table lesson 05 prints: the tokens each padding scheme computes on.

Taught in lesson 05 (fine-tuning BERT), section 8 and the padding table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from course_utils.errors import DataError

__all__ = ["EncodedTexts", "bucket_length", "encode_texts", "host_batch", "host_batches", "padding_cost",
           "plan_epoch", "to_device", "wants_4d_mask"]

_MEGABATCH = 50  # batches sorted by length together; larger = less padding, less randomness


@dataclass
class EncodedTexts:
    """Token ids of every text, truncated but not padded per batch yet (``ids`` is pad-filled to the right)."""

    ids: np.ndarray  # (n, max_length) int32
    lengths: np.ndarray  # (n,) real tokens per text
    labels: np.ndarray | None  # (n,) class indices, or None for unlabelled texts

    def __len__(self) -> int:
        return len(self.lengths)


def encode_texts(tokenizer, texts: Sequence[str], max_length: int, labels: np.ndarray | None = None) -> EncodedTexts:
    """Tokenise all texts in one fast-tokenizer call; batches later only slice this array."""
    enc = tokenizer(list(texts), truncation=True, max_length=max_length, padding=False,
                    return_attention_mask=False, return_token_type_ids=False)
    rows = enc["input_ids"]
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = np.full((len(rows), max_length), pad, dtype=np.int32)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
    return EncodedTexts(ids, lengths, labels)


def bucket_length(longest: int, multiple: int, max_length: int) -> int:
    """Pad a batch to its longest text rounded up to ``multiple``: few shapes, little waste."""
    return int(min(max_length, -(-int(longest) // multiple) * multiple))


def plan_epoch(lengths: np.ndarray, batch_size: int, seed: int, epoch: int, group_by_length: bool = True) -> list[np.ndarray]:
    """The batches (index arrays) of one epoch, a pure function of ``(seed, epoch)``.

    That purity is what lets a resumed run skip exactly the batches already done. With
    ``group_by_length`` the shuffled indices are sorted by length within chunks of ``_MEGABATCH``
    batches and the resulting batches shuffled again: batches hold texts of similar length, in random
    order, with random neighbours. The batch holding the longest text goes first, so that running out
    of memory happens in the first step rather than an hour into the run.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    if group_by_length:
        mega = batch_size * _MEGABATCH
        order = np.concatenate([
            chunk[np.argsort(-lengths[chunk], kind="stable")]
            for chunk in (order[i : i + mega] for i in range(0, len(order), mega))
        ])
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if group_by_length:
        batches = [batches[i] for i in rng.permutation(len(batches))]
        longest = max(range(len(batches)), key=lambda j: lengths[batches[j]].max())
        batches.insert(0, batches.pop(longest))
    return batches


def wants_4d_mask(model, prebuilt_mask: bool) -> bool:
    """Whether ``host_batch`` should build the mask itself (``prebuilt_mask`` on an SDPA encoder)."""
    config = model.config
    return (prebuilt_mask and getattr(config, "_attn_implementation", None) == "sdpa"
            and not getattr(config, "is_decoder", False))


def host_batch(data: EncodedTexts, idx: np.ndarray, pad_multiple: int, mask_4d: bool, pin: bool):
    """Slice and pad one batch on the host (pinned when ``pin``): ``([ids, mask, labels?], length)``.

    Whether the batch has padding is known here, from the lengths, so the model is never asked:
    with ``mask_4d`` an unpadded batch gets no mask and a padded one a boolean
    ``(batch, 1, 1, length)`` mask that transformers passes to SDPA as it is. Given the usual 2D
    mask, transformers calls ``padding_mask.all()`` in every forward to decide whether it can drop
    the mask: a host-device sync per step.
    """
    lengths = data.lengths[idx]
    length = bucket_length(lengths.max(), pad_multiple, data.ids.shape[1])
    ids = torch.from_numpy(data.ids[idx, :length].astype(np.int64))
    keep = np.arange(length) < lengths[:, None]
    if not mask_4d:
        mask = torch.from_numpy(keep.astype(np.int64))
    elif lengths.min() < length:
        mask = torch.from_numpy(keep[:, None, None, :])
    else:
        mask = None
    tensors = [ids, mask] + ([torch.from_numpy(data.labels[idx])] if data.labels is not None else [])
    if pin:
        tensors = [t.pin_memory() if t is not None else None for t in tensors]
    return tensors, length


def to_device(tensors: list, device: torch.device) -> list:
    """Copy a host batch to the device; from pinned memory the copy does not block the host."""
    blocking = device.type != "cuda"
    return [t.to(device, non_blocking=not blocking) if t is not None else None for t in tensors]


def host_batches(make: Callable[[np.ndarray], tuple], batches: list[np.ndarray], start: int,
                 prefetch: bool) -> Iterator[tuple]:
    """``make(batch)`` for the batches from ``start`` on, in order; with ``prefetch`` the next one is
    built in a thread while the current step runs, so slicing and pinning overlap the device's work."""
    if not prefetch:
        for i in range(start, len(batches)):
            yield make(batches[i])
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch") as pool:
        future = pool.submit(make, batches[start]) if start < len(batches) else None
        for i in range(start, len(batches)):
            current = future.result()
            future = pool.submit(make, batches[i + 1]) if i + 1 < len(batches) else None
            yield current


def padding_cost(lengths: Sequence[int], batch_size: int, fixed_lengths: Sequence[int] = (256, 64),
                 pad_multiple: int = 8, seed: int = 0) -> pd.DataFrame:
    """How many tokens the model computes on per epoch under each padding scheme (lesson 05's table).

    The real tokens are the same in every scheme; everything above them is padding, which costs the
    same FLOPs as text. Texts longer than a fixed length would be truncated, so the comparison is
    only fair when ``lengths`` were measured with truncation at ``max(fixed_lengths)``.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.size == 0:
        raise DataError("padding_cost needs at least one length.")
    real = int(lengths.sum())
    rows = [(f"pad every text to {n}", len(lengths) * n) for n in fixed_lengths]
    random_batches = plan_epoch(lengths, batch_size, seed, 0, group_by_length=False)
    rows.append(("dynamic: pad to longest in batch", sum(len(b) * int(lengths[b].max()) for b in random_batches)))
    grouped = plan_epoch(lengths, batch_size, seed, 0, group_by_length=True)
    longest = int(lengths.max())
    rows.append((f"dynamic + length-grouped, multiple of {pad_multiple}",
                 sum(len(b) * bucket_length(lengths[b].max(), pad_multiple, longest + pad_multiple) for b in grouped)))
    frame = pd.DataFrame(rows, columns=["scheme", "tokens_computed"])
    frame["padding_share"] = 1.0 - real / frame["tokens_computed"]
    frame["cost_vs_real_tokens"] = frame["tokens_computed"] / real
    return frame
