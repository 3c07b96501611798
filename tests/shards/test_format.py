"""Shard paths and checksums."""

from __future__ import annotations

import numpy as np
import pytest
from numcodecs import Zstd

from jetfm_coffea.shards.format import (
    OBJECT_COLUMNS,
    combine_checksums,
    is_temporary_name,
    offsets_problem,
    parse_shard_path,
    safe_name,
    seal_chunk,
    shard_path,
    temporary_name,
    to_ragged,
    unseal_chunk,
)


def test_shard_path_is_deterministic_and_parseable():
    a = shard_path("ttbar", "3a554482-e0e1-11ea-875a-4a82e4a9beef", 0, 1000)
    assert a == shard_path("ttbar", "3a554482-e0e1-11ea-875a-4a82e4a9beef", 0, 1000)
    assert a == "shards/ttbar/3a554482-e0e1-11ea-875a-4a82e4a9beef/0-1000"
    assert parse_shard_path(a) == ("ttbar", "3a554482-e0e1-11ea-875a-4a82e4a9beef", 0, 1000)
    assert shard_path("ttbar", "u", 0, 1000) != shard_path("ttbar", "u", 0, 1001)


def test_dataset_names_are_sanitised():
    assert safe_name("/TTJets/Run2/NANOAODSIM") == "TTJets_Run2_NANOAODSIM"
    assert safe_name("..hidden") == "hidden"
    assert "/" not in shard_path("a/b c", "u", 1, 2).split("/", 2)[1]
    with pytest.raises(ValueError):
        shard_path("d", "u", 5, 4)
    with pytest.raises(ValueError):
        shard_path("d", "", 0, 4)


def test_temporary_names_are_hidden():
    name = temporary_name("0-100", "abc")
    assert name.startswith(".") and is_temporary_name(name)
    assert not is_temporary_name("0-100")


def test_crc_catches_any_flipped_byte_and_orders_matter():
    frame = Zstd(level=1).encode(np.arange(1000, dtype=np.float32))
    sealed = seal_chunk(frame)
    assert unseal_chunk(sealed) == frame
    for i in range(len(sealed)):
        flipped = bytearray(sealed)
        flipped[i] ^= 0x01
        with pytest.raises(ValueError, match="CRC-32C"):
            unseal_chunk(bytes(flipped))
    crcs = {"x": [1, 2], "y": [3]}
    base = combine_checksums(crcs, ["x", "y"])
    assert len(base) == 8 and base == combine_checksums(dict(crcs), ["x", "y"])
    assert base != combine_checksums(crcs, ["y", "x"])
    assert base != combine_checksums({"x": [2, 1], "y": [3]}, ["x", "y"])


def test_ragged_offsets_are_checked():
    assert offsets_problem(np.array([0, 2, 2, 5]), 3, 5) is None
    assert "decrease at row 1" in offsets_problem(np.array([0, 3, 2, 5]), 3, 5)
    assert "start at 1" in offsets_problem(np.array([1, 2, 2, 5]), 3, 5)
    assert "end at 5" in offsets_problem(np.array([0, 2, 2, 5]), 3, 6)
    assert "expected [4]" in offsets_problem(np.array([0, 2, 5]), 3, 5)


def test_to_ragged_keeps_row_order_and_refuses_non_integer_ids():
    mask = np.array([[True, True, False], [False, False, False], [True, False, False]])
    cols = {c: np.arange(9, dtype=np.float32).reshape(3, 3) for c in OBJECT_COLUMNS}
    cols["charge"] = np.array([[1, -1, 0], [0, 0, 0], [-1, 0, 0]], np.float32)
    offsets, flat = to_ragged(mask, cols)
    assert offsets.tolist() == [0, 2, 2, 3]
    assert flat["pt"].tolist() == [0, 1, 6] and flat["charge"].tolist() == [1, -1, -1]
    assert flat["charge"].dtype == np.int8 and flat["type_id"].dtype == np.uint8
    cols["type_id"] = cols["type_id"] + 0.5
    with pytest.raises(ValueError, match="type_id"):
        to_ragged(mask, cols)
