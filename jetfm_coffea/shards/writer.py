"""Write one pretraining shard: a Zarr v3 group, atomically, with full provenance.

The shard is written under a temporary sibling name (``.<start>-<stop>.tmp-<token>``),
its attributes validated against ``schemas/1.0.0/shard.json``, and only then renamed to
its final name. A killed writer therefore leaves at most a hidden temporary directory,
never a half shard that looks valid (``jetfm shards verify`` lists such leftovers).
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
from jetfm_coffea.shards.format import (
    OBJECT_FIELDS,
    SCHEMA_VERSION,
    SHARD_FORMAT,
    checksum_order,
    content_checksum,
    shard_path,
    temporary_name,
)
from jetfm_coffea.shards.views import AugmentationPipelineLike, pipeline_document
from jetfm_coffea.tokens import EventTokens, TokenConfig

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "ShardInfo",
    "ShardSource",
    "chunk_events_for",
    "compressor",
    "shard_arrays",
    "shard_exists",
    "write_shard",
]

#: Target uncompressed size of one chunk of the ``tokens`` array (contiguous block reads).
DEFAULT_CHUNK_BYTES = 4 << 20
DEFAULT_ZSTD_LEVEL = 1


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


def chunk_events_for(n_tokens: int, n_features: int, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> int:
    """Events per chunk: a power of two with ``tokens`` chunks of about ``chunk_bytes``."""
    per_event = max(1, n_tokens * n_features * 4)
    n = max(1, chunk_bytes // per_event)
    return int(min(1 << 16, max(256, 1 << (n.bit_length() - 1))))


def compressor(level: int = DEFAULT_ZSTD_LEVEL) -> Any:
    """The codec every shard array is compressed with (zarr's zstd codec)."""
    from zarr.codecs import ZstdCodec

    return ZstdCodec(level=level)


def shard_arrays(
    tokens: EventTokens,
    views: Sequence[EventTokens] = (),
    *,
    label: int | None = None,
    weight: np.ndarray | None = None,
    ragged: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> dict[str, np.ndarray]:
    """The arrays of one shard, by name, with their on-disk dtypes and shapes."""
    n = len(tokens)
    obj = tokens.objects
    out: dict[str, np.ndarray] = {
        "tokens": np.ascontiguousarray(tokens.tokens, np.float32),
        "mask": np.ascontiguousarray(tokens.mask, bool),
        "objects": np.stack(
            [np.asarray(getattr(obj, f), np.float32) for f in OBJECT_FIELDS], axis=-1
        ),
        "counts": tokens.mask.sum(axis=1).astype(np.int32),
        "run": np.asarray(tokens.run, np.int64),
        "luminosityBlock": np.asarray(tokens.luminosityBlock, np.int64),
        "event": np.asarray(tokens.event, np.int64),
    }
    if views:
        for v, view in enumerate(views):
            if len(view) != n or view.tokens.shape != tokens.tokens.shape:
                raise ValueError(
                    f"view {v} has shape {view.tokens.shape}, tokens {tokens.tokens.shape}"
                )
        out["views"] = np.stack([np.asarray(v.tokens, np.float32) for v in views], axis=1)
        out["view_mask"] = np.stack([np.asarray(v.mask, bool) for v in views], axis=1)
    if label is not None:
        out["label"] = np.full(n, int(label), np.int64)
    if weight is not None:
        weight = np.asarray(weight, np.float32).reshape(-1)
        if len(weight) != n:
            raise ValueError(f"weight has {len(weight)} entries for {n} events")
        out["weight"] = weight
    for name, (offsets, content) in (ragged or {}).items():
        offsets = np.asarray(offsets, np.int64)
        if len(offsets) != n + 1 or offsets[0] != 0 or offsets[-1] != len(content):
            raise ValueError(f"ragged {name!r}: offsets must be [0, ..., len(content)], n+1 long")
        out[f"ragged/{name}/offsets"] = offsets
        out[f"ragged/{name}/content"] = np.ascontiguousarray(content)
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


def _existing_info(store: Path, path: str) -> ShardInfo:
    attrs = json.loads((store / path / "zarr.json").read_text())["attributes"]
    return ShardInfo(
        path=path,
        n_events=int(attrs["n_events"]),
        checksum=attrs["checksum"]["value"],
        n_views=int(attrs["layout"]["n_views"]),
        status="existing",
    )


def _array_specs(arrays: Mapping[str, np.ndarray], chunk_events: int) -> dict[str, dict[str, Any]]:
    """dtype, shape and chunk shape of every array (regular grid chunked along events)."""
    specs = {}
    for name, data in arrays.items():
        rows = (1 << 20) if name.startswith("ragged/") else chunk_events
        chunks = (max(1, min(rows, len(data))), *(max(1, d) for d in data.shape[1:]))
        dtype = data.dtype.newbyteorder("<") if data.dtype.byteorder == ">" else data.dtype
        specs[name] = {"dtype": dtype.str, "shape": list(data.shape), "chunks": list(chunks)}
    return specs


def _write_group(
    target: Path,
    arrays: Mapping[str, np.ndarray],
    specs: Mapping[str, dict[str, Any]],
    attrs: dict[str, Any],
    level: int,
) -> None:
    """Create the group (with ``attrs``) and its arrays with zarr, then write the chunks.

    Zarr writes all the metadata in one call (``zarr.create_hierarchy``: the group's and
    every array's ``zarr.json``; regular grid chunked along events, codecs ``bytes`` +
    ``zstd``). The chunk files are the zstd frames of the chunks' little-endian bytes at
    the spec's default keys (``<array>/c/<i>/0/...``, edge chunks padded to full size),
    encoded here with numcodecs' Zstd (what zarr's ZstdCodec calls): zarr's own write
    path synchronises with its I/O thread per call and array, which costs more than the
    compression. Any zarr v3 reader reads the result (tested).
    """
    import zarr
    from numcodecs import Zstd
    from zarr.core.group import GroupMetadata
    from zarr.core.metadata.v3 import ArrayV3Metadata
    from zarr.storage import LocalStore

    codecs = [
        {"name": "bytes", "configuration": {"endian": "little"}},
        compressor(level).to_dict(),
    ]
    nodes: dict[str, Any] = {"": GroupMetadata(attributes=attrs, zarr_format=3)}
    for name, spec in specs.items():
        nodes[name] = ArrayV3Metadata.from_dict(
            {
                "zarr_format": 3,
                "node_type": "array",
                "shape": spec["shape"],
                "data_type": np.dtype(spec["dtype"]).name,
                "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": spec["chunks"]}},
                "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
                "fill_value": False if np.dtype(spec["dtype"]) == bool else 0,
                "codecs": codecs,
                "attributes": {},
            }
        )
    for _ in zarr.create_hierarchy(store=LocalStore(str(target)), nodes=nodes, overwrite=True):
        pass
    encoder = Zstd(level=level, checksum=False)
    for name, data in arrays.items():
        if not data.size:
            continue
        data = np.ascontiguousarray(data, np.dtype(specs[name]["dtype"]))
        chunks = specs[name]["chunks"]
        base = target / name / "c"
        suffix = ["0"] * (data.ndim - 1)
        size = chunks[0]
        for i, start in enumerate(range(0, len(data), size)):
            block = data[start : start + size]
            if len(block) < size:  # the spec stores edge chunks at full size
                padded = np.zeros(chunks, data.dtype)
                padded[: len(block)] = block
                block = padded
            path = base.joinpath(str(i), *suffix)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(encoder.encode(block))


def write_shard(
    store: str | Path,
    tokens: EventTokens,
    source: ShardSource,
    token_config: TokenConfig,
    *,
    views: Sequence[EventTokens] = (),
    pipeline: AugmentationPipelineLike | None = None,
    label: int | None = None,
    weight: np.ndarray | None = None,
    ragged: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
    if_exists: Literal["skip", "overwrite", "error"] = "skip",
    chunk_events: int | None = None,
    compression_level: int = DEFAULT_ZSTD_LEVEL,
    selection: Mapping[str, Any] | None = None,
) -> ShardInfo:
    """Write the tokens (and views) of one coffea chunk as one shard of ``store``.

    Parameters
    ----------
    store
        Root directory of the shard store (local or shared POSIX filesystem).
    tokens
        :func:`~jetfm_coffea.tokens.build_tokens` output for the chunk.
    source
        Dataset, file, uuid and entry range; they fix the shard path.
    views
        Augmented views (:func:`~jetfm_coffea.shards.views.make_views`), stored as
        ``views [N, V, T, F]`` and ``view_mask [N, V, T]``.
    pipeline
        The augmentation pipeline that made ``views`` (provenance).
    label, weight, ragged
        Optional per-shard label, per-event weights, ragged ``{name: (offsets, content)}``.
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
        Path, event count and content checksum; ``status`` says written or existing.
    """
    root = Path(store)
    rel = source.path
    final = root / rel
    if final.exists():
        if if_exists == "error":
            raise ShardExistsError(rel, "a shard already exists at this path")
        if if_exists == "skip":
            if shard_exists(root, rel):
                return _existing_info(root, rel)
            raise ShardError(rel, "exists but is not a complete shard; run 'jetfm shards verify'")
    if len(views) != (pipeline.views if pipeline is not None else len(views)):
        raise ValueError(f"{len(views)} views given, the pipeline makes {pipeline.views}")
    arrays = shard_arrays(tokens, views, label=label, weight=weight, ragged=ragged)
    n_events = len(tokens)
    removed = int((selection or {}).get("events_removed", 0))  # lumi mask, blinding
    if n_events != source.entry_stop - source.entry_start - removed:
        raise ShardError(
            rel,
            f"{n_events} events for entry range of {source.entry_stop - source.entry_start}"
            + (f" less {removed} removed by the selection" if removed else ""),
        )
    n_tokens, n_features = tokens.tokens.shape[1], tokens.tokens.shape[2]
    chunk_events = chunk_events or chunk_events_for(n_tokens, n_features)
    order = checksum_order(arrays)
    checksum = content_checksum(arrays, order)
    ragged_names = sorted(ragged or {})

    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / temporary_name(final.name, uuid.uuid4().hex[:12])
    try:
        specs = _array_specs(arrays, chunk_events)
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
            "layout": {
                "n_tokens": int(n_tokens),
                "n_features": int(n_features),
                "feature_names": list(tokens.feature_names),
                "n_views": len(views),
            },
            "arrays": specs,
            "token_config": token_config.model_dump(mode="json"),
            "token_config_hash": token_config.hash(),
            "augmentation": pipeline_document(pipeline if views else None),
            "label": None if label is None else int(label),
            "ragged": ragged_names,
            "package": {"name": "jetfm-coffea", "version": __version__},
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "checksum": {"algorithm": "sha256", "value": checksum, "order": order},
        }
        if selection is not None:
            attrs["selection"] = dict(selection)
        validate(attrs, "shard", SCHEMA_VERSION)
        _write_group(tmp, arrays, specs, attrs, compression_level)
        _publish(tmp, final, if_exists == "overwrite")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ShardInfo(rel, int(n_events), checksum, len(views), "written")


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
