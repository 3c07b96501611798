"""Event encoder: sizes, permutation and padding invariance, pair features, masking."""

from __future__ import annotations

import math

import pytest
import torch

from jetfm_coffea.model import (
    EventModel,
    ModelConfig,
    build_model,
    count_parameters,
    model_config_for,
    pair_features,
)
from jetfm_coffea.model.config import SIZE_TARGETS
from jetfm_coffea.tokens import TokenConfig


def _tokens(b: int = 6, t: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random physical-looking tokens in the default feature layout."""
    g = torch.Generator().manual_seed(seed)
    pt = 20 + 80 * torch.rand(b, t, generator=g)
    eta = 2 * torch.randn(b, t, generator=g).clamp(-1.2, 1.2)
    phi = (torch.rand(b, t, generator=g) * 2 - 1) * math.pi
    m = 10 * torch.rand(b, t, generator=g)
    e = torch.sqrt((pt * torch.cosh(eta)) ** 2 + m**2)
    typ = torch.randint(1, 6, (b, t), generator=g).float()
    x = torch.stack(
        [
            pt.log(),
            eta,
            phi.sin(),
            phi.cos(),
            e.log(),
            m.log1p(),
            torch.randint(-1, 2, (b, t), generator=g).float(),
            torch.rand(b, t, generator=g),
            typ,
        ],
        -1,
    )
    counts = torch.randint(1, t + 1, (b,), generator=g)
    counts[0] = 0  # one empty event
    mask = torch.arange(t)[None] < counts[:, None]
    return x * mask[..., None], mask


@pytest.mark.parametrize("size", ["tiny", "small", "base"])
def test_parameter_count_per_size(size):
    model = build_model(model_config_for(size=size))
    n = count_parameters(model)
    assert abs(n / SIZE_TARGETS[size] - 1) < 0.3, n


@pytest.mark.parametrize("pooling", ["cls", "attention"])
def test_permutation_invariance(pooling):
    torch.manual_seed(0)
    model = build_model(model_config_for(pooling=pooling, size="custom", dim=32, layers=2)).eval()
    x, mask = _tokens()
    perm = torch.randperm(x.shape[1])
    with torch.no_grad():
        a = model(x, mask)
        b = model(x[:, perm], mask[:, perm])
    torch.testing.assert_close(a.embedding, b.embedding, atol=1e-5, rtol=1e-5)
    valid = mask[:, perm]
    torch.testing.assert_close(a.tokens[:, perm][valid], b.tokens[valid], atol=1e-5, rtol=1e-5)
    assert torch.isfinite(a.embedding).all()  # the empty event too


@pytest.mark.parametrize("pooling", ["cls", "attention"])
def test_padding_invariance(pooling):
    torch.manual_seed(1)
    model = build_model(model_config_for(pooling=pooling, size="custom", dim=32, layers=2)).eval()
    x, mask = _tokens()
    xp = torch.cat([x, torch.zeros(x.shape[0], 5, x.shape[2])], 1)
    mp = torch.cat([mask, torch.zeros(mask.shape[0], 5, dtype=torch.bool)], 1)
    with torch.no_grad():
        a, b = model(x, mask), model(xp, mp)
    torch.testing.assert_close(a.embedding, b.embedding, atol=1e-5, rtol=1e-5)
    head = b.tokens[:, : x.shape[1]]
    torch.testing.assert_close(a.tokens[mask], head[mask], atol=1e-5, rtol=1e-5)


def test_hidden_tokens_leak_nothing():
    torch.manual_seed(2)
    model = build_model(model_config_for(size="custom", dim=32, layers=2)).eval()
    x, mask = _tokens()
    hide = torch.zeros_like(mask)
    hide[1:, 0] = True
    y = x.clone()
    y[1:, 0, :8] += 3.0  # change everything of the hidden token, type included
    y[1:, 0, 8] = 4.0
    with torch.no_grad():
        a, b = model(x, mask, hide), model(y, mask, hide)
    torch.testing.assert_close(a.embedding, b.embedding)


def test_pair_features_back_to_back_massless():
    # two massless objects, pT = 50 GeV each, eta = 0, back to back: m^2 = (100 GeV)^2
    pt, phi = torch.tensor([50.0, 50.0]), torch.tensor([0.0, math.pi])
    x = torch.zeros(1, 2, 9)
    x[0, :, 0], x[0, :, 2], x[0, :, 3], x[0, :, 4] = pt.log(), phi.sin(), phi.cos(), pt.log()
    f = pair_features(x, TokenConfig().feature_names)[0, 0, 1] / 0.25
    assert f[0].item() == pytest.approx(math.log(math.pi), rel=1e-5)  # ln dR
    assert f[1].item() == pytest.approx(math.log(50 * math.pi), rel=1e-5)  # ln kT
    assert f[2].item() == pytest.approx(math.log(0.5), rel=1e-5)  # ln z
    assert f[3].item() == pytest.approx(math.log(100.0**2), rel=1e-4)  # ln m^2


def test_heads_shapes_and_drop():
    cfg = model_config_for(size="tiny")
    model = EventModel(cfg)
    x, mask = _tokens(t=cfg.n_types // 8 + 4)
    out = model(x, mask)
    assert model.heads["projection"](out.embedding).shape == (len(x), cfg.proj_dim)
    pred, logits = model.heads["decoder"](out.tokens)
    assert pred.shape == (*x.shape[:2], len(cfg.continuous_features))
    assert logits.shape == (*x.shape[:2], cfg.n_types)
    assert model.heads["classifier"](out.embedding).shape == (len(x), cfg.n_classes)
    n_before = count_parameters(model)
    model.drop_heads()
    assert len(model.heads) == 0 and count_parameters(model) < n_before


def test_config_validation():
    with pytest.raises(ValueError, match="divisible"):
        ModelConfig(dim=30, heads=4)
    with pytest.raises(ValueError, match="pair_features"):
        ModelConfig(feature_names=["log_pt", "type_id"])
    ModelConfig(feature_names=["log_pt", "type_id"], pair_features=False)
    with pytest.raises(ValueError, match="unknown model size"):
        model_config_for(size="huge")


def test_length_groups():
    from jetfm_coffea.model import length_groups

    mask = torch.zeros(6, 10, dtype=torch.bool)
    for i, n in enumerate([0, 1, 4, 5, 9, 3]):
        mask[i, :n] = True
    mask[5, 1] = False  # a hole: the length is still 3
    groups = {w: idx.tolist() for idx, w in length_groups(mask, 4)}
    assert groups == {4: [0, 1, 2, 5], 8: [3], 10: [4]}
    assert [w for _, w in length_groups(mask[:, :3], 4)] == [3]


@pytest.mark.parametrize("pooling", ["cls", "attention"])
def test_grouped_forward_is_the_same_function(pooling):
    """Encoding groups of similar length separately changes nothing but the cost."""
    torch.manual_seed(3)
    cfg = model_config_for(pooling=pooling, size="custom", dim=32, layers=2)
    model = build_model(cfg).eval()
    x, mask = _tokens(b=40, t=12, seed=4)
    hide = mask & (torch.rand(mask.shape) < 0.3)
    a = model(x, mask, hide)
    b = model(x, mask, hide, grouped=True)
    torch.testing.assert_close(a.embedding, b.embedding, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a.tokens[mask], b.tokens[mask], atol=1e-5, rtol=1e-5)
    # a loss with a gradient (|LayerNorm output|^2 would be flat: its gradient is noise)
    w = torch.randn(a.embedding.shape)
    params = list(model.encoder.parameters())
    ga = torch.autograd.grad((a.embedding * w).sum(), params)
    gb = torch.autograd.grad((b.embedding * w).sum(), params)
    for u, v in zip(ga, gb, strict=True):  # float32 sums in another order
        assert float((u - v).norm()) <= 1e-4 * float(u.norm()) + 1e-6


@pytest.mark.gpu
@pytest.mark.parametrize("grouped", [False, True])
def test_cuda_float32_equals_cpu(grouped):
    """fp32 (TF32 off) on the GPU gives the CPU's embeddings within 1e-5."""
    from jetfm_coffea.runtime import precision_context

    torch.manual_seed(5)
    model = build_model(model_config_for(size="small")).eval()
    x, mask = _tokens(b=512, t=16, seed=6)
    cuda = torch.device("cuda", 0)
    with torch.no_grad(), precision_context("fp32", cuda):
        ref = model(x, mask, grouped=grouped).embedding
        got = model.to(cuda)(x.to(cuda), mask.to(cuda), grouped=grouped).embedding.cpu()
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
