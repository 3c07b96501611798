"""Store integrity (issue 30): nothing lost on a failed rewrite, nothing read unverified."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil

import pytest
from click.testing import CliRunner

from jetfm_coffea.cli import main
from jetfm_coffea.cluster import Execution
from jetfm_coffea.errors import ShardChecksumError
from jetfm_coffea.jobs.shards import build_store
from jetfm_coffea.shards import open_loader, open_store, verify
from jetfm_coffea.tokens import TokenConfig


@pytest.fixture
def store(tmp_path, plain_store):
    out = tmp_path / "store"
    shutil.copytree(plain_store, out)
    return out


def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_rebuild_manifest_on_a_full_disk_keeps_the_good_manifest(store, monkeypatch):
    good = (store / "manifest.json").read_bytes()
    monkeypatch.setattr(os, "fsync", _full_disk)  # the new manifest's write fails
    with pytest.raises(OSError, match="No space left"):
        verify(store, rebuild_manifest=True)
    monkeypatch.undo()
    assert (store / "manifest.json").read_bytes() == good
    leftovers = [p.name for p in store.iterdir() if p.name.startswith(("manifest", "."))]
    assert leftovers == ["manifest.json"]  # no backup, no temporary file
    assert verify(store).ok
    loader = open_loader(store, batch_size=4096, shuffle=False)  # what pretrain opens
    assert sum(len(b["tokens"]) for b in loader) == open_store(store).n_events == 10_000


def test_rebuild_manifest_keeps_the_old_one_as_backup(store):
    old = json.loads((store / "manifest.json").read_text())
    report = verify(store, rebuild_manifest=True)
    assert report.manifest_rebuilt and report.ok
    (backup,) = store.glob("manifest.json.bak-*")
    assert json.loads(backup.read_text()) == old
    new = json.loads((store / "manifest.json").read_text())
    assert new["shards"] == old["shards"] and new["created"] >= old["created"]


TINY_MODEL = (
    "model:\n  size: custom\n  overrides: {dim: 8, heads: 2, layers: 1, pair_hidden: 8,"
    " proj_dim: 8}\ntrain:\n  steps: 1\n"
)


@pytest.fixture(scope="module")
def other_config_store(tmp_path_factory, singlemu):
    """The same events as ``plain_store`` (same chunks), another token config (jet pT > 30)."""
    config = TokenConfig()
    collections = [
        c.model_copy(update={"min_pt": 30.0}) if c.name == "Jet" else c for c in config.collections
    ]
    other = TokenConfig(collections=collections)
    assert other.hash() != config.hash() and other.n_tokens == config.n_tokens
    out = tmp_path_factory.mktemp("stores") / "other"
    build_store(
        singlemu, out, execution=Execution(executor="iterative", chunksize=2000), token_config=other
    )
    return out


def test_pretrain_refuses_a_shard_built_with_another_token_config(
    store, other_config_store, tmp_path
):
    path = open_store(store).records[2].path
    shutil.rmtree(store / path)
    shutil.copytree(other_config_store / path, store / path)
    assert ("config", path) in {(p.kind, p.shard) for p in verify(store).errors}
    with pytest.raises(ShardChecksumError, match=re.escape(path)):
        for _ in open_loader(store, batch_size=4096, shuffle=False):
            pass
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(TINY_MODEL)
    args = ["pretrain", "--shards", str(store), "--config", str(cfg), "--out", str(tmp_path / "r")]
    res = CliRunner().invoke(main, [*args, "--batch-size", "64", "--no-progress"])
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert path in res.output and "built with token config" in res.output


def test_the_loader_refuses_a_chunk_swapped_in_from_another_shard(store):
    """A chunk file that is valid on its own (its CRC-32C matches) but is not the one recorded."""
    records = open_store(store).records
    a, b = records[0].path, records[1].path
    shutil.copyfile(store / b / "event" / "c" / "0", store / a / "event" / "c" / "0")
    assert ("checksum", a) in {(p.kind, p.shard) for p in verify(store).errors}
    with pytest.raises(ShardChecksumError, match=re.escape(a) + ".*'event' chunk 0"):
        for _ in open_loader(store, batch_size=4096, shuffle=False):
            pass


def test_the_loader_refuses_a_shard_whose_recorded_checksum_was_edited(store):
    path = open_store(store).records[0].path
    meta = store / path / "zarr.json"
    doc = json.loads(meta.read_text())
    doc["attributes"]["checksum"]["chunks"]["event"][0] ^= 1
    meta.write_text(json.dumps(doc))
    with pytest.raises(ShardChecksumError, match=re.escape(path)):
        for _ in open_loader(store, batch_size=4096, shuffle=False):
            pass
