"""Run coffea processors: virtual mode through ``processor.Runner`` (iterative, futures or
dask executor) and dask mode through ``coffea.dataset_tools.apply_to_fileset``.

The executor vocabulary (``executor``, ``dask_mode``, ``scheduler``, ``workers``,
``chunksize``) is that of :mod:`jetfm_coffea.jobs.options`, shared by every job.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import dask
from coffea import processor
from coffea.dataset_tools import DataGroupSpec, apply_to_fileset, preprocess

from jetfm_coffea.cluster import dask_client
from jetfm_coffea.errors import JetFMError, NoInputProcessedError
from jetfm_coffea.fileset import BadFile, check_files, load_fileset
from jetfm_coffea.jobs.options import (
    DEFAULT_CHUNKSIZE,
    EXECUTORS,
    Executor,
    check_executor,
)
from jetfm_coffea.nanoevents import JetFMNanoAODSchema
from jetfm_coffea.selection.lumi import LumiPolicy

__all__ = [
    "DEFAULT_CHUNKSIZE",
    "EXECUTORS",
    "Executor",
    "RunReport",
    "check_executor",
    "coffea_executor",
    "domain_error",
    "run_dask_mode",
    "run_processor",
]


log = logging.getLogger(__name__)


@dataclass
class RunReport:
    """What a run read and what it left out."""

    mode: str
    files: int = 0
    events: int = 0
    bad_files: list[BadFile] = field(default_factory=list)


@contextlib.contextmanager
def coffea_executor(
    executor: Executor,
    workers: int = 2,
    scheduler: str | None = None,
    status: bool = True,
    retries: int | None = None,
    **dask_options: Any,
) -> Iterator[Any]:
    """The coffea executor for ``Runner``: iterative, futures (``workers`` processes) or dask.

    The dask executor runs on :func:`dask_client` (a LocalCluster of ``workers``
    processes, or ``scheduler``), closed on exit; ``dask_options`` go to
    ``processor.DaskExecutor`` (e.g. ``treereduction``). ``retries``: coffea's attempts
    after a failed chunk (None: coffea's default, 3).
    """
    check_executor(executor)
    options: dict[str, Any] = {"status": status}
    if retries is not None:
        options["retries"] = retries
    if executor == "iterative":
        yield processor.IterativeExecutor(**options)
    elif executor == "futures":
        yield processor.FuturesExecutor(workers=workers, **options)
    else:
        with dask_client(scheduler, workers) as client:
            yield processor.DaskExecutor(client=client, **options, **dask_options)


@contextlib.contextmanager
def _quiet(quiet: bool) -> Iterator[None]:
    """Silence coffea's progress bars for the block: its futures executor draws them
    whatever its ``status`` (they all go through ``coffea.util.coffea_console``)."""
    from coffea.util import coffea_console

    before = coffea_console.quiet
    coffea_console.quiet = quiet or before
    try:
        yield
    finally:
        coffea_console.quiet = before


def domain_error(err: BaseException) -> JetFMError | None:
    """The jetfm error behind ``err`` (coffea wraps a processor's exception in a bare
    ``Exception("Failed processing file ...")``), or None if there is none."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, JetFMError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


Required = Mapping[str, Sequence[str]] | None


def _prepare(
    fileset: Any,
    skip_bad_files: bool,
    required: Required = None,
    before_run: Callable[[dict], None] | None = None,
) -> tuple[dict, RunReport]:
    """Check every file (tree, branches ``required``); none usable: NoInputProcessedError."""
    fileset = load_fileset(fileset)
    for name, spec in fileset.items():  # collision data without a mask: refused up front
        LumiPolicy.from_metadata({**spec["metadata"], "dataset": name})
    check = check_files(fileset, skip_bad_files=skip_bad_files, required=required)
    if not check.fileset:
        raise NoInputProcessedError("fileset", [(b.path, b.reason) for b in check.bad])
    report = RunReport(mode="", files=len(check.entries), events=sum(check.entries.values()))
    report.bad_files = check.bad
    for bad in check.bad:
        log.warning("skipped %s (%s): %s", bad.path, bad.dataset, bad.reason)
    if before_run is not None:
        before_run(check.fileset)
    return check.fileset, report


def _unwrapped(run: Callable[[], Any]) -> Any:
    """Run ``run``; a jetfm error inside coffea's wrapping is raised as itself."""
    try:
        return run()
    except Exception as err:
        found = domain_error(err)
        if found is None or found is err:
            raise
        raise found from err


def run_processor(
    processor_instance: Any,
    fileset: Any,
    executor: Executor = "futures",
    scheduler: str | None = None,
    workers: int = 2,
    chunksize: int = DEFAULT_CHUNKSIZE,
    maxchunks: int | None = None,
    skip_bad_files: bool = False,
    status: bool = True,
    required: Required = None,
    before_run: Callable[[dict], None] | None = None,
) -> tuple[Any, RunReport]:
    """Run a coffea processor over a fileset in virtual mode with ``processor.Runner``.

    ``executor`` picks coffea's IterativeExecutor, FuturesExecutor (``workers``
    processes) or DaskExecutor (on a LocalCluster, or on ``scheduler``). Every file
    is opened once beforehand (its own tree name, the branches ``required``): a bad file
    raises :class:`InputFileError`, or with ``skip_bad_files`` is skipped and listed in the
    report; none usable raises :class:`NoInputProcessedError`. ``before_run`` is called
    with the usable fileset before any chunk runs.
    """
    check_executor(executor)
    good, report = _prepare(fileset, skip_bad_files, required, before_run)
    report.mode = f"virtual/{executor}"
    with coffea_executor(executor, workers, scheduler, status) as exe, _quiet(not status):
        # a fresh metadata cache: coffea's default one is process-wide and keyed by
        # (dataset, file, tree), so a second run over the same file would get the
        # fileset metadata (golden JSON, is_mc...) of the first one
        runner = processor.Runner(
            executor=exe,
            schema=JetFMNanoAODSchema,
            chunksize=chunksize,
            maxchunks=maxchunks,
            metadata_cache={},
        )
        # treename=None: each file's own tree name from the fileset
        out = _unwrapped(lambda: runner(good, processor_instance=processor_instance, treename=None))
        return out, report


def run_dask_mode(
    processor_instance: Any,
    fileset: Any,
    scheduler: str | None = None,
    workers: int = 2,
    chunksize: int = DEFAULT_CHUNKSIZE,
    skip_bad_files: bool = False,
    required: Required = None,
    before_run: Callable[[dict], None] | None = None,
) -> tuple[dict[str, Any], RunReport]:
    """Run a processor in dask mode: ``preprocess`` + ``apply_to_fileset`` + ``dask.compute``.

    Returns the outputs of every dataset merged (``coffea.processor.accumulate``), as
    ``processor.Runner`` returns them: a processor that keys its output by dataset gives
    ``{dataset: output}``, one that does not gives one merged output. ``postprocess``
    is not called (call it, or the processor's own finaliser, on the result).
    """
    good, report = _prepare(fileset, skip_bad_files, required, before_run)
    report.mode = "dask"
    with dask_client(scheduler, workers) as client:
        available, _ = preprocess(DataGroupSpec(good), step_size=chunksize)
        graphs = apply_to_fileset(processor_instance, available, schemaclass=JetFMNanoAODSchema)
        (computed,) = _unwrapped(lambda: dask.compute(graphs, scheduler=client.get))
    # apply_to_fileset keys each output by dataset: merge them as Runner does
    return processor.accumulate(computed.values()), report
