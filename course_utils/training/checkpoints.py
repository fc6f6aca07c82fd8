"""What the trainer keeps on disk and how a run resumes from it.

``output_dir`` holds three folders: ``checkpoint/`` (weights plus optimizer, scheduler, RNG states and
the position inside the epoch), ``best/`` (the best epoch's weights) and ``model/`` (the final model,
loadable with ``load_pretrained``). Each is written under a temporary name, fsynced and swapped in by
renames (:func:`course_utils.files.atomic_directory`), so a kill at any moment leaves one complete
version for ``resume`` to load. Under LoRA each holds the adapters and head only.

A checkpoint records the run's *fingerprint* (:func:`run_fingerprint`: the training data's hash and
every setting that decides the trajectory); resuming with another one is refused, naming what changed.

Taught in lesson 05 (fine-tuning BERT): ``fit(..., resume=True)`` after a crash ends with the same
weights as a run that never stopped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from course_utils.errors import ConfigError, TrainingError
from course_utils.files import atomic_directory, atomic_write, complete_folder
from course_utils.models import quiet_transformers
from course_utils.training.config import TrainConfig
from course_utils.training.lora import is_peft

__all__ = ["BEST_DIR", "CHECKPOINT_DIR", "MODEL_DIR", "STATE_FILE", "apply_weights", "check_fingerprint",
           "complete_folder", "load_weights", "read_state", "restore_rng", "rng_state", "run_fingerprint",
           "weights_state", "write_checkpoint", "write_folder_atomically", "write_text_atomically"]

CHECKPOINT_DIR = "checkpoint"
BEST_DIR = "best"
MODEL_DIR = "model"
STATE_FILE = "trainer_state.pt"

# The settings that decide a run's trajectory: resuming with any of them changed is refused.
_TRAJECTORY = ("model_name", "max_length", "batch_size", "learning_rate", "epochs", "warmup_ratio", "weight_decay",
               "gradient_accumulation", "seed", "group_by_length", "max_grad_norm", "precision", "lora_r", "lora_alpha")
# What a checkpoint written before LoRA existed lacks: it was a full fine-tuning run.
_DEFAULTS_OF_OLDER_CHECKPOINTS = {"lora_r": 0, "lora_alpha": None, "lora_targets": None}


def write_folder_atomically(final: Path, write: Callable[[Path], None]) -> Path:
    """Build a folder with ``write(tmp)``, fsync it and swap it in: :func:`course_utils.files.atomic_directory`.

    At every instant one complete version exists: ``final``, or (killed between the two renames)
    ``final.old``, which :func:`complete_folder` falls back on. Used for the checkpoint, ``best/`` and
    ``model/``: a kill while one is written never leaves a half-written folder that resume would load.
    """
    return atomic_directory(final, write, fsync=True, recoverable=True)


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` through a temporary file, fsynced and renamed: :func:`course_utils.files.atomic_write`."""
    atomic_write(path, text, fsync=True)


def _data_hash(texts: Sequence[str], labels: np.ndarray) -> str:
    h = hashlib.sha1()
    for t in texts:
        h.update(t.encode("utf-8", "surrogatepass") + b"\x1f")
    h.update(labels.tobytes())
    return h.hexdigest()


def run_fingerprint(config: TrainConfig, texts: Sequence[str], label_ids: np.ndarray, labels: Sequence[str],
                    world_size: int) -> dict:
    """Everything a resumed run must share with the run that wrote the checkpoint."""
    return {
        "data": _data_hash(texts, label_ids), "labels": list(labels), "world_size": world_size,
        **{k: getattr(config, k) for k in _TRAJECTORY},
        "lora_targets": list(config.lora_targets) if config.lora_targets is not None else None,
    }


def check_fingerprint(saved: dict, current: dict, folder: Path) -> None:
    """Refuse to resume from ``folder`` when its fingerprint differs, naming every changed setting."""
    saved = {**_DEFAULTS_OF_OLDER_CHECKPOINTS, **saved}
    changed = [k for k in current if saved.get(k) != current[k]]
    if changed:
        detail = ", ".join(f"{k}: {saved.get(k)!r} -> {current[k]!r}" for k in changed if k != "data")
        detail += ", training data differs" if "data" in changed else ""
        raise ConfigError(
            f"cannot resume from {folder}: it was made with different settings ({detail.strip(', ')}). "
            "Use the same data and settings, or start afresh (resume=False or another output_dir)."
        )


def rng_state() -> dict:
    """This process's random number generators (dropout differs per rank, so each rank keeps its own)."""
    return {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def restore_rng(rng: dict) -> None:
    torch.set_rng_state(rng["cpu"])
    if rng["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


def weights_state(model) -> dict:
    """What best/ and the checkpoint hold: the adapters and head under LoRA, else every weight (on the CPU)."""
    if is_peft(model):
        from peft import get_peft_model_state_dict

        state = get_peft_model_state_dict(model)
    else:
        state = model.state_dict()
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


def apply_weights(model, state: dict, where: Path | str) -> None:
    """Load ``state`` (from :func:`weights_state` or :func:`load_weights`) into ``model``, strictly."""
    if is_peft(model):
        from peft import get_peft_model_state_dict, set_peft_model_state_dict

        missing = sorted(set(get_peft_model_state_dict(model)) - set(state))
        unexpected = [] if missing else set_peft_model_state_dict(model, state).unexpected_keys
    else:
        missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise TrainingError(f"{where} does not fit this model (missing {missing[:3]}, unexpected {unexpected[:3]}); "
                            "was it saved from another architecture?")


def load_weights(folder: Path) -> dict:
    """The weights a folder's ``*.safetensors`` files hold, or an error that says to start afresh."""
    from safetensors.torch import load_file

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise TrainingError(f"{folder}: no .safetensors weights; the checkpoint is incomplete, start afresh.")
    state = {}
    for f in files:
        try:
            state.update(load_file(f))
        except Exception as exc:  # safetensors raises its own error type on a truncated file
            raise TrainingError(f"{f} cannot be read ({type(exc).__name__}: {str(exc)[:80]}); "
                                "delete that folder and start afresh.") from None
    return state


def write_checkpoint(final: Path, model, state: dict) -> Path:
    """The model's weights (``save_pretrained``) and the trainer's ``state`` beside them, swapped in atomically."""
    def write(tmp: Path) -> None:
        with quiet_transformers():
            model.save_pretrained(tmp)
        torch.save(state, tmp / STATE_FILE)

    return write_folder_atomically(final, write)


def read_state(final: Path) -> tuple[Path, dict] | None:
    """The complete checkpoint folder under ``final`` and its trainer state, or None when there is none."""
    folder = complete_folder(final)
    if folder is None or not (folder / STATE_FILE).is_file():
        return None
    try:
        return folder, torch.load(folder / STATE_FILE, map_location="cpu", weights_only=True)
    except Exception as exc:  # a damaged file from outside the trainer: say which, do not guess
        raise TrainingError(f"{folder / STATE_FILE} cannot be read ({type(exc).__name__}); "
                            "delete the checkpoint folder and start afresh.") from None
