"""Store validation on open and verify: every kind of corruption is found and named."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from numcodecs import Zstd

from jetfm_coffea.errors import SchemaVersionError, StoreManifestError
from jetfm_coffea.shards import open_shard, open_store, verify


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
    _set_attr(store / "zarr.json", "schema_version", "2.0.0", nested="jetfm_store")
    with pytest.raises(SchemaVersionError, match=re.escape("2.0.0")):
        open_store(store)


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
    # 1. wrong checksum: valid zstd, one token value changed
    bad = records[0].path
    chunk = store / bad / "tokens" / "c" / "0" / "0" / "0"
    meta = json.loads((store / bad / "tokens" / "zarr.json").read_text())
    shape = meta["chunk_grid"]["configuration"]["chunk_shape"]
    data = np.frombuffer(Zstd().decode(chunk.read_bytes()), np.float32).reshape(shape).copy()
    data[5, 0, 0] += 1.0
    chunk.write_bytes(Zstd(level=1).encode(data))
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
