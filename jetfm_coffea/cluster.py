"""Where and how the work runs: one :class:`Execution` for every job, and dask clients.

One :class:`Execution` is passed to every job that runs coffea or generates events, as
coffea passes one executor object to its ``Runner``: ``executor`` is one of
:data:`EXECUTORS` (coffea's Runner in virtual mode; for generation: this process, a
process pool, or dask), ``dask_mode`` switches a coffea job to ``apply_to_fileset``
with dask-awkward, ``scheduler`` / ``workers`` say where dask (or the process pool) runs
(:func:`dask_client`) and ``chunksize`` (default :data:`DEFAULT_CHUNKSIZE`) is the events
per coffea chunk, i.e. per shard. The default, ``Execution()``, is coffea's iterative
executor in this process. This module imports neither coffea nor dask (the CLI reads it).

:func:`dask_client` is the one owner of cluster start-up for every job that scales out
with dask: a ``LocalCluster`` started for the run, or an existing scheduler
(dask-jobqueue, coffea-casa, dask-gateway) given by its address. :func:`run_tasks` runs
independent tasks (event generation's chunks) where an :class:`Execution` says: here,
in a process pool or on dask, with progress reported from inside the tasks
(:func:`worker_report`).

>>> Execution(executor="futures", workers=4).workers
4
>>> Execution(executor="futures", scheduler="tcp://h:8786")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
jetfm_coffea.errors.ConfigError: a scheduler address (tcp://h:8786) needs executor ...
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import multiprocessing as mp
import queue
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from jetfm_coffea.errors import ConfigError

__all__ = [
    "DEFAULT_CHUNKSIZE",
    "EXECUTORS",
    "Execution",
    "Executor",
    "check_executor",
    "dask_client",
    "run_tasks",
    "worker_report",
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
        if self.scheduler and not (self.dask_mode or self.executor == "dask"):
            raise ConfigError(
                f"a scheduler address ({self.scheduler}) needs executor 'dask' or dask mode"
            )


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int = 2) -> Iterator[Any]:
    """A distributed client: to ``scheduler`` if given, else to a fresh LocalCluster.

    The LocalCluster has ``workers`` single-threaded worker processes and is closed on exit;
    its HTTP server (the dashboard, when bokeh is installed: ``client.dashboard_link``)
    listens on a free port.
    """
    # distributed is imported only when a cluster is asked for (it starts slowly)
    from distributed import Client, LocalCluster

    if scheduler:
        client = Client(scheduler)
        try:
            yield client
        finally:
            client.close()
        return
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",  # a free port: no clash (and no warning) beside another cluster
        silence_logs=logging.ERROR,
    )
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


# -- tasks run where an Execution says ------------------------------------------------------

_REPORT: Callable[[int], None] | None = None  # where worker_report sends progress here


def worker_report(n: int) -> None:
    """Progress ``n`` from inside a task of :func:`run_tasks`: passed on to its
    ``progress`` (through a queue from a pool worker); a no-op anywhere else."""
    if _REPORT is not None:
        _REPORT(n)


def _init_pool_worker(progress_queue: Any) -> None:
    global _REPORT
    _REPORT = progress_queue.put


def _drain(progress_queue: Any, progress: Callable[[int], None] | None) -> None:
    while True:
        try:
            n = progress_queue.get_nowait()
        except queue.Empty:
            return
        if progress is not None:
            progress(n)


def run_tasks(
    fn: Callable[[Any], Any],
    items: Iterable[Any],
    execution: Execution,
    *,
    progress: Callable[[int], None] | None = None,
    counted: Callable[[Any], int] | None = None,
) -> list[Any]:
    """``fn(item)`` for every item, where ``execution`` says; the results, in the order
    they finished.

    ``iterative`` (or one worker, or one item): here, one after the other. ``futures``: a
    spawn-based process pool of ``workers`` (``fn`` and the items must pickle; call from
    under ``if __name__ == "__main__":`` in scripts). ``dask``: one task per item on
    :func:`dask_client`. ``progress`` receives what tasks report with
    :func:`worker_report` (here and in a pool), or, on dask, ``counted(result)`` per
    finished task. ``dask_mode`` is a coffea mode: refused.
    """
    global _REPORT
    items = list(items)
    if execution.dask_mode:
        raise ConfigError("dask mode is for coffea jobs; use executor 'dask' for tasks")
    if not items:
        return []
    if execution.executor == "dask":
        from distributed import as_completed

        results = []
        with dask_client(execution.scheduler, min(execution.workers, len(items))) as client:
            for future in as_completed(client.map(fn, items, pure=False)):
                result = future.result()
                results.append(result)
                if progress is not None and counted is not None:
                    progress(counted(result))
        return results
    if execution.executor == "iterative" or execution.workers == 1 or len(items) == 1:
        before, _REPORT = _REPORT, progress
        try:
            return [fn(item) for item in items]
        finally:
            _REPORT = before
    ctx = mp.get_context("spawn")
    progress_queue = ctx.Queue()
    results = []
    pool = cf.ProcessPoolExecutor(
        max_workers=min(execution.workers, len(items)),
        mp_context=ctx,
        initializer=_init_pool_worker,
        initargs=(progress_queue,),
    )
    try:
        pending = {pool.submit(fn, item) for item in items}
        while pending:
            finished, pending = cf.wait(pending, timeout=0.2, return_when=cf.FIRST_COMPLETED)
            _drain(progress_queue, progress)
            results += [future.result() for future in finished]
        _drain(progress_queue, progress)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)
        progress_queue.close()
        progress_queue.join_thread()
    return results
