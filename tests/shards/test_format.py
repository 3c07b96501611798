"""Shard paths and checksums."""

from __future__ import annotations

import numpy as np
import pytest

from jetfm_coffea.shards.format import (
    content_checksum,
    is_temporary_name,
    parse_shard_path,
    safe_name,
    shard_path,
    temporary_name,
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


def test_checksum_depends_on_content_order_and_dtype():
    a = {"x": np.arange(6, dtype=np.float32).reshape(2, 3), "y": np.array([True, False])}
    base = content_checksum(a, ["x", "y"])
    assert base == content_checksum({k: v.copy() for k, v in a.items()}, ["x", "y"])
    assert base != content_checksum(a, ["y", "x"])
    assert base != content_checksum({**a, "x": a["x"].astype(np.float64)}, ["x", "y"])
    b = {**a, "x": a["x"].copy()}
    b["x"][1, 2] = np.nextafter(b["x"][1, 2], 10)
    assert base != content_checksum(b, ["x", "y"])
