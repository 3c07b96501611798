"""``jetfm shards migrate``: convert a schema 1.0.0 shard store into a 2.0.0 one.

A 1.0.0 shard holds padded tokens, the padded raw objects ``objects [N, T, 7]`` with
their ``mask``, the event ids, optional label/weight and optional stored views (as
tokens). The migration reads every shard listed in the old manifest, checks its sha256
content checksum (the 1.0.0 contract, implemented here only), keeps the valid objects
(ragged, 2.0.0), the ids, label and weight, and remakes the stored views from the
pipeline recorded in the old store (views are a pure function of the pipeline, the
objects and the event ids, so they are the same views). The new store is then verified
and compared event by event with the old one. The old store is never changed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jetfm_coffea.errors import ShardChecksumError, ShardError
from jetfm_coffea.schema import validate
from jetfm_coffea.shards.format import (
    ID_ARRAYS,
    LEGACY_VERSIONS,
    MANIFEST_NAME,
    OBJECTS,
    STORE_ATTR,
)
from jetfm_coffea.shards.store import create_store, open_store, write_manifest
from jetfm_coffea.shards.verification import verify
from jetfm_coffea.shards.views import load_augmentation, stored_views
from jetfm_coffea.shards.writer import ShardSource, write_shard
from jetfm_coffea.tokens import EventObjects, load_token_config
from jetfm_coffea.tokens.fields import OBJECT_FIELDS

__all__ = ["LEGACY_VERSION", "MigrationSummary", "legacy_checksum", "migrate_store"]

#: The schema this migration reads (the 1.0.0 shard layout is described in the module docstring).
LEGACY_VERSION = LEGACY_VERSIONS[0]
_LEGACY_OBJECT_FIELDS = ("pt", "eta", "phi", "mass", "charge", "btag", "type_id")


@dataclass
class MigrationSummary:
    """What a migration did."""

    source: str
    out: str
    n_shards: int = 0
    n_events: int = 0
    n_views: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    shards: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def legacy_checksum(arrays: dict[str, np.ndarray], order: list[str]) -> str:
    """The 1.0.0 content checksum: sha256 over ``'<name>:<dtype>:<shape>\\n'`` + bytes."""
    digest = hashlib.sha256()
    for name in order:
        array = np.ascontiguousarray(arrays[name])
        if array.dtype.byteorder == ">":
            array = array.astype(array.dtype.newbyteorder("<"))
        digest.update(f"{name}:{array.dtype.str}:{list(array.shape)}\n".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def _read_json(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _legacy_description(root: Path) -> dict[str, Any]:
    meta = root / "zarr.json"
    if not meta.is_file():
        raise ShardError(str(root), "not a jetfm shard store (no zarr.json at its root)")
    description = _read_json(meta).get("attributes", {}).get(STORE_ATTR)
    if not isinstance(description, dict):
        raise ShardError(str(root), f"not a jetfm shard store (no {STORE_ATTR!r} attribute)")
    found = description.get("schema_version")
    if found != LEGACY_VERSION:
        raise ShardError(
            str(root), f"declares schema version {found!r}; migrate reads {LEGACY_VERSION} stores"
        )
    validate(description, "shard_store", LEGACY_VERSION)
    return description


def _read_legacy_shard(root: Path, path: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Attributes and checked arrays of one 1.0.0 shard."""
    import zarr

    meta = root / path / "zarr.json"
    if not meta.is_file():
        raise ShardError(path, "listed in the manifest but missing on disk")
    attrs = _read_json(meta).get("attributes", {})
    validate(attrs, "shard", LEGACY_VERSION)
    order = attrs["checksum"]["order"]
    arrays = {}
    for name in order:
        try:
            arrays[name] = np.asarray(
                zarr.open_array(store=str(root / path / name), mode="r", zarr_format=3)[...]
            )
        except Exception as err:
            raise ShardError(path, f"array {name!r} unreadable: {err}") from err
    if legacy_checksum(arrays, order) != attrs["checksum"]["value"]:
        raise ShardChecksumError(path, "content differs from its 1.0.0 sha256 checksum")
    return attrs, arrays


def _objects(arrays: dict[str, np.ndarray]) -> EventObjects:
    obj = arrays["objects"]
    mask = arrays["mask"].astype(bool)
    n = len(mask)
    cols = {
        f: np.where(mask, obj[..., i], 0).astype(np.float32) for i, f in enumerate(OBJECT_FIELDS)
    }
    return EventObjects(
        **cols,
        mask=mask,
        run=arrays["run"].astype(np.int64),
        luminosityBlock=arrays["luminosityBlock"].astype(np.int64),
        event=arrays["event"].astype(np.int64),
        n_nonfinite=np.zeros(n, np.int64),
    )


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def migrate_store(store: str | Path, out: str | Path) -> MigrationSummary:
    """Write the 2.0.0 store ``out`` with the same events as the 1.0.0 store ``store``.

    Raises :class:`ShardError` (naming the shard) for a damaged old shard, and when
    the verified new store differs from the old one in any event id or object count.
    """
    root, target = Path(store), Path(out)
    if target.exists() and any(target.iterdir()):
        raise ShardError(str(target), "exists and is not empty; give a new --out")
    description = _legacy_description(root)
    if OBJECT_FIELDS != _LEGACY_OBJECT_FIELDS:  # pragma: no cover - contract guard
        raise ShardError(str(root), "object columns changed; this migration needs updating")
    manifest_path = root / MANIFEST_NAME
    if not manifest_path.is_file():
        raise ShardError(str(manifest_path), "missing: finish or repair the old store first")
    manifest = _read_json(manifest_path)
    validate(manifest, "store_manifest", LEGACY_VERSION)
    token_config = load_token_config(description["token_config"])
    pipeline = load_augmentation(description["augmentation"]["pipeline"])
    create_store(target, token_config, pipeline)
    summary = MigrationSummary(str(root), str(target), bytes_before=_dir_bytes(root / "shards"))
    expected: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for entry in manifest["shards"]:
        attrs, arrays = _read_legacy_shard(root, entry["path"])
        objects = _objects(arrays)
        src = attrs["source"]
        source = ShardSource(
            attrs["dataset"],
            src["file"],
            src["uuid"],
            src["entry_start"],
            src["entry_stop"],
            src["treename"],
        )
        info = write_shard(
            target,
            objects,
            source,
            token_config,
            views=stored_views(objects, pipeline, token_config),
            pipeline=pipeline,
            label=attrs["label"],
            weight=arrays.get("weight"),
            if_exists="error",
        )
        ids = np.stack([objects.run, objects.luminosityBlock, objects.event])
        expected[info.path] = (ids, objects.mask.sum(axis=1))
        summary.shards.append(info.path)
        summary.n_events += info.n_events
    write_manifest(target)
    report = verify(target)
    if not report.ok:
        raise ShardError(str(target), f"migrated store fails verification: {report.errors[0]}")
    for shard in open_store(target):
        ids, counts = expected[shard.path]
        got = np.stack([shard.read(k) for k in ID_ARRAYS])
        if not np.array_equal(got, ids) or not np.array_equal(
            np.diff(shard.offsets(OBJECTS)), counts
        ):
            raise ShardError(shard.path, "migrated shard differs from the 1.0.0 shard")
    summary.n_shards = len(summary.shards)
    summary.n_views = 0 if pipeline is None else int(pipeline.views)
    summary.bytes_after = _dir_bytes(target / "shards")
    return summary
