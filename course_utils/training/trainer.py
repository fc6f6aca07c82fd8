"""The :class:`Trainer`: the loop lesson 05 writes by hand, made fast, in one class you can read in one sitting.

``fit`` tokenises once, plans length-grouped batches (:mod:`.batching`), and runs the step loop:
forward under bf16 autocast where the GPU has it, backward, clip, fused AdamW, a linear warm-up
schedule; losses stay on the device until a log step reads them back. After each epoch it scores the
validation set, keeps the best weights and checkpoints (:mod:`.checkpoints`), so ``fit(...,
resume=True)`` continues bit for bit after a crash. Why each choice is there, and what was measured,
is in the package's docstring (:mod:`course_utils.training`).

Taught in lesson 05 (fine-tuning BERT), as what the hand-written loop becomes when made fast.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from course_utils.data import label_ids, validate_labelled_frame
from course_utils.device import bf16_supported, configure_threads, fused_adamw_supported, get_device
from course_utils.errors import ConfigError, DataError, TrainingError
from course_utils.models import quiet_transformers
from course_utils.training import checkpoints
from course_utils.training.batching import (
    EncodedTexts,
    encode_texts,
    host_batch,
    host_batches,
    plan_epoch,
    to_device,
    wants_4d_mask,
)
from course_utils.training.checkpoints import BEST_DIR, CHECKPOINT_DIR, MODEL_DIR
from course_utils.training.config import EVAL_METRICS, TrainConfig
from course_utils.training.distributed import Ranks
from course_utils.training.failures import divergence_message, raise_if_out_of_memory
from course_utils.training.history import History, Predictions
from course_utils.training.lora import add_lora

__all__ = ["Trainer"]


class Trainer:
    """Fine-tune ``model`` (or, when none is given, the config's ``model_name``) on ``text``/``label`` frames.

    ``callbacks`` are called as ``callback(trainer)`` after every optimizer step (``trainer.global_step``,
    ``trainer.epoch``); raising from one stops the run, which is how the tests simulate a crash.
    """

    def __init__(self, config: TrainConfig | None = None, model=None, tokenizer=None,
                 callbacks: Sequence[Callable[[Trainer], None]] = ()):
        self.config = config if config is not None else TrainConfig()
        if not isinstance(self.config, TrainConfig):
            raise ConfigError(f"config must be a TrainConfig, got {type(self.config).__name__}.")
        if (model is None) != (tokenizer is None):
            raise ConfigError("pass both model and tokenizer, or neither (then config.model_name is loaded).")
        self.model, self.tokenizer = model, tokenizer
        self.callbacks = list(callbacks)
        device = get_device(self.config.device)
        self.ranks = Ranks.join(device.type == "cuda")
        if device.type == "cuda" and self.world_size > 1:
            device = torch.device("cuda", self.ranks.local_rank)
        self.device = device
        if device.type == "cpu" and self.world_size == 1:
            # One place decides CPU threads (course_utils.device): on a busy 2-core machine two threads
            # ran a BERT step ten times slower than one. torchrun sets OMP_NUM_THREADS per process itself.
            self.threads = configure_threads()
        if self.config.precision == "bf16" and device.type == "cuda" and not bf16_supported(device):
            raise ConfigError("precision='bf16' needs an Ampere or newer GPU; this one lacks bf16, use precision='fp32'.")
        self.bf16 = self.config.precision == "bf16" or (self.config.precision == "auto" and bf16_supported(device))
        self.pad_multiple = self.config.pad_multiple or (64 if device.type == "cuda" or self.config.compile else 8)
        self.labels: tuple[str, ...] | None = self.config.labels
        if self.labels is None and model is not None and getattr(model.config, "id2label", None):
            names = [model.config.id2label[i] for i in range(model.config.num_labels)]
            if not all(n.startswith("LABEL_") for n in names):
                self.labels = tuple(names)
        self.history = History()
        self.global_step = 0
        self.epoch = 0
        self.shapes_seen: set[tuple[int, int]] = set()
        if model is not None:
            self.model.to(self.device)

    # -- small helpers --------------------------------------------------------------------------------

    @property
    def rank(self) -> int:
        return self.ranks.rank

    @property
    def world_size(self) -> int:
        return self.ranks.world_size

    @property
    def is_main(self) -> bool:
        return self.ranks.is_main

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def _out(self, *parts: str) -> Path:
        return Path(self.config.output_dir, *parts)

    def _host_batch(self, data: EncodedTexts, idx: np.ndarray):
        """One batch sliced and padded on the host: :func:`course_utils.training.batching.host_batch`."""
        mask_4d = wants_4d_mask(self.model, self.config.prebuilt_mask)
        return host_batch(data, idx, self.pad_multiple, mask_4d, pin=self.device.type == "cuda")

    def _batch(self, data: EncodedTexts, idx: np.ndarray):
        tensors, length = self._host_batch(data, idx)
        return to_device(tensors, self.device), length

    @property
    def _prefetch(self) -> bool:
        return self.config.prefetch if self.config.prefetch is not None else self.device.type == "cuda"

    def _setup_model(self, labels: Sequence[str]) -> None:
        if self.model is None:
            from course_utils.models import load_pretrained

            self.tokenizer, self.model = load_pretrained(self.config.model_name, labels=labels)
            self.model.to(self.device)
        if self.model.config.num_labels != len(labels):
            raise ConfigError(
                f"the model has {self.model.config.num_labels} outputs but there are {len(labels)} labels "
                f"{list(labels)}; build it with num_labels={len(labels)}."
            )
        self.model.config.id2label = dict(enumerate(labels))
        self.model.config.label2id = {name: i for i, name in enumerate(labels)}
        positions = getattr(self.model.config, "max_position_embeddings", None)
        if positions is not None and self.config.max_length > positions:
            raise ConfigError(f"max_length={self.config.max_length} exceeds the model's {positions} positions.")
        if self.config.lora_r and not getattr(self, "_lora_added", False):
            cfg = self.config
            self.model = add_lora(self.model, cfg.lora_r, cfg.lora_alpha, cfg.lora_targets)
            self._lora_added = True

    def _encode_frame(self, df, where: str, require_labels: bool = True) -> EncodedTexts:
        frame = validate_labelled_frame(df, label_column="label" if require_labels else None, source=where,
                                        header_offset=None, fold_label_case=self.config.fold_label_case, min_classes=1)
        ids = label_ids(frame["label"], self.labels, where) if require_labels else None
        return encode_texts(self.tokenizer, frame["text"].tolist(), self.config.max_length, ids)

    def _optimizer(self):
        """AdamW without weight decay on biases and LayerNorm weights, with the fused kernel.

        One fused kernel updates all parameters instead of a dozen tensor operations per parameter;
        on CUDA that removes launch overhead, on CPU (torch >= 2.4) it made the optimizer step of the
        offline MiniLM several times faster than the default per-tensor loop in our measurements.
        """
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            if p.requires_grad:
                (no_decay if p.ndim < 2 or "LayerNorm" in name or "norm" in name.lower() else decay).append(p)
        groups = [{"params": decay, "weight_decay": self.config.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        fused = fused_adamw_supported(self.device)
        return torch.optim.AdamW(groups, lr=self.config.learning_rate, **({"fused": True} if fused else {}))

    # -- training ---------------------------------------------------------------------------------------

    def fit(self, train: pd.DataFrame, validation: pd.DataFrame | None = None, resume: bool = False) -> History:
        """Train for ``config.epochs`` (or until early stopping); return the :class:`History`.

        ``resume=True`` continues from ``output_dir/checkpoint`` when one exists (and says so when
        none does). The run must have the same data and trajectory-deciding settings.
        """
        from transformers import get_linear_schedule_with_warmup

        from course_utils.seed import set_seed

        cfg = self.config
        if resume and cfg.output_dir is None:
            raise ConfigError("resume=True needs config.output_dir (where the checkpoint lives).")
        if cfg.early_stopping_patience is not None and validation is None:
            raise ConfigError("early_stopping_patience needs a validation set: fit(train, validation).")
        frame = validate_labelled_frame(train, source="train", header_offset=None, fold_label_case=cfg.fold_label_case)
        texts, labels = frame["text"].tolist(), frame["label"]
        self.labels = tuple(self.labels or sorted(labels.unique()))
        set_seed(cfg.seed)
        self._setup_model(self.labels)
        train_data = encode_texts(self.tokenizer, texts, cfg.max_length, label_ids(labels, self.labels, "train"))
        val_data = self._encode_frame(validation, "validation") if validation is not None else None

        model = self.ranks.wrap(self.model, self.device)
        if cfg.compile:  # after DDP, as PyTorch advises: the DDP optimizer then splits graphs at bucket boundaries
            limit = "recompile_limit" if hasattr(torch._dynamo.config, "recompile_limit") else "cache_size_limit"
            setattr(torch._dynamo.config, limit, max(getattr(torch._dynamo.config, limit), 64))
            model = torch.compile(model, backend=cfg.compile_backend, dynamic=False)
        self._train_model = model
        self._trainable = [p for p in self.model.parameters() if p.requires_grad]

        global_bs = cfg.batch_size * self.world_size
        batches_per_epoch = len(self.ranks.share(plan_epoch(train_data.lengths, global_bs, cfg.seed, 0, cfg.group_by_length)))
        if batches_per_epoch == 0:
            raise DataError(f"train: {len(train_data)} examples are too few for {self.world_size} processes.")
        steps_per_epoch = math.ceil(batches_per_epoch / cfg.gradient_accumulation)
        total_steps = steps_per_epoch * cfg.epochs
        self._steps_per_epoch = steps_per_epoch
        optimizer = self._optimizer()
        scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total_steps), total_steps)
        fingerprint = checkpoints.run_fingerprint(cfg, texts, train_data.labels, self.labels, self.world_size)
        self.history, self.global_step, start_epoch, skip = History(), 0, 0, 0
        self._best_state, self._bad_epochs = None, 0
        if resume:
            restored = self._load_checkpoint(optimizer, scheduler, fingerprint)
            if restored is not None:
                start_epoch, skip = restored

        for epoch in range(start_epoch, cfg.epochs):
            self.epoch = epoch
            self._train_epoch(epoch, train_data, optimizer, scheduler, skip, fingerprint)
            skip = 0
            stop = self._end_epoch(epoch, val_data)
            self._save_checkpoint(optimizer, scheduler, epoch + 1, 0, fingerprint, finished=stop or epoch + 1 == cfg.epochs)
            if stop:
                break
        if cfg.load_best_at_end and self._best_state is not None:
            checkpoints.apply_weights(self.model, self._best_state, "the best epoch's weights")
        if cfg.output_dir is not None and self.is_main:
            self.save(self._out(MODEL_DIR))
        self.ranks.barrier()
        return self.history

    def _train_epoch(self, epoch, data, optimizer, scheduler, skip, fingerprint) -> None:
        cfg, model = self.config, self._train_model
        batches = self.ranks.share(plan_epoch(data.lengths, cfg.batch_size * self.world_size, cfg.seed, epoch,
                                                cfg.group_by_length))
        model.train()
        pending: list[torch.Tensor] = []
        n_samples = n_tokens = 0
        bar = tqdm(total=self._steps_per_epoch, initial=skip // cfg.gradient_accumulation, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   disable=not (cfg.progress and self.is_main), leave=False, dynamic_ncols=True)
        start = time.perf_counter()
        step_loss = None
        make = functools.partial(self._host_batch, data)
        with contextlib.closing(host_batches(make, batches, skip, self._prefetch)) as batches_on_host:
            for i in range(skip, len(batches)):
                group_start = i - i % cfg.gradient_accumulation
                n_micro = min(cfg.gradient_accumulation, len(batches) - group_start)
                last_micro = i == group_start + n_micro - 1
                sync = self.ranks.no_sync(model, last_micro)
                length = None
                try:
                    host, length = next(batches_on_host)
                    ids, mask, labels = to_device(host, self.device)
                    self.shapes_seen.add((len(batches[i]), length))
                    with sync:
                        with self._autocast():
                            logits = model(input_ids=ids, attention_mask=mask).logits
                        loss = F.cross_entropy(logits.float(), labels)
                        (loss / n_micro).backward()
                except (torch.cuda.OutOfMemoryError, RuntimeError) as exc:
                    raise_if_out_of_memory(exc, "training", self.device, cfg.batch_size, cfg.gradient_accumulation, length)
                    raise
                step_loss = loss.detach() / n_micro if step_loss is None else step_loss + loss.detach() / n_micro
                n_samples += len(batches[i]) * self.world_size
                n_tokens += int(data.lengths[batches[i]].sum()) * self.world_size
                if not last_micro:
                    continue
                if cfg.max_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(self._trainable, cfg.max_grad_norm)
                self.history.learning_rate.append(scheduler.get_last_lr()[0])
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                self.global_step += 1
                self.history.step.append(self.global_step)
                pending.append(step_loss)
                step_loss = None
                bar.update(1)
                if self.global_step % cfg.log_every == 0:
                    self._flush(pending)
                    rate = n_samples / max(time.perf_counter() - start, 1e-9)
                    bar.set_postfix(loss=f"{self.history.loss[-1]:.4f}", samples_s=f"{rate:.0f}")
                if cfg.save_every and self.global_step % cfg.save_every == 0 and i + 1 < len(batches):
                    self._flush(pending)
                    self._save_checkpoint(optimizer, scheduler, epoch, i + 1, fingerprint)
                for callback in self.callbacks:
                    callback(self)
        self._flush(pending)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)  # one wait per epoch, so the timing is the GPU's, not the queue's
        bar.close()
        seconds = time.perf_counter() - start
        self._epoch_stats = {"seconds": seconds, "samples": n_samples, "tokens": n_tokens}

    def _flush(self, pending: list[torch.Tensor]) -> None:
        """Read the queued step losses back (the loop's only host-device sync) and stop on NaN/inf."""
        if not pending:
            return
        values = self.ranks.mean(torch.stack(pending).float()).cpu().tolist()  # every rank decides alike
        first_step = self.history.step[len(self.history.loss)]
        pending.clear()
        for offset, value in enumerate(values):
            if not math.isfinite(value):
                step = first_step + offset
                lr = self.history.learning_rate[step - 1]
                raise TrainingError(divergence_message(value, step, self.epoch + 1, lr, self.bf16))
        self.history.loss.extend(values)

    def _end_epoch(self, epoch: int, val_data: EncodedTexts | None) -> bool:
        """Record the epoch, keep the best weights, and return True when early stopping says stop."""
        cfg, stats = self.config, self._epoch_stats
        first = epoch * self._steps_per_epoch  # steps per epoch are constant, so this holds after a resume too
        done_in_epoch = [loss for step, loss in zip(self.history.step, self.history.loss) if step > first]
        row = {"epoch": epoch + 1, "train_loss": float(np.mean(done_in_epoch)) if done_in_epoch else float("nan")}
        if val_data is not None:
            metrics = self._evaluate_encoded(val_data)
            row.update({f"val_{k}": metrics[k] for k in EVAL_METRICS})
        row.update(seconds=stats["seconds"], samples_per_second=stats["samples"] / stats["seconds"],
                   tokens_per_second=stats["tokens"] / stats["seconds"])
        h = self.history
        h.epochs.append(row)
        h.train_seconds += stats["seconds"]
        h.samples_per_second = sum(e["samples_per_second"] * e["seconds"] for e in h.epochs) / h.train_seconds
        h.tokens_per_second = sum(e["tokens_per_second"] * e["seconds"] for e in h.epochs) / h.train_seconds
        if cfg.progress and self.is_main:
            metric = f"val_{cfg.eval_metric}"
            val = f" | val loss {row['val_loss']:.4f} | val {cfg.eval_metric} {row[metric]:.4f}" if val_data else ""
            tqdm.write(f"epoch {epoch + 1}/{cfg.epochs}: train loss {row['train_loss']:.4f}{val} | "
                       f"{row['samples_per_second']:.0f} samples/s | {row['seconds']:.1f} s")
        if val_data is None:
            return False
        value = row[f"val_{cfg.eval_metric}"]
        better = h.best_metric is None or (value < h.best_metric if cfg.eval_metric == "loss" else value > h.best_metric)
        if better:
            h.best_metric, h.best_epoch, self._bad_epochs = value, epoch + 1, 0
            self._best_state = checkpoints.weights_state(self.model)
            if cfg.output_dir is not None and self.is_main:
                with quiet_transformers():
                    checkpoints.write_folder_atomically(self._out(BEST_DIR), self.model.save_pretrained)
        else:
            self._bad_epochs += 1
        if cfg.early_stopping_patience is not None and self._bad_epochs >= cfg.early_stopping_patience:
            h.stopped_early = True
            if cfg.progress and self.is_main:
                tqdm.write(f"early stopping: no better val {cfg.eval_metric} for {self._bad_epochs} epoch(s); "
                           f"best was epoch {h.best_epoch}.")
            return True
        return False

    # -- evaluation and prediction ------------------------------------------------------------------------

    @torch.inference_mode()
    def _logits(self, data: EncodedTexts) -> np.ndarray:
        """Logits in the input order. Texts are sorted by length so each batch pads little; under DDP
        every rank scores a share and the shares are gathered, so all ranks return the same array."""
        cfg, n_classes = self.config, len(self.labels)
        order = np.argsort(-data.lengths, kind="stable")  # longest first: a memory error shows at once
        batches = [order[i : i + cfg.eval_batch_size] for i in range(0, len(order), cfg.eval_batch_size)]
        mine = batches[self.rank :: self.world_size]
        was_training = self.model.training
        self.model.eval()
        outputs = []
        for idx in mine:
            length = None
            try:
                (ids, mask, *_), length = self._batch(data, idx)
                with self._autocast():
                    outputs.append(self.model(input_ids=ids, attention_mask=mask).logits.float())
            except (torch.cuda.OutOfMemoryError, RuntimeError) as exc:
                raise_if_out_of_memory(exc, "evaluation", self.device, cfg.eval_batch_size, cfg.gradient_accumulation, length)
                raise
        self.model.train(was_training)
        logits = torch.cat(outputs).cpu().numpy() if outputs else np.zeros((0, n_classes), np.float32)
        index = np.concatenate(mine) if mine else np.zeros(0, np.int64)
        if self.world_size > 1:
            shares = self.ranks.gather((index, logits))
            index = np.concatenate([s[0] for s in shares])
            logits = np.concatenate([s[1] for s in shares])
        out = np.empty((len(data), n_classes), np.float32)
        out[index] = logits
        return out

    def _evaluate_encoded(self, data: EncodedTexts) -> dict:
        from course_utils.metrics import classification_metrics

        logits = self._logits(data)
        metrics = classification_metrics(data.labels, logits.argmax(axis=1), self.labels)
        metrics["loss"] = float(F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(data.labels)))
        return metrics

    def _require_model(self) -> None:
        if self.model is None or self.labels is None:
            raise ConfigError("no trained model yet: call fit() first, or pass model=, tokenizer= and config.labels.")

    def evaluate(self, dataset: pd.DataFrame) -> dict:
        """Accuracy, macro/per-class precision, recall and F1, confusion matrix and loss on a labelled frame."""
        self._require_model()
        return self._evaluate_encoded(self._encode_frame(dataset, "evaluate"))

    def predict(self, texts: Sequence[str] | str | pd.DataFrame) -> Predictions:
        """Label names and class probabilities for raw texts (a string, a list, or a frame's ``text`` column).

        A DataFrame is read by its ``text`` column: iterating a frame yields its column *names*, which
        once made ``predict(df)`` silently predict the word "text".
        """
        self._require_model()
        if texts is None:
            raise DataError("predict: got None; pass a string, a list of strings or a DataFrame with a 'text' column.")
        if isinstance(texts, pd.DataFrame):
            if "text" not in texts.columns:
                raise DataError(f"predict: the DataFrame has no 'text' column (columns: {list(map(str, texts.columns))}); "
                                "pass df['your_column'] instead.")
            texts = texts["text"]
        texts = [texts] if isinstance(texts, str) else list(texts)
        if not texts:
            return Predictions([], np.zeros((0, len(self.labels)), dtype=np.float32), tuple(self.labels))
        data = self._encode_frame(pd.DataFrame({"text": texts}), "predict", require_labels=False)
        probs = torch.from_numpy(self._logits(data)).softmax(dim=-1).numpy()
        return Predictions([self.labels[i] for i in probs.argmax(axis=1)], probs, tuple(self.labels))

    # -- saving and resuming ------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model (safetensors), tokenizer and this config; ``load_pretrained(path)`` reads it back.

        Under LoRA only the adapters and head are written: load them with
        ``peft.AutoPeftModelForSequenceClassification.from_pretrained(path)``.
        """
        self._require_model()
        def write(folder: Path) -> None:
            with quiet_transformers():
                self.model.save_pretrained(folder)
                self.tokenizer.save_pretrained(folder)
            (folder / "training_config.json").write_text(json.dumps(self.config.to_dict(), indent=2))

        return checkpoints.write_folder_atomically(Path(path), write)

    def _save_checkpoint(self, optimizer, scheduler, epoch: int, batch_in_epoch: int, fingerprint: dict,
                         finished: bool = False) -> None:
        """Weights as safetensors; optimizer, scheduler, every rank's RNG and the position in the epoch beside them."""
        if self.config.output_dir is None:
            return
        rngs = self.ranks.gather(checkpoints.rng_state())
        if self.is_main:
            checkpoints.write_checkpoint(self._out(CHECKPOINT_DIR), self.model, {
                "format": 1, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "epoch": epoch, "batch_in_epoch": batch_in_epoch, "global_step": self.global_step,
                "history": self.history.to_dict(), "bad_epochs": self._bad_epochs, "rng": rngs,
                "fingerprint": fingerprint, "finished": finished,
            })
        self.ranks.barrier()

    def _load_checkpoint(self, optimizer, scheduler, fingerprint: dict) -> tuple[int, int] | None:
        """Restore everything ``_save_checkpoint`` wrote; return (epoch, batch within it) to continue from."""
        found = checkpoints.read_state(self._out(CHECKPOINT_DIR))
        if found is None:
            if self.is_main:  # printed even without progress output: the user asked to resume and cannot
                print(f"resume: no checkpoint in {self._out(CHECKPOINT_DIR)}; starting from scratch.")
            return None
        folder, state = found
        checkpoints.check_fingerprint(state["fingerprint"], fingerprint, folder)
        checkpoints.apply_weights(self.model, checkpoints.load_weights(folder), folder)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        self.history = History.from_dict(state["history"])
        self.global_step, self._bad_epochs = state["global_step"], state["bad_epochs"]
        best = checkpoints.complete_folder(self._out(BEST_DIR))
        if self.history.best_epoch is not None and best is not None:
            self._best_state = checkpoints.load_weights(best)
        checkpoints.restore_rng(state["rng"][self.rank])
        if self.config.progress and self.is_main:
            where = "finished run" if state["finished"] else f"epoch {state['epoch'] + 1}, batch {state['batch_in_epoch']}"
            print(f"resume: continuing from step {self.global_step} ({where}) in {folder}.")
        if state["finished"]:
            return self.config.epochs, 0
        return state["epoch"], state["batch_in_epoch"]
