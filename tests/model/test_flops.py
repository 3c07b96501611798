"""The hand FLOP counter (``jetfm_coffea.model.flops``) against torch's own counter."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from jetfm_coffea.model import build_model, model_config_for
from jetfm_coffea.model.flops import (
    TRAIN_FACTOR,
    encoder_forward_flops,
    heads_forward_flops,
    pretrain_flops_per_event,
)

CONFIGS = {
    "tiny": {},
    "attention-pooling": {
        "size": "custom",
        "dim": 32,
        "heads": 4,
        "layers": 2,
        "pair_hidden": 8,
        "pooling": "attention",
    },
    "no-pairs": {"size": "custom", "dim": 24, "heads": 2, "layers": 1, "pair_features": False},
}


def _events(config, b: int, t: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``b`` events of exactly ``t`` valid objects (no padding: counted = useful)."""
    gen = torch.Generator().manual_seed(t)
    x = torch.randn(b, t, len(config.feature_names), generator=gen)
    x[..., config.feature_names.index("type_id")] = 1.0
    return x, torch.ones(b, t, dtype=torch.bool)


def _counted(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("t", [1, 4, 9])
def test_encoder_forward_flops_equal_torch_counter(name, t):
    size = "tiny" if not CONFIGS[name] else "custom"
    config = model_config_for(size=size, **{k: v for k, v in CONFIGS[name].items() if k != "size"})
    model = build_model(config).eval()
    x, m = _events(config, 5, t)
    counted = _counted(lambda: model.encoder(x, m))
    if config.pooling == "attention":  # torch does not count MHA's one-query softmax(QK)V
        counted += 5 * 4 * t * config.dim
    if not config.pair_features:  # constant mask: the CPU flash kernel, which torch skips
        counted += 5 * config.layers * 4 * (t + 1) ** 2 * config.dim
    assert counted == pytest.approx(5 * float(encoder_forward_flops(config, t)), rel=1e-9)


def test_hand_count_of_tiny_with_three_objects():
    """tiny: d=48, 4 heads, 3 layers, pair MLP 4->16->4, ffn 192, class token."""
    config = model_config_for(size="tiny")
    n_cont = len(config.continuous_features)
    t, big_t, d = 3, 4, 48
    embed = 2 * t * (n_cont * d + d * d)
    pairs = 2 * t * t * (4 * 16 + 16 * 4)
    layer = 2 * big_t * (3 * d * d + d * d + 2 * d * 192) + 4 * big_t**2 * d
    assert float(encoder_forward_flops(config, 3)) == embed + pairs + 3 * layer
    # per-event arrays: each event counted with its own length (not the batch's longest)
    got = encoder_forward_flops(config, np.array([3, 0, 10]))
    assert got[0] == embed + pairs + 3 * layer and got[1] < got[0] < got[2]


def test_heads_flops_equal_torch_counter():
    config = model_config_for(size="tiny")
    model = build_model(config).eval()
    x, m = _events(config, 4, 6)
    out = model.encoder(x, m)
    counted = _counted(lambda: model.heads["projection"](out.embedding.repeat(2, 1)))
    counted += _counted(lambda: model.heads["decoder"](out.tokens))
    hand = 4 * float(heads_forward_flops(config, ["projection", "decoder"], 6, n_views=2))
    assert counted == pytest.approx(hand, rel=1e-9)


def test_training_step_is_about_three_forwards():
    """fwd + bwd as torch counts it is 3x the forward, less the input gradients that are
    not needed (the token embedding and the pair MLP's first layers): within 5%."""
    config = model_config_for(size="small")
    model = build_model(config)
    x, m = _events(config, 8, 8)

    def step():
        out = model.encoder(x, m)
        (out.embedding.square().sum() + out.tokens.square().sum()).backward()

    counted = _counted(step)
    hand = 8 * TRAIN_FACTOR * float(encoder_forward_flops(config, 8))
    assert 0.95 * hand < counted <= hand


def test_pretrain_flops_count_views_and_copy():
    config = model_config_for(size="small")
    tokens = np.array([3, 5])
    views = np.array([[3, 2], [5, 5]])
    per_event = pretrain_flops_per_event(config, tokens, views)
    fwd = encoder_forward_flops(config, tokens) + encoder_forward_flops(config, views).sum(1)
    fwd = fwd + heads_forward_flops(config, ["projection", "decoder"], tokens, 2)
    assert per_event == pytest.approx(3 * fwd.mean())
    assert pretrain_flops_per_event(config, tokens) < per_event  # without views: less
