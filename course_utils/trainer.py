"""The course's trainer, under the name lessons, the CLI, the benchmarks and the tests import it by.

``from course_utils.trainer import TrainConfig, Trainer``: every public name of :mod:`course_utils.training`
(its ``__all__``) is re-exported here; ``tests/test_layout.py`` checks that none is missing. The code lives
in that package, one concern a module; start with ``course_utils/training/trainer.py`` (the loop).

Taught in lesson 05 (fine-tuning BERT), as what the hand-written loop becomes when made fast.
"""

from course_utils import training as _training
from course_utils.training import *  # noqa: F403  (re-exporting the package is this module's purpose)

__all__ = list(_training.__all__)
