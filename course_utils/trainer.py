"""The course's trainer, under the name lessons, the CLI, the benchmarks and the tests import it by.

``from course_utils.trainer import TrainConfig, Trainer``: every public name of :mod:`course_utils.training`
is re-exported here (``tests/test_layout.py`` checks that none is missing). The code lives in that
package, one concern a module; start with ``course_utils/training/trainer.py`` (the loop).

Taught in lesson 05 (fine-tuning BERT), as what the hand-written loop becomes when made fast.
"""

from course_utils.training import (
    BEST_DIR,
    CHECKPOINT_DIR,
    DEFAULT_LEARNING_RATE,
    DEFAULT_LORA_LEARNING_RATE,
    EVAL_METRICS,
    MODEL_DIR,
    PRECISIONS,
    EncodedTexts,
    History,
    Predictions,
    Ranks,
    TrainConfig,
    Trainer,
    TrainingError,
    bucket_length,
    complete_folder,
    encode_texts,
    padding_cost,
    plan_epoch,
    write_folder_atomically,
)

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
]
