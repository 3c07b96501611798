"""Figures for reports without touching matplotlib's global state.

A library never switches matplotlib's backend or its global style: the figures made
here are bare :class:`matplotlib.figure.Figure` objects (not registered with pyplot, so
nothing to close, and saved by the Agg renderer whatever backend the user runs), drawn
inside :func:`cms_style` (the mplhep CMS style as a context, restored afterwards).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["cms_style", "save_figure", "styled", "subplots"]

F = TypeVar("F", bound=Callable[..., Any])


@contextlib.contextmanager
def cms_style() -> Iterator[None]:
    """The mplhep CMS style for the duration of the block."""
    import matplotlib.style
    import mplhep

    with matplotlib.style.context(mplhep.style.CMS):
        yield


def styled(func: F) -> F:
    """Run ``func`` inside :func:`cms_style` (for functions that draw a whole figure)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with cms_style():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def subplots(*args: Any, figsize: tuple[float, float] | None = None, **kwargs: Any) -> Any:
    """``(figure, axes)`` like ``pyplot.subplots``, as a bare Figure."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*args, **kwargs)


def save_figure(fig: Any, path: str | Path, dpi: int = 80, tight: bool = True) -> Path:
    """Write ``fig`` to ``path`` (folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    return path
