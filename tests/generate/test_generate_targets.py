"""Regression targets from the generator's truth record (``GenTarget_*`` branches)."""

from __future__ import annotations

import numpy as np
import pytest
import uproot

from jetfm_coffea.generate import PROCESSES, generate
from jetfm_coffea.generate.processes import pythia_settings
from jetfm_coffea.generate.run import make_pythia
from jetfm_coffea.generate.targets import TARGET_BRANCHES, TruthRecord, truth_targets

N = 60


@pytest.fixture(scope="module")
def target_samples(tmp_path_factory):
    """60 events each of tt̄, W+jets and VH(bb) at 13 TeV, in-process."""
    out = tmp_path_factory.mktemp("gen_targets")
    return {p: generate(p, N, sqrts=13000, seed=5, out=out) for p in ("ttbar", "wjets", "hbb")}


def _read(res, branches):
    files = [{str(f): "Events"} for f in res.files]
    return uproot.concatenate(files, branches, library="np")


def test_every_file_has_every_target_branch(target_samples):
    for name, res in target_samples.items():
        with uproot.open(res.files[0]) as f:
            tree = f["Events"]
            for branch in TARGET_BRANCHES:
                assert tree[branch].typename == "float", (name, branch)


def test_targets_defined_where_the_process_has_them(target_samples):
    tt = _read(target_samples["ttbar"], list(TARGET_BRANCHES))
    wj = _read(target_samples["wjets"], list(TARGET_BRANCHES))
    vh = _read(target_samples["hbb"], list(TARGET_BRANCHES))
    # tt̄: lepton+jets is ~44 % of the decays (1 hadronic top), leptonic W in ~55 %
    assert 0.2 < np.isfinite(tt["GenTarget_hadTopPt"]).mean() < 0.7
    assert 0.3 < np.isfinite(tt["GenTarget_nuPt"]).mean() < 0.85
    assert np.isnan(tt["GenTarget_higgsPt"]).all()
    # W+jets: W -> e/mu/tau nu only, so the neutrino is always there; no top, no Higgs
    assert np.isfinite(wj["GenTarget_nuPt"]).all()
    assert np.isnan(wj["GenTarget_hadTopPt"]).all() and np.isnan(wj["GenTarget_higgsPt"]).all()
    # VH: always a Higgs
    assert np.isfinite(vh["GenTarget_higgsPt"]).all()
    assert (vh["GenTarget_higgsPt"] > 0).all()


def test_true_met_correlates_with_reco_met(target_samples):
    wj = _read(target_samples["wjets"], ["GenTarget_nuPt", "MET_pt", "GenMET_pt"])
    nu, met = wj["GenTarget_nuPt"], wj["MET_pt"]
    assert np.corrcoef(nu, met)[0, 1] > 0.6
    # the W's neutrino is (nearly always) most of the invisible momentum
    assert np.median(np.abs(wj["GenMET_pt"] - nu) / nu) < 0.05


def test_higgs_and_top_pt_match_genpart(target_samples):
    vh = _read(target_samples["hbb"], ["GenTarget_higgsPt", "GenPart_pt", "GenPart_pdgId"])
    for h, pt, pdg in zip(vh["GenTarget_higgsPt"], vh["GenPart_pt"], vh["GenPart_pdgId"],
                          strict=True):  # fmt: skip
        assert np.isclose(h, pt[pdg == 25], rtol=1e-5).any()
    tt = _read(target_samples["ttbar"], ["GenTarget_hadTopPt", "GenPart_pt", "GenPart_pdgId"])
    for top, pt, pdg in zip(tt["GenTarget_hadTopPt"], tt["GenPart_pt"], tt["GenPart_pdgId"],
                            strict=True):  # fmt: skip
        if np.isfinite(top):
            assert np.isclose(top, pt[np.abs(pdg) == 6], rtol=1e-5).any()


def test_top_pt_equals_the_sum_of_its_decay_products():
    """On the Pythia record: the hadronic top's pT is the pT of its W + b daughters, and
    that W decays to quarks."""
    pythia = make_pythia(pythia_settings(PROCESSES["ttbar"], 13000, seed=3))
    batch = pythia.nextBatch(40)
    targets = truth_targets(batch["prt"])["GenTarget_hadTopPt"]
    rec = TruthRecord(batch["prt"])
    last = rec.is_last_copy()
    checked = 0
    for t in np.flatnonzero(last & (np.abs(rec.pid) == 6)):
        kids = rec.daughters(t)
        ids = sorted(abs(int(rec.pid[d])) for d in kids)
        assert ids[1] == 24 and ids[0] in (1, 3, 5), ids  # t -> W b (or W s, W d: CKM)
        total = rec.p4[kids].sum(axis=0)
        assert np.allclose(total, rec.p4[t], rtol=1e-6, atol=1e-3)
        w = next(d for d in kids if abs(rec.pid[d]) == 24)
        if rec.w_decay(w)[0] == "hadronic" and np.isfinite(targets[rec.event[t]]):
            assert np.isclose(targets[rec.event[t]], np.hypot(*total[:2]), rtol=1e-5)
            checked += 1
    assert checked >= 5
