"""The streaming loader: batch contract, exact coverage across ranks x workers, shuffles, resume."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from jetfm_coffea.shards import open_loader, open_store


def _ids(batches) -> list[tuple[int, int, int]]:
    out = []
    for b in batches:
        out.extend(
            zip(b["run"].tolist(), b["luminosityBlock"].tolist(), b["event"].tolist(), strict=True)
        )
    return out


def _store_ids(store) -> list[tuple[int, int, int]]:
    out = []
    for shard in open_store(store):
        out.extend(
            zip(
                shard.read("run").tolist(),
                shard.read("luminosityBlock").tolist(),
                shard.read("event").tolist(),
                strict=True,
            )
        )
    return out


def test_batch_contract(singlemu_store, token_config):
    loader = open_loader(singlemu_store, batch_size=512, seed=1, load_objects=True)
    batch = next(iter(loader))
    f = len(token_config.features)
    # pad-to-need: the width is the longest event of this batch (views included)
    t = int(max(batch["mask"].sum(1).max(), batch["view_mask"].sum(2).max()))
    assert t < token_config.n_tokens
    expect = {
        "tokens": (torch.float32, (512, t, f)),
        "mask": (torch.bool, (512, t)),
        "objects": (torch.float32, (512, t, 7)),
        "views": (torch.float32, (512, 2, t, f)),
        "view_mask": (torch.bool, (512, 2, t)),
        "label": (torch.int64, (512,)),
        "weight": (torch.float32, (512,)),
        "run": (torch.int64, (512,)),
        "luminosityBlock": (torch.int64, (512,)),
        "event": (torch.int64, (512,)),
    }
    assert list(batch) == list(expect)
    assert {k: (v.dtype, tuple(v.shape)) for k, v in batch.items()} == expect
    assert (batch["label"] == 3).all() and (batch["weight"] == 1).all()
    assert not batch["tokens"].is_pinned()  # no CUDA here: no pinning


def test_defaults_without_views_or_labels(plain_store):
    batch = next(iter(open_loader(plain_store, batch_size=100)))
    assert "views" not in batch and "view_mask" not in batch
    assert (batch["label"] == -1).all() and batch["label"].dtype == torch.int64


def test_tokens_equal_build_tokens_bit_for_bit(plain_store, singlemu, token_config):
    """The loader's tokens (computed from the ragged objects) are those of score time."""
    from jetfm_coffea.train.data import read_tokens

    loader = open_loader(plain_store, batch_size=777, shuffle=False)
    batches = list(loader)
    assert len(batches) == len(loader) == -(-10_000 // 777)
    reference = read_tokens(singlemu, token_config)
    start = 0
    for batch in batches:
        n, width = batch["mask"].shape
        ref_tokens = reference.tokens[start : start + n]
        ref_mask = reference.mask[start : start + n]
        assert width == ref_mask.sum(1).max()  # pad-to-need
        assert not ref_mask[:, width:].any()
        assert batch["tokens"].numpy().tobytes() == ref_tokens[:, :width].tobytes()
        np.testing.assert_array_equal(batch["mask"].numpy(), ref_mask[:, :width])
        start += n
    assert start == 10_000


@pytest.mark.parametrize("drop_last", [False, True])
def test_two_ranks_two_workers_see_every_event_once(singlemu_store, drop_last):
    expected = _store_ids(singlemu_store)
    assert len(set(expected)) == len(expected) == 10_000
    seen = []
    for rank in (0, 1):
        loader = open_loader(
            singlemu_store,
            batch_size=300,
            rank=rank,
            world_size=2,
            num_workers=2,
            seed=5,
            drop_last=drop_last,
            buffer_events=3000,
        )
        batches = list(loader)
        assert len(batches) == len(loader)
        seen.extend(_ids(batches))
    counts = Counter(seen)
    assert max(counts.values()) == 1  # nothing duplicated
    if drop_last:
        assert len(seen) == 4 * (2500 // 300) * 300
    else:
        assert sorted(seen) == sorted(expected)  # nothing dropped


def test_epochs_reshuffle_deterministically(singlemu_store):
    loader = open_loader(singlemu_store, batch_size=1000, seed=9)
    first = _ids(loader)
    again = _ids(open_loader(singlemu_store, batch_size=1000, seed=9))
    loader.set_epoch(1)
    second = _ids(loader)
    assert first == again  # a pure function of (seed, epoch)
    assert first != second and sorted(first) == sorted(second)
    # block shuffle: a batch mixes events from different shards
    batch = next(iter(open_loader(singlemu_store, batch_size=1000, seed=9)))
    assert len(set(batch["event"][:50].tolist())) == 50
    assert _ids(open_loader(singlemu_store, batch_size=1000, seed=10)) != first


@pytest.mark.parametrize("num_workers", [0, 2])
def test_resume_mid_epoch(singlemu_store, num_workers):
    def make():
        loader = open_loader(
            singlemu_store, batch_size=256, seed=3, num_workers=num_workers, buffer_events=2048
        )
        loader.set_epoch(2)
        return loader

    full = _ids(make())
    loader = make()
    it = iter(loader)
    head = [next(it) for _ in range(13)]
    state = loader.state_dict()
    del it
    resumed = make()
    resumed.load_state_dict(state)
    rest = list(resumed)
    assert _ids(head) + _ids(rest) == full
    # after the resumed epoch the next pass is a full epoch again
    assert _ids(resumed) == full


def test_state_from_another_layout_is_refused(singlemu_store):
    state = open_loader(singlemu_store, batch_size=256).state_dict()
    with pytest.raises(ValueError, match="batch_size"):
        open_loader(singlemu_store, batch_size=128).load_state_dict(state)


def test_objects_are_those_of_the_tokens(singlemu_store, token_config):
    """``load_objects`` gives the padded raw objects the tokens were computed from."""
    from jetfm_coffea.tokens import compute_features

    batch = next(iter(open_loader(singlemu_store, batch_size=500, seed=1, load_objects=True)))
    obj = batch["objects"].double()
    names = ("pt", "eta", "phi", "mass", "charge", "btag", "type_id")
    kin = dict(zip(names, obj.unbind(-1), strict=True))
    tokens, mask, _ = compute_features(torch, token_config.feature_names, **kin, mask=batch["mask"])
    torch.testing.assert_close(tokens.float(), batch["tokens"], rtol=0, atol=0)
    assert torch.equal(mask, batch["mask"])
    assert (obj[~batch["mask"]] == 0).all()


def test_partial_batches_across_buffers_pad_to_the_wider(singlemu_store):
    """A batch made of the tail of one buffer and the head of the next keeps every token."""
    loader = open_loader(singlemu_store, batch_size=700, seed=2, buffer_events=1000)
    total = 0
    for batch in loader:
        counts = batch["mask"].sum(1)
        assert batch["mask"].shape[1] == int(max(counts.max(), batch["view_mask"].sum(2).max()))
        total += int(counts.sum())
    stored = sum(s.n_objects for s in open_store(singlemu_store))
    assert total == stored
