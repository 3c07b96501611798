"""The execution description of every job and command (no coffea import: the CLI reads it).

One :class:`Execution` is passed to every job that runs coffea, as coffea passes one
executor object to its ``Runner``: ``executor`` is one of :data:`EXECUTORS` (coffea's
Runner in virtual mode), ``dask_mode`` switches to ``apply_to_fileset`` with
dask-awkward, ``scheduler`` / ``workers`` say where dask (or the futures pool) runs
(:func:`jetfm_coffea.cluster.dask_client`) and ``chunksize`` (default
:data:`DEFAULT_CHUNKSIZE`) is the events per coffea chunk, i.e. per shard. The default,
``Execution()``, is coffea's iterative executor in this process.

>>> Execution(executor="futures", workers=4).mode
'futures'
>>> Execution(dask_mode=True, scheduler="tcp://scheduler:8786").mode
'dask-mode'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from jetfm_coffea.errors import ConfigError

__all__ = [
    "DEFAULT_CHUNKSIZE",
    "EXECUTORS",
    "Execution",
    "Executor",
    "check_executor",
]

EXECUTORS = ("iterative", "futures", "dask")
Executor = Literal["iterative", "futures", "dask"]
#: Events per coffea chunk unless a job is told otherwise: coffea's own default.
DEFAULT_CHUNKSIZE = 100_000


def check_executor(executor: str) -> None:
    """Raise :class:`ConfigError` unless ``executor`` is one of :data:`EXECUTORS`."""
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {executor!r}; choose from {', '.join(EXECUTORS)}")


@dataclass(frozen=True)
class Execution:
    """Where and how a job runs coffea (checked when made; see the module docstring)."""

    executor: Executor = "iterative"
    dask_mode: bool = False
    workers: int = 2
    scheduler: str | None = None
    chunksize: int = DEFAULT_CHUNKSIZE

    def __post_init__(self) -> None:
        if not self.dask_mode:
            check_executor(self.executor)
        if self.workers < 1:
            raise ConfigError(f"workers must be at least 1, not {self.workers}")
        if self.chunksize < 1:
            raise ConfigError(f"chunksize must be at least 1, not {self.chunksize}")

    @property
    def mode(self) -> str:
        """``dask-mode`` (apply_to_fileset), else the Runner's executor name."""
        return "dask-mode" if self.dask_mode else self.executor
