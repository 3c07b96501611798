"""The shard-build job: a fileset -> preflight, chunking, execution, manifest.

The chunk list is computed here, once, from each file's entry count (an even split into
``round(n / chunksize)`` ranges), for every execution mode, so the shard paths of a
virtual-mode run and of a dask-mode run over the same input are identical and a rerun,
in either mode, only writes the shards that are missing.
"""

from __future__ import annotations

import itertools
import time
import uuid as uuidlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import dask
from coffea import processor
from coffea.dataset_tools import apply_to_fileset
from coffea.processor.executor import WorkItem

from jetfm_coffea.cluster import DEFAULT_CHUNKSIZE, Execution, dask_client
from jetfm_coffea.config_base import config_data
from jetfm_coffea.errors import ConfigError, InputFileError, NoInputProcessedError
from jetfm_coffea.fileset import InputInfo, load_fileset, read_input
from jetfm_coffea.jobs.execution import coffea_executor, domain_error
from jetfm_coffea.nanoevents import JetFMNanoAODSchema
from jetfm_coffea.processors.shards import (
    PARTITIONS_KEY,
    ShardProcessor,
    empty_summary,
    merge_summaries,
)
from jetfm_coffea.selection.blinding import BlindingConfig
from jetfm_coffea.selection.chunk import check_resumed_selection, selection_signature
from jetfm_coffea.selection.datasheet import selection_by_dataset
from jetfm_coffea.selection.lumi import LumiPolicy, resolve_lumi_masks, warn_if_all_removed
from jetfm_coffea.shards.claims import claim_selection, read_claim
from jetfm_coffea.shards.format import SHARDS_DIR, safe_name
from jetfm_coffea.shards.shard import open_shard
from jetfm_coffea.shards.store import (
    ShardRecord,
    create_store,
    scan_shards,
    write_manifest,
)
from jetfm_coffea.shards.views import AugmentationPipelineLike, load_augmentation
from jetfm_coffea.shards.writer import ShardSource, shard_exists
from jetfm_coffea.tokens import TokenConfig, load_token_config
from jetfm_coffea.tokens.build import required_branches

__all__ = [
    "BuildSummary",
    "Chunk",
    "build_store",
    "dask_fileset",
    "load_build_config",
    "plan_chunks",
]


@dataclass(frozen=True)
class Chunk:
    """One entry range of one file: one shard."""

    dataset: str
    file: str
    treename: str
    uuid: str
    entry_start: int
    entry_stop: int
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def source(self) -> ShardSource:
        return ShardSource(
            self.dataset, self.file, self.uuid, self.entry_start, self.entry_stop, self.treename
        )


@dataclass
class BuildSummary:
    """What a build did: inputs, events per outcome, views, skipped files with reasons."""

    store: str
    files: int = 0
    chunks: int = 0
    events_in: int = 0
    events_written: int = 0
    events_existing: int = 0
    views_written: dict[str, int] = field(default_factory=dict)
    shards_written: int = 0
    shards_existing: int = 0
    skipped_files: list[tuple[str, str]] = field(default_factory=list)
    objects_dropped: int = 0  # written shards: objects with non-finite kinematics or pT < 0
    manifest_events: int = 0
    manifest_shards: int = 0
    elapsed_s: float = 0.0
    selection: dict[str, Any] = field(default_factory=dict)  # per dataset: lumi, blinding

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["skipped_files"] = [{"file": f, "reason": r} for f, r in self.skipped_files]
        return out


# ------------------------------------------------------------------------- inputs


def load_build_config(
    source: str | Path | dict[str, Any] | None,
) -> tuple[TokenConfig, AugmentationPipelineLike | None]:
    """Read a build config: YAML/dict with ``tokens:`` (TokenConfig) and ``augment:``."""
    if source is None:
        return load_token_config(None), None
    data = config_data(source, what="build config")
    unknown = set(data) - {"tokens", "augment", "blinding"}  # blinding: load_blinding
    if unknown:
        raise ConfigError(
            f"build config: unknown sections {sorted(unknown)} (tokens, augment, blinding)"
        )
    return load_token_config(data.get("tokens") or {}), load_augmentation(data.get("augment"))


def plan_chunks(
    fileset: dict[str, dict[str, Any]],
    chunksize: int = DEFAULT_CHUNKSIZE,
    token_config: TokenConfig | None = None,
) -> tuple[list[Chunk], list[tuple[str, str]]]:
    """Split every readable file into even entry ranges; list unusable files with reasons.

    Each file is opened once (:func:`jetfm_coffea.fileset.read_input`, up to 8 files at
    a time): a local path that is not a regular file is refused before any open, the
    event tree may be a TTree or an RNTuple, and a file lacking a collection of
    ``token_config`` (default tokens) or the event ids is skipped with a reason naming
    every missing collection. Checking the branches reads the tree's branch list (on a
    full NanoAOD file about as long as one chunk's open by coffea): the price of one clear
    reason per file instead of a failure in the middle of the build.
    """
    if chunksize < 1:
        raise ConfigError("chunksize must be >= 1")
    required = required_branches(token_config)
    jobs = [(d, path, tree) for d, spec in fileset.items() for path, tree in spec["files"].items()]

    def check(job: tuple[str, str, str]) -> InputInfo | str:
        try:
            return read_input(job[1], job[2], required)
        except InputFileError as err:
            return err.reason

    with ThreadPoolExecutor(max_workers=max(1, min(8, len(jobs)))) as pool:
        found_all = list(pool.map(check, jobs))
    chunks, skipped = [], []
    for (dataset, path, tree), found in zip(jobs, found_all, strict=True):
        spec = fileset[dataset]
        if isinstance(found, str):
            skipped.append((path, found))
            continue
        n, fuuid = found.n_entries, found.uuid
        k = max(1, round(n / chunksize))
        edges = [i * n // k for i in range(k + 1)]
        chunks.extend(
            Chunk(dataset, path, tree, fuuid, a, b, spec["metadata"])
            for a, b in itertools.pairwise(edges)
        )
    return chunks, skipped


def dask_fileset(chunks: list[Chunk]) -> dict[str, dict[str, Any]]:
    """A coffea ``apply_to_fileset`` fileset with explicit steps and the partition table."""
    out: dict[str, dict[str, Any]] = {}
    for c in chunks:
        ds = out.setdefault(
            c.dataset, {"files": {}, "metadata": {**c.metadata, PARTITIONS_KEY: []}, "form": None}
        )
        entry = ds["files"].setdefault(
            c.file, {"object_path": c.treename, "steps": [], "uuid": c.uuid}
        )
        entry["steps"].append([c.entry_start, c.entry_stop])
    # partition order of uproot.dask: files in order, then their steps
    for ds in out.values():
        table = ds["metadata"][PARTITIONS_KEY]
        for fname, entry in ds["files"].items():
            for a, b in entry["steps"]:
                table.append(
                    {
                        "file": fname,
                        "uuid": entry["uuid"],
                        "treename": entry["object_path"],
                        "entry_start": a,
                        "entry_stop": b,
                    }
                )
    return out


# ------------------------------------------------------------------------- execution


def _run_virtual(
    chunks: list[Chunk], proc: Any, execution: Execution, status: bool
) -> dict[str, Any]:
    items = [
        WorkItem(
            dataset=c.dataset,
            filename=c.file,
            treename=c.treename,
            entrystart=c.entry_start,
            entrystop=c.entry_stop,
            fileuuid=uuidlib.UUID(c.uuid).bytes,
            usermeta=dict(c.metadata) or None,
        )
        for c in chunks
    ]

    dask_options = {"treereduction": 8} if execution.executor == "dask" else {}
    # no retries: the inputs were checked when planning, what fails now fails again
    # (a rerun resumes: complete shards are kept)
    with coffea_executor(execution, status, retries=0, **dask_options) as ex:
        runner = processor.Runner(executor=ex, schema=JetFMNanoAODSchema, savemetrics=False)
        return runner(items, proc)


def _run_dask(chunks: list[Chunk], proc: Any, execution: Execution) -> dict[str, Any]:
    out = apply_to_fileset(proc, dask_fileset(chunks), schemaclass=JetFMNanoAODSchema)
    tasks = [t for dataset_tasks in out.values() for t in dataset_tasks]
    if not (execution.scheduler or execution.workers > 1):
        (results,) = dask.compute(tasks, scheduler="sync")
    else:
        with dask_client(execution.scheduler, execution.workers) as client:
            results = client.gather(client.compute(tasks))
    return merge_summaries(results)


def _check_resumed(root: Path, existing: list[Chunk], blinding: BlindingConfig | None) -> None:
    """Shards kept on resume were selected (lumi mask, blinding) as this build would."""
    for c in existing:
        policy = LumiPolicy.from_metadata({**c.metadata, "dataset": c.dataset})
        attrs = open_shard(root, c.source.path, full_check=False).attrs
        check_resumed_selection(c.source.path, attrs.get("selection"), policy, blinding)


def _refuse_duplicate_inputs(root: Path, chunks: list[Chunk]) -> None:
    """Refuse an input file (by its ROOT uuid) listed twice, or already in another dataset.

    The same file in two datasets (or twice under two paths) would put its events into
    the store twice, and could put one event into both the training and the test split.
    """
    seen: dict[str, Chunk] = {}
    for c in chunks:
        first = seen.setdefault(c.uuid, c)
        if first.file != c.file or first.dataset != c.dataset:
            where = "twice in dataset" if first.dataset == c.dataset else "in datasets"
            names = (
                repr(c.dataset)
                if first.dataset == c.dataset
                else (f"{first.dataset!r} and {c.dataset!r}")
            )
            raise ConfigError(
                f"input file {c.file} is the same file (ROOT uuid {c.uuid}) as {first.file}, "
                f"listed {where} {names}: its events would be stored twice; list it once"
            )
    base = root / SHARDS_DIR
    if not base.is_dir():
        return
    for dataset_dir in base.iterdir():
        for c in seen.values():
            if (
                dataset_dir.name != safe_name(c.dataset)
                and (dataset_dir / safe_name(c.uuid)).is_dir()
            ):
                raise ConfigError(
                    f"input file {c.file} (ROOT uuid {c.uuid}) of dataset {c.dataset!r} is "
                    f"already in the store {root} as dataset {dataset_dir.name!r}: its "
                    "events would be stored twice; list it under one dataset only"
                )


def _policies(files: dict[str, dict[str, Any]]) -> dict[str, LumiPolicy]:
    return {
        name: LumiPolicy.from_metadata({**spec["metadata"], "dataset": name})
        for name, spec in files.items()
    }


def _check_unclaimed(
    root: Path, policies: dict[str, LumiPolicy], blinding: BlindingConfig | None
) -> None:
    """Shards of a dataset without a claim (stores built before claims) match this build."""
    dirs = {safe_name(name): name for name in policies if read_claim(root, name) is None}
    for path in scan_shards(root):
        name = dirs.get(path.split("/")[1])
        if name is not None:
            attrs = open_shard(root, path, full_check=False).attrs
            check_resumed_selection(path, attrs.get("selection"), policies[name], blinding)


def _claim_selections(
    root: Path, policies: dict[str, LumiPolicy], blinding: BlindingConfig | None, replace: bool
) -> None:
    """Claim each dataset's selection in the store before any shard is written.

    A store holds one selection per dataset (:mod:`jetfm_coffea.shards.claims`): a
    build with another one is refused here, and its workers check again at each commit.
    """
    for name, policy in policies.items():
        claim_selection(root, name, selection_signature(policy, blinding), replace=replace)


def _selection_check(
    policies: dict[str, LumiPolicy], blinding: BlindingConfig | None
) -> Callable[[ShardRecord], None]:
    """Before the manifest: every shard of this build's datasets has its selection."""

    def check(record: ShardRecord) -> None:
        policy = policies.get(record.dataset)
        if policy is not None:
            check_resumed_selection(record.path, record.selection, policy, blinding)

    return check


def build_store(
    fileset: str | Path | dict[str, Any],
    out: str | Path,
    *,
    token_config: TokenConfig | None = None,
    augmentation: AugmentationPipelineLike | dict[str, Any] | None = None,
    execution: Execution | None = None,
    if_exists: Literal["skip", "overwrite"] = "skip",
    status: bool = False,
    on_plan: Callable[[list[Chunk], list[Chunk]], None] | None = None,
    lumi_mask: str | Path | None = None,
    no_lumi_mask: bool = False,
    blinding: BlindingConfig | None = None,
) -> BuildSummary:
    """Build (or complete) the shard store ``out`` from ``fileset``.

    Unreadable files are skipped and reported with their reason; chunks whose shard
    is already complete are not scheduled (resume); the manifest is written after all
    shards. ``execution`` (:class:`~jetfm_coffea.cluster.Execution`, default
    iterative) says how: coffea's Runner with its executor, or in dask mode
    ``apply_to_fileset`` and dask-awkward (a LocalCluster of ``workers`` processes, or
    the ``scheduler`` address); its ``chunksize`` is the events per shard.

    Collision data are restricted to certified luminosity sections (the golden JSON of
    the fileset metadata, or ``lumi_mask`` for every dataset that is not simulation;
    ``no_lumi_mask`` opts out, recorded) and events in ``blinding`` regions are left
    out; see :mod:`jetfm_coffea.selection`. A store holds one selection per dataset
    (:mod:`jetfm_coffea.shards.claims`): a build with another is refused, also while it
    runs. An input file (by ROOT uuid) listed twice, or already in the store under
    another dataset, is refused (its events would be stored twice).
    """
    start = time.perf_counter()
    execution = execution or Execution()
    token_config = load_token_config(token_config)
    pipeline = load_augmentation(augmentation)
    files = resolve_lumi_masks(load_fileset(fileset), lumi_mask, no_lumi_mask)
    if blinding is not None:
        blinding.check(token_config)
    chunks, skipped = plan_chunks(files, execution.chunksize, token_config)
    if not chunks:  # nothing to build from: no store, no valid-looking empty manifest
        raise NoInputProcessedError(
            str(fileset) if not isinstance(fileset, dict) else "fileset", skipped
        )
    root = create_store(out, token_config, pipeline)
    policies = _policies(files)
    if if_exists == "skip":
        _check_unclaimed(root, policies, blinding)
    _refuse_duplicate_inputs(root, chunks)
    todo = chunks
    if if_exists == "skip":
        todo = [c for c in chunks if not shard_exists(root, c.source.path)]
    _check_resumed(root, [c for c in chunks if c not in set(todo)], blinding)
    _claim_selections(root, policies, blinding, replace=if_exists == "overwrite")
    if on_plan is not None:
        on_plan(chunks, todo)
    proc = ShardProcessor(root, token_config, pipeline, if_exists=if_exists, blinding=blinding)
    result = empty_summary()
    if todo:
        try:
            if execution.dask_mode:
                result = _run_dask(todo, proc, execution)
            else:
                result = _run_virtual(todo, proc, execution, status)
        except Exception as err:  # coffea wraps the processor's errors: raise ours as such
            found = domain_error(err)
            if found is None or found is err:
                raise
            raise found from err
    existing = [c for c in chunks if c not in set(todo)]
    n_existing = sum(c.entry_stop - c.entry_start for c in existing)
    manifest = write_manifest(root, check=_selection_check(policies, blinding))
    selection = selection_by_dataset(manifest["shards"])
    for name, sel in selection.items():
        if sel["certified"] is not None:
            cert = sel["certified"]
            warn_if_all_removed(name, sel["events_read"], cert["events_kept"], cert["runs_dropped"])
    return BuildSummary(
        store=str(root),
        files=sum(len(s["files"]) for s in files.values()),
        chunks=len(chunks),
        events_in=sum(sel["events_read"] for sel in selection.values()),  # before selection
        events_written=result["events_written"],
        events_existing=result["events_existing"] + n_existing,
        views_written={k: int(v) for k, v in sorted(result["views_written"].items())},
        shards_written=result["shards_written"],
        shards_existing=result["shards_existing"] + len(existing),
        skipped_files=skipped,
        objects_dropped=int(result.get("objects_dropped", 0)),
        manifest_events=manifest["n_events"],
        manifest_shards=manifest["n_shards"],
        elapsed_s=time.perf_counter() - start,
        selection=selection,
    )
