"""Objectives and the default on-the-fly views."""

from __future__ import annotations

import math

import torch

from jetfm_coffea.train import jitter_views, masked_object_loss, nt_xent, vicreg
from jetfm_coffea.train.builtin_objectives import mask_tokens


def test_nt_xent_prefers_aligned_views():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(32, 1, 16, generator=g)
    aligned = torch.cat([z, z + 0.01 * torch.randn(z.shape, generator=g)], 1)
    random = torch.randn(32, 2, 16, generator=g)
    assert nt_xent(aligned, 0.1) < 0.1 < nt_xent(random, 0.1)
    three = torch.cat([z, z, z], 1)
    # two identical positives share the probability mass: the minimum is ln 2
    assert nt_xent(three, 0.1) < math.log(2) + 0.1


def test_vicreg_penalises_collapse():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(64, 1, 8, generator=g)
    spread = vicreg(torch.cat([z, z], 1))
    collapsed = vicreg(torch.zeros(64, 2, 8))
    assert spread < collapsed


def test_masked_loss_zero_for_perfect_prediction():
    target = torch.randn(4, 5, 3)
    types = torch.randint(0, 6, (4, 5))
    logits = torch.nn.functional.one_hot(types, 8).float() * 100
    hide = torch.rand(4, 5) < 0.5
    mse, ce = masked_object_loss(target, logits, target, types, hide)
    assert mse == 0 and ce < 1e-6
    mse, ce = masked_object_loss(target + 1, logits, target, types, torch.zeros(4, 5, dtype=bool))
    assert mse == 0  # nothing hidden: no loss, no NaN


def test_mask_tokens_only_valid():
    mask = torch.arange(10)[None] < torch.tensor([[3], [0], [10]])
    hide = mask_tokens(mask, 0.5, torch.Generator().manual_seed(0))
    assert not (hide & ~mask).any() and hide.any()


def test_jitter_views(real_tokens):
    batch = {
        "tokens": torch.as_tensor(real_tokens.tokens[:50]),
        "mask": torch.as_tensor(real_tokens.mask[:50]),
    }
    v1, m1 = jitter_views(batch, 3, torch.Generator().manual_seed(1))
    v2, _ = jitter_views(batch, 3, torch.Generator().manual_seed(1))
    assert v1.shape == (50, 3, *batch["tokens"].shape[1:]) and m1.shape == (50, 3, v1.shape[2])
    torch.testing.assert_close(v1, v2)  # reproducible from the generator
    assert not (m1 & ~batch["mask"][:, None]).any()  # dropout only removes tokens
    assert (v1[~m1] == 0).all()  # padding stays zero
    nonempty = batch["mask"].any(1)
    assert m1[nonempty].any(-1).all()  # every view keeps an object
    sin, cos = v1[..., 2][m1], v1[..., 3][m1]
    torch.testing.assert_close(sin**2 + cos**2, torch.ones_like(sin), atol=1e-5, rtol=0)
    assert not torch.equal(v1[:, 0], v1[:, 1])
