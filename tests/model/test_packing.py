"""Packing tokens for the encoder (``jetfm_coffea.model.packing``): one implementation."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

import jetfm_coffea
from jetfm_coffea.model import (
    build_model,
    event_lengths,
    length_batches,
    length_groups,
    model_config_for,
    pack_tokens,
    packed_width,
)
from jetfm_coffea.tokens import TokenConfig
from jetfm_coffea.train.data import compact_batch


@pytest.fixture(scope="module")
def real(ttbar2015, event_tokens):
    """Tokens of 200 real-format ttbar events, with a hole punched into a few events."""
    shard = event_tokens(ttbar2015)
    mask = shard.mask.copy()
    mask[::17, 1] = False  # a token masked for non-finite features leaves a hole
    mask[5] = False  # an empty event
    return shard.tokens * mask[..., None], mask


def test_event_lengths_numpy_and_torch_agree(real):
    _, mask = real
    lengths = event_lengths(mask)
    assert lengths.dtype == np.int64 and lengths[5] == 0
    np.testing.assert_array_equal(event_lengths(torch.from_numpy(mask)).numpy(), lengths)
    for i in (0, 17, 34):  # holes are kept: the length is the last valid slot + 1
        assert lengths[i] == np.flatnonzero(mask[i]).max() + 1
    assert event_lengths(np.zeros((3, 0), bool)).tolist() == [0, 0, 0]


def test_packing_changes_nothing_but_the_width(real):
    tokens, mask = real
    x, m = torch.from_numpy(tokens), torch.from_numpy(mask)
    width = packed_width([m], m.shape[1], multiple=4)
    assert width % 4 == 0 and width >= int(m.sum(1).max())
    px, pm = pack_tokens(x, m, width)
    assert pm.shape == (len(m), width) and torch.equal(pm.sum(1), m.sum(1))
    assert not (pm[:, 1:] & ~pm[:, :-1]).any()  # valid tokens first
    torch.testing.assert_close(px[pm], x[m])  # same tokens, same order
    batch = compact_batch({"tokens": x, "mask": m})
    assert torch.equal(batch["tokens"], px) and torch.equal(batch["mask"], pm)
    model = build_model(model_config_for(TokenConfig(), "tiny"), heads=[]).eval()
    with torch.no_grad():
        full, packed = model.embed(x, m), model.embed(px, pm)
        grouped = model(x, m, grouped=True).embedding
    torch.testing.assert_close(packed, full, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grouped, full, atol=1e-5, rtol=1e-5)


def test_scorer_batches_cover_every_event_once(real):
    _, mask = real
    lengths = event_lengths(mask)
    seen = []
    for idx, width in length_batches(mask, batch_size=7):
        assert 1 <= len(idx) <= 7 and (lengths[idx] == lengths[idx[0]]).all()
        assert width == max(lengths[idx[0]], 1)
        seen.extend(idx.tolist())
    assert sorted(seen) == list(range(len(mask)))
    odd = np.arange(len(mask)) % 2 == 1
    picked = np.concatenate([idx for idx, _ in length_batches(mask, 1000, select=odd)])
    assert sorted(picked.tolist()) == np.flatnonzero(odd).tolist()
    groups = length_groups(torch.from_numpy(mask), 4)
    assert sorted(torch.cat([i for i, _ in groups]).tolist()) == list(range(len(mask)))


def test_no_second_packing_implementation():
    """The idioms of packing live only in model/packing.py (once three copies existed)."""
    root = Path(jetfm_coffea.__file__).parent
    idioms = [r"argmax\(mask\[:, ::-1\]", r"argsort\(\(~", r"\(mask \* slots\)\.amax"]
    for path in root.rglob("*.py"):
        # augment/ moves an event's kept objects first after object dropping: its own idea
        if path.name == "packing.py" or path.parent.name == "augment":
            continue
        for idiom in idioms:
            assert not re.search(idiom, path.read_text()), (path, idiom)
