"""The processes of a run: which one this is, how many there are, and the few collective calls the trainer makes.

:class:`Ranks` is the trainer's only contact with ``torch.distributed``. At world size 1 (a notebook,
``course-utils train``) every method does nothing or returns its input, so the loop reads the same with
and without DDP. Under ``torchrun`` or ``accelerate launch`` (lesson 05's aside on several GPUs) every
rank trains on a disjoint share of each length-grouped batch and only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Ranks"]


@dataclass(frozen=True)
class Ranks:
    """This process's ``rank`` among ``world_size`` processes (``local_rank``: its GPU on this machine)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def join(cls, use_cuda: bool) -> Ranks:
        """Join the process group that torchrun/accelerate describe in the environment, if there is one."""
        import torch.distributed as dist

        if dist.is_available() and not dist.is_initialized() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
            if use_cuda:
                torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
            dist.init_process_group("nccl" if use_cuda else "gloo")
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())))
        return cls()

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that prints and writes files."""
        return self.rank == 0

    def share(self, batches: list[np.ndarray]) -> list[np.ndarray]:
        """This process's share of each global batch; a global batch too small to share is dropped."""
        if self.world_size == 1:
            return batches
        return [np.array_split(b, self.world_size)[self.rank] for b in batches if len(b) >= self.world_size]

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """The model as DDP sees it (gradients averaged over ranks); the model itself at world size 1."""
        if self.world_size == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    def no_sync(self, model: torch.nn.Module, last_micro_batch: bool):
        """Skip the gradient all-reduce on every micro-batch but the last of an accumulation group."""
        if self.world_size == 1 or last_micro_batch:
            return contextlib.nullcontext()
        return model.no_sync()

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """The mean of ``values`` over ranks (in place), so every rank takes the same decision on it."""
        if self.world_size > 1:
            import torch.distributed as dist

            dist.all_reduce(values)
            values /= self.world_size
        return values

    def gather(self, obj) -> list:
        """Every rank's ``obj``, in rank order (``[obj]`` at world size 1)."""
        if self.world_size == 1:
            return [obj]
        import torch.distributed as dist

        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        """Wait until every rank gets here (rank 0 may be writing a file the others will read)."""
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()
