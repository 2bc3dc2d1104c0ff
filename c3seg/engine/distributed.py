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


def check_device(name: str, cpu: str) -> torch.device:
    """`local_device(name)`, refused with ValueError when this machine cannot run it (no CUDA GPU,
    too few GPUs, not a device name). `cpu` is how the caller's user asks for the CPU instead:
    '--device cpu' on the command line, 'device=cpu' as a setting, 'device="cpu"' in Python."""
    try:
        device = local_device(name)
    except RuntimeError:
        raise ValueError(f"device {name!r} is not a device: use auto, cpu, cuda or cuda:N ({cpu})") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device {name!r} asked for, but this PyTorch sees no CUDA GPU; use {cpu}")
        if device.index is not None and device.index >= count:
            raise ValueError(f"device {name!r} asked for, but this machine has {count} CUDA GPU(s); use {cpu}")
    return device
