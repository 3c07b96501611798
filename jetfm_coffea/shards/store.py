"""Open, index and verify a shard store.

:func:`create_store` writes the root group (schema version, token config, augmentation
pipeline) before any shard; :func:`write_manifest` indexes the shards on disk after they
are written; :func:`open_store` validates the root and the manifest (a schema version
mismatch is a :class:`~jetfm_coffea.errors.SchemaVersionError`); :func:`verify` lists
every problem of a store, each naming its shard, and never deletes anything.
"""

from __future__ import annotations

import itertools
import json
import os
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np

from jetfm_coffea import __version__
from jetfm_coffea.errors import (
    LegacyStoreError,
    SchemaValidationError,
    SchemaVersionError,
    ShardChecksumError,
    ShardError,
    StoreManifestError,
)
from jetfm_coffea.schema import validate
from jetfm_coffea.shards.format import (
    LEGACY_VERSIONS,
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    OBJECT_FIELDS,
    OBJECTS,
    READABLE_VERSIONS,
    SCHEMA_VERSION,
    SHARDS_DIR,
    STORE_ATTR,
    STORE_FORMAT,
    VIEWS,
    chunk_crc,
    column_path,
    combine_checksums,
    is_shard_name,
    is_temporary_name,
    offsets_problem,
    shard_path,
    unseal_chunk,
)
from jetfm_coffea.shards.views import AugmentationPipelineLike, pipeline_document
from jetfm_coffea.tokens import TokenConfig, load_token_config

__all__ = [
    "Problem",
    "Shard",
    "ShardRecord",
    "ShardStore",
    "VerifyReport",
    "create_store",
    "open_shard",
    "open_store",
    "scan_shards",
    "scan_temporaries",
    "verify",
    "write_manifest",
]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _package() -> dict[str, str]:
    return {"name": "jetfm-coffea", "version": __version__}


def _read_json(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _write_json_atomic(path: Path, document: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:12]}")
    tmp.write_text(json.dumps(document, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _check_version(document: dict[str, Any], where: str) -> None:
    found = document.get("schema_version") if isinstance(document, dict) else None
    if found in LEGACY_VERSIONS:
        raise LegacyStoreError(where, found, SCHEMA_VERSION)
    if found not in READABLE_VERSIONS:
        raise SchemaVersionError(where, found, SCHEMA_VERSION)


def _validate(document: dict[str, Any], schema: str, where: str) -> None:
    _check_version(document, where)
    try:
        validate(document, schema, document["schema_version"])
    except SchemaValidationError as err:
        raise SchemaValidationError(f"{where}: {err}") from err


# --------------------------------------------------------------------------- store root


def _layout(config: TokenConfig, pipeline: AugmentationPipelineLike | None) -> dict[str, Any]:
    return {
        "n_tokens": config.n_tokens,
        "n_features": len(config.features),
        "feature_names": config.feature_names,
        "n_views": int(pipeline.views) if pipeline is not None else 0,
        "object_columns": list(OBJECT_FIELDS),
    }


def create_store(
    path: str | Path,
    token_config: TokenConfig,
    pipeline: AugmentationPipelineLike | None = None,
) -> Path:
    """Create the store root (or check an existing one matches the configs); return its path.

    Raises :class:`ShardError` if an existing store was built with another token
    config or augmentation pipeline (mixing them would corrupt the data set).
    """
    import zarr

    root = Path(path)
    description = {
        "schema_version": SCHEMA_VERSION,
        "format": STORE_FORMAT,
        "created": _now(),
        "package": _package(),
        "layout": _layout(token_config, pipeline),
        "token_config": token_config.model_dump(mode="json"),
        "token_config_hash": token_config.hash(),
        "augmentation": pipeline_document(pipeline),
    }
    if (root / "zarr.json").is_file():
        existing = _store_description(root)
        for key in ("token_config_hash", "layout"):
            if existing[key] != description[key]:
                raise ShardError(
                    str(root),
                    f"store was built with {key} {existing[key]!r}, this build has "
                    f"{description[key]!r}; use a new --out store",
                )
        if existing["augmentation"]["hash"] != description["augmentation"]["hash"]:
            raise ShardError(
                str(root),
                "store was built with another augmentation pipeline "
                f"({existing['augmentation']['hash']}); use a new --out store",
            )
        return root
    if root.exists() and any(root.iterdir()):
        raise ShardError(str(root), "exists, is not empty and is not a jetfm shard store")
    _validate(description, "shard_store", str(root))
    root.mkdir(parents=True, exist_ok=True)
    zarr.open_group(store=str(root), mode="w", zarr_format=3, attributes={STORE_ATTR: description})
    (root / SHARDS_DIR).mkdir(exist_ok=True)
    return root


def _store_description(root: Path) -> dict[str, Any]:
    meta = root / "zarr.json"
    if not meta.is_file():
        raise ShardError(str(root), "not a jetfm shard store (no zarr.json at its root)")
    attrs = _read_json(meta).get("attributes", {})
    if STORE_ATTR not in attrs:
        raise ShardError(str(root), f"not a jetfm shard store (no {STORE_ATTR!r} attribute)")
    description = attrs[STORE_ATTR]
    _validate(description, "shard_store", str(root))
    return description


# --------------------------------------------------------------------------- shards

_DTYPES = {"int8": "|i1", "uint8": "|u1", "int64": "<i8", "int32": "<i4", "float32": "<f4"}
_DTYPES["float64"] = "<f8"
_CODEC_NAMES = ["bytes", "zstd", "crc32c"]


class _ChunkReader:
    """Direct reader of a 1-d shard array (regular grid; codecs bytes + zstd + crc32c).

    Zarr's own read path synchronises with its I/O thread for every call, which costs
    milliseconds on a loaded core; the loader reads contiguous ranges, so it decodes the
    chunk files itself (Zarr v3 spec: default chunk keys ``c/<i>``, edge chunks stored
    full size) and checks every chunk's CRC-32C on the way.
    """

    def __init__(self, directory: Path, where: str):
        self.directory = directory
        self.where = where
        try:
            meta = _read_json(directory / "zarr.json")
        except (OSError, ValueError) as err:
            raise ShardError(where, f"array {directory.name!r} unreadable: {err}") from err
        codecs = [c.get("name") for c in meta.get("codecs", [])]
        grid = meta.get("chunk_grid", {})
        dtype = _DTYPES.get(meta.get("data_type"))
        if (
            meta.get("zarr_format") != 3
            or codecs != _CODEC_NAMES
            or dtype is None
            or grid.get("name") != "regular"
            or len(meta.get("shape", [])) != 1
            or meta.get("chunk_key_encoding", {}).get("name") != "default"
        ):
            raise ShardError(
                where, f"array {directory.name!r} is not a 1-d {'+'.join(_CODEC_NAMES)} array"
            )
        self.length = int(meta["shape"][0])
        self.chunk = int(grid["configuration"]["chunk_shape"][0])
        self.dtype = np.dtype(dtype)
        from numcodecs import Zstd

        self.codec = Zstd()

    def chunk_file(self, i: int) -> Path:
        return self.directory / "c" / str(i)

    def decode_chunk(self, i: int, out: np.ndarray | None = None) -> np.ndarray:
        """Chunk ``i`` (full size), its CRC-32C checked."""
        try:
            raw = self.chunk_file(i).read_bytes()
        except FileNotFoundError as err:
            raise ShardError(
                self.where, f"array {self.directory.name!r}: chunk {i} missing"
            ) from err
        try:
            frame = unseal_chunk(raw)
        except ValueError as err:
            raise ShardChecksumError(
                self.where, f"array {self.directory.name!r} chunk {i}: {err}"
            ) from err
        if out is None:
            out = np.empty(self.chunk, self.dtype)
        try:
            self.codec.decode(frame, out=out)
        except (ValueError, RuntimeError) as err:
            raise ShardError(self.where, f"array {self.directory.name!r} chunk {i}: {err}") from err
        return out

    def read(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Elements ``[start, stop)`` (whole chunks decode in place)."""
        stop = self.length if stop is None else stop
        if not 0 <= start <= stop <= self.length:
            raise ShardError(
                self.where,
                f"array {self.directory.name!r}: range [{start}, {stop}) outside its "
                f"{self.length} elements",
            )
        out = np.empty(stop - start, self.dtype)
        size, pos = self.chunk, 0
        for i in range(start // size, (stop - 1) // size + 1 if stop > start else 0):
            lo, hi = max(start, i * size), min(stop, (i + 1) * size)
            if lo == i * size and hi - lo == size:
                self.decode_chunk(i, out[pos : pos + size])
            else:
                out[pos : pos + hi - lo] = self.decode_chunk(i)[lo - i * size : hi - i * size]
            pos += hi - lo
        return out


class Shard:
    """One shard opened for reading (attributes validated on open)."""

    def __init__(self, directory: str | Path, path: str | None = None, *, full_check: bool = True):
        self.directory = Path(directory)
        self.path = path or str(self.directory)
        meta = self.directory / "zarr.json"
        if not meta.is_file():
            raise ShardError(self.path, "missing (no shard at this path)")
        try:
            attrs = _read_json(meta).get("attributes", {})
        except (OSError, ValueError) as err:
            raise ShardError(self.path, f"unreadable attributes: {err}") from err
        if full_check:
            _validate(attrs, "shard", self.path)
        else:  # streaming: the version and the keys the reader needs
            _check_version(attrs, self.path)
            missing = {"n_events", "n_objects", "arrays", "layout", "checksum"} - set(attrs)
            if missing:
                raise ShardError(self.path, f"attributes lack {sorted(missing)}")
        self.attrs: dict[str, Any] = attrs
        self._readers: dict[str, _ChunkReader] = {}
        self._offsets: dict[str, np.ndarray] = {}

    @property
    def n_events(self) -> int:
        return int(self.attrs["n_events"])

    @property
    def n_objects(self) -> int:
        return int(self.attrs["n_objects"])

    @property
    def n_views(self) -> int:
        return int(self.attrs["layout"]["n_views"])

    @property
    def checksum(self) -> str:
        """The combined CRC-32C recorded when the shard was written."""
        return self.attrs["checksum"]["value"]

    @property
    def array_names(self) -> list[str]:
        return list(self.attrs["arrays"])

    @property
    def chunk_events(self) -> int:
        """Events per chunk of the per-event arrays (the loader's read block)."""
        return int(self.attrs["arrays"]["event"]["chunks"][0])

    def has(self, name: str) -> bool:
        return name in self.attrs["arrays"]

    def reader(self, name: str) -> _ChunkReader:
        """The chunk reader of array ``name`` (opened once)."""
        reader = self._readers.get(name)
        if reader is None:
            if not self.has(name):
                raise ShardError(self.path, f"has no array {name!r}")
            reader = self._readers[name] = _ChunkReader(self.directory / name, self.path)
        return reader

    def read(self, name: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Elements ``[start, stop)`` of array ``name`` as numpy (CRC-32C checked)."""
        return self.reader(name).read(start, stop)

    def read_all(self) -> dict[str, np.ndarray]:
        """Every array of the shard (for verification and tests)."""
        return {name: self.read(name) for name in self.array_names}

    def offsets(self, group: str = OBJECTS) -> np.ndarray:
        """The validated offsets of a ragged group (read once); a corrupted one is refused."""
        out = self._offsets.get(group)
        if out is None:
            name = column_path(group, "offsets")
            out = self.read(name)
            rows = self.n_events * (self.n_views if group == VIEWS else 1)
            n_objects = self.attrs["arrays"][column_path(group, "pt")]["shape"][0]
            problem = offsets_problem(out, rows, n_objects)
            if problem is not None:
                raise ShardError(self.path, f"corrupted ragged offsets {name!r}: {problem}")
            self._offsets[group] = out
        return out

    def read_ragged(
        self, start: int, stop: int, group: str = OBJECTS, columns: tuple[str, ...] = OBJECT_FIELDS
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Events ``[start, stop)`` of a ragged group: ``(offsets from 0, {column: values})``.

        For ``views`` the rows are ``[start * V, stop * V)`` (V views per event).
        """
        offsets = self.offsets(group)
        per = self.n_views if group == VIEWS else 1
        lo, hi = int(offsets[start * per]), int(offsets[stop * per])
        cols = {c: self.read(column_path(group, c), lo, hi) for c in columns}
        return offsets[start * per : stop * per + 1] - lo, cols

    def check(self) -> None:
        """Raise :class:`ShardChecksumError` / :class:`ShardError` if the content is wrong."""
        for problem in _shard_problems(self):
            if problem.kind == "checksum":
                raise ShardChecksumError(self.path, problem.message)
            raise ShardError(self.path, problem.message)


def open_shard(store: str | Path, path: str, *, full_check: bool = True) -> Shard:
    """Open the shard at ``path`` (relative to ``store``), validating its attributes.

    ``full_check=False`` (streaming) checks the schema version and the keys the reader
    needs only; :func:`verify` and the writer validate against the full schema.
    """
    return Shard(Path(store) / path, path, full_check=full_check)


def scan_shards(store: str | Path) -> list[str]:
    """Paths (relative, sorted) of every final-named shard directory on disk."""
    root = Path(store)
    out = []
    base = root / SHARDS_DIR
    if not base.is_dir():
        return out
    for dataset in sorted(base.iterdir()):
        if not dataset.is_dir() or dataset.name.startswith("."):
            continue
        for file_dir in sorted(dataset.iterdir()):
            if not file_dir.is_dir() or file_dir.name.startswith("."):
                continue
            names = [p.name for p in file_dir.iterdir() if p.is_dir() and is_shard_name(p.name)]
            names.sort(key=lambda n: tuple(int(x) for x in n.split("-")))
            out.extend(f"{SHARDS_DIR}/{dataset.name}/{file_dir.name}/{n}" for n in names)
    return out


def scan_temporaries(store: str | Path) -> list[str]:
    """Leftover temporary shard directories of interrupted writes (never deleted here)."""
    base = Path(store) / SHARDS_DIR
    if not base.is_dir():
        return []
    return sorted(
        str(p.relative_to(store))
        for p in base.glob("*/*/.*")
        if p.is_dir() and is_temporary_name(p.name)
    )


# --------------------------------------------------------------------------- manifest


@dataclass(frozen=True)
class ShardRecord:
    """One manifest entry."""

    path: str
    dataset: str
    source_uuid: str
    entry_start: int
    entry_stop: int
    n_events: int
    checksum: str
    label: int | None
    selection: dict[str, Any] | None = None  # lumi mask and blinding (jetfm_coffea.selection)
    provenance: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The manifest entry (``selection`` and ``provenance`` only when the shard has them)."""
        out = asdict(self)
        for key in ("selection", "provenance"):
            if out[key] is None:
                del out[key]
        return out

    @classmethod
    def from_shard(cls, shard: Shard) -> ShardRecord:
        a = shard.attrs
        return cls(
            path=shard.path,
            dataset=a["dataset"],
            source_uuid=a["source"]["uuid"],
            entry_start=a["source"]["entry_start"],
            entry_stop=a["source"]["entry_stop"],
            n_events=a["n_events"],
            checksum=a["checksum"]["value"],
            label=a["label"],
            selection=a.get("selection"),
            provenance=a.get("provenance"),
        )


def _manifest_document(description: dict[str, Any], records: list[ShardRecord]) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "format": MANIFEST_FORMAT,
        "created": _now(),
        "package": _package(),
        "layout": description["layout"],
        "token_config_hash": description["token_config_hash"],
        "augmentation_hash": description["augmentation"]["hash"],
        "n_shards": len(records),
        "n_events": int(sum(r.n_events for r in records)),
        "shards": [r.as_dict() for r in records],
    }


def write_manifest(store: str | Path, paths: list[str] | None = None) -> dict[str, Any]:
    """Index the shards on disk (or ``paths``) into ``manifest.json``, atomically.

    Reads each shard's attributes (not its arrays); a shard that does not open raises.
    Returns the manifest document.
    """
    root = Path(store)
    description = _store_description(root)
    paths = scan_shards(root) if paths is None else sorted(paths)
    records = [ShardRecord.from_shard(open_shard(root, p)) for p in paths]
    document = _manifest_document(description, records)
    _validate(document, "store_manifest", str(root / MANIFEST_NAME))
    _write_json_atomic(root / MANIFEST_NAME, document)
    return document


# --------------------------------------------------------------------------- open


@dataclass
class ShardStore:
    """A validated shard store: its description, manifest and shards."""

    root: Path
    description: dict[str, Any]
    manifest: dict[str, Any]

    @cached_property
    def records(self) -> list[ShardRecord]:
        return [ShardRecord(**s) for s in self.manifest["shards"]]

    @property
    def n_events(self) -> int:
        return int(self.manifest["n_events"])

    @property
    def n_views(self) -> int:
        return int(self.description["layout"]["n_views"])

    @property
    def n_tokens(self) -> int:
        return int(self.description["layout"]["n_tokens"])

    @property
    def n_features(self) -> int:
        return int(self.description["layout"]["n_features"])

    @property
    def feature_names(self) -> list[str]:
        return list(self.description["layout"]["feature_names"])

    @cached_property
    def token_config(self) -> TokenConfig:
        return load_token_config(self.description["token_config"])

    @property
    def augmentation(self) -> dict[str, Any]:
        return self.description["augmentation"]

    @property
    def object_columns(self) -> list[str]:
        return list(self.description["layout"]["object_columns"])

    def disk_bytes(self) -> int:
        """Bytes of every file under ``shards/`` (compressed arrays and their metadata)."""
        base = self.root / SHARDS_DIR
        return sum(p.stat().st_size for p in base.rglob("*") if p.is_file())

    def shard(self, path: str, *, full_check: bool = True) -> Shard:
        return open_shard(self.root, path, full_check=full_check)

    def __iter__(self) -> Iterator[Shard]:
        for record in self.records:
            yield self.shard(record.path)

    def __len__(self) -> int:
        return len(self.records)


def open_store(path: str | Path, *, check_shards: bool = True) -> ShardStore:
    """Open a store for reading: validate the root and the manifest.

    ``check_shards`` also checks that every shard listed in the manifest is on disk
    (a stat per shard; contents are checked by :func:`verify`).
    Raises :class:`SchemaVersionError` for another schema version and
    :class:`StoreManifestError` (naming the shard) for a missing manifest or shard.
    """
    root = Path(path)
    if not root.exists():
        raise ShardError(str(root), "no such store")
    description = _store_description(root)
    manifest_path = root / MANIFEST_NAME
    if not manifest_path.is_file():
        raise StoreManifestError(
            str(manifest_path),
            "missing: the build did not finish; rerun it, or run "
            "'jetfm shards verify --rebuild-manifest'",
        )
    try:
        manifest = _read_json(manifest_path)
    except ValueError as err:
        raise StoreManifestError(str(manifest_path), f"not valid JSON: {err}") from err
    _validate(manifest, "store_manifest", str(manifest_path))
    if manifest["token_config_hash"] != description["token_config_hash"]:
        raise StoreManifestError(str(manifest_path), "token config hash differs from the store's")
    if check_shards:
        missing = [s["path"] for s in manifest["shards"] if not (root / s["path"]).is_dir()]
        if missing:
            raise StoreManifestError(
                missing[0], f"listed in the manifest but missing on disk ({len(missing)} missing)"
            )
    return ShardStore(root, description, manifest)


# --------------------------------------------------------------------------- verify


@dataclass(frozen=True)
class Problem:
    """One problem found by :func:`verify`; ``shard`` names the shard (or file)."""

    kind: Literal[
        "schema",
        "checksum",
        "counts",
        "unreadable",
        "missing",
        "unlisted",
        "manifest",
        "overlap",
        "path",
        "config",
        "temporary",
    ]
    shard: str
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        return f"[{self.kind}] {self.shard}: {self.message}"


@dataclass
class VerifyReport:
    """Outcome of :func:`verify`: every problem, and what was checked."""

    store: str
    n_shards: int = 0
    n_events: int = 0
    problems: list[Problem] = field(default_factory=list)
    manifest_rebuilt: bool = False

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors


def _shard_problems(shard: Shard) -> list[Problem]:
    """Every problem of one shard's content: chunk CRCs, recorded checksum, shapes, offsets."""
    out = []
    attrs = shard.attrs
    n = shard.n_events
    src = attrs["source"]
    removed = (attrs.get("selection") or {}).get("events_removed", 0)  # lumi mask, blinding
    if n != src["entry_stop"] - src["entry_start"] - removed:
        out.append(Problem("counts", shard.path, f"{n} events for entry range {src}"))
    recorded = attrs["checksum"]["chunks"]
    found: dict[str, list[int]] = {}
    for name, spec in attrs["arrays"].items():
        try:
            reader = shard.reader(name)
            if [reader.length] != spec["shape"] or reader.dtype.str != spec["dtype"]:
                out.append(
                    Problem(
                        "counts",
                        shard.path,
                        f"array {name!r} is {reader.dtype.str}[{reader.length}], "
                        f"attributes say {spec['dtype']}{spec['shape']}",
                    )
                )
                continue
            n_chunks = -(-reader.length // reader.chunk)
            crcs = []
            for i in range(n_chunks):
                reader.decode_chunk(i)  # checks the chunk's CRC-32C and that it decodes
                crcs.append(chunk_crc(reader.chunk_file(i).read_bytes()))
            found[name] = crcs
        except ShardChecksumError as err:
            out.append(Problem("checksum", shard.path, err.reason))
        except ShardError as err:
            out.append(Problem("unreadable", shard.path, err.reason))
    if out:
        return out
    for name, spec in attrs["arrays"].items():
        expected = n if "/" not in name else None
        if expected is not None and spec["shape"][0] != expected:
            out.append(
                Problem(
                    "counts", shard.path, f"array {name!r} has {spec['shape'][0]} events, not {n}"
                )
            )
    for group in (OBJECTS, VIEWS):
        if shard.has(column_path(group, "offsets")):
            try:
                shard.offsets(group)
            except ShardError as err:
                out.append(Problem("counts", shard.path, err.reason))
    if shard.n_objects != attrs["arrays"][column_path(OBJECTS, "pt")]["shape"][0]:
        out.append(Problem("counts", shard.path, "n_objects differs from the object columns"))
    order = attrs["checksum"]["order"]
    if set(order) != set(attrs["arrays"]) or any(found[k] != recorded.get(k) for k in order):
        out.append(
            Problem(
                "checksum", shard.path, "chunk CRC-32Cs differ from those recorded at write time"
            )
        )
    elif combine_checksums(found, order) != shard.checksum:
        out.append(
            Problem(
                "checksum",
                shard.path,
                f"content checksum {combine_checksums(found, order)} differs from the "
                f"recorded {shard.checksum}",
            )
        )
    return out


def verify(
    store: str | Path, *, rebuild_manifest: bool = False, check_content: bool = True
) -> VerifyReport:
    """Check a store and list every problem; never deletes or changes shards.

    Checks: store root schema; each shard's schema version and attributes, array shapes,
    counts, content checksum, token config; the manifest against the shards on disk
    (missing, unlisted, differing counts/checksums); overlapping entry ranges of one file;
    leftover temporary directories (warnings). With ``rebuild_manifest`` a new manifest
    is written from the shards that passed (the old one is kept as ``manifest.json.bak-*``).
    """
    root = Path(store)
    report = VerifyReport(str(root))
    try:
        description = _store_description(root)
    except ShardError as err:
        report.problems.append(Problem("schema", str(root), err.reason))
        return report
    except SchemaValidationError as err:
        report.problems.append(Problem("schema", str(root), str(err)))
        return report

    on_disk = scan_shards(root)
    good: dict[str, ShardRecord] = {}
    for path in on_disk:
        try:
            shard = open_shard(root, path)
        except SchemaVersionError as err:
            report.problems.append(Problem("schema", path, err.reason))
            continue
        except SchemaValidationError as err:
            report.problems.append(Problem("schema", path, str(err)))
            continue
        except ShardError as err:
            report.problems.append(Problem("unreadable", path, err.reason))
            continue
        if shard.attrs["token_config_hash"] != description["token_config_hash"]:
            report.problems.append(
                Problem(
                    "config",
                    path,
                    f"token config {shard.attrs['token_config_hash']} differs from the "
                    f"store's {description['token_config_hash']}",
                )
            )
            continue
        src = shard.attrs["source"]
        expected = shard_path(
            shard.attrs["dataset"], src["uuid"], src["entry_start"], src["entry_stop"]
        )
        if expected != path:
            report.problems.append(
                Problem("path", path, f"attributes describe {expected} (moved or copied shard)")
            )
            continue
        problems = _shard_problems(shard) if check_content else []
        report.problems.extend(problems)
        if not problems:
            good[path] = ShardRecord.from_shard(shard)

    # overlapping entry ranges of one input file would duplicate events
    by_file: dict[tuple[str, str], list[ShardRecord]] = defaultdict(list)
    for rec in good.values():
        by_file[(rec.dataset, rec.source_uuid)].append(rec)
    for recs in by_file.values():
        recs.sort(key=lambda r: (r.entry_start, r.entry_stop))
        for a, b in itertools.pairwise(recs):
            if b.entry_start < a.entry_stop:
                report.problems.append(
                    Problem("overlap", b.path, f"entry range overlaps {a.path} (duplicate events)")
                )

    manifest_path = root / MANIFEST_NAME
    listed: dict[str, dict[str, Any]] = {}
    manifest_ok = False
    if not manifest_path.is_file():
        report.problems.append(Problem("manifest", MANIFEST_NAME, "missing"))
    else:
        try:
            manifest = _read_json(manifest_path)
            _validate(manifest, "store_manifest", MANIFEST_NAME)
            listed = {s["path"]: s for s in manifest["shards"]}
            manifest_ok = True
            if manifest["n_events"] != sum(s["n_events"] for s in manifest["shards"]):
                report.problems.append(
                    Problem("manifest", MANIFEST_NAME, "n_events is not the sum over shards")
                )
        except SchemaVersionError as err:
            report.problems.append(Problem("schema", MANIFEST_NAME, err.reason))
        except (ValueError, SchemaValidationError) as err:
            report.problems.append(Problem("manifest", MANIFEST_NAME, f"invalid: {err}"))
    disk = set(on_disk)
    for path, entry in listed.items():
        if path not in disk:
            report.problems.append(
                Problem("missing", path, "listed in the manifest but not on disk")
            )
        elif path in good:
            rec = good[path]
            if entry["n_events"] != rec.n_events or entry["checksum"] != rec.checksum:
                report.problems.append(
                    Problem(
                        "manifest",
                        path,
                        f"manifest says {entry['n_events']} events / {entry['checksum'][:16]}..., "
                        f"shard has {rec.n_events} / {rec.checksum[:16]}...",
                    )
                )
    if manifest_ok:
        for path in on_disk:
            if path not in listed:
                report.problems.append(Problem("unlisted", path, "on disk but not in the manifest"))
    for tmp in scan_temporaries(root):
        report.problems.append(
            Problem(
                "temporary",
                tmp,
                "leftover of an interrupted write (not a shard; safe to remove by hand)",
                "warning",
            )
        )
    report.n_shards = len(good)
    report.n_events = sum(r.n_events for r in good.values())
    if rebuild_manifest:
        if manifest_path.is_file():
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            os.replace(manifest_path, root / f"{MANIFEST_NAME}.bak-{stamp}")
        write_manifest(root, sorted(good))
        report.manifest_rebuilt = True
    return report
