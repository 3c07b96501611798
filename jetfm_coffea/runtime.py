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

**The training step's helpers**, shared by pretraining and fine-tuning:
:func:`step_generator` (the per-step RNG, a pure function of seed, rank and step),
:func:`guarded_step` (gradient clipping, then the optimiser and scheduler step only when
the loss and the gradient norm are finite, on every rank), :func:`append_metrics` (one
JSON line per record in ``metrics.jsonl``) and :class:`TrainProgress` (the rich
progress bar on rank 0).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import torch
import torch.distributed as dist

from jetfm_coffea.errors import ConfigError

__all__ = [
    "PRECISIONS",
    "Precision",
    "Purpose",
    "TrainProgress",
    "append_metrics",
    "autocast",
    "cuda_device_count",
    "guarded_step",
    "matmul_precision",
    "precision_context",
    "process_group_backend",
    "resolve_device",
    "resolve_precision",
    "step_generator",
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


# -- the training step ------------------------------------------------------------------------


def step_generator(seed: int, rank: int, step: int, device: torch.device) -> torch.Generator:
    """Per-step RNG (views, masking): a pure function of (seed, rank, step), so resumes match."""
    gen = torch.Generator(device=device if device.type == "cuda" else "cpu")
    gen.manual_seed((seed * 1_000_003 + rank * 7_919 + step) % (2**63 - 1))
    return gen


def guarded_step(
    opt: torch.optim.Optimizer,
    sched: Any,
    loss: torch.Tensor,
    params: Iterable[torch.Tensor],
    clip: float | None,
    *,
    across_ranks: bool = False,
) -> tuple[torch.Tensor, bool]:
    """Clip, then step ``opt`` and ``sched`` only if the loss and gradient norm are finite.

    Call after ``loss.backward()``. ``clip``: the gradient-norm limit (``None``: none);
    ``across_ranks``: the finiteness verdict is the minimum over the process group, so
    every rank skips together. Returns ``(gradient norm, stepped)``; the caller reports
    a step that was not taken (checkpoint, :class:`~jetfm_coffea.errors.NonFiniteLossError`).
    """
    limit = clip if clip is not None else float("inf")
    gnorm = torch.nn.utils.clip_grad_norm_(params, limit)
    ok = (torch.isfinite(loss) & torch.isfinite(gnorm)).float()
    if across_ranks:
        dist.all_reduce(ok, op=dist.ReduceOp.MIN)
    if ok.item() < 1:
        return gnorm, False
    opt.step()
    sched.step()
    return gnorm, True


def append_metrics(path: str | Path, record: dict[str, Any]) -> None:
    """Append ``record`` as one JSON line to the metrics file ``path`` (``metrics.jsonl``)."""
    with open(path, "a") as fh:
        fh.write(json.dumps(record) + "\n")


class TrainProgress:
    """rich progress bar on rank 0 (a no-op elsewhere or when disabled)."""

    def __init__(self, enabled: bool, total: int, start: int, label: str = "pretrain"):
        self.bar = None
        if not enabled:
            return
        from rich.progress import (  # deferred: only a run that shows a bar needs rich's UI
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn(f"[bold]{label}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[rate]} ev/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        )
        self.bar.start()
        self.task = self.bar.add_task(label, total=total, completed=start, loss="-", rate="-")

    def update(self, step: int, loss: float, rate: float) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=step, loss=f"{loss:.4f}", rate=f"{rate:,.0f}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
