"""Store validation on open and verify: every kind of corruption is found and named."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from numcodecs import Zstd

from jetfm_coffea.errors import (
    LegacyStoreError,
    SchemaValidationError,
    SchemaVersionError,
    ShardChecksumError,
    ShardError,
    StoreManifestError,
)
from jetfm_coffea.shards import open_loader, open_shard, open_store, verify
from jetfm_coffea.shards.format import seal_chunk, unseal_chunk


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _set_attr(meta: Path, key: str, value, nested: str | None = None) -> None:
    doc = json.loads(meta.read_text())
    target = doc["attributes"][nested] if nested else doc["attributes"]
    target[key] = value
    meta.write_text(json.dumps(doc))


@pytest.fixture
def store(tmp_path, singlemu_store):
    out = tmp_path / "store"
    shutil.copytree(singlemu_store, out)
    return out


def test_open_store_reads_manifest(singlemu_store, token_config):
    st = open_store(singlemu_store)
    assert st.n_events == 10_000 and len(st) == 4 and st.n_views == 2
    assert st.token_config == token_config
    assert [r.n_events for r in st.records] == [2500] * 4
    assert all(r.label == 3 for r in st.records)


def test_store_schema_version_mismatch(store):
    _set_attr(store / "zarr.json", "schema_version", "3.0.0", nested="jetfm_store")
    with pytest.raises(SchemaVersionError, match=re.escape("3.0.0")):
        open_store(store)


def test_a_2_0_0_store_is_read_as_it_is(store):
    """2.1.0 only adds optional arrays: a 2.0.0 store (root, manifest, shards) still loads."""
    n_events = open_store(store).n_events
    _set_attr(store / "zarr.json", "schema_version", "2.0.0", nested="jetfm_store")
    manifest = json.loads((store / "manifest.json").read_text())
    manifest["schema_version"] = "2.0.0"
    (store / "manifest.json").write_text(json.dumps(manifest))
    for meta in (store / "shards").glob("*/*/*/zarr.json"):
        _set_attr(meta, "schema_version", "2.0.0")
    assert open_store(store).n_events == n_events > 0
    assert verify(store).ok
    batch = next(iter(open_loader(store, batch_size=64, load_views=False)))
    assert batch["tokens"].shape[0] == 64


def test_a_1_0_0_store_is_refused_with_the_migrate_command(store):
    _set_attr(store / "zarr.json", "schema_version", "1.0.0", nested="jetfm_store")
    expected = f"{store}: is a shard store of schema 1.0.0; this jetfm-coffea reads 2.1.0: "
    expected += f"run 'jetfm shards migrate {store} --out NEW'"
    with pytest.raises(LegacyStoreError, match=re.escape(expected)):
        open_store(store)
    with pytest.raises(LegacyStoreError, match="jetfm shards migrate"):
        open_loader(store)


def _rewrite_chunk(path: Path, dtype, change) -> None:
    """Change a chunk's values and re-seal it with a valid CRC-32C (a logic error, not rot)."""
    frame = unseal_chunk(path.read_bytes())
    data = np.frombuffer(Zstd().decode(frame), dtype).copy()
    change(data)
    path.write_bytes(seal_chunk(Zstd(level=1).encode(data)))


def test_corrupted_ragged_offsets_are_refused_naming_the_shard(store):
    path = open_store(store).records[1].path
    chunk = store / path / "objects" / "offsets" / "c" / "0"

    def decrease(offsets):
        offsets[10] = offsets[12] + 1

    _rewrite_chunk(chunk, np.int64, decrease)
    with pytest.raises(ShardError, match=re.escape(path) + ".*corrupted ragged offsets"):
        open_shard(store, path).offsets()
    # the loader ties chunks to the manifest: the re-sealed chunk is refused before decoding
    with pytest.raises(ShardChecksumError, match=re.escape(path) + ".*not the one recorded"):
        list(open_loader(store, batch_size=500, shuffle=False))
    kinds = {(p.kind, p.shard) for p in verify(store).errors}
    assert ("counts", path) in kinds and ("checksum", path) in kinds


def test_a_flipped_byte_anywhere_in_a_chunk_is_caught(store):
    path = open_store(store).records[0].path
    chunk = store / path / "objects" / "pt" / "c" / "0"
    raw = bytearray(chunk.read_bytes())
    raw[len(raw) // 2] ^= 0x10
    chunk.write_bytes(bytes(raw))
    with pytest.raises(ShardChecksumError, match=re.escape(path)):
        open_shard(store, path).read("objects/pt")
    assert ("checksum", path) in {(p.kind, p.shard) for p in verify(store).errors}


def test_shard_schema_version_mismatch_names_the_shard(store):
    path = open_store(store).records[1].path
    _set_attr(store / path / "zarr.json", "schema_version", "0.9.0")
    with pytest.raises(SchemaVersionError, match=re.escape(path)):
        open_shard(store, path)


def test_manifest_version_mismatch(store):
    doc = json.loads((store / "manifest.json").read_text())
    doc["schema_version"] = "1.1.0"
    (store / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(SchemaVersionError, match=re.escape("manifest.json")):
        open_store(store)


def test_missing_shard_is_a_clear_error_on_open(store):
    path = open_store(store).records[2].path
    shutil.rmtree(store / path)
    with pytest.raises(StoreManifestError, match=re.escape(path)):
        open_store(store)


def test_verify_lists_every_problem_and_deletes_nothing(store):
    records = open_store(store).records
    assert verify(store).problems == []
    # 1. wrong checksum: valid zstd and CRC, one pt value changed
    bad = records[0].path

    def bump(pt):
        pt[5] += 1.0

    _rewrite_chunk(store / bad / "objects" / "pt" / "c" / "0", np.float32, bump)
    # 2. shard listed in the manifest but missing
    missing = records[1].path
    shutil.rmtree(store / missing)
    # 3. shard on disk but not in the manifest
    unlisted = records[2].path.rsplit("/", 1)[0] + "/20000-22500"
    shutil.copytree(store / records[2].path, store / unlisted)
    # 4. shard of another schema version
    schema = records[3].path
    _set_attr(store / schema / "zarr.json", "schema_version", "3.0.0")
    before = _files(store)

    report = verify(store)
    kinds = {(p.kind, p.shard) for p in report.errors}
    assert ("checksum", bad) in kinds
    assert ("missing", missing) in kinds
    assert ("unlisted", unlisted) in kinds
    assert ("schema", schema) in kinds
    assert not report.ok
    assert _files(store) == before  # nothing deleted or changed

    # the copy's attributes describe another entry range than its path
    assert ("path", unlisted) in kinds
    report = verify(store, rebuild_manifest=True)
    assert report.manifest_rebuilt
    manifest = json.loads((store / "manifest.json").read_text())
    assert [s["path"] for s in manifest["shards"]] == [records[2].path]
    assert list(store.glob("manifest.json.bak-*"))  # the old manifest is kept


def test_manifest_that_does_not_match_shards(store):
    doc = json.loads((store / "manifest.json").read_text())
    doc["shards"][0]["n_events"] += 1
    doc["n_events"] += 1
    (store / "manifest.json").write_text(json.dumps(doc))
    problems = verify(store).errors
    assert [(p.kind, p.shard) for p in problems] == [("manifest", doc["shards"][0]["path"])]


def test_attributes_outside_the_2_0_0_schema_are_refused_on_read(store):
    path = open_store(store).records[0].path
    meta = store / path / "zarr.json"
    doc = json.loads(meta.read_text())
    doc["attributes"]["arrays"]["tokens"] = {"dtype": "<f4", "shape": [2500], "chunks": [2500]}
    meta.write_text(json.dumps(doc))
    with pytest.raises(SchemaValidationError, match=re.escape(path) + "(.|\n)*'tokens'"):
        open_shard(store, path)
    assert ("schema", path) in {(p.kind, p.shard) for p in verify(store).errors}


def test_store_split_has_one_home_per_name(tmp_path):
    """store.py was split (codec, shard, verification): each name has one module."""

    from jetfm_coffea.shards import codec, shard, store, verification
    from jetfm_coffea.shards.format import CODECS

    assert "Shard" not in store.__all__ and not hasattr(store, "verify")
    assert "Shard" in shard.__all__ and "verify" in verification.__all__
    # both halves of the chunk codec: what encode_arrays writes, ChunkReader reads back
    values = np.arange(11, dtype="<f4") * 1.5
    specs, files = codec.encode_arrays({"objects/pt": values}, chunk_events=1)
    assert specs["objects/pt"] == {"dtype": "<f4", "shape": [11], "chunks": [4]}
    array = tmp_path / "pt"
    (array / "c").mkdir(parents=True)
    for i, blob in enumerate(files["objects/pt"]):
        (array / "c" / str(i)).write_bytes(blob)
    meta = {
        "zarr_format": 3,
        "node_type": "array",
        "shape": [11],
        "data_type": "float32",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [4]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "codecs": list(CODECS),
    }
    (array / "zarr.json").write_text(json.dumps(meta))
    reader = codec.ChunkReader(array, "test-shard")
    np.testing.assert_array_equal(reader.read(), values)
    np.testing.assert_array_equal(reader.read(3, 9), values[3:9])
    blob = files["objects/pt"][1]
    (array / "c" / "1").write_bytes(blob[:5] + bytes([blob[5] ^ 1]) + blob[6:])  # a flipped bit
    with pytest.raises(ShardChecksumError, match=r"test-shard.*chunk 1"):
        reader.read(3, 9)
