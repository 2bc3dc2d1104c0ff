"""torchrun support: one process per GPU, DistributedDataParallel for training stages.

Under `torchrun --nproc_per_node N c3seg run ...` the environment carries RANK / WORLD_SIZE /
LOCAL_RANK; outside it everything degrades to a single process.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def init() -> None:
    """Join the process group when launched by torchrun (idempotent)."""
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group(backend)


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def is_main_env() -> bool:
    """Whether this is the main process, from the environment (usable before `init`)."""
    return int(os.environ.get("RANK", "0")) == 0


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if dist.is_initialized():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def local_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return torch.device("cpu")
    return torch.device(name)
