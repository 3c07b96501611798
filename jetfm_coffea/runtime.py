"""Where the model runs and in which arithmetic: the one owner of device and precision policy.

Pretraining, fine-tuning and scoring all ask this module, so the rules are written once:

**Device** (:func:`resolve_device`). ``"cpu"`` is the CPU. ``"auto"`` is
``cuda:<local rank>`` when every process of this node can have a GPU of its own
(``local_world_size <= number of GPUs``), else the CPU for *every* rank (a 2-rank Gloo
test on a 1-GPU machine runs on the CPU, never on a ``cuda:1`` that does not exist).
``"cuda"`` is ``cuda:<local rank>`` and an error when that GPU does not exist.
``"cuda:N"`` is taken as given (checked to exist). The process-group backend follows the
device (:func:`process_group_backend`): NCCL on CUDA, Gloo on the CPU.

**Precision** (:func:`resolve_precision`): ``"fp32"`` (IEEE float32 matmuls, TF32 off),
``"tf32"`` (float32 storage, TF32 tensor-core matmuls on CUDA), ``"bf16"`` (bf16
autocast). ``"auto"`` depends on the purpose: *training* uses bf16 on CUDA and fp32 on the
CPU; *inference* (scores, embeddings, stored test scores, the k-NN probe) is fp32 on every
device, so the same events get the same scores on a CPU cluster and a GPU node (within
1e-5); bf16 inference must be asked for.

**Arithmetic** (:func:`autocast`, :func:`matmul_precision`, :func:`precision_context`
for both): bf16 autocast around forward passes, and the float32 matmul precision
(``highest`` for fp32 and bf16, ``high`` = TF32 for tf32) set for a block (a training
loop, forward and backward) and restored after it, so a library call never leaves TF32
switched on behind its caller.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal

import torch

from jetfm_coffea.errors import ConfigError

__all__ = [
    "PRECISIONS",
    "Precision",
    "Purpose",
    "autocast",
    "cuda_device_count",
    "matmul_precision",
    "precision_context",
    "process_group_backend",
    "resolve_device",
    "resolve_precision",
]

Precision = Literal["auto", "fp32", "tf32", "bf16"]
Purpose = Literal["train", "inference"]

#: Accepted precision names (configs and CLI options validate against these).
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "tf32", "bf16")

_MATMUL = {"fp32": "highest", "tf32": "high", "bf16": "highest"}


def cuda_device_count() -> int:
    """GPUs visible to this process (0 without a usable CUDA runtime)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_device(
    spec: str | torch.device = "auto",
    local_rank: int = 0,
    local_world_size: int = 1,
    *,
    device_count: int | None = None,
) -> torch.device:
    """The device of local rank ``local_rank`` of ``local_world_size`` (rules: module docstring).

    ``device_count`` (default: the GPUs visible) is a parameter so that the rules can be
    checked for any machine on any machine.
    """
    n_gpu = cuda_device_count() if device_count is None else int(device_count)
    spec = str(spec)
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "auto":
        if n_gpu == 0 or local_world_size > n_gpu:
            return torch.device("cpu")
        return torch.device("cuda", local_rank)
    if spec == "cuda" or spec.startswith("cuda:"):
        index = local_rank if spec == "cuda" else _cuda_index(spec)
        if n_gpu == 0:
            raise ConfigError(f"device {spec!r}: no CUDA device is visible (use 'cpu' or 'auto')")
        if index >= n_gpu:
            who = f"local rank {local_rank} of {local_world_size}: " if spec == "cuda" else ""
            raise ConfigError(
                f"device {spec!r}: {who}cuda:{index} does not exist, {n_gpu} GPU(s) visible; "
                "run at most one rank per GPU, or use 'auto'/'cpu' (Gloo on the CPU)"
            )
        return torch.device("cuda", index)
    try:
        return torch.device(spec)
    except RuntimeError as err:
        raise ConfigError(f"unknown device {spec!r}: {err}") from err


def _cuda_index(spec: str) -> int:
    try:
        return int(spec.partition(":")[2])
    except ValueError as err:
        raise ConfigError(f"device {spec!r}: expected cuda:<index>") from err


def process_group_backend(device: torch.device) -> str:
    """``"nccl"`` for CUDA devices, ``"gloo"`` otherwise."""
    return "nccl" if device.type == "cuda" else "gloo"


def resolve_precision(spec: str, device: torch.device, purpose: Purpose = "train") -> str:
    """``"fp32"``, ``"tf32"`` or ``"bf16"`` for ``spec`` (``"auto"`` by ``purpose``)."""
    if spec not in PRECISIONS:
        raise ConfigError(f"unknown precision {spec!r}; choose from {list(PRECISIONS)}")
    if spec != "auto":
        return spec
    if purpose == "inference":
        return "fp32"
    return "bf16" if device.type == "cuda" else "fp32"


def _check_resolved(precision: str) -> None:
    if precision not in _MATMUL:
        raise ConfigError(f"unresolved precision {precision!r}: call resolve_precision first")


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` for ``"bf16"``; nothing for fp32 and tf32."""
    _check_resolved(precision)
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def matmul_precision(precision: str) -> Iterator[None]:
    """Float32 matmuls in IEEE float32 (fp32, bf16) or TF32 (tf32) inside the block."""
    _check_resolved(precision)
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision(_MATMUL[precision])
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)


@contextlib.contextmanager
def precision_context(precision: str, device: torch.device) -> Iterator[None]:
    """:func:`matmul_precision` and :func:`autocast` together (inference blocks)."""
    with matmul_precision(precision), autocast(precision, device):
        yield
