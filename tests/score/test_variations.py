"""Systematic variations of the score: same token path, MET propagated, every mode."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from jetfm_coffea.errors import ConfigError
from jetfm_coffea.score import JetFMScorer
from jetfm_coffea.tokens import (
    TokenConfig,
    Variation,
    build_tokens,
    load_variations,
    standard_variations,
)

from .conftest import open_events

DELTA = 0.05


def _met_vector(tokens: np.ndarray, names: list[str], type_id: int) -> np.ndarray:
    """(px, py) of the MET token of each event, from its features."""
    f = {n: i for i, n in enumerate(names)}
    met = tokens[..., f["type_id"]] == type_id
    pt = np.where(met, np.exp(tokens[..., f["log_pt"]]), 0.0).sum(1)
    cos = np.where(met, tokens[..., f["cos_phi"]], 0.0).sum(1)
    sin = np.where(met, tokens[..., f["sin_phi"]], 0.0).sum(1)
    return np.stack([pt * cos, pt * sin], axis=1)


def test_jes_up_scales_jet_log_pt_by_log_1_plus_delta_and_moves_met(ttbar_events):
    # every accepted jet becomes a token (max_count 50), so the jets MET is propagated
    # over are exactly the nominal jet tokens
    cfg = TokenConfig().model_dump()
    cfg["collections"][0]["max_count"] = 50
    config = TokenConfig(**cfg)
    names = config.feature_names
    nominal = build_tokens(ttbar_events, config)
    varied = build_tokens(ttbar_events, config, Variation.shift({"Jet": DELTA}))
    f = {n: i for i, n in enumerate(names)}
    jets_n = nominal.tokens[..., f["type_id"]] == 1
    jets_v = varied.tokens[..., f["type_id"]] == 1
    # jets only gain (threshold crossers); where the jet count is unchanged, every jet
    # token moved by log(1 + delta) in log pT and log E, nothing else changed
    same = jets_n.sum(1) == jets_v.sum(1)
    assert same.mean() > 0.5 and (jets_v.sum(1) >= jets_n.sum(1)).all()
    sel = jets_n & same[:, None]
    shift = varied.tokens[..., f["log_pt"]][sel] - nominal.tokens[..., f["log_pt"]][sel]
    np.testing.assert_allclose(shift, np.log1p(DELTA), atol=2e-6, rtol=0)
    shift_e = varied.tokens[..., f["log_e"]][sel] - nominal.tokens[..., f["log_e"]][sel]
    np.testing.assert_allclose(shift_e, np.log1p(DELTA), atol=2e-6, rtol=0)
    for name in ("eta", "sin_phi", "cos_phi", "btag"):
        np.testing.assert_array_equal(
            varied.tokens[..., f[name]][sel], nominal.tokens[..., f[name]][sel]
        )
    muons = nominal.tokens[..., f["type_id"]] == 2
    np.testing.assert_array_equal(varied.tokens[muons], nominal.tokens[muons])
    # MET' = MET - delta * (sum of the accepted jets' transverse momenta)
    pt = np.where(jets_n, np.exp(nominal.tokens[..., f["log_pt"]].astype(np.float64)), 0.0)
    jet_sum = np.stack(
        [
            (pt * nominal.tokens[..., f["cos_phi"]]).sum(1),
            (pt * nominal.tokens[..., f["sin_phi"]]).sum(1),
        ],
        axis=1,
    )
    want = _met_vector(nominal.tokens, names, 5) - DELTA * jet_sum
    got = _met_vector(varied.tokens, names, 5)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)
    assert np.abs(got - _met_vector(nominal.tokens, names, 5)).max() > 1.0  # it did move


def test_unclustered_and_lepton_variations(ttbar_events):
    config = TokenConfig()
    f = {n: i for i, n in enumerate(config.feature_names)}
    nominal = build_tokens(ttbar_events, config)
    up = build_tokens(ttbar_events, config, Variation(unclustered=0.1))
    other = nominal.tokens[..., f["type_id"]] != 5
    np.testing.assert_array_equal(up.tokens[other], nominal.tokens[other])  # MET only
    assert not np.array_equal(up.tokens, nominal.tokens)
    lep = build_tokens(ttbar_events, config, Variation.shift({"Muon": 0.01, "Electron": 0.01}))
    jets = nominal.tokens[..., f["type_id"]] == 1
    np.testing.assert_array_equal(lep.tokens[jets], nominal.tokens[jets])
    assert set(standard_variations()) == {
        f"{n}_{s}" for n in ("JES", "JER", "lepton", "unclustered") for s in ("up", "down")
    }
    with pytest.raises(ConfigError, match="unknown variation"):
        standard_variations(["PDF"])
    with pytest.raises(ConfigError, match="not positive"):
        Variation.shift({"Jet": -1.0})


def test_per_jet_factor_field(ttbar_events):
    events = ttbar_events[:50]
    events["Jet", "jes_up"] = events.Jet.pt * 0 + (1 + DELTA)
    by_field = build_tokens(events, TokenConfig(), Variation.factor({"Jet": "jes_up"}))
    by_scalar = build_tokens(events, TokenConfig(), Variation.shift({"Jet": DELTA}))
    # the field holds float32 factors: equal to float32 rounding of 1.05
    np.testing.assert_allclose(by_field.tokens, by_scalar.tokens, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(by_field.mask, by_scalar.mask)


def test_scorer_variations_zero_is_nominal_and_modes_agree(tiny_run, ttbar2015):
    variations = {
        "zero": {"shifts": {"Jet": 0.0}},
        "zero_unclustered": {"unclustered": 0.0},
        **standard_variations(["JES", "unclustered"]),
    }
    scorer = JetFMScorer(tiny_run, variations=variations)
    events = open_events(ttbar2015)
    out = scorer(events)
    assert scorer.fields == ["score_background", "score_signal", "n_tokens", "variations"]
    nominal = out.score_signal.to_numpy()
    for zero in ("zero", "zero_unclustered"):
        np.testing.assert_array_equal(out.variations[zero].score_signal.to_numpy(), nominal)
    up = out.variations["JES_up"].score_signal.to_numpy()
    assert np.abs(up - nominal).max() > 1e-4
    assert out.variations["JES_up"].n_tokens.to_numpy().sum() >= out.n_tokens.to_numpy().sum()
    dask = scorer(open_events(ttbar2015, mode="dask")).compute()
    for name in variations:
        np.testing.assert_array_equal(
            dask.variations[name].score_signal.to_numpy(),
            out.variations[name].score_signal.to_numpy(),
        )
    eager = scorer(open_events(ttbar2015, mode="eager"))
    np.testing.assert_array_equal(
        eager.variations["JES_down"].score_signal.to_numpy(),
        out.variations["JES_down"].score_signal.to_numpy(),
    )


def test_cli_score_fills_a_histogram_per_variation(tiny_run, ttbar2015, tmp_path):
    import pickle

    from click.testing import CliRunner

    from jetfm_coffea.cli import main

    out = tmp_path / "out"
    args = ["score", str(ttbar2015), "--model", str(tiny_run), "--out", str(out)]
    result = CliRunner().invoke(main, [*args, "--variations", "JES,JER"])
    assert result.exit_code == 0, result.output
    (hists,) = pickle.loads((out / "histograms.pkl").read_bytes()).values()
    h = hists["score_variations"]
    names = ["nominal", "JES_up", "JES_down", "JER_up", "JER_down"]
    assert list(h.axes["variation"]) == names
    for name in names:
        assert h[{"variation": name}].sum().value == 200
    assert h[{"variation": "nominal"}].values().tolist() == hists["score"].values().tolist()
    assert (
        h[{"variation": "JES_up"}].values().tolist()
        != h[{"variation": "nominal"}].values().tolist()
    )


def test_analysis_variations_agree_in_virtual_and_dask_mode(tiny_run, ttbar2015):
    from jetfm_coffea.cluster import Execution, dask_client
    from jetfm_coffea.jobs.execution import run_coffea
    from jetfm_coffea.processors.analysis import ScoreAnalysisProcessor, finalize_analysis

    fileset = {"ttbar": {"files": {str(ttbar2015): "Events"}}}
    proc = ScoreAnalysisProcessor(tiny_run, variations=standard_variations(["JES", "lepton"]))
    virtual, _ = run_coffea(
        proc, fileset, Execution(executor="iterative", chunksize=120), status=False
    )
    with dask_client(workers=1) as client:
        raw, _ = run_coffea(
            proc,
            fileset,
            Execution(dask_mode=True, scheduler=client.scheduler.address, chunksize=120),
        )
    dask = finalize_analysis(raw, proc)
    a, b = virtual["ttbar"]["score_variations"], dask["ttbar"]["score_variations"]
    assert list(a.axes["variation"]) == [
        "nominal",
        "JES_up",
        "JES_down",
        "lepton_up",
        "lepton_down",
    ]
    np.testing.assert_array_equal(a.values(), b.values())
    assert a.sum().value == 5 * 200


def test_factor_and_shift_are_explicit_and_a_bare_number_is_refused(ttbar_events):
    events = ttbar_events[:80]
    factor = build_tokens(events, TokenConfig(), Variation.factor({"Jet": 1.03}))
    shift = build_tokens(events, TokenConfig(), Variation.shift({"Jet": 0.03}))
    np.testing.assert_array_equal(factor.tokens, shift.tokens)  # 1.03 == 1 + 0.03
    with pytest.raises(TypeError):
        Variation({"Jet": 1.03})  # no positional number whose meaning must be guessed
    with pytest.raises(ConfigError, match=r"factors \(1.03\) or shifts"):
        load_variations({"jes": {"Jet": 1.03}})


def test_per_object_jagged_factors_and_pt_only(ttbar_events):
    """Per-jet factors kept as an event-level jagged array aligned with events.Jet (the
    AGC's shape); vary='pt' leaves mass and MET alone, as jets.pt * factor does."""
    config = TokenConfig()
    f = {n: i for i, n in enumerate(config.feature_names)}
    events = ttbar_events[:120]
    factors = ak.ones_like(events.Jet.pt) * 1.03 + 0 * events.Jet.eta
    by_array = build_tokens(events, config, Variation.factor({"Jet": factors}))
    by_number = build_tokens(events, config, Variation.factor({"Jet": 1.03}))
    np.testing.assert_allclose(by_array.tokens, by_number.tokens, atol=1e-5, rtol=0)
    pt_only = build_tokens(events, config, Variation.factor({"Jet": factors}, vary="pt"))
    nominal = build_tokens(events, config)
    names = config.feature_names
    met = _met_vector(nominal.tokens, names, 5)
    np.testing.assert_array_equal(_met_vector(pt_only.tokens, names, 5), met)  # MET unchanged
    assert np.abs(_met_vector(by_array.tokens, names, 5) - met).max() > 1.0  # propagated
    # pT only: the jets' mass is the nominal one (log E moves by less than log pT)
    jets = (nominal.tokens[..., f["type_id"]] == 1) & (pt_only.tokens[..., f["type_id"]] == 1)
    same = (nominal.mask.sum(1) == pt_only.mask.sum(1))[:, None] & jets
    d_pt = pt_only.tokens[..., f["log_pt"]][same] - nominal.tokens[..., f["log_pt"]][same]
    d_e = pt_only.tokens[..., f["log_e"]][same] - nominal.tokens[..., f["log_e"]][same]
    np.testing.assert_allclose(d_pt, np.log(1.03), atol=2e-6)
    assert (d_e < np.log(1.03) - 1e-7).any()
    with pytest.raises(ConfigError, match="not aligned with the collection 'Jet'"):
        build_tokens(events, config, Variation.factor({"Jet": factors[:, :1]}))


def test_scoring_a_selected_subset_per_variation(tiny_run, ttbar_events):
    events = ttbar_events
    scorer = JetFMScorer(tiny_run)
    full = scorer(events, variations={"up": Variation.factor({"Jet": 1.05})})
    n_jets = ak.to_numpy(ak.num(events.Jet.pt[events.Jet.pt > 30], axis=1))
    n_jets_up = ak.to_numpy(ak.num(events.Jet.pt[events.Jet.pt * 1.05 > 30], axis=1))
    sel, sel_up = n_jets >= 4, n_jets_up >= 4
    assert 0 < sel.sum() < sel_up.sum() < len(events)
    part = scorer(
        events,
        mask={"nominal": sel, "up": sel_up},
        variations={"up": Variation.factor({"Jet": 1.05})},
    )
    nominal, up = part.score_signal.to_numpy(), part.variations["up"].score_signal.to_numpy()
    np.testing.assert_array_equal(nominal[sel], full.score_signal.to_numpy()[sel])
    np.testing.assert_array_equal(up[sel_up], full.variations["up"].score_signal.to_numpy()[sel_up])
    assert np.isnan(nominal[~sel]).all() and np.isnan(up[~sel_up]).all()
    assert (part.n_tokens.to_numpy()[~sel] == 0).all()
