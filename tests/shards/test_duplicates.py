"""The same input file in two datasets is refused by the build and reported by verify."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from jetfm_coffea.cluster import Execution
from jetfm_coffea.errors import ConfigError
from jetfm_coffea.jobs.shards import build_store
from jetfm_coffea.shards import open_store, verify
from jetfm_coffea.shards.store import scan_shards

KW = {"execution": Execution(executor="iterative", chunksize=5000)}


def _fileset(**datasets):
    return {name: {"files": {str(f): "Events"}, "metadata": {}} for name, f in datasets.items()}


def test_the_same_file_in_two_datasets_is_refused(tmp_path, singlemu):
    link = tmp_path / "copy.root"
    link.symlink_to(singlemu)  # another path, the same file (same ROOT uuid)
    with pytest.raises(ConfigError, match=r"copy.root is the same file .* datasets 'a' and 'b'"):
        build_store(_fileset(a=singlemu, b=link), tmp_path / "store", **KW)
    assert scan_shards(tmp_path / "store") == []


def test_a_file_already_in_the_store_under_another_dataset_is_refused(tmp_path, singlemu):
    store = tmp_path / "store"
    build_store(_fileset(a=singlemu), store, **KW)
    with pytest.raises(ConfigError, match=r"already in the store .* as dataset 'a'"):
        build_store(_fileset(b=singlemu), store, **KW)
    assert [p.split("/")[1] for p in scan_shards(store)] == ["a", "a"]


def test_verify_reports_a_file_stored_under_two_datasets(tmp_path, singlemu, monkeypatch):
    """A store written twice from one file, as builds before the refusal did."""
    monkeypatch.setattr("jetfm_coffea.jobs.shards._refuse_duplicate_inputs", lambda *a: None)
    store = tmp_path / "store"
    build_store(_fileset(a=singlemu, b=singlemu), store, **KW)
    monkeypatch.undo()
    assert open_store(store).n_events == 20_000
    report = verify(store)
    dup = [p for p in report.errors if p.kind == "duplicate"]
    assert [p.shard.split("/")[1] for p in dup] == ["b"]  # one problem per dataset pair
    assert all("same input file" in p.message and "dataset 'a'" in p.message for p in dup)
    assert not report.ok


def test_verify_reports_duplicate_event_ids_within_a_dataset(tmp_path, plain_store):
    """The same events under another file uuid (e.g. a re-copied file) in one dataset."""
    store = shutil.copytree(plain_store, tmp_path / "store")
    src = open_store(store).records[1].path
    dataset, _, name = src.split("/")[1:]
    fake = "00000000-0000-0000-0000-000000000000"
    dst = f"shards/{dataset}/{fake}/{name}"
    shutil.copytree(store / src, store / dst)
    meta = store / dst / "zarr.json"
    doc = json.loads(meta.read_text())
    doc["attributes"]["source"]["uuid"] = fake
    meta.write_text(json.dumps(doc))
    report = verify(store, rebuild_manifest=True)
    dup = [p for p in report.problems if p.kind == "duplicate"]
    assert len(dup) == 1 and dup[0].severity == "error"
    assert {dup[0].shard, re.search(r"also in (\S+),", dup[0].message).group(1)} == {src, dst}
    assert dup[0].message.startswith("2000 duplicate event ids")
    assert not report.ok
