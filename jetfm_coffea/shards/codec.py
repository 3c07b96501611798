"""The hand-written Zarr v3 chunk codec of shard arrays: encode and decode, side by side.

Every shard array is 1-d on a regular chunk grid with the codec chain
:data:`~jetfm_coffea.shards.format.CODECS` (``bytes`` little-endian, ``zstd``,
``crc32c``) and the spec's default chunk keys (``<array>/c/<i>``); edge chunks are stored
full size, as the Zarr v3 spec has them. Zarr's own read and write paths synchronise with
their I/O thread for every call, which costs milliseconds on a loaded core, so the writer
encodes with :func:`encode_arrays` and the reader decodes with :class:`ChunkReader` here,
checking every chunk's CRC-32C on the way. Any Zarr v3 reader reads the result (tested).

>>> import numpy as np, tempfile
>>> from pathlib import Path
>>> specs, files = encode_arrays({"event": np.arange(5, dtype="<i8")}, chunk_events=2)
>>> specs["event"], len(files["event"])
({'dtype': '<i8', 'shape': [5], 'chunks': [2]}, 3)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from jetfm_coffea.errors import ShardChecksumError, ShardError
from jetfm_coffea.shards.format import (
    CHUNK_OBJECTS,
    CODECS,
    chunk_crc,
    seal_chunk,
    unseal_chunk,
)

__all__ = ["DEFAULT_ZSTD_LEVEL", "ChunkReader", "codecs", "encode_arrays"]

#: zstd level of the shard writer (fast; the arrays are small integers and floats).
DEFAULT_ZSTD_LEVEL = 1

# Zarr v3 data type names -> numpy dtype strings, for the arrays a shard may hold.
_DTYPES = {
    "int8": "|i1",
    "uint8": "|u1",
    "int64": "<i8",
    "int32": "<i4",
    "float32": "<f4",
    "float64": "<f8",
}
_CODEC_NAMES = [c["name"] for c in CODECS]


def codecs(level: int = DEFAULT_ZSTD_LEVEL) -> list[dict[str, Any]]:
    """The Zarr v3 codec chain of every shard array (bytes, zstd at ``level``, crc32c)."""
    out = [dict(c) for c in CODECS]
    out[1] = {"name": "zstd", "configuration": {"level": int(level), "checksum": False}}
    return out


# --------------------------------------------------------------------------- encode


def encode_arrays(
    arrays: Mapping[str, np.ndarray], chunk_events: int, level: int = DEFAULT_ZSTD_LEVEL
) -> tuple[dict[str, dict[str, Any]], dict[str, list[bytes]]]:
    """Array specs and sealed chunk files (zstd frame + CRC-32C) of every array.

    Per-event arrays (and offsets) are chunked by ``chunk_events`` rows, object columns
    (``<group>/<column>``) by ``4 * chunk_events`` (at most :data:`CHUNK_OBJECTS`); edge
    chunks are padded with zeros to full size.
    """
    from numcodecs import Zstd

    encoder = Zstd(level=level, checksum=False)
    specs, files = {}, {}
    for name, data in arrays.items():
        is_column = "/" in name and not name.endswith("/offsets")
        rows = min(CHUNK_OBJECTS, 4 * chunk_events) if is_column else chunk_events
        size = max(1, min(rows, len(data)))
        data = np.ascontiguousarray(data)
        specs[name] = {"dtype": data.dtype.str, "shape": [len(data)], "chunks": [size]}
        chunks = []
        for start in range(0, len(data), size):
            block = data[start : start + size]
            if len(block) < size:
                block = np.concatenate([block, np.zeros(size - len(block), data.dtype)])
            chunks.append(seal_chunk(encoder.encode(block)))
        files[name] = chunks
    return specs, files


# --------------------------------------------------------------------------- decode


class ChunkReader:
    """Direct reader of a 1-d shard array (regular grid; codecs bytes + zstd + crc32c).

    ``where`` names the shard in every error. The loader reads contiguous ranges, so it
    decodes the chunk files itself and checks every chunk's CRC-32C.
    """

    def __init__(self, directory: Path, where: str, expected_crcs: list[int] | None = None):
        self.directory = directory
        self.where = where
        self.expected_crcs = expected_crcs
        try:
            meta = json.loads((directory / "zarr.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ShardError(where, f"array {directory.name!r} unreadable: {err}") from err
        codec_names = [c.get("name") for c in meta.get("codecs", [])]
        grid = meta.get("chunk_grid", {})
        dtype = _DTYPES.get(meta.get("data_type"))
        if (
            meta.get("zarr_format") != 3
            or codec_names != _CODEC_NAMES
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
        expected = self.expected_crcs
        if expected is not None and (i >= len(expected) or chunk_crc(raw) != expected[i]):
            raise ShardChecksumError(
                self.where,
                f"array {self.directory.name!r} chunk {i}: CRC-32C {chunk_crc(raw):08x} is not "
                "the one recorded when the shard was written (the chunk was replaced); "
                "run 'jetfm shards verify'",
            )
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
