"""One call that makes a run repeatable, so two runs of a notebook tell the same story.

Every lesson's set-up cell calls :func:`set_seed` (lesson 00 first), so a rerun prints the same numbers.
"""

from __future__ import annotations

import os
import random

import numpy as np


def set_seed(seed: int = 42, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch (CPU and every GPU).

    ``deterministic=True`` also asks torch for deterministic kernels; that costs speed on GPU, so the
    course only turns it on where a lesson compares two runs bit for bit.
    """
    random.seed(seed)
    np.random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    import torch

    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        if hasattr(torch.backends, "cudnn"):
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
