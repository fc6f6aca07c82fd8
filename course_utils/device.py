"""Pick the hardware and size every experiment to it.

The same notebook must finish in a minute or two on a 2-core laptop and use the whole corpus on a
GPU. Rather than `if cuda:` branches in every lesson, a notebook asks for a :class:`Profile` and
reads its sample counts, batch size and epochs from it.

Taught in lesson 00 (your device, profile and threads).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass

import torch

from course_utils.errors import ConfigError

_DEVICE_ENV = "COURSE_DEVICE"
_PROFILE_ENV = "COURSE_PROFILE"
_THREADS_ENV = "COURSE_TORCH_THREADS"


def get_device(prefer: str | None = None) -> torch.device:
    """Return the best available device: CUDA, then Apple MPS, then CPU.

    ``prefer`` (or the ``COURSE_DEVICE`` environment variable) forces one, which is how a learner
    with a GPU can still rehearse the CPU path. Asking for hardware that is absent is an error
    rather than a silent fallback, so a benchmark never reports CPU numbers as GPU ones.
    """
    choice = (prefer or os.environ.get(_DEVICE_ENV) or "auto").lower()
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = choice.split(":")[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device {choice!r} was requested but torch sees no CUDA GPU "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}); "
            f"unset {_DEVICE_ENV} or pass 'auto'/'cpu'."
        )
    if kind == "mps" and not _mps_available():
        raise ConfigError(f"device {choice!r} was requested but Apple MPS is not available; use 'cpu'.")
    if kind not in {"cuda", "mps", "cpu"}:
        raise ConfigError(f"unknown device {choice!r}; use 'auto', 'cuda', 'mps' or 'cpu'.")
    return torch.device(choice)


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def bf16_supported(device: torch.device | str | None = None) -> bool:
    """Whether bf16 autocast is both supported and *fast* on this device.

    bf16 has fp32's range, so it trains without a loss scaler; it only pays on GPUs with bf16 tensor
    cores (Ampere and newer). On CPU the course stays in fp32: bf16 there is slower on most laptops.
    """
    device = torch.device(device) if device is not None else get_device()
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return False


def fused_adamw_supported(device: torch.device | str) -> bool:
    """Whether ``torch.optim.AdamW(..., fused=True)`` runs on ``device``: CUDA, and the CPU from torch 2.4.

    One fused kernel updates every parameter instead of a dozen tensor operations per parameter. On the
    2-core CPU it made full fine-tuning of the offline MiniLM 1.5x faster per sample (36 -> 55 samples/s,
    batch 8: the AdamW step over 22.7M weights is a large share of a step); LoRA, with few trainable
    weights, gains little. Used by the course trainer and lesson 08's loop.
    """
    kind = torch.device(device).type
    found = tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2])
    return kind == "cuda" or (kind == "cpu" and found >= (2, 4))


@dataclass(frozen=True)
class Profile:
    """How big the experiments in a lesson may be on this machine."""

    name: str
    device: str
    max_train_samples: int | None
    max_eval_samples: int | None
    batch_size: int
    eval_batch_size: int
    epochs: int
    max_length: int
    search_trials: int
    cv_folds: int

    def to_dict(self) -> dict:
        return asdict(self)


_SIZES = {
    # Fits the 2-core CPU CI budget: a BERT epoch over 768 tweets takes well under a minute.
    "small": dict(
        max_train_samples=768,
        max_eval_samples=512,
        batch_size=8,
        eval_batch_size=64,
        epochs=2,
        max_length=64,
        search_trials=8,
        cv_folds=5,
    ),
    # Whole corpus; sized for one modern GPU.
    "full": dict(
        max_train_samples=None,
        max_eval_samples=None,
        batch_size=64,
        eval_batch_size=256,
        epochs=3,
        max_length=128,
        search_trials=30,
        cv_folds=5,
    ),
}


def get_profile(device: torch.device | str | None = None, size: str | None = None) -> Profile:
    """Return the experiment sizes for ``device``: "small" on CPU/MPS, "full" on CUDA.

    ``size`` or the ``COURSE_PROFILE`` environment variable overrides the choice, for example to
    run the small profile on a GPU box when checking that the notebooks still execute.
    """
    dev = torch.device(device) if device is not None else get_device()
    chosen = (size or os.environ.get(_PROFILE_ENV) or ("full" if dev.type == "cuda" else "small")).lower()
    if chosen not in _SIZES:
        raise ConfigError(f"unknown profile {chosen!r}; use one of {sorted(_SIZES)} (set {_PROFILE_ENV}).")
    return Profile(name=chosen, device=str(dev), **_SIZES[chosen])


def describe_device(device: torch.device | str | None = None) -> dict:
    """A short, printable summary of the hardware a lesson will run on."""
    dev = torch.device(device) if device is not None else get_device()
    info = {"kind": dev.type, "name": "CPU", "memory_gb": None, "bf16": bf16_supported(dev)}
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        info.update(name=props.name, memory_gb=round(props.total_memory / 2**30, 1))
    elif dev.type == "mps":
        info.update(name="Apple MPS")
    else:
        info.update(name=f"CPU ({os.cpu_count()} logical cores, {torch.get_num_threads()} torch threads)")
        try:
            pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
            info["memory_gb"] = round(pages / 2**30, 1)
        except (ValueError, OSError, AttributeError):
            pass
    return info


# --------------------------------------------------------------------------------------------
# How many CPU threads torch may use: decided here and nowhere else
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ThreadChoice:
    """torch's intra-op thread count for this process, and why.

    Measured on a 2-core machine under load (see benchmarks/README.md): a BERT step ran at 16.2
    samples/s with one thread and 1.6 with two, an MLP run took 8.4 s with one thread and 30.4 s
    with two. A thread that waits for a core another process holds stalls every op that it shares,
    so the count must follow the cores that are really free, not the cores the machine has.
    """

    threads: int
    cores: int
    workers: int
    busy: int
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def _usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))  # cores this process may run on (cgroups, taskset)
    except (AttributeError, OSError):  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def _cpu_times(path: str = "/proc/stat") -> tuple[float, float, int] | None:
    """(busy, total) clock ticks of all CPUs since boot, and the number of CPUs, from ``/proc/stat`` (Linux)."""
    try:
        with open(path, encoding="ascii") as stat:
            lines = stat.read().splitlines()
        ticks = [float(x) for x in lines[0].split()[1:9]]   # user nice system idle iowait irq softirq steal
    except (OSError, ValueError, IndexError):
        return None
    cpus = sum(1 for line in lines[1:] if line.startswith("cpu") and line[3:4].isdigit())
    if len(ticks) < 5 or cpus < 1:
        return None
    idle = ticks[3] + ticks[4]
    return sum(ticks) - idle, sum(ticks), cpus


def _busy_now(window: float = 0.1) -> float | None:
    """Cores busy right now (over ``window`` seconds, while this process sleeps), or None where unknown."""
    first = _cpu_times()
    if first is None:
        return None
    time.sleep(window)
    second = _cpu_times()
    if second is None or second[1] <= first[1]:
        return None
    return (second[0] - first[0]) / (second[1] - first[1]) * second[2]


def _busy_cores(cores: int) -> int:
    """Cores other work keeps busy, capped at ``cores - 1``.

    The 1-minute load average, rounded down; where it says some cores are busy, a 0.1 s look at the CPUs
    (Linux ``/proc/stat``) may lower it. The load average decays over minutes, so right after a heavy
    notebook ends it still counts that notebook as running: without the second look the next lesson would
    take one thread on an idle machine (lesson 09 took 418 s instead of 262 s that way in a site build).
    """
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0
    busy = int(load)
    if busy >= 1:
        now = _busy_now()
        if now is not None:
            busy = min(busy, int(now + 0.5))
    return max(0, min(cores - 1, busy))


def choose_threads(
    *,
    cores: int | None = None,
    workers: int | None = None,
    busy: int | None = None,
    env: dict | None = None,
) -> ThreadChoice:
    """Decide torch's intra-op threads: the cores free to this process, shared among parallel workers.

    In order: ``COURSE_TORCH_THREADS`` (a positive integer) wins; otherwise the usable cores
    (``os.sched_getaffinity``) are divided among parallel pytest-xdist workers
    (``PYTEST_XDIST_WORKER_COUNT``), and capped by the cores that other work keeps busy (the load
    average, checked against the CPUs' use right now: :func:`_busy_cores`). Never
    fewer than one. The arguments exist so tests can pose any machine; by default they are read
    from this one.
    """
    env = os.environ if env is None else env
    cores = _usable_cores() if cores is None else max(1, int(cores))
    raw = str(env.get(_THREADS_ENV, "") or "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise ConfigError(f"{_THREADS_ENV}={raw!r} is not a positive whole number of threads; "
                              f"set it to e.g. 1, or unset it to let the course choose.")
        return ThreadChoice(int(raw), cores, 1, 0, f"{_THREADS_ENV}={raw}")
    if workers is None:
        try:
            workers = max(1, int(env.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1))
        except ValueError:
            workers = 1
    share = max(1, cores // max(1, workers))
    if busy is None:   # one thread each already: no need to look at the machine's load
        busy = _busy_cores(cores) if share > 1 else 0
    busy = max(0, min(cores - 1, int(busy)))
    free = max(1, cores - busy)
    threads = max(1, min(share, free))
    parts = [f"{cores} usable core(s)"]
    if workers > 1:
        parts.append(f"shared by {workers} parallel workers")
    if busy:
        parts.append(f"{busy} busy with other work (load average and CPU use now)")
    return ThreadChoice(threads, cores, workers, busy, ", ".join(parts))


def configure_threads(threads: int | None = None) -> ThreadChoice:
    """Apply :func:`choose_threads` to torch (or ``threads`` if given) and return the choice.

    Every lesson calls this once at the top, and the trainer calls it before training, so a
    notebook on a busy laptop does not oversubscribe its cores (the first lesson that taught this
    is lesson 00, which prints the choice).
    """
    if threads is not None:
        if int(threads) < 1:
            raise ConfigError(f"threads must be at least 1, got {threads}.")
        choice = ThreadChoice(int(threads), _usable_cores(), 1, 0, "requested")
    else:
        choice = choose_threads()
    torch.set_num_threads(choice.threads)
    return choice
