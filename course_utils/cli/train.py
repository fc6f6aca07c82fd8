"""Fine-tune a BERT classifier on tweets, IMDB or your own labelled file, and report test metrics.

The data is split into train/validation/test (stratified); the model is trained with
course_utils.trainer (validation picks the best epoch) and scored once on the test split.
Writes OUTPUT_DIR/metrics.json and the model (OUTPUT_DIR/model, loadable with
course_utils.models.load_pretrained or transformers' from_pretrained).

examples:
  course-utils train --data tweets --binary --max-train-samples 768 --epochs 2 --output-dir runs/tweets
  course-utils train --data tweets --binary --max-train-samples 768 --lora-r 8 --output-dir runs/tweets-lora   (adapters only)
  course-utils train --data reviews.csv --text-column review --label-column stars --output-dir runs/reviews
  course-utils train --data imdb --model bert-base-uncased --max-length 256 --output-dir runs/imdb   (online)
  torchrun --nproc-per-node 2 -m course_utils.cli train --data tweets --output-dir runs/ddp           (several GPUs)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from course_utils.errors import ConfigError
from course_utils.trainer import (
    DEFAULT_LEARNING_RATE,
    DEFAULT_LORA_LEARNING_RATE,
    EVAL_METRICS,
    PRECISIONS,
    TrainConfig,
)

_DEFAULTS = TrainConfig()


def _one_line_errors(parser: argparse.ArgumentParser) -> None:
    """argparse prints the whole usage block before an error; the course promises one line."""

    def error(message: str):
        parser.exit(2, f"{parser.prog}: error: {message} (see {parser.prog} --help)\n")

    parser.error = error


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keep the examples' line breaks and show every default that is a value."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and "default" not in text:
            text += " (default: %(default)s)"
        return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _one_line_errors(parser)
    parser.formatter_class = _HelpFormatter
    data = parser.add_argument_group("data")
    data.add_argument("--data", required=True, metavar="tweets|imdb|PATH",
                      help="'tweets' (offline corpus), 'imdb' (needs the Hub) or a .csv/.tsv/.json/.jsonl file")
    data.add_argument("--binary", action="store_true", help="tweets: keep negative and positive only")
    data.add_argument("--text-column", default="text", help="column holding the texts in your file")
    data.add_argument("--label-column", default="label", help="column holding the labels in your file")
    data.add_argument("--labels", nargs="+", metavar="NAME",
                      help="the classes in output order (default: the sorted labels of the training split)")
    data.add_argument("--fold-label-case", action="store_true",
                      help="merge labels that differ only by case (Positive/positive); otherwise they are an error")
    data.add_argument("--max-train-samples", type=int, metavar="N", help="stratified subset of the training split")
    data.add_argument("--max-eval-samples", type=int, metavar="N", help="stratified subset of validation and of test")
    data.add_argument("--val-size", type=float, default=0.1, help="share of the data for validation")
    data.add_argument("--test-size", type=float, default=0.1, help="share of the data for test")

    train = parser.add_argument_group("training")
    train.add_argument("--model", default=None, metavar="NAME_OR_PATH",
                       help="Hub id or local folder (default: the offline MiniLM BERT)")
    train.add_argument("--output-dir", required=True, metavar="DIR", help="where metrics.json, checkpoints and the model go")
    train.add_argument("--epochs", type=int, default=_DEFAULTS.epochs, help="passes over the training split")
    train.add_argument("--batch-size", type=int, default=_DEFAULTS.batch_size, help="texts per step and device")
    train.add_argument("--eval-batch-size", type=int, default=_DEFAULTS.eval_batch_size, help="texts per evaluation batch")
    train.add_argument("--lr", "--learning-rate", dest="learning_rate", type=float, default=None,
                       help=f"peak learning rate (default: {DEFAULT_LEARNING_RATE:g}, "
                            f"or {DEFAULT_LORA_LEARNING_RATE:g} with --lora-r, "
                            "for the small offline model; 2e-5 to 5e-5 suits bert-base)")
    train.add_argument("--max-length", type=int, default=_DEFAULTS.max_length, help="tokens per text (longer are truncated)")
    train.add_argument("--warmup-ratio", type=float, default=_DEFAULTS.warmup_ratio,
                       help="share of steps with rising learning rate")
    train.add_argument("--weight-decay", type=float, default=_DEFAULTS.weight_decay, help="AdamW weight decay")
    train.add_argument("--gradient-accumulation", type=int, default=_DEFAULTS.gradient_accumulation,
                       help="batches per optimizer step")
    train.add_argument("--max-grad-norm", type=float, default=_DEFAULTS.max_grad_norm, help="gradient clipping; 0 turns it off")
    train.add_argument("--precision", choices=PRECISIONS, default=_DEFAULTS.precision,
                       help="auto: bf16 autocast on GPUs that support it, else fp32")
    train.add_argument("--seed", type=int, default=_DEFAULTS.seed, help="seeds the split, the initialisation and the data order")
    train.add_argument("--patience", type=int, default=None, help="stop after N epochs without a better validation score")
    train.add_argument("--eval-metric", choices=EVAL_METRICS, default=_DEFAULTS.eval_metric, help="what picks the best epoch")
    train.add_argument("--log-every", type=int, default=_DEFAULTS.log_every, help="steps between loss read-backs")
    train.add_argument("--save-every", type=int, default=None, help="checkpoint every N steps (there is one per epoch anyway)")
    train.add_argument("--pad-multiple", type=int, default=None, help="pad batches to a multiple of N tokens "
                                                                     "(default: 64 on GPU, 8 on CPU)")
    train.add_argument("--lora-r", type=int, default=_DEFAULTS.lora_r, metavar="R",
                       help="train LoRA adapters of rank R (peft) and the head instead of every weight; "
                            "OUTPUT_DIR/model then holds the adapter only; 0: off (full fine-tuning)")
    train.add_argument("--lora-alpha", type=float, default=None,
                       help="LoRA scaling: updates are scaled by alpha / r (default: 2 x r)")
    train.add_argument("--compile", action="store_true", help="torch.compile the model (GPU; one compile per shape)")
    train.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best available)")
    train.add_argument("--resume", action="store_true", help="continue from OUTPUT_DIR/checkpoint")
    train.add_argument("--no-progress", action="store_true", help="no progress bars")


def _config(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        model_name=args.model, max_length=args.max_length, batch_size=args.batch_size,
        eval_batch_size=args.eval_batch_size, learning_rate=args.learning_rate, epochs=args.epochs,
        warmup_ratio=args.warmup_ratio, weight_decay=args.weight_decay,
        gradient_accumulation=args.gradient_accumulation,
        max_grad_norm=args.max_grad_norm if args.max_grad_norm else None, precision=args.precision,
        seed=args.seed, early_stopping_patience=args.patience, eval_metric=args.eval_metric,
        output_dir=args.output_dir, save_every=args.save_every, labels=args.labels, log_every=args.log_every,
        fold_label_case=args.fold_label_case, lora_r=args.lora_r, lora_alpha=args.lora_alpha,
        pad_multiple=args.pad_multiple, compile=args.compile, device=args.device, progress=not args.no_progress,
    )


def _load_splits(args: argparse.Namespace):
    from course_utils.data import load_course_dataset, split_dataset, stratified_sample

    for name in ("max_train_samples", "max_eval_samples"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be a positive integer, got {value}.")
    custom = args.data not in ("tweets", "imdb")
    if not custom and (args.text_column, args.label_column) != ("text", "label"):
        raise ConfigError("--text-column/--label-column apply to your own files, not to 'tweets' or 'imdb'.")
    columns = ({"text_column": args.text_column, "label_column": args.label_column,
                "fold_label_case": args.fold_label_case} if custom else {})
    frame = load_course_dataset(args.data, binary=args.binary, **columns)
    splits = split_dataset(frame, val_size=args.val_size, test_size=args.test_size, seed=args.seed)
    return (stratified_sample(splits.train, args.max_train_samples, seed=args.seed),
            stratified_sample(splits.validation, args.max_eval_samples, seed=args.seed),
            stratified_sample(splits.test, args.max_eval_samples, seed=args.seed))


def _leave_process_group() -> None:
    """Under torchrun / accelerate launch the trainer joined a process group; leave it cleanly."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _check_output_dir(value: str) -> None:
    """Refuse an output folder that cannot work before an epoch of training is spent finding out."""
    if not str(value).strip():
        raise ConfigError("--output-dir is empty; give a folder name such as runs/my-model "
                          "(the current directory is not used, so nothing there is overwritten).")
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--output-dir {value} is a file, not a folder; choose another path.")
    parent = next((p for p in [path, *path.parents] if p.exists()), Path("."))
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"--output-dir {value}: {parent} is not writable; choose a folder you can write to.")


def run(args: argparse.Namespace) -> int:
    from course_utils.device import describe_device
    from course_utils.files import atomic_write
    from course_utils.trainer import MODEL_DIR, Trainer

    config = _config(args)  # bad numbers fail here, before any data or model is loaded
    _check_output_dir(args.output_dir)
    train, validation, test = _load_splits(args)
    trainer = Trainer(config)
    try:
        history = trainer.fit(train, validation, resume=args.resume)
        test_metrics = trainer.evaluate(test)
    finally:
        _leave_process_group()
    if not trainer.is_main:
        return 0
    out = Path(config.output_dir)
    report = {
        "accuracy": test_metrics["accuracy"],
        "macro_f1": test_metrics["macro_f1"],
        "test": test_metrics,
        "best_epoch": history.best_epoch,
        "train_seconds": history.train_seconds,
        "samples_per_second": history.samples_per_second,
        "tokens_per_second": history.tokens_per_second,
        "device": describe_device(trainer.device),
        "precision": "bf16" if trainer.bf16 else "fp32",
        "world_size": trainer.world_size,
        "sizes": {"train": len(train), "validation": len(validation), "test": len(test)},
        "data": args.data,
        "config": config.to_dict(),
        "history": history.to_dict(),
        "model_dir": str(out / MODEL_DIR),
    }
    atomic_write(out / "metrics.json", json.dumps(report, indent=2), fsync=True)
    per_class = ", ".join(f"{name} F1 {row['f1']:.3f}" for name, row in test_metrics["per_class"].items())
    print(f"test accuracy {test_metrics['accuracy']:.4f} | macro F1 {test_metrics['macro_f1']:.4f} ({per_class}) "
          f"on {len(test)} texts")
    print(f"trained on {len(train)} texts in {history.train_seconds:.1f} s "
          f"({history.samples_per_second:.1f} samples/s, {report['precision']}, {report['device']['name']})")
    print(f"wrote {out / 'metrics.json'} and {out / MODEL_DIR}", file=sys.stdout)
    if config.lora_r:
        print(f"{out / MODEL_DIR} holds the LoRA adapter and head only: load it with "
              "peft.AutoPeftModelForSequenceClassification.from_pretrained (it finds the base model), "
              "or merge_and_unload() it into the base model for serving.")
    return 0
