"""Fine-tune a BERT classifier on tweets, IMDB or your own labelled file, and report test metrics.

The data is split into train/validation/test (stratified); the model is trained with
course_utils.trainer (validation picks the best epoch) and scored once on the test split.
Writes OUTPUT_DIR/metrics.json and the model (OUTPUT_DIR/model, loadable with
course_utils.models.load_pretrained or transformers' from_pretrained).

examples:
  course-utils train --data tweets --binary --epochs 2 --output-dir runs/tweets
  course-utils train --data reviews.csv --text-column review --label-column stars --output-dir runs/reviews
  course-utils train --data imdb --model bert-base-uncased --max-length 256 --output-dir runs/imdb   (online)
  torchrun --nproc-per-node 2 -m course_utils.cli train --data tweets --output-dir runs/ddp           (several GPUs)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from course_utils.errors import ConfigError
from course_utils.trainer import EVAL_METRICS, PRECISIONS, TrainConfig

_DEFAULTS = TrainConfig()


def _one_line_errors(parser: argparse.ArgumentParser) -> None:
    """argparse prints the whole usage block before an error; the course promises one line."""

    def error(message: str):
        parser.exit(2, f"{parser.prog}: error: {message} (see {parser.prog} --help)\n")

    parser.error = error


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _one_line_errors(parser)
    data = parser.add_argument_group("data")
    data.add_argument("--data", required=True, metavar="tweets|imdb|PATH",
                      help="'tweets' (offline corpus), 'imdb' (needs the Hub) or a .csv/.tsv/.json/.jsonl file")
    data.add_argument("--binary", action="store_true", help="tweets: keep negative and positive only")
    data.add_argument("--text-column", default="text", help="column holding the texts in a file (default: text)")
    data.add_argument("--label-column", default="label", help="column holding the labels in a file (default: label)")
    data.add_argument("--labels", nargs="+", metavar="NAME",
                      help="the classes, in output order (default: the sorted labels of the training split)")
    data.add_argument("--max-train-samples", type=int, metavar="N", help="stratified subset of the training split")
    data.add_argument("--max-eval-samples", type=int, metavar="N", help="stratified subset of validation and test")
    data.add_argument("--val-size", type=float, default=0.1, help="share of the data for validation (default 0.1)")
    data.add_argument("--test-size", type=float, default=0.1, help="share of the data for test (default 0.1)")

    train = parser.add_argument_group("training")
    train.add_argument("--model", default=None, metavar="NAME_OR_PATH",
                       help="Hub id or local folder (default: the offline MiniLM BERT)")
    train.add_argument("--output-dir", required=True, metavar="DIR", help="where metrics.json, checkpoints and the model go")
    train.add_argument("--epochs", type=int, default=_DEFAULTS.epochs)
    train.add_argument("--batch-size", type=int, default=_DEFAULTS.batch_size, help="per device")
    train.add_argument("--eval-batch-size", type=int, default=_DEFAULTS.eval_batch_size)
    train.add_argument("--lr", "--learning-rate", dest="learning_rate", type=float, default=_DEFAULTS.learning_rate,
                       help="default suits the small offline model; use 2e-5 to 5e-5 for bert-base")
    train.add_argument("--max-length", type=int, default=_DEFAULTS.max_length, help="tokens per text")
    train.add_argument("--warmup-ratio", type=float, default=_DEFAULTS.warmup_ratio)
    train.add_argument("--weight-decay", type=float, default=_DEFAULTS.weight_decay)
    train.add_argument("--gradient-accumulation", type=int, default=_DEFAULTS.gradient_accumulation)
    train.add_argument("--max-grad-norm", type=float, default=_DEFAULTS.max_grad_norm, help="0 turns clipping off")
    train.add_argument("--precision", choices=PRECISIONS, default=_DEFAULTS.precision)
    train.add_argument("--seed", type=int, default=_DEFAULTS.seed)
    train.add_argument("--patience", type=int, default=None, help="early stopping after N epochs without improvement")
    train.add_argument("--eval-metric", choices=EVAL_METRICS, default=_DEFAULTS.eval_metric)
    train.add_argument("--log-every", type=int, default=_DEFAULTS.log_every)
    train.add_argument("--save-every", type=int, default=None, help="checkpoint every N steps (plus every epoch)")
    train.add_argument("--pad-multiple", type=int, default=None, help="pad batches to a multiple of N tokens")
    train.add_argument("--compile", action="store_true", help="torch.compile the model (GPU; one compile per shape)")
    train.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
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
    columns = {"text_column": args.text_column, "label_column": args.label_column} if custom else {}
    frame = load_course_dataset(args.data, binary=args.binary, **columns)
    splits = split_dataset(frame, val_size=args.val_size, test_size=args.test_size, seed=args.seed)
    return (stratified_sample(splits.train, args.max_train_samples, seed=args.seed),
            stratified_sample(splits.validation, args.max_eval_samples, seed=args.seed),
            stratified_sample(splits.test, args.max_eval_samples, seed=args.seed))


def run(args: argparse.Namespace) -> int:
    from course_utils.device import describe_device
    from course_utils.trainer import MODEL_DIR, Trainer

    config = _config(args)  # bad numbers fail here, before any data or model is loaded
    train, validation, test = _load_splits(args)
    trainer = Trainer(config)
    history = trainer.fit(train, validation, resume=args.resume)
    test_metrics = trainer.evaluate(test)
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
    (out / "metrics.json").write_text(json.dumps(report, indent=2))
    per_class = ", ".join(f"{name} F1 {row['f1']:.3f}" for name, row in test_metrics["per_class"].items())
    print(f"test accuracy {test_metrics['accuracy']:.4f} | macro F1 {test_metrics['macro_f1']:.4f} ({per_class}) "
          f"on {len(test)} texts")
    print(f"trained on {len(train)} texts in {history.train_seconds:.1f} s "
          f"({history.samples_per_second:.1f} samples/s, {report['precision']}, {report['device']['name']})")
    print(f"wrote {out / 'metrics.json'} and {out / MODEL_DIR}", file=sys.stdout)
    return 0
