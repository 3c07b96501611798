"""The on-disk contract of a shard store (schema 2.1.0): layout, names, dtypes, checksums.

A *pretraining shard* is one Zarr v3 group holding the selected physics objects of one
coffea chunk, i.e. one entry range of one input file (unrelated to Zarr's own
``sharding`` codec). Objects are stored *ragged*: per-event offsets plus contiguous
columns, no padding and no tokens (the loader computes the tokens with the one token
path, :func:`jetfm_coffea.tokens.features.compute_features`, so a change of token
features needs no rebuild). A *store* is a directory::

    STORE/
      zarr.json                       root Zarr group; attrs["jetfm_store"]: schema version,
                                      token config + hash, augmentation pipeline + hash
      manifest.json                   index of all shards (written after them)
      selections/<dataset>.json       the event selection claimed for the dataset (lumi
                                      mask, blinding); written by builds, never read by
                                      readers (stores without it are read as they are)
      shards/<dataset>/<file uuid>/<entry_start>-<entry_stop>/   one shard (Zarr v3 group)
          zarr.json                   attrs: provenance + checksum (schemas/2.0.0/shard.json)
          run/ luminosityBlock/ event/      int64 [N]           event ids
          objects/offsets                   int64 [N + 1]       event i: offsets[i]:offsets[i+1]
          objects/{pt,eta,phi,mass,btag}    float32 [M]         raw kinematics (before augmentation)
          objects/charge                    int8 [M]
          objects/type_id                   uint8 [M]           token-config object type
          [label/ int64 [N]] [weight/ float32 [N]]
          [resim_group/ int64 [N], resim_copy/ int32 [N]]   re-simulation ids (2.1.0)
          [views/offsets int64 [N*V + 1], views/<column> [M_v]]  stored views, ragged like
                                            the objects; view v of event i is row i*V + v

Every array is a regular-grid Zarr v3 array with the codecs ``bytes`` (little endian),
``zstd`` and ``crc32c``: each chunk file is a zstd frame followed by the CRC-32C of the
frame (4 bytes, little endian), so any flipped byte of a chunk is caught when it is
read. The shard's ``checksum`` attribute records every chunk's CRC and their combined
CRC (:func:`combine_checksums`), which also catches swapped, missing or stale chunks.

Versions: 2.1.0 adds the optional re-simulation arrays (events showered again from one
hard process share ``resim_group``; ``resim_copy`` is the copy index, see
:mod:`jetfm_coffea.generate.resim`) and nothing else, so 2.0.0 stores
(:data:`READABLE_VERSIONS`) are read as they are; 1.0.0 stores need ``jetfm shards
migrate``.

The shard path depends only on (dataset, file uuid, entry range), so a rerun writes to
the same place instead of duplicating events.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable, Mapping
from pathlib import Path

import google_crc32c
import numpy as np

from jetfm_coffea.tokens.fields import ID_FIELDS, OBJECT_FIELDS

__all__ = [
    "BATCH_KEYS",
    "CHECKSUM_ALGORITHM",
    "CHUNK_EVENTS",
    "CHUNK_OBJECTS",
    "CODECS",
    "ID_ARRAYS",
    "LEGACY_VERSIONS",
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "OBJECTS",
    "OBJECT_COLUMNS",
    "OPTIONAL_EVENT_ARRAYS",
    "READABLE_VERSIONS",
    "RESIM_ARRAYS",
    "SCHEMA_VERSION",
    "SELECTIONS_DIR",
    "SHARDS_DIR",
    "SHARD_FORMAT",
    "STORE_ATTR",
    "STORE_FORMAT",
    "TMP_MARKER",
    "VIEWS",
    "checksum_order",
    "chunk_crc",
    "column_path",
    "combine_checksums",
    "disk_columns",
    "is_shard_name",
    "is_temporary_name",
    "offsets_problem",
    "parse_shard_path",
    "ragged_columns",
    "safe_name",
    "seal_chunk",
    "shard_path",
    "temporary_name",
    "to_ragged",
    "unseal_chunk",
]

#: Schema version written into every shard, store root and manifest (``schemas/<version>``).
SCHEMA_VERSION = "2.1.0"
#: Older versions whose stores this package reads directly (a subset of the current one).
READABLE_VERSIONS = ("2.0.0", SCHEMA_VERSION)
#: Versions this package recognises but no longer reads directly (``jetfm shards migrate``).
LEGACY_VERSIONS = ("1.0.0",)
SHARD_FORMAT = "jetfm-pretraining-shard"
STORE_FORMAT = "jetfm-shard-store"
MANIFEST_FORMAT = "jetfm-shard-store-manifest"
#: Key of the store description in the root group's attributes.
STORE_ATTR = "jetfm_store"
MANIFEST_NAME = "manifest.json"
SHARDS_DIR = "shards"
#: Folder of the per-dataset selection claims (:mod:`jetfm_coffea.shards.claims`).
SELECTIONS_DIR = "selections"
TMP_MARKER = ".tmp-"

#: Group of the ragged raw objects, and of the stored views.
OBJECTS = "objects"
VIEWS = "views"
#: Object columns and their on-disk dtypes, in the order of
#: :data:`~jetfm_coffea.tokens.fields.OBJECT_FIELDS`: pt, eta, phi, mass float32,
#: charge int8, btag float32, type_id uint8.
OBJECT_COLUMNS: dict[str, str] = dict(
    zip(OBJECT_FIELDS, ("<f4", "<f4", "<f4", "<f4", "|i1", "<f4", "|u1"), strict=True)
)
#: The per-event id arrays (:data:`~jetfm_coffea.tokens.fields.ID_FIELDS`).
ID_ARRAYS = ID_FIELDS
#: Re-simulation ids, per event, from the generator's Events branches of the same names.
RESIM_ARRAYS = {"resim_group": "<i8", "resim_copy": "<i4"}
#: Optional per-event arrays (label: the dataset's integer label; weight: genWeight;
#: :data:`RESIM_ARRAYS`).
OPTIONAL_EVENT_ARRAYS = {"label": "<i8", "weight": "<f4", **RESIM_ARRAYS}

#: Keys of a training batch, the contract between the shard loader, the in-memory
#: dataset (:mod:`jetfm_coffea.train.data`) and the training loop; ``B`` events, ``T``
#: tokens (the batch's longest event), ``F`` token features, ``V`` views:
#:
#: * ``tokens`` float32 ``[B, T, F]`` (un-augmented), ``mask`` bool ``[B, T]``;
#: * ``objects`` float32 ``[B, T, 7]``: the tokens' :data:`OBJECT_FIELDS` (what fresh
#:   views are made of); ``views`` float32 ``[B, V, T, F]``, ``view_mask`` bool ``[B, V, T]``;
#: * ``label`` int64 ``[B]`` (-1 = unlabelled), ``weight`` float32 ``[B]``;
#: * ``run``, ``luminosityBlock``, ``event`` int64 ``[B]`` (provenance, :data:`ID_ARRAYS`);
#: * re-simulation (:mod:`jetfm_coffea.shards.resim`): ``views`` are the ``K`` sibling
#:   copies, ``view_objects`` float32 ``[B, K, T, 7]`` their raw objects, ``view_event``
#:   int64 ``[B, K]`` their event numbers, ``resim_group`` int64 ``[B]``.
#:
#: Every key but ``tokens`` and ``mask`` is optional.
BATCH_KEYS = (
    "tokens",
    "mask",
    "objects",
    "views",
    "view_mask",
    "view_objects",
    "view_event",
    "resim_group",
    "label",
    "weight",
    *ID_ARRAYS,
)

#: Events per chunk of the per-event arrays (and the loader's default read block).
CHUNK_EVENTS = 1 << 16
#: Objects per chunk of the object columns.
CHUNK_OBJECTS = 1 << 18
#: Codec chain of every array (Zarr v3 metadata form).
CODECS = (
    {"name": "bytes", "configuration": {"endian": "little"}},
    {"name": "zstd", "configuration": {"level": 1, "checksum": False}},
    {"name": "crc32c"},
)
CHECKSUM_ALGORITHM = "crc32c"

_SAFE = re.compile(r"[^A-Za-z0-9_.\-]")
_SHARD_NAME = re.compile(r"^(\d+)-(\d+)$")


# --------------------------------------------------------------------------- names


def column_path(group: str, column: str) -> str:
    """Array path of a ragged column (``objects/pt``, ``views/offsets``)."""
    return f"{group}/{column}"


def ragged_columns(group: str) -> list[str]:
    """Array paths of one ragged group: its offsets, then the object columns."""
    return [column_path(group, "offsets")] + [column_path(group, c) for c in OBJECT_COLUMNS]


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


# --------------------------------------------------------------------------- ragged


def offsets_problem(offsets: np.ndarray, n_rows: int, n_objects: int | None) -> str | None:
    """What is wrong with ragged ``offsets`` for ``n_rows`` rows, or None if they are valid.

    Valid offsets are ``n_rows + 1`` non-decreasing integers from 0 to the column length
    ``n_objects`` (None: the length is not known here).
    """
    offsets = np.asarray(offsets)
    if offsets.ndim != 1 or len(offsets) != n_rows + 1:
        return f"offsets have shape {list(offsets.shape)}, expected [{n_rows + 1}]"
    if offsets[0] != 0:
        return f"offsets start at {int(offsets[0])}, not 0"
    if n_rows and np.any(np.diff(offsets) < 0):
        bad = int(np.flatnonzero(np.diff(offsets) < 0)[0])
        return f"offsets decrease at row {bad} ({int(offsets[bad])} -> {int(offsets[bad + 1])})"
    if n_objects is not None and offsets[-1] != n_objects:
        return f"offsets end at {int(offsets[-1])}, the columns hold {n_objects} objects"
    return None


# --------------------------------------------------------------------------- checksums


def seal_chunk(frame: bytes) -> bytes:
    """A chunk file: the encoded frame followed by its CRC-32C (zarr's ``crc32c`` codec)."""
    return frame + struct.pack("<I", google_crc32c.value(frame))


def chunk_crc(data: bytes) -> int:
    """The CRC-32C stored at the end of a chunk file."""
    return struct.unpack("<I", data[-4:])[0]


def unseal_chunk(data: bytes) -> bytes:
    """The frame of a chunk file; ``ValueError`` if its CRC-32C does not match."""
    if len(data) < 4:
        raise ValueError("chunk file shorter than its checksum")
    frame = data[:-4]
    if google_crc32c.value(frame) != chunk_crc(data):
        raise ValueError("chunk CRC-32C mismatch (the file was changed after it was written)")
    return frame


def combine_checksums(chunks: Mapping[str, Iterable[int]], order: Iterable[str]) -> str:
    """Combined CRC-32C (8 hex digits) over ``'<array>:<chunk crcs>\\n'`` in ``order``."""
    crc = 0
    for name in order:
        line = f"{name}:{','.join(f'{c:08x}' for c in chunks[name])}\n".encode()
        crc = google_crc32c.extend(crc, line)
    return f"{crc:08x}"


def checksum_order(names: Iterable[str]) -> list[str]:
    """Fixed order of a shard's arrays in its checksum: event arrays, objects, views."""
    names = set(names)
    fixed = [n for n in (*ID_ARRAYS, *OPTIONAL_EVENT_ARRAYS) if n in names]
    grouped = [n for g in (OBJECTS, VIEWS) for n in ragged_columns(g) if n in names]
    return fixed + grouped + sorted(names - set(fixed) - set(grouped))


def disk_columns(columns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Flat object columns in their on-disk dtypes (:data:`OBJECT_COLUMNS`).

    ``ValueError`` if an integer column (charge, type_id) holds a non-integer value or
    one outside its dtype's range.
    """
    flat = {}
    for name, dtype in OBJECT_COLUMNS.items():
        values = np.asarray(columns[name])
        if dtype[1] in "iu" and len(values):
            if not np.array_equal(values, np.rint(values)):
                raise ValueError(f"object column {name!r} holds non-integer values")
            info = np.iinfo(np.dtype(dtype))
            if values.min() < info.min or values.max() > info.max:
                raise ValueError(f"object column {name!r} outside the range of {dtype}")
        flat[name] = values.astype(dtype)
    return flat


def to_ragged(mask: np.ndarray, columns: Mapping[str, np.ndarray]) -> tuple[np.ndarray, dict]:
    """Padded ``[rows, T]`` columns and their mask -> ``(offsets [rows + 1], flat columns)``.

    The flat columns keep the valid entries in row-major order (row, then slot) and get
    the on-disk dtypes of :data:`OBJECT_COLUMNS`.
    """
    mask = np.asarray(mask, bool)
    index = np.flatnonzero(mask.reshape(-1))
    offsets = np.zeros(mask.shape[0] + 1, np.int64)
    np.cumsum(mask.sum(axis=-1), out=offsets[1:])
    flat = {name: np.asarray(columns[name]).reshape(-1).take(index) for name in OBJECT_COLUMNS}
    return offsets, disk_columns(flat)
