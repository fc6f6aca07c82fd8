"""Root pytest configuration, shared by the unit tests and the nbval notebook runs.

With pytest-xdist every worker (and every notebook kernel it starts, which inherits this
environment) would otherwise use all cores for torch, oversubscribing small machines several
times over. Each worker gets an equal share of the cores instead.
"""

import os

collect_ignore_glob = ["tests/fixtures/*", "**/.ipynb_checkpoints/*"]

_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
if _workers > 1:
    _share = str(max(1, (os.cpu_count() or 1) // _workers))
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_var, _share)

# The course is offline by default; tests and executed notebooks must not wait on the Hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")
