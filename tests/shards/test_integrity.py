"""Store integrity (issue 30): nothing lost on a failed rewrite, nothing read unverified."""

from __future__ import annotations

import errno
import json
import os
import shutil

import pytest

from jetfm_coffea.shards import open_loader, open_store, verify


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
    assert sorted(p.name for p in store.iterdir()) == ["manifest.json", "shards", "zarr.json"]
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
