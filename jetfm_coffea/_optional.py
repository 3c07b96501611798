"""Lazy import of optional dependencies with an install hint (the uproot/awkward way)."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["import_optional"]


def import_optional(module: str, extra: str | None = None, package: str | None = None) -> ModuleType:
    """Import ``module`` or raise ImportError telling the user how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        pkg = package or module.split(".")[0]
        hint = f"pip install 'jetfm-coffea[{extra}]'" if extra else f"pip install {pkg}"
        raise ImportError(f"{module} is required for this feature; install it with: {hint}") from err
