"""In-memory batch source: rank split, epochs, resume position, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from jetfm_coffea.errors import ShardError, TokenConfigMismatchError, TrainingError
from jetfm_coffea.tokens import TokenConfig
from jetfm_coffea.train import BatchSource, TensorEventDataset, check_token_config
from jetfm_coffea.train.data import compact_batch, open_data


def _ds(n=100, **kw):
    tokens = np.random.default_rng(0).normal(size=(n, 6, 9)).astype(np.float32)
    mask = np.ones((n, 6), bool)
    return TensorEventDataset(tokens, mask, event=np.arange(n), batch_size=8, **kw)


def test_contract_and_rank_split():
    ds = _ds()
    assert isinstance(ds, BatchSource)
    seen = []
    for rank in range(3):
        part = ds.shard(rank, 3)
        assert len(part) == 33 // 8
        seen.append(torch.cat([b["event"] for b in part]))
    cat = torch.cat(seen)
    assert len(cat) == len(set(cat.tolist()))  # disjoint
    batch = next(iter(ds))
    assert batch["tokens"].dtype == torch.float32 and batch["mask"].dtype == torch.bool
    assert batch["run"].dtype == torch.int64


def test_epochs_reshuffle_and_resume_position():
    ds = _ds()
    first = [b["event"] for b in ds]
    ds.set_epoch(1)
    second = [b["event"] for b in ds]
    assert not torch.equal(torch.cat(first), torch.cat(second))
    ds.set_epoch(1)
    it = iter(ds)
    next(it), next(it)
    state = ds.state_dict()
    fresh = _ds()
    fresh.load_state_dict(state)
    rest = [b["event"] for b in fresh]
    torch.testing.assert_close(torch.cat(rest), torch.cat(second[2:]))
    with pytest.raises(TrainingError, match="loader state"):
        _ds(n=50).load_state_dict(state)


def test_bad_inputs():
    with pytest.raises(TokenConfigMismatchError, match="features"):
        TensorEventDataset(np.zeros((4, 3, 5)), np.ones((4, 3), bool), batch_size=2)
    other = TokenConfig(features=["log_pt", "eta", "sin_phi", "cos_phi", "log_e", "type_id"])
    with pytest.raises(TokenConfigMismatchError, match="features"):
        check_token_config(TokenConfig(), other)
    with pytest.raises(TrainingError, match="exactly one"):
        open_data(batch_size=2, seed=0)
    with pytest.raises(ShardError, match="no such store"):
        open_data(shards="/nonexistent/store.zarr", batch_size=2, seed=0)


def test_compact_batch_keeps_valid_tokens():
    tokens = torch.arange(2 * 8 * 9, dtype=torch.float32).reshape(2, 8, 9)
    mask = torch.zeros(2, 8, dtype=torch.bool)
    mask[0, [1, 6]] = True
    mask[1, [3]] = True
    out = compact_batch({"tokens": tokens * mask[..., None], "mask": mask})
    assert out["tokens"].shape[1] == 4 and out["mask"].sum() == 3
    torch.testing.assert_close(out["tokens"][0, :2], tokens[0, [1, 6]])
