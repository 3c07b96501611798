"""torch.distributed set-up from the torchrun environment (NCCL on GPU, Gloo on CPU)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "all_gather_objects", "init_distributed", "resolve_device"]


@dataclass
class DistInfo:
    """Rank, world size, local rank, and whether this call created the process group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def close(self) -> None:
        """Destroy the process group if :func:`init_distributed` created it."""
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def resolve_device(spec: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> ``cuda:<local_rank>`` when CUDA is available, else ``cpu``."""
    if spec == "auto":
        spec = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    elif spec == "cuda":
        spec = f"cuda:{local_rank}"
    return torch.device(spec)


def init_distributed(device_spec: str = "auto") -> tuple[DistInfo, torch.device]:
    """Join the process group described by ``WORLD_SIZE``/``RANK``/``LOCAL_RANK``.

    With ``WORLD_SIZE`` unset or 1 nothing is initialised. The backend is NCCL for
    CUDA devices and Gloo on CPU.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_spec, local)
    if world <= 1 and not dist.is_initialized():
        return DistInfo(), device
    owns = False
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
        owns = True
    info = DistInfo(dist.get_rank(), dist.get_world_size(), local, owns)
    return info, device


def all_gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """Gather one picklable object from every rank (a one-element list when not distributed)."""
    if info.world_size == 1:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out
