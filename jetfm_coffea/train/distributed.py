"""torch.distributed set-up from the torchrun environment (NCCL on GPU, Gloo on CPU).

The device of each rank comes from :func:`jetfm_coffea.runtime.resolve_device`: with
``auto``, ranks use ``cuda:<LOCAL_RANK>`` (NCCL) only when this node has a GPU per local
rank, else all of them run on the CPU (Gloo).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from jetfm_coffea.runtime import process_group_backend, resolve_device

__all__ = ["DistInfo", "all_gather_objects", "init_distributed"]


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


def init_distributed(device_spec: str = "auto") -> tuple[DistInfo, torch.device]:
    """Join the process group described by ``WORLD_SIZE``/``RANK``/``LOCAL_RANK``.

    With ``WORLD_SIZE`` unset or 1 nothing is initialised. The backend is NCCL for
    CUDA devices and Gloo on CPU. ``LOCAL_WORLD_SIZE`` (set by torchrun; else
    ``WORLD_SIZE``) is the number of ranks on this node that share its GPUs.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    device = resolve_device(device_spec, local, local_world)
    if world <= 1 and not dist.is_initialized():
        return DistInfo(), device
    owns = False
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=process_group_backend(device))
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
