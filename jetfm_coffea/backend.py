"""Array-library dispatch for backend-agnostic kernels (the ``vector`` compute style).

Kernels are written as ``f(lib, pt, eta, phi, mass, ...)`` with ``lib`` the module that
provides the elementwise math: :mod:`numpy` for numpy and awkward arrays (awkward
dispatches numpy ufuncs), :mod:`torch` for tensors on any device.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

__all__ = ["array_namespace", "stack_last", "where"]


def array_namespace(*arrays: Any) -> ModuleType:
    """Return :mod:`torch` if any argument is a tensor, else :mod:`numpy`."""
    for a in arrays:
        if type(a).__module__.startswith("torch"):
            import torch

            return torch
    return np


def stack_last(lib: ModuleType, arrays: list[Any]) -> Any:
    """Stack equally shaped arrays along a new last axis."""
    if lib is np:
        return np.stack(arrays, axis=-1)
    return lib.stack(arrays, dim=-1)


def where(lib: ModuleType, cond: Any, a: Any, b: Any) -> Any:
    """Elementwise select that accepts python scalars for ``a``/``b`` with torch too."""
    if lib is np:
        return np.where(cond, a, b)
    if not isinstance(a, lib.Tensor):
        a = lib.as_tensor(
            a, dtype=b.dtype if isinstance(b, lib.Tensor) else None, device=cond.device
        )
    if not isinstance(b, lib.Tensor):
        b = lib.as_tensor(b, dtype=a.dtype, device=cond.device)
    return lib.where(cond, a, b)
