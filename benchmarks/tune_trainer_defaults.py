"""Choose the trainer's CPU defaults (batch size, learning rate) on VALIDATION, over several seeds.

The defaults of ``course_utils.trainer.TrainConfig`` are what lesson 05 and ``course-utils train`` use on
a CPU: the offline MiniLM on 768 binary tweets, 2 epochs, max length 64. This script trains each
candidate setting with three seeds and scores it on the validation split only; the test split is not
loaded. It prints one row per setting (mean and spread of validation accuracy and macro-F1, training
seconds), and the TrainConfig docstring quotes its output.

    python benchmarks/tune_trainer_defaults.py            # about 10 minutes on 2 CPU cores
    python benchmarks/tune_trainer_defaults.py --lora-r 8 # the learning rate LoRA gets by default (batch 8)
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from course_utils.data import load_course_dataset, split_dataset, stratified_sample
from course_utils.device import configure_threads
from course_utils.trainer import TrainConfig, Trainer

CANDIDATES = [(8, 5e-5), (8, 1e-4), (16, 2e-4), (32, 4e-4)]
#: With --lora-r: the default batch, learning rates a new adapter and head need (full fine-tuning's 1e-4 barely moves them).
LORA_CANDIDATES = [(8, 5e-4), (8, 1e-3), (8, 2e-3), (8, 5e-3)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--samples", type=int, default=768)
    p.add_argument("--val-samples", type=int, default=512)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--lora-r", type=int, default=0, help="tune LoRA runs of this rank instead of full fine-tuning")
    args = p.parse_args(argv)
    configure_threads()
    tweets = load_course_dataset("tweets", binary=True)
    splits = split_dataset(tweets, seed=42)
    train = stratified_sample(splits.train, args.samples, seed=42)
    validation = stratified_sample(splits.validation, args.val_samples, seed=42)
    rows = []
    for batch_size, lr in (LORA_CANDIDATES if args.lora_r else CANDIDATES):
        for seed in args.seeds:
            config = TrainConfig(batch_size=batch_size, learning_rate=lr, seed=seed, progress=False, lora_r=args.lora_r)
            trainer = Trainer(config)
            start = time.perf_counter()
            history = trainer.fit(train, validation)
            seconds = time.perf_counter() - start
            scores = trainer.evaluate(validation)
            rows.append({"batch": batch_size, "lr": lr, "seed": seed, "val_accuracy": scores["accuracy"],
                         "val_macro_f1": scores["macro_f1"], "train_seconds": history.train_seconds, "wall": seconds})
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows).groupby(["batch", "lr"]).agg(
        val_accuracy=("val_accuracy", "mean"), acc_std=("val_accuracy", "std"),
        val_macro_f1=("val_macro_f1", "mean"), f1_std=("val_macro_f1", "std"), train_seconds=("train_seconds", "mean"))
    print(table.round(3).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
