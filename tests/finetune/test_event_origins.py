"""Held-out event keys carry a generated sample's seed: two samples of one process (same
dataset name, same event numbers) are different events; the same sample is the same."""

from __future__ import annotations

import json

import numpy as np

from jetfm_coffea.finetune.data import load_labelled
from jetfm_coffea.finetune.heldout import (
    event_keys,
    read_pool_events,
    tagged_dataset_names,
    write_pool_events,
)
from jetfm_coffea.generate import generate
from jetfm_coffea.tokens.config import TokenConfig


def _sample(tmp_path, seed):
    res = generate("ttbar", 30, sqrts=13000, seed=seed, out=tmp_path / f"s{seed}")
    path = tmp_path / f"s{seed}.json"
    files = [str(f) for f in res.files]
    spec = {res.dataset: {"files": files, "metadata": {**res.metadata, "label": 0}}}
    path.write_text(json.dumps(spec))
    return load_labelled(fileset=path, token_config=TokenConfig())


def test_samples_of_one_process_with_other_seeds_do_not_collide(tmp_path):
    a, b, again = _sample(tmp_path, 1), _sample(tmp_path, 2), _sample(tmp_path, 1)
    assert a.datasets == b.datasets == ["ttbar_13TeV"]  # same name, same event numbers
    assert np.array_equal(a.event, b.event)
    assert set(tagged_dataset_names(a)) == {"ttbar_13TeV@seed 1"}
    assert not event_keys(a) & event_keys(b)
    assert event_keys(a) == event_keys(again)  # the same sample is the same events
    write_pool_events(tmp_path / "pool.npz", a)
    assert read_pool_events(tmp_path / "pool.npz") == event_keys(a)
    sub = a.take(np.arange(5))
    assert event_keys(sub) <= event_keys(a) and sub.origins == a.origins
