"""Re-simulation groups in shards and the loader: ids kept, siblings served as views.

The shared re-simulation sample (``tests/conftest.py``: 40 hard events x 3 showers) is
built into a store of several shards (chunk boundaries cut through groups: the loader
reads across them).
"""

from __future__ import annotations

import numpy as np
import pytest
import uproot

from jetfm_coffea.cluster import Execution
from jetfm_coffea.errors import ShardError
from jetfm_coffea.generate import generate
from jetfm_coffea.jobs.shards import build_store
from jetfm_coffea.shards import open_store
from jetfm_coffea.shards.resim import group_index, open_resim_loader
from tests.conftest import RESIM_HARD as N_HARD
from tests.conftest import RESIM_K as K


@pytest.fixture(scope="module")
def truth(resim_sample):
    """event number -> (resim_group, resim_copy), from the generated ROOT file."""
    tree = uproot.open(resim_sample.files[0])["Events"]
    a = tree.arrays(["event", "resim_group", "resim_copy"], library="np")
    return {int(e): (int(g), int(c)) for e, g, c in zip(*a.values(), strict=True)}


def test_shards_keep_the_resim_ids(resim_store, truth):
    store = open_store(resim_store)
    assert len(store.records) > 1
    seen = {}
    for record in store.records:
        shard = store.shard(record.path)
        n = record.n_events
        event, group, copy = (shard.read(x, 0, n) for x in ("event", "resim_group", "resim_copy"))
        assert group.dtype == np.int64 and copy.dtype == np.int32
        seen.update({int(e): (int(g), int(c)) for e, g, c in zip(event, group, copy, strict=True)})
    assert seen == truth


def test_group_index_finds_every_copy(resim_store, truth):
    index = group_index(open_store(resim_store))
    assert len(index) == N_HARD and index.k == K
    assert np.all(index.n_copies == K)
    assert len(set(index.group.tolist())) == N_HARD


def _epoch(loader):
    return [{k: v.numpy() for k, v in batch.items()} for batch in loader]


def test_loader_serves_each_group_once_with_its_siblings_as_views(resim_store, truth):
    loader = open_resim_loader(resim_store, batch_size=8, seed=3, load_objects=True)
    batches = _epoch(loader)
    groups = np.concatenate([b["resim_group"] for b in batches])
    assert sorted(groups.tolist()) == sorted({g for g, _ in truth.values()})
    for b in batches:
        n, t = b["mask"].shape
        assert b["views"].shape[:3] == (n, K, t) and b["view_objects"].shape == (n, K, t, 7)
        np.testing.assert_array_equal(b["views"][:, 0], b["tokens"])  # view 0: the event
        for row in range(n):
            copies = [truth[int(e)] for e in b["view_event"][row]]
            assert {g for g, _ in copies} == {int(b["resim_group"][row])}
            assert sorted(c for _, c in copies) == list(range(K))
            assert truth[int(b["event"][row])] == copies[0]
        # siblings differ after the shower: their tokens are not all equal
    assert any(not np.array_equal(b["views"][:, 0], b["views"][:, 1]) for b in batches)


def test_ranks_split_groups_and_resume_is_exact(resim_store):
    ranks = [
        _epoch(open_resim_loader(resim_store, batch_size=4, seed=5, rank=r, world_size=2))
        for r in range(2)
    ]
    per_rank = [{int(g) for b in bs for g in b["resim_group"]} for bs in ranks]
    assert not per_rank[0] & per_rank[1]
    assert len(per_rank[0] | per_rank[1]) == N_HARD

    full = _epoch(open_resim_loader(resim_store, batch_size=4, seed=5))
    first = open_resim_loader(resim_store, batch_size=4, seed=5)
    stream = iter(first)
    for _ in range(3):
        next(stream)
    state = first.state_dict()
    again = open_resim_loader(resim_store, batch_size=4, seed=5)
    again.load_state_dict(state)
    rest = _epoch(again)
    assert len(rest) == len(full) - 3
    for a, b in zip(rest, full[3:], strict=True):
        np.testing.assert_array_equal(a["resim_group"], b["resim_group"])
        np.testing.assert_array_equal(a["views"], b["views"])


def test_a_group_split_across_files_is_refused(tmp_path, resim_sample, token_config):
    # the same seed again in another folder: the same group ids, in a second file
    other = generate("zjets", 4, sqrts=13000, seed=4, out=tmp_path / "again", resim=2)
    fileset = resim_sample.fileset()
    name = resim_sample.dataset
    fileset[name]["files"].update({str(f): "Events" for f in other.files})
    out = tmp_path / "store"
    build_store(
        fileset,
        out,
        execution=Execution(executor="iterative", chunksize=500),
        token_config=token_config,
    )
    with pytest.raises(
        ShardError, match=r"re-simulation group \d+ of dataset .* split across files"
    ):
        open_resim_loader(out, batch_size=4)


def test_a_store_without_resim_ids_is_refused(plain_store):
    with pytest.raises(ShardError, match="has no resim_group / resim_copy: views 'resim'"):
        open_resim_loader(plain_store, batch_size=4)


def test_dask_mode_keeps_the_resim_ids_too(tmp_path, resim_sample, truth, token_config):
    out = tmp_path / "dask"
    summary = build_store(
        resim_sample.fileset(),
        out,
        execution=Execution(dask_mode=True, workers=1, chunksize=60),
        token_config=token_config,
    )
    assert summary.events_written == N_HARD * K
    store = open_store(out)
    seen = {}
    for record in store.records:
        shard = store.shard(record.path)
        ids = [shard.read(x, 0, record.n_events) for x in ("event", "resim_group", "resim_copy")]
        seen.update({int(e): (int(g), int(c)) for e, g, c in zip(*ids, strict=True)})
    assert seen == truth
