"""The Python API of the generator: Pythia 8 -> detector -> NanoAOD files + coffea fileset.

>>> from jetfm_coffea.generate import generate
>>> from jetfm_coffea.cluster import Execution
>>> two = Execution("futures", workers=2)
>>> result = generate("zjets", 1000, sqrts=8000, seed=7, out="gen", execution=two)  # doctest: +SKIP
>>> result.fileset()  # doctest: +SKIP
{'zjets_8TeV': {'files': {'/abs/gen/zjets_8TeV_s7_000.root': 'Events'}, 'metadata': {...}}}

Work is split into ``n_chunks = max(workers, ceil(n_events / events_per_file))``
chunks (jobs), one output file each.  Chunk ``i`` has its own Pythia seed and detector
random stream, both derived from ``numpy.random.SeedSequence(seed, spawn_key=(i,))``, so
running again with the same arguments gives identical events, whatever the scheduling
and executor of the :class:`~jetfm_coffea.cluster.Execution`: ``iterative`` (the
chunks one after the other in this process), ``futures`` (a spawn-based process pool of
``workers`` on this machine) or ``dask`` (a ``LocalCluster`` of ``workers`` processes,
or the scheduler at ``scheduler``). ``workers`` also sets the least number of chunks.

A finished chunk leaves ``<file>.done.json`` beside its file (its numbers and the
settings that made it).  With ``resume=True`` a chunk whose marker matches is not
generated again, so an interrupted large sample continues where it stopped; an
interrupted run removes only the files of unfinished chunks.
"""

from __future__ import annotations

import json
import math
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from jetfm_coffea._optional import import_optional
from jetfm_coffea.atomic import atomic_write_json
from jetfm_coffea.cluster import Execution, run_tasks, worker_report
from jetfm_coffea.errors import ConfigError, JetFMError
from jetfm_coffea.generate.detector import DetectorConfig, simulate
from jetfm_coffea.generate.nanoaod_writer import NanoAODWriter
from jetfm_coffea.generate.processes import (
    PROCESSES,
    SQRTS_CHOICES,
    TRUTH_FILTERS,
    pythia_settings,
)
from jetfm_coffea.generate.resim import (
    RESIM_COPY,
    RESIM_GROUP,
    align_to_hard,
    copy_seed,
    copy_settings,
    hard_level_settings,
    resim_group_id,
    shower_settings,
    validate_resim,
    write_hard_events,
)
from jetfm_coffea.generate.targets import truth_targets

__all__ = [
    "GenerationResult",
    "chunk_seeds",
    "dataset_name",
    "generate",
    "make_pythia",
    "result_summary",
    "validate_request",
]

MB_TO_PB = 1e9
"""Pythia reports cross-sections in mb."""

GENERATOR = "pythia8mc 8.317.2 + fastjet + jetfm parametric CMS-like detector v1"


@dataclass
class GenerationResult:
    """What :func:`generate` produced."""

    process: str
    dataset: str
    label: int
    sqrts: int
    seed: int
    n_events: int
    files: list[Path]
    fileset_path: Path
    xsec_pb: float
    xsec_err_pb: float
    wall_time_s: float
    workers: int
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def events_per_second(self) -> float:
        """Overall rate, all workers together."""
        return self.n_events / self.wall_time_s if self.wall_time_s > 0 else float("nan")

    def fileset(self) -> dict[str, Any]:
        """The coffea fileset of this run: ``{dataset: {"files": ..., "metadata": ...}}``."""
        return {
            self.dataset: {
                "files": {str(p): "Events" for p in self.files},
                "metadata": dict(self.metadata),
            }
        }


def dataset_name(process: str, sqrts: int) -> str:
    """Dataset name of a process at ``sqrts`` GeV, e.g. ``ttbar_13p6TeV``."""
    tev = f"{sqrts / 1000:g}".replace(".", "p")
    return f"{process}_{tev}TeV"


def chunk_seeds(seed: int, chunk: int) -> tuple[int, np.random.SeedSequence]:
    """Pythia seed (1..900000000) and detector seed sequence of chunk ``chunk``."""
    ss = np.random.SeedSequence(int(seed), spawn_key=(int(chunk),))
    pythia_seed = int(ss.generate_state(1, dtype=np.uint32)[0]) % 900_000_000 + 1
    return pythia_seed, ss.spawn(1)[0]


def make_pythia(settings: list[str]) -> Any:
    """A quiet, initialised ``pythia8mc.Pythia`` with ``settings``."""
    pythia8mc = import_optional("pythia8mc")
    pythia = pythia8mc.Pythia("", False)
    for line in settings:
        if not pythia.readString(line):
            raise ConfigError(f"Pythia rejected the setting {line!r}")
    if not pythia.init():
        raise JetFMError("Pythia initialisation failed for settings: " + "; ".join(settings))
    return pythia


def validate_request(
    process: str,
    n_events: int,
    sqrts: int,
    seed: int,
    out: str | os.PathLike[str],
    workers: int,
    pthat_min: float | None = None,
    pthat_max: float | None = None,
    pythia_extra: Sequence[str] = (),
) -> Path:
    """Check every argument of :func:`generate`; create and return the output folder.

    Raises :class:`~jetfm_coffea.errors.ConfigError` before any event is generated.
    """
    PROCESSES[process]
    if isinstance(n_events, bool) or not isinstance(n_events, (int, np.integer)) or n_events <= 0:
        raise ConfigError(f"the number of events must be a positive integer, got {n_events!r}")
    if sqrts not in SQRTS_CHOICES:
        raise ConfigError(f"sqrts must be one of {SQRTS_CHOICES} GeV, got {sqrts!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"the seed must be a non-negative integer, got {seed!r}")
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ConfigError(f"workers must be a positive integer, got {workers!r}")
    if pthat_min is not None and pthat_min < 0:
        raise ConfigError(f"pthat_min must be >= 0, got {pthat_min}")
    if pthat_max is not None and pthat_min is not None and pthat_max <= pthat_min:
        raise ConfigError(f"pthat_max ({pthat_max}) must exceed pthat_min ({pthat_min})")
    if pythia_extra:
        pythia8mc = import_optional("pythia8mc")
        probe_pythia = pythia8mc.Pythia("", False)
        probe_pythia.readString("Print:quiet = on")
        for line in pythia_extra:
            if not probe_pythia.readString(line):
                raise ConfigError(f"Pythia rejected the setting {line!r}")
    out_dir = Path(out)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".jetfm-write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ConfigError(f"output folder {str(out_dir)!r} is not writable: {err}") from err
    return out_dir.resolve()


# ----------------------------------------------------------------------------- workers


@dataclass(frozen=True)
class _Chunk:
    index: int
    first_event: int
    n_events: int
    path: str
    settings: tuple[str, ...]
    seed: int
    pfcands: bool
    batch_size: int
    truth_filter: str | None = None
    #: re-simulation: the Pythia seed and extra settings of each shower copy (empty: off)
    copy_seeds: tuple[int, ...] = ()
    copy_extra: tuple[tuple[str, ...], ...] = ()


def _marker(chunk: _Chunk) -> Path:
    return Path(chunk.path + ".done.json")


def _signature(chunk: _Chunk) -> dict[str, Any]:
    """What makes a chunk's events: equal signatures, identical files."""
    return {
        "index": chunk.index,
        "first_event": chunk.first_event,
        "n_events": chunk.n_events,
        "settings": list(chunk.settings),
        "seed": chunk.seed,
        "pfcands": chunk.pfcands,
        "truth_filter": chunk.truth_filter,
        "generator": GENERATOR,
        **(
            {
                "copy_seeds": list(chunk.copy_seeds),
                "copy_extra": [list(e) for e in chunk.copy_extra],
            }
            if chunk.copy_seeds
            else {}
        ),
    }


#: The namespace of generated files' UUIDs (:func:`_chunk_uuid`).
_UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://jetfm-coffea/generate")


def _chunk_uuid(chunk: _Chunk) -> uuid.UUID:
    """The ROOT UUID of a chunk's file: a name-based UUID of its signature.

    Equal signatures make identical events, so they get the same UUID and a shard store
    (whose shards are named and ordered by the input file's UUID, and which refuses one
    file in two datasets) sees a regenerated file as the file it is. A time-based UUID
    would reorder a sample's files in the store from one generation to the next, and with
    them every seeded shuffle of the same events.
    """
    return uuid.uuid5(_UUID_NAMESPACE, json.dumps(_signature(chunk), sort_keys=True))


def _finished(chunk: _Chunk) -> dict[str, Any] | None:
    """The result of a finished chunk with the same signature, else None."""
    try:
        done = json.loads(_marker(chunk).read_text())
    except (OSError, ValueError):
        return None
    if done.get("signature") != _signature(chunk) or not Path(chunk.path).is_file():
        return None
    return done["result"]


def _run_chunk(chunk: _Chunk, report: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Generate, simulate and write one chunk (then its ``.done.json`` marker); returns
    its cross-section and counts."""
    if chunk.copy_seeds:
        return _run_resim_chunk(chunk, report)
    _, det_ss = chunk_seeds(chunk.seed, chunk.index)
    pythia = make_pythia(list(chunk.settings))
    rng = np.random.default_rng(det_ss)
    config = DetectorConfig(pfcands=chunk.pfcands)
    keep = TRUTH_FILTERS[chunk.truth_filter] if chunk.truth_filter else None
    done, failures, tried = 0, 0, 0
    with NanoAODWriter(chunk.path, uuid=_chunk_uuid(chunk)) as writer:
        while done < chunk.n_events:
            want = min(chunk.batch_size, chunk.n_events - done)
            batch = pythia.nextBatch(want)
            tried += len(batch)
            if keep is not None and len(batch):
                batch = batch[keep(batch["prt"])][:want]
            got = len(batch)
            if got == 0:
                failures += 1
                if failures > 10 + (1000 if keep is not None else 0):
                    raise JetFMError("Pythia keeps failing to generate events")
                continue
            branches = simulate(batch, rng, config)
            event = np.arange(chunk.first_event + done, chunk.first_event + done + got) + 1
            weights = batch["info", "weights"]
            branches = {
                "run": np.ones(got, dtype=np.uint32),
                "luminosityBlock": (1 + (event - 1) // 1000).astype(np.uint32),
                "event": event.astype(np.uint64),
                "genWeight": np.asarray(weights[:, 0], dtype=np.float32),
                **branches,
                **truth_targets(batch["prt"]),  # GenTarget_*: regression targets
            }
            writer.write(branches)
            done += got
            (report or worker_report)(got)
    info = pythia.infoPython()
    efficiency = done / tried if tried else 1.0  # truth filter; 1 without one
    result = {
        "index": chunk.index,
        "path": chunk.path,
        "n_events": done,
        "n_tried": tried,
        "sigma_pb": info.sigmaGen() * MB_TO_PB * efficiency,
        "sigma_err_pb": info.sigmaErr() * MB_TO_PB * efficiency,
    }
    _write_json(_marker(chunk), {"signature": _signature(chunk), "result": result})
    return result


def _run_resim_chunk(chunk: _Chunk, report: Callable[[int], None] | None) -> dict[str, Any]:
    """Re-simulation chunk (see :mod:`.resim`): the hard events once into a Les Houches
    file, then K shower instances read it in step; the copies of a hard event are written
    next to each other (ordered by ``resim_group``, then ``resim_copy``)."""
    _, det_ss = chunk_seeds(chunk.seed, chunk.index)
    rng = np.random.default_rng(det_ss)
    config = DetectorConfig(pfcands=chunk.pfcands)
    path = Path(chunk.path)
    lhef = path.with_name(f".{path.name}.{os.getpid()}.lhe")
    n_copies = len(chunk.copy_seeds)
    hard = make_pythia(hard_level_settings(chunk.settings))
    try:
        x_hard = write_hard_events(hard, chunk.n_events, lhef)
        info = hard.infoPython()
        sigma, sigma_err = info.sigmaGen() * MB_TO_PB, info.sigmaErr() * MB_TO_PB
        del hard
        showers = [
            make_pythia(shower_settings(lhef, seed, extra))
            for seed, extra in zip(chunk.copy_seeds, chunk.copy_extra, strict=True)
        ]
        next_hard = [0] * n_copies  # the next hard event each copy reads
        pending: list[dict[str, Any]] = []
        written = 0
        with NanoAODWriter(chunk.path, uuid=_chunk_uuid(chunk)) as writer:
            while pending or any(n < chunk.n_events for n in next_hard):
                for k, shower in enumerate(showers):
                    if next_hard[k] >= chunk.n_events:
                        continue
                    batch = shower.nextBatch(min(chunk.batch_size, chunk.n_events - next_hard[k]))
                    if len(batch) == 0:  # end of the Les Houches file
                        next_hard[k] = chunk.n_events
                        continue
                    x_copy = np.stack(
                        [np.asarray(batch["info", "x1"]), np.asarray(batch["info", "x2"])], axis=1
                    )
                    hard_index = align_to_hard(x_copy, x_hard, next_hard[k])
                    next_hard[k] = int(hard_index[-1]) + 1
                    pending.append(_copy_branches(batch, rng, config, chunk, hard_index, k))
                # every copy is past the hard events below the frontier: write their groups
                frontier = resim_group_id(chunk.seed, chunk.first_event + min(next_hard) + 1)
                ready, pending = _split_ready(pending, frontier)
                if ready is not None:
                    writer.write(ready)
                    got = len(ready["event"])
                    written += got
                    (report or worker_report)(got)
        del showers
    finally:
        lhef.unlink(missing_ok=True)
    result = {
        "index": chunk.index,
        "path": chunk.path,
        "n_events": written,
        "n_tried": written,
        "sigma_pb": sigma,
        "sigma_err_pb": sigma_err,
    }
    _write_json(_marker(chunk), {"signature": _signature(chunk), "result": result})
    return result


def _copy_branches(
    batch: Any,
    rng: np.random.Generator,
    config: DetectorConfig,
    chunk: _Chunk,
    hard_index: np.ndarray,
    copy: int,
) -> dict[str, Any]:
    """The NanoAOD branches of one shower batch of copy ``copy`` (ids, weights, detector, truth)."""
    got = len(batch)
    hard_event = chunk.first_event + hard_index + 1
    group = resim_group_id(chunk.seed, hard_event)
    event = (hard_event - 1) * len(chunk.copy_seeds) + copy + 1
    return {
        "run": np.ones(got, dtype=np.uint32),
        "luminosityBlock": (1 + (event - 1) // 1000).astype(np.uint32),
        "event": event.astype(np.uint64),
        "genWeight": np.asarray(batch["info", "weights"][:, 0], dtype=np.float32),
        RESIM_GROUP: group.astype(np.uint64),
        RESIM_COPY: np.full(got, copy, dtype=np.int32),
        **simulate(batch, rng, config),
        **truth_targets(batch["prt"]),  # GenTarget_*: regression targets, as in _run_chunk
    }


def _split_ready(
    pending: list[dict[str, Any]], frontier: int
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """``(events of the groups below frontier ordered by group then copy, the rest)``."""
    if not pending:
        return None, []
    keys = pending[0].keys()
    merged = {
        key: (np.concatenate if isinstance(pending[0][key], np.ndarray) else ak.concatenate)(
            [part[key] for part in pending]
        )
        for key in keys
    }
    group = merged[RESIM_GROUP].astype(np.int64)
    order = np.lexsort((merged[RESIM_COPY], group))
    ready = order[group[order] < frontier]
    rest = order[group[order] >= frontier]
    out = {key: value[ready] for key, value in merged.items()} if len(ready) else None
    left = [{key: value[rest] for key, value in merged.items()}] if len(rest) else []
    return out, left


# ----------------------------------------------------------------------------- API


def _write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_json(path, data, indent=2)


_SAME_SAMPLE_KEYS = (
    "process",
    "sqrts",
    "pthat_min",
    "pthat_max",
    "pfcands",
    "pythia_extra",
    "resim",
    "resim_variations",
)


def _merge_fileset(path: Path, entry: dict[str, Any]) -> None:
    """Add ``entry`` to the folder-wide ``fileset.json`` (created when missing).

    Runs of the same sample (same process, √s, p̂T range, options) with different seeds
    are combined into one dataset: files are joined, ``nevents``/``sumw`` added and the
    cross-section averaged with event-count weights; ``metadata["runs"]`` keeps each
    seed's numbers.  A rerun with the same seed replaces that seed's run.
    """
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = {}
    for name, new in entry.items():
        meta = new["metadata"]
        run = {
            "files": list(new["files"]),
            "nevents": meta["nevents"],
            "xsec_pb": meta["xsec_pb"],
            "xsec_err_pb": meta["xsec_err_pb"],
        }
        runs = {str(meta["seed"]): run}
        old = data.get(name)
        if old is not None and all(
            old["metadata"].get(k) == meta.get(k) for k in _SAME_SAMPLE_KEYS
        ):
            runs = {**old["metadata"].get("runs", {}), **runs}
            runs = {
                seed: r for seed, r in runs.items() if all(Path(f).exists() for f in r["files"])
            }
        n = sum(r["nevents"] for r in runs.values())
        merged = dict(meta)
        merged.update(
            nevents=n,
            sumw=float(n),
            xsec_pb=sum(r["nevents"] * r["xsec_pb"] for r in runs.values()) / n,
            xsec_err_pb=math.sqrt(
                sum((r["nevents"] * r["xsec_err_pb"]) ** 2 for r in runs.values())
            )
            / n,
            seed=sorted(int(k) for k in runs) if len(runs) > 1 else meta["seed"],
            runs=runs,
        )
        files = {f: "Events" for r in runs.values() for f in r["files"]}
        data[name] = {"files": files, "metadata": merged}
    _write_json(path, data)


def generate(
    process: str,
    n_events: int,
    sqrts: int = 13000,
    seed: int = 1,
    out: str | os.PathLike[str] = ".",
    *,
    execution: Execution | None = None,
    pthat_min: float | None = None,
    pthat_max: float | None = None,
    pfcands: bool = False,
    pythia_extra: Sequence[str] = (),
    batch_size: int = 250,
    events_per_file: int = 100_000,
    progress: Callable[[int], None] | None = None,
    resume: bool = False,
    resim: int | None = None,
    resim_variations: str | os.PathLike[str] | None = None,
) -> GenerationResult:
    """Generate ``n_events`` of ``process`` at ``sqrts`` GeV into NanoAOD files under ``out``.

    Writes ``<dataset>_s<seed>_<chunk>.root`` files, ``<dataset>_s<seed>.fileset.json``
    and merges the entry into ``out/fileset.json`` (runs with other seeds of the same
    sample are combined there).  ``progress`` is called with the
    number of events finished after every batch; ``pythia_extra`` settings are passed to
    Pythia after the process settings (they are recorded in the metadata).  All arguments
    are checked (raising :class:`~jetfm_coffea.errors.ConfigError`) before generation
    starts.  ``execution`` (default: one worker, this process) says where the chunks
    run; with the ``futures`` executor and ``workers > 1`` the worker processes are
    *spawned*: call ``generate`` from under ``if __name__ == "__main__":`` in scripts.
    ``dask_mode`` (a coffea mode) is refused. ``resume``: keep the chunks a previous
    identical run finished.

    ``resim=K`` (K >= 2): re-simulation (:mod:`.resim`): each of the ``n_events`` hard
    events is showered, hadronised and simulated K times (``K * n_events`` events in the
    dataset ``<dataset>_resim<K>``, branches ``resim_group`` and ``resim_copy``);
    ``resim_variations``: a YAML file of per-copy Pythia settings.
    """
    execution = execution or Execution(workers=1)
    if execution.dask_mode:
        raise ConfigError("generation runs no coffea: dask mode is for coffea jobs; "
                          "use executor 'dask'")  # fmt: skip
    workers = execution.workers
    variations: list[tuple[str, ...]] = []
    if resim is not None:
        variations = validate_resim(resim, resim_variations, seed)
        if PROCESSES[process].truth_filter:
            raise ConfigError(
                f"--resim does not support the truth-filtered process {process!r} "
                "(the filter needs the showered record)"
            )
    elif resim_variations is not None:
        raise ConfigError("--resim-variations needs --resim K")
    out_dir = validate_request(
        process, n_events, sqrts, seed, out, workers, pthat_min, pthat_max, pythia_extra
    )
    spec = PROCESSES[process]
    dataset = dataset_name(process, sqrts) + (f"_resim{resim}" if resim else "")
    n_chunks = min(n_events, max(workers, math.ceil(n_events / events_per_file)))
    sizes = [n_events // n_chunks + (i < n_events % n_chunks) for i in range(n_chunks)]
    firsts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int).tolist()
    chunks = []
    for i in range(n_chunks):
        pythia_seed, _ = chunk_seeds(seed, i)
        settings = pythia_settings(
            spec, sqrts, pythia_seed, pthat_min, pthat_max, tuple(pythia_extra)
        )
        path = out_dir / f"{dataset}_s{seed}_{i:03d}.root"
        chunks.append(
            _Chunk(
                i,
                firsts[i],
                sizes[i],
                str(path),
                tuple(settings),
                seed,
                pfcands,
                batch_size,
                spec.truth_filter,
                tuple(copy_seed(seed, i, k) for k in range(resim or 0)),
                tuple((*pythia_extra, *copy_settings(k, variations)) for k in range(resim or 0)),
            )
        )
    # a rerun replaces the files of a previous run with more chunks
    names = {Path(c.path).name for c in chunks}
    for stale in out_dir.glob(f"{dataset}_s{seed}_*.root*"):
        if stale.name.removesuffix(".done.json") not in names:
            stale.unlink()

    start = time.perf_counter()
    results: list[dict[str, Any]] = []
    todo = chunks
    if resume:
        kept = {c.index: r for c in chunks if (r := _finished(c)) is not None}
        results = list(kept.values())
        todo = [c for c in chunks if c.index not in kept]
        if progress is not None and results:
            progress(sum(r["n_events"] for r in results))
    else:
        for chunk in chunks:
            _marker(chunk).unlink(missing_ok=True)
    try:
        results += run_tasks(
            _run_chunk, todo, execution, progress=progress, counted=lambda r: r["n_events"]
        )
    except BaseException:
        for chunk in todo:  # finished chunks stay (with their marker) for resume=True
            if _finished(chunk) is None:
                Path(chunk.path).unlink(missing_ok=True)
                _marker(chunk).unlink(missing_ok=True)
        raise
    wall = time.perf_counter() - start
    results.sort(key=lambda r: r["index"])

    n_done = sum(r["n_events"] for r in results)
    weights = np.array([r["n_events"] for r in results], dtype=float) / n_done
    xsec = float(np.sum(weights * [r["sigma_pb"] for r in results]))
    xsec_err = float(np.sqrt(np.sum((weights * [r["sigma_err_pb"] for r in results]) ** 2)))
    files = [Path(r["path"]) for r in results]
    lo = spec.pthat_min if pthat_min is None else pthat_min
    hi = spec.pthat_max if pthat_max is None else pthat_max
    metadata = {
        "process": process,
        "label": spec.label,
        "xsec_pb": xsec,
        "xsec_err_pb": xsec_err,
        "nevents": n_done,
        "sumw": float(n_done),
        "sqrts": int(sqrts),
        "seed": int(seed),
        "pthat_min": lo,
        "pthat_max": hi,
        "pfcands": bool(pfcands),
        "pythia_extra": list(pythia_extra),
        "truth_filter": spec.truth_filter,
        "filter_efficiency": n_done / max(sum(r["n_tried"] for r in results), 1),
        "is_mc": True,
        "resim": int(resim) if resim else None,
        "resim_variations": [list(v) for v in variations] if variations else None,
        "generator": GENERATOR,
        "description": spec.description,
    }
    result = GenerationResult(
        process=process,
        dataset=dataset,
        label=spec.label,
        sqrts=int(sqrts),
        seed=int(seed),
        n_events=n_done,
        files=files,
        fileset_path=out_dir / f"{dataset}_s{seed}.fileset.json",
        xsec_pb=xsec,
        xsec_err_pb=xsec_err,
        wall_time_s=wall,
        workers=int(workers),
        metadata=metadata,
    )
    _write_json(result.fileset_path, result.fileset())
    _merge_fileset(out_dir / "fileset.json", result.fileset())
    return result


def result_summary(result: GenerationResult) -> dict[str, Any]:
    """JSON-friendly summary of a :class:`GenerationResult`."""
    data = asdict(result)
    data["files"] = [str(p) for p in result.files]
    data["fileset_path"] = str(result.fileset_path)
    data["events_per_second"] = result.events_per_second
    return data
