"""The execution vocabulary of every job and command (no coffea import: the CLI reads it).

``executor`` is one of :data:`EXECUTORS` (coffea's Runner in virtual mode), ``dask_mode``
switches to ``apply_to_fileset`` with dask-awkward, ``scheduler`` / ``workers`` say where
dask runs (:func:`jetfm_coffea.cluster.dask_client`) and ``chunksize`` (default
:data:`DEFAULT_CHUNKSIZE`) is the events per coffea chunk, i.e. per shard.
"""

from __future__ import annotations

from typing import Literal

from jetfm_coffea.errors import ConfigError

__all__ = [
    "DEFAULT_CHUNKSIZE",
    "EXECUTORS",
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
