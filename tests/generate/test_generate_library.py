"""The wider pretraining library (issue 26): single top, ggH, VBF H, γ + jets, Z → νν + jets,
the tt̄ extra-flavour label and the new truth targets, checked by their physics."""

from __future__ import annotations

import numpy as np
import pytest
import uproot

from jetfm_coffea.generate import generate
from jetfm_coffea.generate.processes import pythia_settings
from jetfm_coffea.generate.run import make_pythia
from jetfm_coffea.generate.targets import TruthRecord, truth_targets
from jetfm_coffea.generate.validate import validation_plan, write_validation_report

LIBRARY = ("st_t", "st_s", "ggh", "vbfh", "gjets", "znunu")


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """60 events of each new process and 300 tt̄ events at 13 TeV, in-process."""
    out = tmp_path_factory.mktemp("gen_library")
    samples = {p: generate(p, 60, sqrts=13000, seed=7, out=out) for p in LIBRARY}
    samples["ttbar"] = generate("ttbar", 300, sqrts=13000, seed=9, out=out)
    samples["hbb"] = generate("hbb", 40, sqrts=13000, seed=7, out=out)
    samples["wjets"] = generate("wjets", 40, sqrts=13000, seed=7, out=out)
    samples["zjets"] = generate("zjets", 40, sqrts=13000, seed=7, out=out)
    return samples


def _read(res, branches):
    return uproot.concatenate([{str(f): "Events"} for f in res.files], branches, library="np")


def test_validation_report_checks_every_library_process(library, tmp_path):
    files = {name: res.files for name, res in library.items()}
    checks = write_validation_report(files, tmp_path)["checks"]
    for name in ("st_t_tops_per_event", "st_s_tops_per_event", "ggh_truth_mbb_peak_gev",
                 "vbfh_truth_mbb_peak_gev", "gjets_photon_fraction", "znunu_mean_met_gev",
                 "znunu_met_follows_z_pt", "ttbar_plus_b_fraction",
                 "ttbar_plus_c_fraction"):  # fmt: skip
        assert checks[name]["pass"], (name, checks[name])
    plan = {key for _, _, key, _ in validation_plan(400)}
    assert set(LIBRARY) <= plan


def test_truth_targets_are_defined_where_the_process_has_them(library):
    names = ["GenTarget_bosonPt", "GenTarget_mbb", "GenTarget_nHardB", "GenTarget_ttHF"]
    tt, vh = _read(library["ttbar"], names), _read(library["hbb"], names)
    hf = tt["GenTarget_ttHF"]
    assert set(np.unique(hf)) <= {0.0, 1.0, 2.0} and (hf == 0).mean() > 0.6
    assert np.isnan(tt["GenTarget_bosonPt"]).all()  # the W bosons come from top decays
    assert (tt["GenTarget_nHardB"] == 2).mean() > 0.95  # t -> W b, twice
    assert np.isnan(tt["GenTarget_mbb"]).all()
    assert np.allclose(vh["GenTarget_mbb"], 125.0, atol=0.5)  # H -> b bbar, narrow
    assert (vh["GenTarget_nHardB"] >= 2).all() and np.isnan(vh["GenTarget_ttHF"]).all()
    for name in ("znunu", "gjets", "wjets"):
        boson = _read(library[name], ["GenTarget_bosonPt"])["GenTarget_bosonPt"]
        assert np.isfinite(boson).all() and (boson > 0).all(), name
    z = _read(library["znunu"], ["GenTarget_bosonPt", "GenTarget_nuPt", "MET_pt"])
    assert np.median(z["GenTarget_bosonPt"]) > 50  # p^_T > 50 GeV: the Z recoils
    st = _read(library["st_t"], ["GenTarget_ttHF", "GenTarget_hadTopPt"])
    assert np.isnan(st["GenTarget_ttHF"]).all()  # one top: no tt-bar label


def test_ancestry_by_pointer_jumping_equals_walking_the_mothers():
    pythia = make_pythia(pythia_settings_for("ttbar"))
    batch = pythia.nextBatch(5)
    rec = TruthRecord(batch["prt"])
    fast = rec.has_ancestor((6,))
    rng = np.random.default_rng(0)
    for i in rng.choice(len(rec.pid), 300, replace=False):
        j, found = int(rec.m1[i]), False
        while j >= 0:
            found |= abs(int(rec.pid[j])) == 6
            j = int(rec.m1[j])
        assert fast[i] == found, i
    assert fast.any() and not fast.all()
    assert set(truth_targets(batch["prt"])) >= {"GenTarget_ttHF", "GenTarget_nHardB"}


def pythia_settings_for(process: str) -> list[str]:
    from jetfm_coffea.generate import PROCESSES

    return pythia_settings(PROCESSES[process], 13000, seed=3)
