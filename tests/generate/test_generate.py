"""The built-in generator: API, files, NanoAOD schema, determinism, CLI, bad input.

Samples are generated once per session (a few hundred events per process) and shared;
the physics validation tests live in ``test_generate_physics.py``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot
from click.testing import CliRunner

from jetfm_coffea.cli import main
from jetfm_coffea.cluster import Execution
from jetfm_coffea.errors import ConfigError
from jetfm_coffea.generate import PROCESSES, SQRTS_CHOICES, generate
from jetfm_coffea.generate import run as gen_run
from jetfm_coffea.generate.detector import BTAG_WP_MEDIUM

TWO = Execution(workers=2)  # two chunks (this process)


@pytest.fixture(scope="session")
def gen_samples(tmp_path_factory):
    """ttbar, wjets, zjets at 13 TeV, generated once with two workers.

    For statistics at small event counts, the ttbar sample is forced semileptonic
    (W+ -> e/mu nu, W- -> quarks) and the W decays to e or mu only; the physics checks
    do not depend on these choices beyond the selection efficiency.
    """
    out = tmp_path_factory.mktemp("gen_samples")
    semileptonic = ("24:onMode = off", "24:onPosIfAny = 11 13", "24:onNegIfAny = 1 2 3 4 5")
    plan = {
        "ttbar": ("ttbar", 400, semileptonic),
        "wjets": ("wjets", 500, ("24:onMode = off", "24:onIfAny = 11 13")),
        "zjets": ("zjets", 600, ()),
    }
    return {
        key: generate(
            proc,
            n,
            sqrts=13000,
            seed=101,
            out=out,
            execution=Execution(workers=2),
            pythia_extra=extra,
        )
        for key, (proc, n, extra) in plan.items()
    }


@pytest.fixture(scope="session")
def gen_smoke(tmp_path_factory):
    """20 events of each remaining process, in-process, at the three energies, with PFCands."""
    out = tmp_path_factory.mktemp("gen_smoke")
    plan = [("qcd", 8000), ("hbb", 13600), ("diboson", 13000)]
    return {p: generate(p, 20, sqrts=s, seed=5, out=out, pfcands=True) for p, s in plan}


def _read(files, branches=None):
    return uproot.concatenate([{str(f): "Events"} for f in files], branches, library="ak")


# ----------------------------------------------------------------------------- files


NANOAOD_TYPES = {
    "run": "uint32",
    "luminosityBlock": "uint32",
    "event": "uint64",
    "genWeight": "float32",
    "nJet": "int32",
    "Jet_pt": "float32",
    "Jet_eta": "float32",
    "Jet_phi": "float32",
    "Jet_mass": "float32",
    "Jet_btagDeepFlavB": "float32",
    "Jet_hadronFlavour": "int32",
    "Jet_jetId": "int32",
    "nFatJet": "int32",
    "FatJet_pt": "float32",
    "FatJet_mass": "float32",
    "Muon_pt": "float32",
    "Muon_charge": "int32",
    "Muon_tightId": "bool",
    "Muon_pfRelIso04_all": "float32",
    "Electron_pt": "float32",
    "Electron_charge": "int32",
    "Electron_cutBased": "int32",
    "Electron_pfRelIso03_all": "float32",
    "Photon_pt": "float32",
    "Photon_cutBased": "int32",
    "MET_pt": "float32",
    "MET_phi": "float32",
    "GenPart_pt": "float32",
    "GenPart_pdgId": "int32",
    "GenPart_status": "int32",
    "GenPart_genPartIdxMother": "int32",
}


def test_files_are_nanoaod_ttrees(gen_samples):
    path = gen_samples["ttbar"].files[0]
    with uproot.open(path) as f:
        tree = f["Events"]
        assert isinstance(tree, uproot.TTree)
        for name, dtype in NANOAOD_TYPES.items():
            interp = tree[name].interpretation
            content = getattr(interp, "content", interp)
            assert content.to_dtype.name == dtype, name


def test_pfcands_optional(gen_smoke, gen_samples):
    with uproot.open(gen_smoke["qcd"].files[0]) as f:
        keys = set(f["Events"].keys())
        assert {"nPFCands", "PFCands_pt", "PFCands_charge", "PFCands_pdgId"} <= keys
    with uproot.open(gen_samples["zjets"].files[0]) as f:
        assert "nPFCands" not in f["Events"]
    cands = _read(gen_smoke["qcd"].files, ["PFCands_pdgId", "PFCands_charge"])
    pdg = np.abs(ak.to_numpy(ak.flatten(cands.PFCands_pdgId)))
    assert set(np.unique(pdg)) <= {1, 11, 13, 22, 130, 211}
    assert ak.all(ak.flatten(cands.PFCands_charge[np.abs(cands.PFCands_pdgId) == 22]) == 0)


@pytest.mark.parametrize("key", ["ttbar", "zjets"])
def test_nanoaod_schema_reads_without_warnings(gen_samples, key):
    from coffea.nanoevents import NanoEventsFactory

    from jetfm_coffea.nanoevents import JetFMNanoAODSchema

    path = str(gen_samples[key].files[0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        events = NanoEventsFactory.from_root(
            {path: "Events"}, schemaclass=JetFMNanoAODSchema, mode="virtual"
        ).events()
        with uproot.open(path) as f:  # the schema reads every event and maps MET to its branch
            raw = f["Events"].arrays(["MET_pt"], library="np")
        assert len(events) == len(raw["MET_pt"]) > 0
        # cross-references resolve
        jets = events.Jet
        assert ak.all(jets.matched_gen.pt > 0)
        mothers = events.GenPart.parent.pdgId
        assert ak.any(~ak.is_none(mothers, axis=1))
        np.testing.assert_array_equal(ak.to_numpy(events.MET.pt), raw["MET_pt"])
        _ = events.Muon.matched_jet.pt.tolist()


def test_nanoaod_schema_reads_all_processes(gen_smoke):
    from coffea.nanoevents import NanoEventsFactory

    from jetfm_coffea.nanoevents import JetFMNanoAODSchema

    for result in gen_smoke.values():
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            events = NanoEventsFactory.from_root(
                {str(result.files[0]): "Events"}, schemaclass=JetFMNanoAODSchema, mode="virtual"
            ).events()
            assert len(events) == 20
            assert ak.sum(ak.num(events.PFCands)) > 0


def test_event_ids_unique_and_jets_sorted(gen_samples):
    ev = _read(gen_samples["zjets"].files, ["event", "run", "Jet_pt", "genWeight"])
    assert len(np.unique(ak.to_numpy(ev.event))) == len(ev) == gen_samples["zjets"].n_events
    assert ak.all(ev.run == 1)
    assert ak.all(ev.genWeight == 1.0)
    pt = ev.Jet_pt
    assert ak.all(pt[:, 1:] <= pt[:, :-1])
    assert ak.all(pt > 20.0)


def test_fileset_json_metadata(gen_samples):
    result = gen_samples["ttbar"]
    fileset = json.loads(result.fileset_path.read_text())
    assert fileset == result.fileset()
    (dataset,) = fileset
    assert dataset == "ttbar_13TeV"
    entry = fileset[dataset]
    assert set(entry["files"]) == {str(p) for p in result.files}
    assert all(tree == "Events" and Path(p).exists() for p, tree in entry["files"].items())
    meta = entry["metadata"]
    assert meta["process"] == "ttbar" and meta["label"] == PROCESSES["ttbar"].label
    assert meta["nevents"] == result.n_events and meta["sqrts"] == 13000
    assert meta["seed"] == result.seed
    # semileptonic ttbar, LO Pythia: sigma(ttbar) ~ 500 pb times BR(e/mu nu, W-) ~ 0.22 x 0.67
    assert 20.0 < meta["xsec_pb"] < 150.0
    merged = json.loads((result.fileset_path.parent / "fileset.json").read_text())
    assert {"ttbar_13TeV", "wjets_13TeV", "zjets_13TeV"} <= set(merged)


def test_cross_sections_sensible(gen_samples, gen_smoke):
    # LO Pythia 8 values; loose bands that would catch unit (mb/pb) or process mistakes
    assert 1000.0 < gen_samples["zjets"].xsec_pb < 10000.0
    assert 1000.0 < gen_samples["wjets"].xsec_pb < 50000.0
    assert gen_smoke["qcd"].xsec_pb > 1e5
    assert 0.01 < gen_smoke["hbb"].xsec_pb < 2.0


def test_process_table_labels_unique():
    labels = [spec.label for spec in PROCESSES.values()]
    assert len(set(labels)) == len(labels)
    assert {"ttbar", "wjets", "zjets", "qcd", "hbb", "diboson"} <= set(PROCESSES)
    assert set(SQRTS_CHOICES) == {8000, 13000, 13600}


def test_btag_rates_by_flavour(gen_samples):
    ev = _read(gen_samples["ttbar"].files, ["Jet_eta", "Jet_btagDeepFlavB", "Jet_hadronFlavour"])
    central = np.abs(ev.Jet_eta) < 2.4
    flav = ak.to_numpy(ak.flatten(ev.Jet_hadronFlavour[central]))
    tagged = ak.to_numpy(ak.flatten(ev.Jet_btagDeepFlavB[central])) > BTAG_WP_MEDIUM
    assert (flav == 5).sum() > 200
    assert 0.62 < tagged[flav == 5].mean() < 0.78
    assert tagged[flav == 0].mean() < 0.03
    score = ak.to_numpy(ak.flatten(ev.Jet_btagDeepFlavB))
    assert np.all((score == -1.0) | ((score >= 0.0) & (score <= 1.0)))


# ----------------------------------------------------------------------------- determinism


def test_same_seed_identical_different_seed_differs(tmp_path):
    a = generate("diboson", 24, sqrts=13000, seed=42, out=tmp_path / "a", execution=TWO)
    b = generate("diboson", 24, sqrts=13000, seed=42, out=tmp_path / "b", execution=TWO)
    c = generate("diboson", 24, sqrts=13000, seed=43, out=tmp_path / "c")
    assert len(a.files) == len(b.files) == 2
    ea, eb, ec = _read(a.files), _read(b.files), _read(c.files)
    assert ea.fields == eb.fields
    for field in ea.fields:  # NaN (an undefined GenTarget_*) equals NaN here
        x, y = ea[field], eb[field]
        assert ak.all((x == y) | ((x != x) & (y != y))), field
    assert a.xsec_pb == b.xsec_pb
    # the same events get the same ROOT UUID (a shard store names and orders its shards
    # by it): a time-based one reordered the demo's store, and its pretraining, per run
    ua, ub, uc = _uuids(a.files), _uuids(b.files), _uuids(c.files)
    assert ua == ub
    assert len(set(ua)) == 2 and not set(ua) & set(uc)
    assert not ak.all(ak.num(ea.Jet_pt) == ak.num(ec.Jet_pt)) or not np.allclose(
        ak.to_numpy(ak.flatten(ea.Jet_pt)), ak.to_numpy(ak.flatten(ec.Jet_pt))
    )


def _uuids(files) -> list[str]:
    out = []
    for path in files:
        with uproot.open(path) as f:
            out.append(str(f.file.uuid))
    return out


def test_chunk_seeds_independent():
    seeds = {gen_run.chunk_seeds(7, i)[0] for i in range(50)}
    assert len(seeds) == 50
    assert all(1 <= s <= 900_000_000 for s in seeds)
    assert gen_run.chunk_seeds(7, 3)[0] == gen_run.chunk_seeds(7, 3)[0]
    assert gen_run.chunk_seeds(7, 3)[0] != gen_run.chunk_seeds(8, 3)[0]


# ----------------------------------------------------------------------------- bad input


def test_bad_execution_is_refused_when_described():
    with pytest.raises(ConfigError, match="workers must be at least 1, not 0"):
        Execution(workers=0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"process": "ttbar_typo"}, "unknown process 'ttbar_typo'"),
        ({"n_events": -5}, "positive integer"),
        ({"n_events": 0}, "positive integer"),
        ({"sqrts": 7000}, "sqrts must be one of"),
        ({"seed": -1}, "seed"),
        ({"pthat_min": 100.0, "pthat_max": 50.0}, "pthat_max"),
        ({"pythia_extra": ["NoSuch:setting = on"]}, "Pythia rejected"),
    ],
)
def test_bad_input_raises_before_generation(tmp_path, no_pythia, kwargs, match):
    args = {"process": "zjets", "n_events": 10, "sqrts": 13000, "seed": 1, "out": tmp_path}
    args.update(kwargs)
    with pytest.raises(ConfigError, match=match):
        generate(**args)
    assert not list(tmp_path.glob("*.root"))


def test_unwritable_output_raises(tmp_path, no_pythia):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="not writable"):
        generate("zjets", 10, out=blocker / "sub")


def test_interrupted_run_leaves_no_complete_looking_file(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = gen_run.simulate

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(gen_run, "simulate", flaky)
    with pytest.raises(KeyboardInterrupt):
        generate("diboson", 30, out=tmp_path, batch_size=10, events_per_file=10_000)
    assert calls["n"] == 2
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- CLI


def test_fileset_merges_seeds(tmp_path):
    a = generate("diboson", 8, sqrts=13000, seed=1, out=tmp_path)
    b = generate("diboson", 6, sqrts=13000, seed=2, out=tmp_path)
    c = generate("diboson", 6, sqrts=13000, seed=2, out=tmp_path)  # rerun replaces seed 2
    merged = json.loads((tmp_path / "fileset.json").read_text())["diboson_13TeV"]
    assert set(merged["files"]) == {str(p) for p in a.files + b.files + c.files}
    meta = merged["metadata"]
    assert meta["nevents"] == 14 and meta["seed"] == [1, 2]
    expected = (8 * a.xsec_pb + 6 * c.xsec_pb) / 14
    assert meta["xsec_pb"] == pytest.approx(expected)


def test_cli_generate(tmp_path):
    out = tmp_path / "cli"
    res = CliRunner().invoke(
        main,
        ["generate", "-p", "diboson", "-n", "12", "--sqrts", "8000", "--seed", "3", "-o",
         str(out), "--quiet"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    fileset = json.loads((out / "diboson_8TeV_s3.fileset.json").read_text())
    meta = fileset["diboson_8TeV"]["metadata"]
    assert meta["nevents"] == 12 and meta["sqrts"] == 8000 and meta["label"] == 5
    assert len(_read(fileset["diboson_8TeV"]["files"], ["event"])) == 12


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "nope"], "unknown process"),
        (["-p", "ttbar", "-n", "-3"], "positive integer"),
        (["-p", "ttbar", "--sqrts", "14000"], "sqrts must be one of"),
        ([], "--process is required"),
    ],
)
def test_cli_bad_input(tmp_path, no_pythia, args, message):
    res = CliRunner().invoke(main, ["generate", "-o", str(tmp_path), "-q", *args])
    assert res.exit_code != 0
    assert message in res.output


# ----------------------------------------------------------------------------- physics


def _events(result):
    from jetfm_coffea.generate.validate import load_events

    return load_events(
        result.files,
        [
            "Muon_pt", "Muon_eta", "Muon_phi", "Muon_charge", "Muon_tightId",
            "Muon_pfRelIso04_all", "Electron_pt", "Electron_eta", "Electron_phi",
            "Electron_cutBased", "Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass", "Jet_jetId",
            "Jet_btagDeepFlavB", "MET_pt", "MET_phi",
        ],
    )  # fmt: skip


def test_z_dimuon_peak(gen_samples):
    from jetfm_coffea.generate.validate import dimuon_mass, peak_position

    mass = dimuon_mass(_events(gen_samples["zjets"]), isolated=True)
    assert len(mass) > 40
    assert abs(peak_position(mass, 70.0, 110.0, 6.0) - 91.0) < 2.0


def test_ttbar_trijet_mass_peaks_at_top(gen_samples):
    from jetfm_coffea.generate.validate import peak_position, trijet_mass

    m3 = trijet_mass(_events(gen_samples["ttbar"]))
    assert len(m3) > 40
    assert abs(peak_position(m3, 100.0, 300.0, 30.0) - 170.0) < 15.0


def test_w_transverse_mass_jacobian_edge(gen_samples):
    from jetfm_coffea.generate.validate import jacobian_edge, w_transverse_mass

    mt = w_transverse_mass(_events(gen_samples["wjets"]))
    assert len(mt) > 100
    assert 70.0 < jacobian_edge(mt) < 95.0
    # the edge is an edge: few events far above the W mass
    assert np.mean(mt > 110.0) < 0.1 < np.mean((mt > 60.0) & (mt < 90.0))


def test_jet_multiplicity_ordering(gen_samples):
    from jetfm_coffea.generate.validate import jet_multiplicity

    means = {k: jet_multiplicity(_events(r)).mean() for k, r in gen_samples.items()}
    assert means["ttbar"] > means["wjets"] + 1.0
    assert means["wjets"] > means["zjets"] + 0.1


def test_validation_report(gen_samples, dimuon100k, tmp_path):
    from jetfm_coffea.generate.validate import write_validation_report

    samples = {k: r.files for k, r in gen_samples.items()}
    summary = write_validation_report(samples, tmp_path, dimuon_data=dimuon100k)
    for name in ("dimuon_mass.png", "ttbar_trijet_mass.png", "w_transverse_mass.png",
                 "jet_multiplicity.png", "summary.json", "summary.md"):  # fmt: skip
        assert (tmp_path / name).stat().st_size > 0
    assert summary["all_pass"], summary["checks"]
    assert abs(summary["checks"]["data_dimuon_peak_gev"]["value"] - 91.0) < 2.0


def test_the_cli_help_names_every_process():
    text = " ".join(CliRunner().invoke(main, ["generate", "--help"]).output.split())
    missing = [name for name in PROCESSES if f"{name}," not in text and f"{name} " not in text]
    assert not missing, f"jetfm generate --help lacks {missing}"
