"""Pretraining on re-simulated siblings (RS3L): views 'resim' and 'resim+physics'.

The shared re-simulation store (``tests/conftest.py``: 40 hard Z + jets events x 3
showers) feeds a micro model for a few steps in each views mode.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from jetfm_coffea.train import load_pretrain_config, pretrain
from jetfm_coffea.train.builtin_objectives import nt_xent
from jetfm_coffea.train.data import shards_source
from tests.train.test_loop import _cfg


def _resim_cfg(views: str, n_views: int):
    base = _cfg(6, objective__n_views=n_views, train__batch_size=8).model_dump(mode="json")
    base.update(views=views, augment=None)
    return load_pretrain_config(base)


def _source(store, views):
    def data(rank, world_size):
        return shards_source(store, views, batch_size=8, seed=2, rank=rank, world_size=world_size)

    return data


@pytest.mark.parametrize(("views", "n_views"), [("resim", 3), ("resim+physics", 4)])
def test_pretrain_a_few_steps_on_siblings(resim_store, tmp_path, views, n_views):
    cfg = _resim_cfg(views, n_views)
    result = pretrain(cfg, _source(resim_store, views), tmp_path / "run")
    assert len(result.losses) == 6 and np.all(np.isfinite(result.losses))
    record = json.loads((tmp_path / "run" / "run.json").read_text())["views"]
    assert record["mode"] == views


def test_resim_pretraining_resumes_exactly(resim_store, tmp_path):
    cfg = _resim_cfg("resim+physics", 3)
    data = _source(resim_store, "resim+physics")
    ref = pretrain(cfg, data, tmp_path / "a")
    first = pretrain(cfg, data, tmp_path / "b", stop_at=3)
    rest = pretrain(cfg, data, tmp_path / "b", resume=True)
    assert first.losses + rest.losses == ref.losses


def test_siblings_are_the_positives():
    """Rows are hard events and their views the siblings: NT-Xent pulls siblings together
    (embeddings equal within a group, distinct across groups: the minimum, log(V - 1))."""
    z = torch.eye(4)[:, None, :].repeat(1, 3, 1)  # 4 groups x 3 identical siblings
    shuffled = z[:, torch.tensor([0, 1, 2])].clone()
    shuffled[:, 1:] = z[torch.tensor([1, 2, 3, 0]), 1:]  # siblings of another group
    best = nt_xent(z, 0.05)
    assert best == pytest.approx(np.log(2), abs=1e-5)
    assert nt_xent(shuffled, 0.05) > best + 1
