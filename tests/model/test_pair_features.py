"""Pair features without float32 cancellation (pair_version 2), and old runs (version 1)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from jetfm_coffea.model import ModelConfig, model_config_for, pair_features
from jetfm_coffea.model.config import LEGACY_PAIR_VERSION, PAIR_VERSION, load_model_config
from jetfm_coffea.tokens import TokenConfig

NAMES = TokenConfig().feature_names


@pytest.fixture(scope="module")
def real_tokens(singlemu, event_tokens):
    """Tokens of 300 real 2012 SingleMu events (muons, jets, MET: collinear pairs too)."""
    shard = event_tokens(singlemu, 300)
    return torch.from_numpy(shard.tokens), torch.from_numpy(shard.mask)


def _exact(tokens: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """ΔR and m² of every pair from four-vectors in extended precision (the reference)."""
    x = tokens.numpy().astype(np.longdouble)
    idx = {n: i for i, n in enumerate(NAMES)}
    pt, eta = np.exp(x[..., idx["log_pt"]]), x[..., idx["eta"]]
    sin, cos, m = x[..., idx["sin_phi"]], x[..., idx["cos_phi"]], np.expm1(x[..., idx["log_m"]])
    norm = np.hypot(sin, cos)
    norm = np.where(norm > 0, norm, 1)
    px, py, pz = pt * cos / norm, pt * sin / norm, pt * np.sinh(eta)
    e = np.sqrt(px * px + py * py + pz * pz + m * m)

    def pair(a):
        return a[:, :, None] + a[:, None, :]

    phi = np.arctan2(sin, cos)
    dphi = np.remainder(phi[:, :, None] - phi[:, None, :] + np.pi, 2 * np.pi) - np.pi
    dr = np.hypot(eta[:, :, None] - eta[:, None, :], dphi)
    m2 = pair(e) ** 2 - pair(px) ** 2 - pair(py) ** 2 - pair(pz) ** 2
    return dr.astype(np.float64), m2.astype(np.float64)


@pytest.mark.parametrize("version", [1, 2])
def test_back_to_back_massless(version):
    # two massless objects, pT = 50 GeV each, eta = 0, back to back: m^2 = (100 GeV)^2
    pt, phi = torch.tensor([50.0, 50.0]), torch.tensor([0.0, math.pi])
    x = torch.zeros(1, 2, 9)
    x[0, :, 0], x[0, :, 2], x[0, :, 3], x[0, :, 4] = pt.log(), phi.sin(), phi.cos(), pt.log()
    f = pair_features(x, NAMES, version)[0, 0, 1] / 0.25
    assert f[0].item() == pytest.approx(math.log(math.pi), rel=1e-5)  # ln dR
    assert f[1].item() == pytest.approx(math.log(50 * math.pi), rel=1e-5)  # ln kT
    assert f[2].item() == pytest.approx(math.log(0.5), rel=1e-5)  # ln z
    assert f[3].item() == pytest.approx(math.log(100.0**2), rel=1e-4)  # ln m^2


def test_stable_m2_is_exact_physics_on_real_events(real_tokens):
    """Version 2's ln ΔR and ln m² (float32) are the four-vector values (extended
    precision) to 1e-5 for every pair of real objects; the legacy ln m² misses by 1e-3+."""
    x, mask = real_tokens
    pairs = (mask[:, :, None] & mask[:, None, :]).numpy()
    dr, m2 = _exact(x)
    keep = pairs & (m2 > 1e-3) & (dr > 1e-3)  # above the clamps of the logarithms
    new = pair_features(x, NAMES, 2).numpy()[keep] / 0.25
    old = pair_features(x, NAMES, 1).numpy()[keep] / 0.25
    assert keep.sum() > 3000
    for i, want in ((0, np.log(dr[keep])), (3, np.log(m2[keep]))):  # ln ΔR, ln m²
        assert np.abs(new[:, i] - want).max() < 1e-5, (i, np.abs(new[:, i] - want).max())
    assert np.abs(old[:, 3] - np.log(m2[keep])).max() > 1e-3  # legacy ln m² cancels
    # ln kT and ln z keep their meaning (ΔR in kT is more accurate in version 2)
    np.testing.assert_allclose(new[:, 1:3], old[:, 1:3], atol=1e-4, rtol=0)


def test_stable_without_log_m_token(real_tokens):
    """Tokens without log_m: the masses come from log_e (still the same physics)."""
    x, mask = real_tokens
    names = [n for n in NAMES if n != "log_m"]
    drop = torch.tensor([i for i, n in enumerate(NAMES) if n != "log_m"])
    pairs = (mask[:, :, None] & mask[:, None, :]).numpy()
    a = pair_features(x, NAMES, 2).numpy()[pairs]
    b = pair_features(x[..., drop], names, 2).numpy()[pairs]
    big = a[:, 3] > 0.25 * np.log(100.0)  # pairs above 100 GeV^2 (E² - p² cancels below)
    np.testing.assert_allclose(b[big], a[big], atol=1e-3, rtol=0)


def test_versions_in_config_and_old_files():
    cfg = model_config_for(size="tiny")
    assert cfg.pair_version == PAIR_VERSION == 2
    data = cfg.model_dump(mode="json")
    assert load_model_config(data) == cfg
    # written before the fields existed (pair_version; n_truth, the pretraining truth head)
    legacy_data = {k: v for k, v in data.items() if k not in ("pair_version", "n_truth")}
    legacy = load_model_config(legacy_data)
    assert legacy.pair_version == LEGACY_PAIR_VERSION
    # the hash an old run recorded in its weights' metadata is unchanged
    legacy_json = json.dumps(legacy_data, sort_keys=True, separators=(",", ":"))
    assert legacy.canonical_json() == legacy_json
    assert cfg.hash() != legacy.hash()
    truth = cfg.model_copy(update={"n_truth": 3})  # a truth head is part of the hash
    assert '"n_truth":3' in truth.canonical_json() and truth.hash() != cfg.hash()
    assert '"n_truth"' not in cfg.canonical_json()
    with pytest.raises(ValueError, match="pair_version"):
        ModelConfig(pair_version=3)
    with pytest.raises(ValueError, match="unknown pair-feature version"):
        pair_features(torch.zeros(1, 2, 9), NAMES, 3)
