"""Pretraining shards: Zarr v3 groups of ragged physics objects, a verified store, a loader.

A *shard* is one Zarr v3 group per coffea chunk (not Zarr's ``sharding`` codec); see
:mod:`jetfm_coffea.shards.format` for the layout and :mod:`jetfm_coffea.shards.codec` for
its chunk codec. Modules: ``format`` (the on-disk contract), ``codec`` (chunk encode and
decode), ``writer`` (one shard), ``shard`` (one shard read and checked), ``store``
(store root, manifest, open), ``verification`` (every problem of a store), ``views``,
``loader``, ``migrate``. Write with
:class:`~jetfm_coffea.processors.shards.ShardProcessor` /
:func:`~jetfm_coffea.jobs.shards.build_store`
(``jetfm build-shards``),
check with :func:`verify` (``jetfm shards verify``), convert a 1.0.0 store with
:func:`migrate_store` (``jetfm shards migrate``), read with :func:`open_loader`.

Torch is imported only when the loader is used.
"""

from __future__ import annotations

import importlib
from typing import Any

from jetfm_coffea.shards.format import SCHEMA_VERSION, shard_path
from jetfm_coffea.shards.shard import Problem, Shard, open_shard
from jetfm_coffea.shards.store import (
    ShardRecord,
    ShardStore,
    create_store,
    open_store,
    scan_shards,
    write_manifest,
)
from jetfm_coffea.shards.verification import VerifyReport, verify
from jetfm_coffea.shards.views import load_augmentation, stored_views
from jetfm_coffea.shards.writer import ShardInfo, ShardSource, shard_arrays, write_shard

__all__ = [
    "SCHEMA_VERSION",
    "Problem",
    "Shard",
    "ShardDataset",
    "ShardInfo",
    "ShardLoader",
    "ShardRecord",
    "ShardSource",
    "ShardStore",
    "VerifyReport",
    "create_store",
    "load_augmentation",
    "migrate_store",
    "open_loader",
    "open_resim_loader",
    "open_shard",
    "open_store",
    "scan_shards",
    "shard_arrays",
    "shard_path",
    "stored_views",
    "verify",
    "write_manifest",
    "write_shard",
]

_LAZY = {
    "ShardDataset": "jetfm_coffea.shards.loader",
    "ShardLoader": "jetfm_coffea.shards.loader",
    "open_loader": "jetfm_coffea.shards.loader",
    "open_resim_loader": "jetfm_coffea.shards.resim",
    "migrate_store": "jetfm_coffea.shards.migrate",
}


def __getattr__(name: str) -> Any:
    # importlib, not an import statement: the loader and the migration load on first use
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
