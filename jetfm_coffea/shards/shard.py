"""One shard opened for reading: attributes checked on open, arrays read through the
chunk codec (:mod:`jetfm_coffea.shards.codec`), and the shard's own integrity check.

:func:`open_shard` validates a shard's attributes against ``schemas/2.0.0/shard.json``
(a schema version mismatch is a :class:`~jetfm_coffea.errors.SchemaVersionError`);
:func:`shard_problems` lists every problem of its content (chunk CRCs, recorded
checksum, shapes, offsets), each a :class:`Problem` naming the shard, for
:meth:`Shard.check` and for the store's verification.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from jetfm_coffea.errors import (
    LegacyStoreError,
    SchemaValidationError,
    SchemaVersionError,
    ShardChecksumError,
    ShardError,
)
from jetfm_coffea.schema import validate
from jetfm_coffea.shards.codec import ChunkReader
from jetfm_coffea.shards.format import (
    LEGACY_VERSIONS,
    OBJECTS,
    READABLE_VERSIONS,
    SCHEMA_VERSION,
    VIEWS,
    chunk_crc,
    column_path,
    combine_checksums,
    offsets_problem,
)
from jetfm_coffea.tokens.fields import OBJECT_FIELDS

__all__ = [
    "Problem",
    "Shard",
    "open_shard",
    "read_shard_json",
    "shard_problems",
    "validate_document",
]


def read_shard_json(path: Path) -> dict[str, Any]:
    """The JSON document at ``path`` (UTF-8)."""
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _check_version(document: dict[str, Any], where: str) -> None:
    found = document.get("schema_version") if isinstance(document, dict) else None
    if found in LEGACY_VERSIONS:
        raise LegacyStoreError(where, found, SCHEMA_VERSION)
    if found not in READABLE_VERSIONS:
        raise SchemaVersionError(where, found, SCHEMA_VERSION)


def validate_document(document: dict[str, Any], schema: str, where: str) -> None:
    """Check the schema version of a shard, store or manifest document, then validate it."""
    _check_version(document, where)
    try:
        validate(document, schema, document["schema_version"])
    except SchemaValidationError as err:
        raise SchemaValidationError(f"{where}: {err}") from err


@dataclass(frozen=True)
class Problem:
    """One problem of a shard or a store (:func:`shard_problems`, ``verify``).

    ``shard`` names the shard (or the file).
    """

    kind: Literal[
        "schema",
        "checksum",
        "counts",
        "unreadable",
        "missing",
        "unlisted",
        "manifest",
        "overlap",
        "duplicate",
        "path",
        "config",
        "temporary",
    ]
    shard: str
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        return f"[{self.kind}] {self.shard}: {self.message}"


class Shard:
    """One shard opened for reading (attributes validated on open)."""

    def __init__(self, directory: str | Path, path: str | None = None, *, full_check: bool = True):
        self.directory = Path(directory)
        self.path = path or str(self.directory)
        meta = self.directory / "zarr.json"
        if not meta.is_file():
            raise ShardError(self.path, "missing (no shard at this path)")
        try:
            attrs = read_shard_json(meta).get("attributes", {})
        except (OSError, ValueError) as err:
            raise ShardError(self.path, f"unreadable attributes: {err}") from err
        if full_check:
            validate_document(attrs, "shard", self.path)
        else:  # streaming: the version and the keys the reader needs
            _check_version(attrs, self.path)
            missing = {"n_events", "n_objects", "arrays", "layout", "checksum"} - set(attrs)
            if missing:
                raise ShardError(self.path, f"attributes lack {sorted(missing)}")
        self.attrs: dict[str, Any] = attrs
        self._readers: dict[str, ChunkReader] = {}
        self._offsets: dict[str, np.ndarray] = {}
        self._expected_crcs: dict[str, list[int]] | None = None

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

    def expect_checksum(self, checksum: str, token_config_hash: str | None = None) -> None:
        """Tie every chunk read from now on to a manifest's ``checksum`` (and token config).

        The chunk CRC-32Cs recorded in the attributes must combine to ``checksum`` (what
        ``verify`` compares), and every chunk read must carry its recorded CRC-32C: a
        shard replaced or changed since the manifest was written is refused, by name,
        at the cost of the attributes and the bytes that are read anyway.
        """
        found = self.attrs.get("token_config_hash")
        if token_config_hash is not None and found not in (None, token_config_hash):
            raise ShardChecksumError(
                self.path,
                f"built with token config {found}, the store's is {token_config_hash} "
                "(the shard was replaced); run 'jetfm shards verify'",
            )
        recorded = self.attrs["checksum"]
        order, chunks = recorded.get("order", []), recorded.get("chunks", {})
        if set(order) != set(self.attrs["arrays"]) or not set(order) <= set(chunks):
            raise ShardChecksumError(self.path, "recorded checksum does not cover its arrays")
        combined = combine_checksums(chunks, order)
        if combined != checksum or recorded.get("value") != checksum:
            raise ShardChecksumError(
                self.path,
                f"content checksum {combined} differs from the manifest's {checksum} (the "
                "shard was replaced or changed since the manifest was written); run "
                "'jetfm shards verify'",
            )
        self._expected_crcs = {name: [int(c) for c in chunks[name]] for name in order}
        self._readers.clear()
        self._offsets.clear()

    def has(self, name: str) -> bool:
        return name in self.attrs["arrays"]

    def reader(self, name: str) -> ChunkReader:
        """The chunk reader of array ``name`` (opened once)."""
        reader = self._readers.get(name)
        if reader is None:
            if not self.has(name):
                raise ShardError(self.path, f"has no array {name!r}")
            expected = None if self._expected_crcs is None else self._expected_crcs[name]
            reader = ChunkReader(self.directory / name, self.path, expected)
            self._readers[name] = reader
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
        for problem in shard_problems(self):
            if problem.kind == "checksum":
                raise ShardChecksumError(self.path, problem.message)
            raise ShardError(self.path, problem.message)


def open_shard(store: str | Path, path: str, *, full_check: bool = True) -> Shard:
    """Open the shard at ``path`` (relative to ``store``), validating its attributes.

    ``full_check=False`` (streaming) checks the schema version and the keys the reader
    needs only; :func:`verify` and the writer validate against the full schema.
    """
    return Shard(Path(store) / path, path, full_check=full_check)


def shard_problems(shard: Shard) -> list[Problem]:
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
