"""Numerical precision of scoring: float32 everywhere by default, bf16 only when asked.

The same events must give the same scores on a laptop CPU and on a GPU (within 1e-5),
so the default is true float32 on every device: :func:`inference_precision` turns
TF32 off for the matmuls (and cuDNN) of the forward pass and restores the process's
settings afterwards. ``"bf16"`` is an explicit choice (bf16 autocast; scores then
differ from float32 by up to ~1e-2) for throughput on GPUs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Literal

from jetfm_coffea.errors import ConfigError

__all__ = ["PRECISIONS", "Precision", "check_precision", "inference_precision"]

Precision = Literal["fp32", "bf16"]
PRECISIONS: tuple[str, ...] = ("fp32", "bf16")


def check_precision(precision: str) -> Precision:
    """``precision`` if it is one of :data:`PRECISIONS`, else a :class:`ConfigError`."""
    if precision not in PRECISIONS:
        raise ConfigError(
            f"precision {precision!r} is not one of {list(PRECISIONS)} (fp32 is the default: "
            "the same scores on CPU and GPU; bf16 trades ~1e-2 of score for speed)"
        )
    return precision  # type: ignore[return-value]


@contextlib.contextmanager
def inference_precision(device: Any, precision: Precision) -> Iterator[None]:
    """Run a forward pass in ``precision`` on ``device`` (a ``torch.device``).

    fp32: TF32 is off for CUDA matmuls and cuDNN inside the block (IEEE float32, as
    on CPU). bf16: autocast to bfloat16 on the device.
    """
    import torch

    if precision == "bf16":
        with torch.autocast(device.type, dtype=torch.bfloat16):
            yield
        return
    if device.type != "cuda":
        yield
        return
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = (matmul.allow_tf32, cudnn.allow_tf32)
    matmul.allow_tf32, cudnn.allow_tf32 = False, False
    try:
        yield
    finally:
        matmul.allow_tf32, cudnn.allow_tf32 = saved
