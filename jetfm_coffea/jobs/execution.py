"""Run coffea processors: :func:`run_coffea` takes one :class:`Execution`
(:mod:`jetfm_coffea.cluster`, shared by every job) and runs virtual mode through
``processor.Runner`` (iterative, futures or dask executor) or dask mode through
``coffea.dataset_tools.apply_to_fileset``.
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

from jetfm_coffea.cluster import Execution, dask_client
from jetfm_coffea.errors import JetFMError, NoInputProcessedError
from jetfm_coffea.fileset import BadFile, check_files, load_fileset
from jetfm_coffea.nanoevents import JetFMNanoAODSchema
from jetfm_coffea.selection.lumi import LumiPolicy

__all__ = [
    "RunReport",
    "coffea_executor",
    "domain_error",
    "run_coffea",
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
    execution: Execution,
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
    options: dict[str, Any] = {"status": status}
    if retries is not None:
        options["retries"] = retries
    if execution.executor == "iterative":
        yield processor.IterativeExecutor(**options)
    elif execution.executor == "futures":
        yield processor.FuturesExecutor(workers=execution.workers, **options)
    else:
        with dask_client(execution.scheduler, execution.workers) as client:
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


def run_coffea(
    processor_instance: Any,
    fileset: Any,
    execution: Execution | None = None,
    *,
    maxchunks: int | None = None,
    skip_bad_files: bool = False,
    status: bool = True,
    required: Required = None,
    before_run: Callable[[dict], None] | None = None,
) -> tuple[Any, RunReport]:
    """Run a coffea processor over a fileset as ``execution`` says (default: iterative).

    Every file is opened once beforehand (its own tree name, the branches ``required``):
    a bad file raises :class:`InputFileError`, or with ``skip_bad_files`` is skipped and
    listed in the report; none usable raises :class:`NoInputProcessedError`.
    ``before_run`` is called with the usable fileset before any chunk runs.

    Virtual mode (``processor.Runner`` with the execution's executor) returns the
    processor's ``postprocess``-ed output. Dask mode (``preprocess`` +
    ``apply_to_fileset`` + ``dask.compute``, on a LocalCluster of ``workers`` or the
    ``scheduler``) returns the outputs of every dataset merged
    (``coffea.processor.accumulate``), as ``Runner`` does, without calling
    ``postprocess`` (call it, or the processor's own finaliser, on the result);
    ``maxchunks`` applies to virtual mode only.
    """
    execution = execution or Execution()
    good, report = _prepare(fileset, skip_bad_files, required, before_run)
    if execution.dask_mode:
        report.mode = "dask"
        with dask_client(execution.scheduler, execution.workers) as client:
            available, _ = preprocess(DataGroupSpec(good), step_size=execution.chunksize)
            graphs = apply_to_fileset(processor_instance, available, schemaclass=JetFMNanoAODSchema)
            (computed,) = _unwrapped(lambda: dask.compute(graphs, scheduler=client.get))
        # apply_to_fileset keys each output by dataset: merge them as Runner does
        return processor.accumulate(computed.values()), report
    report.mode = f"virtual/{execution.executor}"
    with coffea_executor(execution, status) as exe, _quiet(not status):
        # a fresh metadata cache: coffea's default one is process-wide and keyed by
        # (dataset, file, tree), so a second run over the same file would get the
        # fileset metadata (golden JSON, is_mc...) of the first one
        runner = processor.Runner(
            executor=exe,
            schema=JetFMNanoAODSchema,
            chunksize=execution.chunksize,
            maxchunks=maxchunks,
            metadata_cache={},
        )
        # treename=None: each file's own tree name from the fileset
        out = _unwrapped(lambda: runner(good, processor_instance=processor_instance, treename=None))
        return out, report
