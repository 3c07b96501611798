"""Write one pretraining shard (schema 2.1.0): a Zarr v3 group, atomically, with provenance.

The shard holds the selected physics objects ragged (see :mod:`jetfm_coffea.shards.format`);
it is written under a temporary sibling name (``.<start>-<stop>.tmp-<token>``), its
attributes validated against ``schemas/2.1.0/shard.json``, and only then renamed to its
final name. A killed writer therefore leaves at most a hidden temporary directory, never
a half shard that looks valid (``jetfm shards verify`` lists such leftovers).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from jetfm_coffea import __version__
from jetfm_coffea.errors import ShardError, ShardExistsError
from jetfm_coffea.schema import validate
from jetfm_coffea.shards.codec import DEFAULT_ZSTD_LEVEL, codecs, encode_arrays
from jetfm_coffea.shards.format import (
    CHECKSUM_ALGORITHM,
    CHUNK_EVENTS,
    OBJECTS,
    RESIM_ARRAYS,
    SCHEMA_VERSION,
    SHARD_FORMAT,
    VIEWS,
    checksum_order,
    column_path,
    combine_checksums,
    disk_columns,
    offsets_problem,
    shard_path,
    temporary_name,
    to_ragged,
)
from jetfm_coffea.shards.views import AugmentationPipelineLike, pipeline_document
from jetfm_coffea.tokens import EventObjects, EventTokens, RaggedObjects, TokenConfig
from jetfm_coffea.tokens.fields import OBJECT_FIELDS

__all__ = [
    "ShardInfo",
    "ShardSource",
    "shard_arrays",
    "shard_exists",
    "write_shard",
]


@dataclass(frozen=True)
class ShardSource:
    """Where a shard's events come from: dataset, file (+ ROOT uuid), tree, entry range."""

    dataset: str
    file: str
    uuid: str
    entry_start: int
    entry_stop: int
    treename: str = "Events"

    @property
    def path(self) -> str:
        """The shard's deterministic path relative to the store root."""
        return shard_path(self.dataset, self.uuid, self.entry_start, self.entry_stop)


@dataclass(frozen=True)
class ShardInfo:
    """Result of writing (or finding) one shard."""

    path: str
    n_events: int
    checksum: str
    n_views: int
    status: Literal["written", "existing"]

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "n_events": self.n_events,
            "checksum": self.checksum,
            "n_views": self.n_views,
            "status": self.status,
        }


Objects = EventObjects | EventTokens | RaggedObjects


def _objects_of(data: Objects) -> EventObjects | RaggedObjects:
    return data.objects if isinstance(data, EventTokens) else data


def shard_arrays(
    objects: Objects,
    views: Sequence[EventObjects | EventTokens] = (),
    *,
    label: int | None = None,
    weight: np.ndarray | None = None,
    resim: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """The 1-d arrays of one shard, by name, with their on-disk dtypes.

    ``resim``: the re-simulation ids (both :data:`~jetfm_coffea.shards.format.RESIM_ARRAYS`).
    """
    obj = _objects_of(objects)
    n = len(obj)
    out: dict[str, np.ndarray] = {
        "run": np.asarray(obj.run, np.int64),
        "luminosityBlock": np.asarray(obj.luminosityBlock, np.int64),
        "event": np.asarray(obj.event, np.int64),
    }
    if label is not None:
        out["label"] = np.full(n, int(label), np.int64)
    if weight is not None:
        weight = np.asarray(weight, np.float32).reshape(-1)
        if len(weight) != n:
            raise ValueError(f"weight has {len(weight)} entries for {n} events")
        out["weight"] = weight
    if resim is not None:
        if set(resim) != set(RESIM_ARRAYS):
            raise ValueError(f"resim ids need exactly {sorted(RESIM_ARRAYS)}, got {sorted(resim)}")
        for name, dtype in RESIM_ARRAYS.items():
            ids = np.asarray(resim[name]).reshape(-1)
            if len(ids) != n:
                raise ValueError(f"{name} has {len(ids)} entries for {n} events")
            out[name] = ids.astype(dtype)
    if isinstance(obj, RaggedObjects):
        problem = offsets_problem(obj.offsets, n, len(obj.columns["pt"]))
        if problem is not None:
            raise ValueError(f"ragged objects: {problem}")
        out[column_path(OBJECTS, "offsets")] = np.asarray(obj.offsets, np.int64)
        flat = disk_columns(obj.columns)
        out.update({column_path(OBJECTS, k): v for k, v in flat.items()})
        groups = []
    else:
        groups = [(OBJECTS, obj.mask, {f: getattr(obj, f) for f in OBJECT_FIELDS})]
    if views:
        vs = [_objects_of(v) for v in views]
        for v, view in enumerate(vs):
            if len(view) != n:
                raise ValueError(f"view {v} has {len(view)} events, objects {n}")
        # event-major: view v of event i is row i*V + v
        stack = lambda name: np.stack([getattr(v, name) for v in vs], axis=1)  # noqa: E731
        groups.append((VIEWS, stack("mask"), {f: stack(f) for f in OBJECT_FIELDS}))
    for group, mask, columns in groups:
        mask = np.asarray(mask, bool)
        mask = mask.reshape(-1, mask.shape[-1])
        offsets, flat = to_ragged(mask, {k: np.asarray(v) for k, v in columns.items()})
        out[column_path(group, "offsets")] = offsets
        out.update({column_path(group, k): v for k, v in flat.items()})
    return out


def shard_exists(store: str | Path, path: str) -> bool:
    """True when a complete shard (final name with its attributes) is at ``path``."""
    meta = Path(store) / path / "zarr.json"
    if not meta.is_file():
        return False
    try:
        attrs = json.loads(meta.read_text()).get("attributes", {})
    except (OSError, ValueError):
        return False
    return "checksum" in attrs


def existing_info(store: str | Path, path: str) -> ShardInfo:
    """:class:`ShardInfo` of a complete shard already on disk (nothing but its attributes read)."""
    attrs = json.loads((Path(store) / path / "zarr.json").read_text())["attributes"]
    return ShardInfo(
        path=path,
        n_events=int(attrs["n_events"]),
        checksum=attrs["checksum"]["value"],
        n_views=int(attrs["layout"]["n_views"]),
        status="existing",
    )


def _write_group(
    target: Path,
    specs: Mapping[str, dict[str, Any]],
    files: Mapping[str, list[bytes]],
    attrs: dict[str, Any],
    level: int,
) -> None:
    """Create the group and array metadata with zarr, then write the sealed chunk files.

    Zarr writes all the metadata in one call (``zarr.create_hierarchy``); the chunk files
    are written here at the spec's default keys (``<array>/c/<i>``): zarr's own write path
    synchronises with its I/O thread per call and array, which costs more than the
    compression. Any zarr v3 reader reads the result (tested).
    """
    import zarr
    from zarr.core.group import GroupMetadata
    from zarr.core.metadata.v3 import ArrayV3Metadata
    from zarr.storage import LocalStore

    chain = codecs(level)
    nodes: dict[str, Any] = {"": GroupMetadata(attributes=attrs, zarr_format=3)}
    for group in {name.split("/")[0] for name in specs if "/" in name}:
        nodes[group] = GroupMetadata(zarr_format=3)
    for name, spec in specs.items():
        nodes[name] = ArrayV3Metadata.from_dict(
            {
                "zarr_format": 3,
                "node_type": "array",
                "shape": spec["shape"],
                "data_type": np.dtype(spec["dtype"]).name,
                "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": spec["chunks"]}},
                "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
                "fill_value": 0,
                "codecs": chain,
                "attributes": {},
            }
        )
    for _ in zarr.create_hierarchy(store=LocalStore(str(target)), nodes=nodes, overwrite=True):
        pass
    for name, chunks in files.items():
        if not chunks:
            continue
        base = target / name / "c"
        base.mkdir(parents=True, exist_ok=True)
        for i, blob in enumerate(chunks):
            (base / str(i)).write_bytes(blob)


def write_shard(
    store: str | Path,
    objects: Objects,
    source: ShardSource,
    token_config: TokenConfig,
    *,
    views: Sequence[EventObjects | EventTokens] = (),
    pipeline: AugmentationPipelineLike | None = None,
    label: int | None = None,
    weight: np.ndarray | None = None,
    resim: Mapping[str, np.ndarray] | None = None,
    provenance: Mapping[str, Any] | None = None,
    if_exists: Literal["skip", "overwrite", "error"] = "skip",
    chunk_events: int | None = None,
    compression_level: int = DEFAULT_ZSTD_LEVEL,
    selection: Mapping[str, Any] | None = None,
) -> ShardInfo:
    """Write the selected objects (and stored views) of one coffea chunk as one shard.

    Parameters
    ----------
    store
        Root directory of the shard store (local or shared POSIX filesystem).
    objects
        :func:`~jetfm_coffea.tokens.select_ragged` output for the chunk (or the padded
        :func:`~jetfm_coffea.tokens.select_objects`, or :class:`EventTokens`); stored
        ragged, no tokens.
    source
        Dataset, file, uuid and entry range; they fix the shard path.
    views
        Augmented views of the same events (:func:`~jetfm_coffea.shards.views.stored_views`),
        stored ragged under ``views/``.
    pipeline
        The augmentation pipeline that made ``views`` (provenance).
    label, weight
        Optional per-shard label and per-event weights.
    resim
        Optional re-simulation ids per event (``resim_group``, ``resim_copy``).
    provenance
        Extra provenance (any JSON-able keys), stored as the ``provenance`` attribute.
    if_exists
        A complete shard already at the path: ``"skip"`` it (resume), ``"overwrite"`` it,
        or raise :class:`ShardExistsError`.
    selection
        Certified-luminosity and blinding provenance
        (:func:`jetfm_coffea.selection.chunk.selection_record`); its ``events_removed``
        events of the entry range are not in the shard.

    Returns
    -------
    ShardInfo
        Path, event count and combined CRC-32C; ``status`` says written or existing.
    """
    root = Path(store)
    rel = source.path
    final = root / rel
    if final.exists():
        if if_exists == "error":
            raise ShardExistsError(rel, "a shard already exists at this path")
        if if_exists == "skip":
            if shard_exists(root, rel):
                return existing_info(root, rel)
            raise ShardError(rel, "exists but is not a complete shard; run 'jetfm shards verify'")
    if len(views) != (pipeline.views if pipeline is not None else len(views)):
        raise ValueError(f"{len(views)} views given, the pipeline makes {pipeline.views}")
    obj = _objects_of(objects)
    n_events = len(obj)
    removed = int((selection or {}).get("events_removed", 0))  # lumi mask, blinding
    if n_events != source.entry_stop - source.entry_start - removed:
        raise ShardError(
            rel,
            f"{n_events} events for entry range of {source.entry_stop - source.entry_start}"
            + (f" less {removed} removed by the selection" if removed else ""),
        )
    try:
        arrays = shard_arrays(obj, views, label=label, weight=weight, resim=resim)
    except ValueError as err:
        raise ShardError(rel, str(err)) from err
    specs, files = encode_arrays(arrays, int(chunk_events or CHUNK_EVENTS), compression_level)
    order = checksum_order(arrays)
    crcs = {name: [int.from_bytes(f[-4:], "little") for f in files[name]] for name in order}

    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / temporary_name(final.name, uuid.uuid4().hex[:12])
    try:
        attrs = {
            "schema_version": SCHEMA_VERSION,
            "format": SHARD_FORMAT,
            "dataset": source.dataset,
            "source": {
                "file": str(source.file),
                "uuid": str(source.uuid),
                "treename": source.treename,
                "entry_start": int(source.entry_start),
                "entry_stop": int(source.entry_stop),
            },
            "n_events": int(n_events),
            "n_objects": len(arrays[column_path(OBJECTS, "pt")]),
            "layout": {
                "n_tokens": int(token_config.n_tokens),
                "n_features": len(token_config.features),
                "feature_names": list(token_config.feature_names),
                "n_views": len(views),
                "object_columns": list(OBJECT_FIELDS),
            },
            "arrays": specs,
            "token_config": token_config.model_dump(mode="json"),
            "token_config_hash": token_config.hash(),
            "augmentation": pipeline_document(pipeline if views else None),
            "label": None if label is None else int(label),
            "package": {"name": "jetfm-coffea", "version": __version__},
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "checksum": {
                "algorithm": CHECKSUM_ALGORITHM,
                "value": combine_checksums(crcs, order),
                "order": order,
                "chunks": crcs,
            },
        }
        if selection is not None:
            attrs["selection"] = dict(selection)
        if provenance:
            attrs["provenance"] = dict(provenance)
        validate(attrs, "shard", SCHEMA_VERSION)
        _write_group(tmp, specs, files, attrs, compression_level)
        _publish(tmp, final, if_exists == "overwrite")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ShardInfo(rel, int(n_events), attrs["checksum"]["value"], len(views), "written")


def _publish(tmp: Path, final: Path, overwrite: bool) -> None:
    """Atomically move the finished temporary group to its final name."""
    old = None
    if final.exists():
        if not overwrite:
            raise ShardExistsError(str(final), "appeared while this shard was being written")
        old = final.parent / temporary_name(final.name, "old-" + uuid.uuid4().hex[:12])
        os.rename(final, old)
    os.rename(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
