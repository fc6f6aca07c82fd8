"""The trainer under DistributedDataParallel: two CPU processes with the gloo backend.

This is the same code path ``torchrun`` / ``accelerate launch`` use on several GPUs (there with NCCL):
each rank trains on its share of every batch, gradients are averaged, only rank 0 writes files.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from test_trainer import fast_config, make_trainer, toy_frame

WORLD_SIZE = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(WORLD_SIZE), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD_SIZE)
    try:
        # different initial weights per rank: DDP must broadcast rank 0's before the first step
        trainer = make_trainer(fast_config(epochs=2, output_dir=os.path.join(out_dir, "run")), model_seed=rank)
        history = trainer.fit(toy_frame(128, seed=0), toy_frame(64, seed=1))
        metrics = trainer.evaluate(toy_frame(64, seed=2))
        digest = hashlib.sha256()
        for name, tensor in sorted(trainer.model.state_dict().items()):
            digest.update(name.encode() + tensor.detach().cpu().numpy().tobytes())
        result = {"rank": trainer.rank, "world_size": trainer.world_size, "weights": digest.hexdigest(),
                  "loss": history.loss, "steps": history.step, "metrics": metrics}
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
            json.dump(result, f)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_processes_agree_on_weights_and_metrics(tmp_path):
    # Forked workers inherit this process's imports (seconds saved per worker); fork is what DataLoader
    # workers use too. Elsewhere (macOS, Windows) spawn re-imports everything.
    make_trainer()  # import the model classes and read the tokenizer once, before forking
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    mp.start_processes(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD_SIZE, join=True, start_method=method)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD_SIZE)]
    assert [r["rank"] for r in ranks] == [0, 1] and all(r["world_size"] == 2 for r in ranks)
    assert ranks[0]["weights"] == ranks[1]["weights"]
    assert ranks[0]["metrics"] == ranks[1]["metrics"]
    assert ranks[0]["loss"] == ranks[1]["loss"]  # the logged loss is the mean over ranks
    # each rank took half of every global batch of 2 x 8: 128 / 16 = 8 steps per epoch
    assert ranks[0]["steps"] == list(range(1, 2 * 8 + 1))
    assert ranks[0]["loss"][-1] < ranks[0]["loss"][0] and math.isfinite(ranks[0]["metrics"]["loss"])
    # rank 0 wrote the model and checkpoint once
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()
    assert (tmp_path / "run" / "checkpoint" / "trainer_state.pt").is_file()
    state = torch.load(tmp_path / "run" / "checkpoint" / "trainer_state.pt", weights_only=True)
    assert len(state["rng"]) == WORLD_SIZE  # every rank's RNG state, for an exact resume
