"""The hard-task processes ``tth`` and ``vz_bb``: labels, truth filter, physics peaks."""

from __future__ import annotations

import json

import awkward as ak
import numpy as np
import pytest
import uproot

from jetfm_coffea.generate import PROCESSES, generate
from jetfm_coffea.generate.validate import (
    GEN_BRANCHES,
    load_events,
    peak_position,
    truth_bb_mass,
    truth_top_mass,
    validation_plan,
)


@pytest.fixture(scope="module")
def hard_samples(tmp_path_factory):
    """80 events each of ttH(bb), VZ(bb) and VH(bb) at 13 TeV, in-process."""
    out = tmp_path_factory.mktemp("gen_hard")
    return {p: generate(p, 80, sqrts=13000, seed=11, out=out) for p in ("tth", "vz_bb", "hbb")}


def test_labels_are_stable():
    """Downstream task YAMLs key on these numbers: they must never change."""
    assert {name: spec.label for name, spec in PROCESSES.items()} == {
        "ttbar": 0, "wjets": 1, "zjets": 2, "qcd": 3, "hbb": 4, "diboson": 5, "tth": 6,
        "vz_bb": 7, "st_t": 8, "st_s": 9, "ggh": 10, "vbfh": 11, "gjets": 12, "znunu": 13,
    }  # fmt: skip
    assert PROCESSES["vz_bb"].truth_filter == "one_z_to_bb"
    assert PROCESSES["tth"].truth_filter is None


def test_fileset_metadata(hard_samples):
    for name, res in hard_samples.items():
        meta = json.loads(res.fileset_path.read_text())[res.dataset]["metadata"]
        assert meta["label"] == PROCESSES[name].label
        assert meta["nevents"] == 80
        assert meta["truth_filter"] == PROCESSES[name].truth_filter
    eff = hard_samples["vz_bb"].metadata["filter_efficiency"]
    assert 0.2 < eff < 0.7  # one Z -> bb among Z -> bb/ll/nunu, W -> l nu
    assert hard_samples["tth"].metadata["filter_efficiency"] == 1.0
    assert 0.0 < hard_samples["tth"].xsec_pb < 2.0  # LO ttH x BR(H -> bb) ~ 0.2 pb


def _gen(res):
    return load_events(res.files, GEN_BRANCHES)


def test_vz_bb_has_exactly_one_z_to_bb_and_a_leptonic_partner(hard_samples):
    ev = _gen(hard_samples["vz_bb"])
    pdg, mother, status = ev["GenPart_pdgId"], ev["GenPart_genPartIdxMother"], ev["GenPart_status"]
    mother_pdg = pdg[ak.where(mother >= 0, mother, 0)]
    boson = (np.abs(mother_pdg) == 23) | (np.abs(mother_pdg) == 24)
    from_boson = (mother >= 0) & boson  # leptons: final copies point at their boson
    b = ak.to_numpy(ak.sum(from_boson & (status == 23) & (np.abs(pdg) == 5), axis=1))
    light_q = ak.to_numpy(ak.sum(from_boson & (np.abs(pdg) <= 4), axis=1))
    leptons = ak.to_numpy(ak.sum(from_boson & (np.abs(pdg) >= 11) & (np.abs(pdg) <= 16), axis=1))
    assert (b == 2).all()
    assert (light_q == 0).all()
    assert (leptons >= 1).all()  # the other boson: l l, nu nu or l nu


def test_truth_bb_mass_peaks(hard_samples):
    for name, mother, target in (("tth", 25, 125.0), ("hbb", 25, 125.0), ("vz_bb", 23, 91.2)):
        m = truth_bb_mass(_gen(hard_samples[name]), mother)
        assert len(m) == 80, name
        assert abs(peak_position(m, target - 30, target + 30, 5.0) - target) < 3.0, name
    # the wrong mother finds nothing: the pairing really follows the mother
    assert len(truth_bb_mass(_gen(hard_samples["vz_bb"]), 25)) == 0


def test_tth_has_two_tops_at_the_top_mass(hard_samples):
    m = truth_top_mass(_gen(hard_samples["tth"]))
    assert len(m) == 2 * 80
    assert 170.0 < peak_position(m, 150.0, 200.0, 5.0) < 175.0


def test_tth_is_busier_than_vz_bb(hard_samples):
    """ttH(bb): four b quarks plus two W decays; VZ(bb): two b jets."""

    def mean_jets(res):
        arr = uproot.concatenate([{str(f): "Events"} for f in res.files], ["nJet"], library="np")
        return float(np.mean(arr["nJet"]))

    assert mean_jets(hard_samples["tth"]) > mean_jets(hard_samples["vz_bb"]) + 2


def test_validation_plan_includes_hard_tasks():
    keys = {key: n for _, _, key, n in validation_plan(400)}
    assert keys["tth"] == keys["vz_bb"] == keys["hbb"] == 100
    assert keys["ttbar"] == 400


def test_validation_report_checks_the_hard_processes(hard_samples, tmp_path):
    """The report's truth-level checks of tth, hbb and vz_bb (the ttbar / W / Z checks are
    fed stand-in samples here and are not asserted)."""
    from jetfm_coffea.generate.validate import write_validation_report

    files = {name: res.files for name, res in hard_samples.items()}
    samples = {"ttbar": files["tth"], "wjets": files["hbb"], "zjets": files["vz_bb"], **files}
    summary = write_validation_report(samples, tmp_path)
    checks = summary["checks"]
    for name in ("tth_truth_mbb_peak_gev", "hbb_truth_mbb_peak_gev", "vz_bb_truth_mbb_peak_gev",
                 "tth_truth_top_mass_gev", "tth_tops_per_event"):  # fmt: skip
        assert checks[name]["pass"], (name, checks[name])
    assert checks["vz_bb_truth_mbb_peak_gev"]["range"] == [pytest.approx(88.2), 94.2]
    assert (tmp_path / "truth_mbb.png").stat().st_size > 5_000
    assert "tth_truth_mbb_peak_gev" in (tmp_path / "summary.md").read_text()
