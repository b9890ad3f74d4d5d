"""Several processes, one model: PyTorch DDP as `torchrun` starts it.

`torchrun --nproc_per_node=N ...` sets RANK, LOCAL_RANK and WORLD_SIZE for each process; without
them this is a world of one and every collective is a no-op, so the training loop reads the same
either way. NCCL on CUDA, gloo on CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    owns_group: bool = False  # True when this object initialised the process group (and so ends it)
    device: torch.device = torch.device("cpu")  # where collectives' tensors live: NCCL only reduces CUDA tensors

    @classmethod
    def from_env(cls, device: torch.device) -> "Distributed":
        """The process group torchrun describes, on `device` (model.device.pick_device's answer,
        which already names this process's GPU), or a world of one on `device`."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if world_size == 1:
            return cls(device=device)
        rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        owns = not dist.is_initialized()
        if owns:
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        return cls(rank, local_rank, world_size, owns, device)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def sum(self, t: torch.Tensor) -> torch.Tensor:
        """Element-wise sum over ranks (in place; returned for chaining)."""
        if self.active:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def from_main(self, value: float) -> float:
        """Rank 0's value on every rank: decisions from a clock (stop now? how far through the
        budget?) must be identical everywhere, or ranks diverge or wait on each other forever."""
        if not self.active:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.broadcast(t, src=0)
        return float(t.item())

    def gather(self, obj: object) -> list:
        """Every rank's obj, in rank order, on every rank."""
        if not self.active:
            return [obj]
        out: list = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
