"""The course's trainer: fine-tune a BERT-style classifier with a loop short enough to read and as fast as
the hardware allows. ``from course_utils.trainer import TrainConfig, Trainer`` (or from this package).

Why it is fast (``benchmarks/bench_trainer.py`` measures each choice against a naive loop and HF ``Trainer``):

* texts are tokenised **once**, up front, without padding; a batch is padded only to its longest text,
  rounded up to a multiple of ``pad_multiple``, so there are few distinct shapes (what ``torch.compile``
  and the GPU's kernels want) and little compute spent on pad tokens;
* batches are **grouped by length** (shuffle, sort within chunks of 50 batches, shuffle the batches), so
  a batch of tweets is not padded to the one long tweet that happens to share it;
* on GPUs with bf16 tensor cores: bf16 **autocast** (no loss scaler: bf16 has fp32's exponent range),
  SDPA attention, pinned host memory with ``non_blocking`` copies;
* **fused AdamW** (on CUDA, and on CPU with torch >= 2.4): one kernel for the whole update;
* the step loop reads nothing back from the device between log steps: losses stay on the device and
  are read every ``log_every`` steps (``tests/test_trainer_sync.py`` counts every ``.item()``,
  ``bool(tensor)`` and ``.tolist()`` during ``fit`` to hold this).

The GPU path, by reading only: **no GPU has run this version**, so none of the following is measured.
Kept, because each removes a known stall at no cost on the CPU (where the tests show identical
losses and weights with each option on or off):

* ``prebuilt_mask`` (default on, SDPA models): given the usual 2D mask, transformers calls
  ``padding_mask.all()`` in every forward to decide whether SDPA can run without a mask: a host sync
  per step. The trainer knows from the lengths whether a batch is padded; an unpadded batch gets no
  mask (so SDPA may pick its flash kernel), a padded one a ``(batch, 1, 1, length)`` boolean mask that
  transformers passes on untouched;
* ``prefetch`` (default: on CUDA): the next batch is sliced, padded and pinned in a thread while the
  current step runs; the copy to the GPU is ``non_blocking`` from pinned memory;
* ``torch.compile`` wraps the DDP model (not the reverse), as PyTorch advises for DDP.

Not built, for want of a GPU to show they pay: sequence packing or unpadded (varlen / nested-tensor)
attention, CUDA graphs / ``mode="reduce-overhead"`` per length bucket, and memory-sized batches.
On the CPU padding is already down to about 1.15x the real tokens with length grouping (lesson 05),
so these would be judged by GPU measurements (``benchmarks/bench_trainer.py``), not added on faith.

Why it is correct:

* the data order of an epoch is a pure function of ``(seed, epoch)``, and a checkpoint records the step
  inside the epoch, so ``fit(..., resume=True)`` after a crash ends with the same weights and metrics as
  a run that never stopped (bit for bit on CPU);
* a NaN/inf loss stops the run naming the step and the likely cause; running out of memory names the
  batch size to try instead;
* the same code runs on one device or under ``torchrun`` / ``accelerate launch`` (DDP): every rank sees
  a disjoint share of each length-grouped batch, only rank 0 writes files;
* checkpoint, ``best/`` and ``model/`` are written under a temporary name, fsynced and swapped in by
  renames, so a kill at any moment leaves one complete version for ``resume`` to load.

LoRA (``TrainConfig(lora_r=8)``, ``course-utils train --lora-r 8``) wraps the model with peft adapters:
the base weights freeze, the adapters and the classification head train, and every checkpoint,
``best/`` and ``model/`` hold only those (``adapter_model.safetensors``). Resuming rebuilds the same
base model from ``model_name`` and loads the adapters into it, so the base must not change between the
two runs. A model that already carries peft adapters can also be passed as ``model=``.

``accelerate`` stays a dependency without this module importing it: ``transformers.Trainer`` (lesson 05's
second route and the benchmark's baseline) requires it, and ``accelerate launch`` is one of the two
launchers above. The loop itself is plain PyTorch on purpose: it is the thing lesson 05 teaches.

The modules, one concern each: ``trainer`` (the :class:`Trainer` and its loop: read this first),
``config`` (:class:`TrainConfig` and its checks), ``batching`` (tokenising once, planning and padding
batches, lesson 05's padding table), ``checkpoints`` (what ``output_dir`` holds, the run's fingerprint,
resuming), ``distributed`` (the ranks, a no-op at world size 1), ``lora`` (peft adapters),
``failures`` (the messages for a diverged loss and for running out of memory) and ``history`` (what
``fit`` and ``predict`` return).

Taught in lesson 05 (fine-tuning BERT), as what the hand-written loop becomes when made fast.
"""

from course_utils.errors import TrainingError
from course_utils.training.batching import EncodedTexts, bucket_length, encode_texts, padding_cost, plan_epoch
from course_utils.training.checkpoints import (
    BEST_DIR,
    CHECKPOINT_DIR,
    MODEL_DIR,
    complete_folder,
    write_folder_atomically,
    write_text_atomically,
)
from course_utils.training.config import (
    DEFAULT_LEARNING_RATE,
    DEFAULT_LORA_LEARNING_RATE,
    EVAL_METRICS,
    PRECISIONS,
    TrainConfig,
)
from course_utils.training.distributed import Ranks
from course_utils.training.history import History, Predictions
from course_utils.training.trainer import Trainer

__all__ = [
    "BEST_DIR",
    "CHECKPOINT_DIR",
    "DEFAULT_LEARNING_RATE",
    "DEFAULT_LORA_LEARNING_RATE",
    "EVAL_METRICS",
    "MODEL_DIR",
    "PRECISIONS",
    "EncodedTexts",
    "History",
    "Predictions",
    "Ranks",
    "TrainConfig",
    "Trainer",
    "TrainingError",
    "bucket_length",
    "complete_folder",
    "encode_texts",
    "padding_cost",
    "plan_epoch",
    "write_folder_atomically",
    "write_text_atomically",
]
