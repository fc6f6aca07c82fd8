"""Parameter-efficient fine-tuning with ``peft``: the plumbing of lesson 08.

Lesson 08 compares three ways to adapt the offline BERT to the tweet task: training the head only
(frozen encoder), LoRA adapters on the attention projections (the ``peft`` library), and full
fine-tuning. The notebook shows the parts that matter (the ``LoraConfig``, the loop's lines, what is
trainable); this module holds what every run repeats: the two tweet tasks, one fresh model per run
from one loaded base, a plain training loop with its time and memory, predictions, and sizes on disk.

Memory is measured two ways, and the lesson says which it prints: the process's resident set size
(``psutil``, sampled every 20 ms during training, above its value when the run began) and
the exact bytes of what training adds to the weights (gradients and AdamW's two moments, counted from
the tensors themselves). The first includes activations and the allocator's noise; the second is the
part that LoRA shrinks.

Taught in lesson 08 (parameter-efficient fine-tuning).
"""

from __future__ import annotations

import copy
import ctypes
import gc
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from course_utils.comparison import predicts_one_class
from course_utils.data import (
    Splits,
    load_course_dataset,
    split_dataset,
    stratified_sample,
)
from course_utils.device import fused_adamw_supported
from course_utils.errors import ConfigError, DataError
from course_utils.labs.bert_lab import label_ids
from course_utils.labs.corpus import tweet_topics
from course_utils.training.batching import plan_epoch

__all__ = [
    "LORA_TARGETS",
    "STRATEGIES",
    "TASKS",
    "RunRecord",
    "fit_and_score",
    "folder_bytes",
    "lora_delta",
    "make_model",
    "parameter_counts",
    "pooled_features",
    "predict_labels",
    "predict_logits",
    "relative_update",
    "train_classifier",
    "tweet_task",
]

#: The attention projections of a BERT layer that lesson 08 adapts (module names in ``transformers``).
LORA_TARGETS = ("query", "key", "value")
STRATEGIES = ("head", "lora", "full")
#: Task name -> label names, in index order. "airlines" is the second task of lesson 08: is the tweet
#: about an airline (the corpus's largest topic, found by :func:`course_utils.labs.corpus.tweet_topics`)?
TASKS = {"sentiment": ["negative", "positive"], "airlines": ["other", "airlines"]}


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def tweet_task(task: str = "sentiment", n_train: int = 384, n_eval: int = 256, seed: int = 42,
               frame: pd.DataFrame | None = None) -> Splits:
    """Train / validation / test frames (``text``, ``label``) of one of :data:`TASKS`.

    Both tasks start from the cleaned negative/positive tweets and the same stratified split
    (``split_dataset(seed=42)``); "airlines" relabels each tweet by its topic, found on the tweet's
    *raw* text (column ``raw_text`` when the frame has one): cleaning replaces the @handles
    (``@united``) that mark most airline tweets, and the topic rules would miss them. Each split is
    then shrunk to ``n_train`` / ``n_eval`` rows with the class shares kept. ``frame`` replaces the
    corpus (tests pass a small one).
    """
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; use one of {list(TASKS)}.")
    if n_train < 2 or n_eval < 2:
        raise ConfigError(f"n_train and n_eval must be at least 2, got {n_train} and {n_eval}.")
    df = load_course_dataset("tweets", binary=True, keep_raw_text=True) if frame is None else frame
    if not {"text", "label"} <= set(df.columns):
        raise DataError(f"tweet_task: the frame needs 'text' and 'label' columns, has {list(df.columns)}.")
    if task == "airlines":
        topic_text = df["raw_text"] if "raw_text" in df.columns else df["text"]
        df = df.assign(label=np.where(tweet_topics(topic_text) == "airlines", "airlines", "other"))
    df = df[["text", "label"]].copy()
    splits = split_dataset(df, seed=seed)
    sizes = {"train": n_train, "validation": n_eval, "test": n_eval}
    frames = {}
    for name, part in splits.items():
        small = stratified_sample(part, sizes[name], seed=seed)
        small.attrs["split"] = name
        frames[name] = small
    return Splits(**frames)


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


def make_model(base, strategy: str, *, r: int = 8, alpha: float | None = None, seed: int = 0,
               targets: tuple[str, ...] = LORA_TARGETS, rslora: bool = False):
    """A fresh copy of ``base`` (a loaded ``BertForSequenceClassification``) ready for one strategy.

    * ``"head"``: the encoder is frozen; only the classifier trains.
    * ``"lora"``: ``peft.get_peft_model`` with rank ``r`` on ``targets``; ``alpha`` defaults to
      ``2 * r`` (scaling ``alpha / r`` = 2 at every rank); ``rslora=True`` is peft's ``use_rslora``
      (scaling ``alpha / sqrt(r)``, lesson 08's rank sweep). The classifier is new, so peft trains and
      saves it too (``task_type=SEQ_CLS`` puts it in ``modules_to_save``).
    * ``"full"``: every weight trains.

    The classifier is re-initialised from ``seed``, so three seeds are three different runs while
    ``base`` itself is never modified.
    """
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy {strategy!r}; use one of {list(STRATEGIES)}.")
    model = copy.deepcopy(base)
    torch.manual_seed(seed)
    model.classifier.reset_parameters()
    if strategy == "full":
        for p in model.parameters():
            p.requires_grad = True
        return model
    if strategy == "head":
        for name, p in model.named_parameters():
            p.requires_grad = name.startswith("classifier.")
        return model
    if r < 1:
        raise ConfigError(f"LoRA rank r must be >= 1, got {r}.")
    from peft import LoraConfig, TaskType, get_peft_model

    config = LoraConfig(task_type=TaskType.SEQ_CLS, r=r, lora_alpha=2 * r if alpha is None else alpha,
                        lora_dropout=0.0, target_modules=list(targets), use_rslora=rslora)
    return get_peft_model(model, config)


def parameter_counts(model) -> tuple[int, int]:
    """(trainable, total) parameters; for a peft model the total includes the adapter's own weights."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def lora_delta(model, layer: int = 0, module: str = "query", adapter: str = "default") -> tuple[torch.Tensor, float]:
    """The update LoRA adds to one weight matrix: (``B @ A``, the scaling ``alpha / r``).

    The layer's effective weight is ``W + scaling * (B @ A)``; its rank is at most ``r``.
    """
    try:
        lin = getattr(model.base_model.model.bert.encoder.layer[layer].attention.self, module)
        a, b = lin.lora_A[adapter].weight, lin.lora_B[adapter].weight
    except (AttributeError, KeyError, IndexError):
        raise ConfigError(f"no LoRA adapter {adapter!r} on layer {layer}'s {module!r}: build the model with "
                          "make_model(base, 'lora', ...) first.") from None
    return (b @ a).detach(), float(lin.scaling[adapter])


def relative_update(model, adapter: str = "default") -> float:
    """How far LoRA has moved the model: the mean, over every adapted matrix, of
    ``||scaling * (B @ A)|| / ||W||`` (Frobenius norms).

    Lesson 08 measures it after a few identical steps at ranks 8 and 32, with the default scaling and
    with rsLoRA: under Adam the default update grows about like ``sqrt(r)``, the rank-stabilised one
    does not. Zero before training (``B`` starts at zero).
    """
    sizes = []
    for module in model.modules():
        lora_a, lora_b = getattr(module, "lora_A", None), getattr(module, "lora_B", None)
        if lora_a is None or adapter not in lora_a:
            continue
        with torch.no_grad():
            delta = module.scaling[adapter] * (lora_b[adapter].weight @ lora_a[adapter].weight)
            sizes.append(float(delta.norm() / module.base_layer.weight.norm()))
    if not sizes:
        raise ConfigError(f"the model has no LoRA adapter {adapter!r}: build it with make_model(base, 'lora', ...) first.")
    return float(np.mean(sizes))


# --------------------------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------------------------


def _release_freed_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc), so RSS starts low."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): RSS just starts a little higher
        pass


class _PeakRSS:
    """Highest resident set size of this process while the block runs, sampled in a thread (psutil)."""

    def __init__(self, every: float = 0.02):
        import psutil

        self._process, self._every = psutil.Process(), every
        self.start = self.peak = 0

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            self._stop.wait(self._every)

    def __enter__(self):
        self.start = self.peak = self._process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)
        return False


def _bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if torch.is_tensor(t))


# --------------------------------------------------------------------------------------------
# Training and prediction
# --------------------------------------------------------------------------------------------


@dataclass
class RunRecord:
    """What one training run cost: time, memory (two measures) and the loss per step."""

    seconds: float  # wall-clock time of the loop
    cpu_seconds: float  # CPU time of this process in the loop: what a busy, shared machine inflates least
    peak_rss_mb: float  # psutil: highest resident set size during training, minus the RSS at its start
    training_state_mb: float  # gradients + AdamW moments, counted from the tensors (weights excluded)
    weights_mb: float  # every weight the forward pass reads, trainable or frozen
    step_losses: list[float] = field(default_factory=list)
    val_scores: list[float] = field(default_factory=list)  # validation macro-F1 after each epoch (early stopping)
    best_epoch: int | None = None  # the epoch whose weights were kept (1-based); None without validation
    val_predictions: np.ndarray | None = None  # validation predictions of the kept weights (no second pass)
    features_cached: bool = False  # head only: the frozen encoder ran once, the head trained on its output


def _encode(tokenizer, texts, max_length: int, device: torch.device | None = None):
    """One batch, padded to its longest text (dynamic padding), on ``device``."""
    batch = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return batch.to(device) if device is not None else batch


def train_classifier(model, tokenizer, frame: pd.DataFrame, labels: list[str], *, epochs: int = 2,
                     lr: float = 1e-3, batch_size: int = 16, max_length: int = 64, seed: int = 0,
                     val_frame: pd.DataFrame | None = None, patience: int = 1, cache_features: bool = True) -> RunRecord:
    """AdamW with linear decay (10% warm-up) over the parameters with ``requires_grad``; in place.

    Each epoch's batches come from :func:`course_utils.training.batching.plan_epoch` (texts of similar
    length together, batches in a seeded random order), padded to their own longest text.

    The same loop serves every strategy, so a difference in time or memory comes from what is
    trainable, not from two implementations. With ``val_frame`` it also applies lesson 08's budget
    rule, early stopping: the validation macro-F1 is measured after every epoch, training stops once it
    has not improved for ``patience`` epochs, and the trainable weights of the best epoch are put back.
    ``epochs`` is then the most a run may take (the schedule decays over it), and every strategy
    stops when *its* validation score stops rising, not after a count that suits one of them.

    One saving only a frozen encoder allows: when nothing but the classifier head trains (strategy
    ``"head"``), the encoder's pooled output of each text never changes, so it is computed once (evaluation
    mode, inside the timed block) and every epoch trains the head on those cached features: the same
    batches, dropout, loss, optimizer and schedule, without running BERT again (``cache_features=False``
    runs it every step anyway, as LoRA and full fine-tuning must). ``RunRecord.features_cached`` says which
    way a run went.
    """
    from sklearn.metrics import f1_score
    from transformers import get_linear_schedule_with_warmup

    if epochs < 1 or batch_size < 1 or not lr > 0 or patience < 1:
        raise ConfigError(f"epochs, batch_size and patience must be >= 1 and lr > 0, got {epochs}, {batch_size}, "
                          f"{patience}, {lr}.")
    if len(frame) == 0 or (val_frame is not None and len(val_frame) == 0):
        raise DataError("train_classifier: the training or validation frame is empty.")
    y = torch.as_tensor(label_ids(frame["label"], labels))
    val_y = label_ids(val_frame["label"], labels) if val_frame is not None else None
    texts = frame["text"].astype(str).tolist()
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("every parameter is frozen: nothing would train.")
    device = params[0].device
    # the fused kernel: the same update, 1.5x faster per sample for full fine-tuning on the CPU
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01, **({"fused": True} if fused_adamw_supported(device) else {}))
    steps = epochs * math.ceil(len(texts) / batch_size)
    scheduler = get_linear_schedule_with_warmup(optimizer, max(1, steps // 10), steps)
    # batches of similar length in random order, planned as the course trainer plans them (lesson 05, section 3):
    # each pads to its own longest text, and grouping them by length leaves less padding to compute
    lengths = np.array([len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]])
    losses: list[float] = []
    val_scores: list[float] = []
    best: list[torch.Tensor] | None = None
    best_epoch, best_predicted = None, None
    _release_freed_memory()
    model.train()
    head_only = cache_features and _trains_head_only(model, params)
    start, cpu_start = time.perf_counter(), time.process_time()
    with _PeakRSS() as rss:
        if head_only:   # the frozen encoder once per text; then every epoch trains the head on its output
            features = pooled_features(model, tokenizer, texts, max_length)
            val_features = pooled_features(model, tokenizer, val_frame["text"], max_length) if val_frame is not None else None
        for epoch in range(epochs):
            for planned in plan_epoch(lengths, batch_size, seed, epoch):
                idx = planned.tolist()
                if head_only:
                    logits = model.classifier(model.dropout(features[idx]))
                    loss = torch.nn.functional.cross_entropy(logits, y[idx].to(device))
                else:
                    batch = _encode(tokenizer, [texts[j] for j in idx], max_length, device)
                    loss = model(**batch, labels=y[idx].to(device)).loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=False)  # keep the gradients' memory countable below
                losses.append(float(loss.detach()))
            if val_frame is None:
                continue
            if head_only:
                model.eval()
                with torch.no_grad():
                    predicted = model.classifier(val_features).argmax(dim=1).cpu().numpy()
            else:
                predicted = predict_labels(model, tokenizer, val_frame["text"], max_length)
            model.train()
            val_scores.append(float(f1_score(val_y, predicted, average="macro", labels=list(range(len(labels))))))
            if val_scores[-1] >= max(val_scores):   # a tie keeps the later epoch
                best, best_epoch, best_predicted = [p.detach().clone() for p in params], len(val_scores), predicted
            elif len(val_scores) - 1 - int(np.argmax(val_scores)) >= patience:
                break
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    state = _bytes(p.grad for p in params) + _bytes(v for s in optimizer.state.values() for v in s.values())
    weights = _bytes(model.parameters())
    model.eval()
    for p in params:
        p.grad = None
    if best is not None:
        with torch.no_grad():
            for p, kept in zip(params, best):
                p.copy_(kept)
    return RunRecord(seconds, cpu_seconds, (rss.peak - rss.start) / 2**20, state / 2**20, weights / 2**20, losses,
                     val_scores, best_epoch, best_predicted, head_only)


def _trains_head_only(model, params: list[torch.Tensor]) -> bool:
    """Whether only a BERT-style classifier head (``model.classifier`` after ``model.dropout``) trains."""
    if not (hasattr(model, "classifier") and hasattr(model, "dropout") and hasattr(model, "bert")):
        return False   # a peft wrapper or another architecture: the whole forward pass every step
    head = {id(p) for p in model.classifier.parameters()}
    return all(id(p) in head for p in params)


def fit_and_score(base, tokenizer, task: Splits, labels: list[str], *, strategy: str, lr: float, seed: int,
                  r: int = 8, alpha: float | None = None, rslora: bool = False, max_epochs: int = 4,
                  patience: int = 1, batch_size: int = 8, max_length: int = 64):
    """One run of lesson 08's comparison: a fresh model for ``strategy``, trained with early stopping on
    ``task.validation``, and its validation record. Returns ``(model, row)``.

    ``row`` holds what the lesson tabulates: trainable parameters, time (wall and CPU), memory (peak
    RSS and gradients + AdamW state), the epoch kept, the validation macro-F1, whether the run failed
    (:func:`course_utils.comparison.predicts_one_class`) and the predictions as bytes (to count distinct
    prediction sets across seeds).
    """
    from sklearn.metrics import f1_score

    torch.manual_seed(seed)
    model = make_model(base, strategy, r=r, alpha=alpha, rslora=rslora, seed=seed)
    run = train_classifier(model, tokenizer, task.train, labels, epochs=max_epochs, lr=lr, batch_size=batch_size,
                           max_length=max_length, seed=seed, val_frame=task.validation, patience=patience)
    predicted = run.val_predictions   # the kept epoch's, measured during training: eval mode is deterministic
    truth = label_ids(task.validation["label"], labels)
    row = {"seed": seed, "lr": lr, "trainable": parameter_counts(model)[0], "wall s": run.seconds,
           "CPU s": run.cpu_seconds, "peak RSS MB": run.peak_rss_mb, "grads+AdamW MB": run.training_state_mb,
           "epoch kept": run.best_epoch, "epochs run": len(run.val_scores),
           "val macro-F1": float(f1_score(truth, predicted, average="macro", labels=list(range(len(labels))))),
           "failed": predicts_one_class(predicted), "predictions": predicted.tobytes()}
    return model, row


def _in_length_order(texts, batch_size: int, run, where: str) -> torch.Tensor:
    """``run(batch_of_texts)`` on batches of the texts taken shortest first; the rows back in the given order.

    A batch then pads to texts of about its own length (16% less time on lesson 08's validation tweets than
    batching in the given order).
    """
    texts = [str(t) for t in texts]
    if not texts:
        raise DataError(f"{where}: no texts given.")
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    ordered = torch.cat([run([texts[j] for j in order[i : i + batch_size]]) for i in range(0, len(order), batch_size)])
    rows = torch.empty_like(ordered)
    rows[torch.tensor(order, device=ordered.device)] = ordered
    return rows


@torch.no_grad()
def predict_logits(model, tokenizer, texts, max_length: int = 64, batch_size: int = 64) -> torch.Tensor:
    """Logits of ``model`` (eval mode, no dropout) on ``texts``, in order."""
    model.eval()
    device = next(model.parameters()).device
    return _in_length_order(texts, batch_size,
                            lambda chunk: model(**_encode(tokenizer, chunk, max_length, device)).logits.float().cpu(),
                            "predict")


@torch.no_grad()
def pooled_features(model, tokenizer, texts, max_length: int = 64, batch_size: int = 64) -> torch.Tensor:
    """The pooled output that a BERT classifier's head reads (eval mode, no dropout), one row per text, in order.

    With a frozen encoder these features never change, so :func:`train_classifier` computes them once for a
    head-only run and trains the head on them.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        return _in_length_order(texts, batch_size,
                                lambda chunk: model.bert(**_encode(tokenizer, chunk, max_length, device)).pooler_output,
                                "pooled_features")
    finally:
        model.train(was_training)


def predict_labels(model, tokenizer, texts, max_length: int = 64, batch_size: int = 64) -> np.ndarray:
    """Predicted class indices on ``texts``."""
    return predict_logits(model, tokenizer, texts, max_length, batch_size).argmax(dim=1).numpy()


def folder_bytes(path: str | Path) -> int:
    """Total size of the files under ``path``: what must be shipped to serve a saved model or adapter."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: nothing saved there (call save_pretrained first).")
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
