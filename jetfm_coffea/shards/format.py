"""Layout of a shard store: paths, array names, dtypes, checksums.

A *pretraining shard* is one Zarr v3 group holding the tokens of one coffea chunk, i.e.
one entry range of one input file (this is unrelated to Zarr's own ``sharding`` codec).
A *store* is a directory::

    STORE/
      zarr.json                       root Zarr group; attrs["jetfm_store"]: schema version,
                                      token config + hash, augmentation pipeline + hash
      manifest.json                   index of all shards (written after them)
      shards/<dataset>/<file uuid>/<entry_start>-<entry_stop>/   one shard (Zarr v3 group)
          zarr.json                   attrs: provenance + checksum (schemas/1.0.0/shard.json)
          tokens/ mask/ objects/ counts/ run/ luminosityBlock/ event/
          [views/ view_mask/] [label/] [weight/] [ragged/<name>/{offsets,content}/]

The shard path depends only on (dataset, file uuid, entry range), so a rerun writes to
the same place instead of duplicating events.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

__all__ = [
    "ARRAY_ORDER",
    "ID_ARRAYS",
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "OBJECT_FIELDS",
    "SCHEMA_VERSION",
    "SHARDS_DIR",
    "SHARD_FORMAT",
    "STORE_ATTR",
    "STORE_FORMAT",
    "TMP_MARKER",
    "checksum_order",
    "content_checksum",
    "is_shard_name",
    "is_temporary_name",
    "parse_shard_path",
    "safe_name",
    "shard_path",
    "temporary_name",
]

#: Schema version written into every shard, store root and manifest (``schemas/<version>``).
SCHEMA_VERSION = "1.0.0"
SHARD_FORMAT = "jetfm-pretraining-shard"
STORE_FORMAT = "jetfm-shard-store"
MANIFEST_FORMAT = "jetfm-shard-store-manifest"
#: Key of the store description in the root group's attributes.
STORE_ATTR = "jetfm_store"
MANIFEST_NAME = "manifest.json"
SHARDS_DIR = "shards"
TMP_MARKER = ".tmp-"

#: Columns of the ``objects`` array ``[N, T, 7]`` (raw kinematics, before augmentation).
OBJECT_FIELDS = ("pt", "eta", "phi", "mass", "charge", "btag", "type_id")
ID_ARRAYS = ("run", "luminosityBlock", "event")
#: Fixed order of the arrays in the content checksum (absent optional arrays are skipped;
#: ragged arrays follow, sorted by name).
ARRAY_ORDER = (
    "tokens",
    "mask",
    "objects",
    "counts",
    "run",
    "luminosityBlock",
    "event",
    "views",
    "view_mask",
    "label",
    "weight",
)

_SAFE = re.compile(r"[^A-Za-z0-9_.\-]")
_SHARD_NAME = re.compile(r"^(\d+)-(\d+)$")


def safe_name(name: str) -> str:
    """A path component for a dataset name or uuid: ``[A-Za-z0-9_.-]``, not starting with '.'."""
    out = _SAFE.sub("_", str(name)).strip("._-")
    if not out or not out[0].isalnum():
        out = "x" + out
    return out


def shard_path(dataset: str, file_uuid: str, entry_start: int, entry_stop: int) -> str:
    """Deterministic shard location relative to the store root.

    >>> shard_path("ttbar", "6c0b8a9e-1f2a-11ea-8d71-362b9e155667", 0, 1000)
    'shards/ttbar/6c0b8a9e-1f2a-11ea-8d71-362b9e155667/0-1000'
    """
    if entry_start < 0 or entry_stop < entry_start:
        raise ValueError(f"invalid entry range [{entry_start}, {entry_stop})")
    if not file_uuid:
        raise ValueError("a shard path needs the input file's uuid")
    return f"{SHARDS_DIR}/{safe_name(dataset)}/{safe_name(file_uuid)}/{entry_start}-{entry_stop}"


def parse_shard_path(path: str) -> tuple[str, str, int, int]:
    """Inverse of :func:`shard_path`: ``(dataset dir, uuid dir, entry_start, entry_stop)``."""
    parts = Path(path).parts
    if len(parts) < 4 or parts[-4] != SHARDS_DIR:
        raise ValueError(f"not a shard path: {path}")
    match = _SHARD_NAME.match(parts[-1])
    if not match:
        raise ValueError(f"not a shard path: {path}")
    return parts[-3], parts[-2], int(match.group(1)), int(match.group(2))


def is_shard_name(name: str) -> bool:
    """True for a final shard directory name ``<start>-<stop>``."""
    return bool(_SHARD_NAME.match(name))


def temporary_name(name: str, token: str) -> str:
    """Sibling name a shard is written under before the atomic rename."""
    return f".{name}{TMP_MARKER}{token}"


def is_temporary_name(name: str) -> bool:
    """True for a leftover of an interrupted write (see :func:`temporary_name`)."""
    return name.startswith(".") and TMP_MARKER in name


def _canonical(array: np.ndarray) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    return np.ascontiguousarray(array)


def content_checksum(arrays: Mapping[str, np.ndarray], order: Iterable[str]) -> str:
    """sha256 over ``arrays`` in ``order``: per array ``'<name>:<dtype>:<shape>\\n'`` + bytes."""
    digest = hashlib.sha256()
    for name in order:
        array = _canonical(arrays[name])
        digest.update(f"{name}:{array.dtype.str}:{list(array.shape)}\n".encode())
        if array.size:  # an empty shard (every event removed by the selection) has no bytes
            digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def checksum_order(names: Iterable[str]) -> list[str]:
    """The fixed checksum order restricted to ``names`` (ragged arrays last, sorted)."""
    names = set(names)
    fixed = [n for n in ARRAY_ORDER if n in names]
    return fixed + sorted(names - set(fixed))
