"""Re-simulation (RS3L) in the generator: one hard event, K showers; bad input.

One small Z + jets sample (30 hard events x 3 copies, copy 1 with a harder FSR
alpha_s) is generated once and shared.
"""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot
from click.testing import CliRunner

from jetfm_coffea.cli import main
from jetfm_coffea.errors import ConfigError, JetFMError
from jetfm_coffea.generate import generate
from jetfm_coffea.generate import run as gen_run
from jetfm_coffea.generate.resim import align_to_hard, load_resim_variations

K = 3
N_HARD = 30


@pytest.fixture(scope="module")
def resim_sample(tmp_path_factory):
    out = tmp_path_factory.mktemp("resim")
    variations = out / "shower.yaml"
    variations.write_text("copies:\n  - {}\n  - {TimeShower:alphaSvalue: 0.14}\n")
    result = generate(
        "zjets", N_HARD, sqrts=13000, seed=4, out=out, resim=K,
        resim_variations=variations, batch_size=12,
    )  # fmt: skip
    branches = ["event", "resim_group", "resim_copy", "nJet", "nGenPart", "MET_pt"]
    gen = [
        f"GenPart_{f}" for f in ("pt", "eta", "phi", "mass", "pdgId", "status", "genPartIdxMother")
    ]
    events = uproot.concatenate([{str(f): "Events"} for f in result.files], branches + gen)
    return result, events


def test_every_hard_event_has_k_adjacent_copies_in_one_file(resim_sample):
    result, events = resim_sample
    assert result.dataset == "zjets_13TeV_resim3"
    assert result.n_events == len(events) == K * N_HARD
    assert result.metadata["resim"] == K
    assert len(result.metadata["resim_variations"]) == 2
    group = ak.to_numpy(events["resim_group"])
    copy = ak.to_numpy(events["resim_copy"])
    # written group by group, the copies of a group next to each other
    hard_events = np.repeat(np.arange(1, N_HARD + 1), K)
    assert group.tolist() == (4 * 2**32 + hard_events).tolist()  # seed 4
    assert copy.tolist() == np.tile(np.arange(K), N_HARD).tolist()
    assert len(set(ak.to_numpy(events["event"]).tolist())) == len(events)
    with uproot.open(result.files[0]) as f:  # the copies carry the regression targets too
        assert {"GenTarget_hadTopPt", "GenTarget_nuPt", "GenTarget_higgsPt"} <= set(
            f["Events"].keys()
        )


def test_hard_process_identical_and_showers_differ(resim_sample):
    _, events = resim_sample
    # the hard 2 -> n scattering: the incoming partons and their direct products
    status = events["GenPart_status"]
    hard = (events["GenPart_genPartIdxMother"] < 2) & (status >= 21) & (status <= 23)
    fields = ("pt", "eta", "phi", "mass", "pdgId")
    per_copy = [
        {f: ak.to_list(events[f"GenPart_{f}"][hard][k::K]) for f in fields} for k in range(K)
    ]
    for k in range(1, K):
        assert per_copy[k] == per_copy[0]
    assert min(len(h) for h in ak.to_list(events["GenPart_pt"][hard])) >= 3
    # after the shower: different particles, jets and MET
    met = ak.to_numpy(events["MET_pt"]).reshape(N_HARD, K)
    assert np.all(met[:, 1:] != met[:, :1])
    n_gen = ak.to_numpy(events["nGenPart"]).reshape(N_HARD, K)
    n_jet = ak.to_numpy(events["nJet"]).reshape(N_HARD, K)
    assert np.mean((n_gen[:, 1:] != n_gen[:, :1]) | (n_jet[:, 1:] != n_jet[:, :1])) > 0.3


def test_align_to_hard_steps_over_a_skipped_event():
    x_hard = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6], [0.7, 0.8]])
    assert align_to_hard(x_hard[1:3] * (1 + 1e-8), x_hard, 1).tolist() == [1, 2]
    assert align_to_hard(x_hard[[0, 2, 3]], x_hard, 0).tolist() == [0, 2, 3]
    with pytest.raises(JetFMError, match="matches no hard-process event"):
        align_to_hard(np.array([[0.9, 0.9]]), x_hard, 0)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("k", [1, 0, -2])
def test_k_below_two_rejected(tmp_path, no_pythia, k):
    with pytest.raises(ConfigError, match="K >= 2"):
        generate("zjets", 10, out=tmp_path, resim=k)
    assert not list(tmp_path.glob("*.root"))


def test_unknown_setting_names_file_key_and_pythia_message(tmp_path, no_pythia):
    path = tmp_path / "bad.yaml"
    path.write_text("copies:\n  - {}\n  - {TimeShower:alphaSvalueTypo: 0.13}\n")
    with pytest.raises(ConfigError) as err:
        generate("zjets", 10, out=tmp_path, resim=2, resim_variations=path)
    text = str(err.value)
    assert str(path) in text
    assert "TimeShower:alphaSvalueTypo" in text
    assert "copies[1]" in text
    assert "not found in settings databases" in text  # Pythia's own words


def test_out_of_range_value_surfaces_pythia_message(tmp_path):
    path = tmp_path / "range.yaml"
    path.write_text("copies:\n  - {Tune:pp: 99}\n")
    with pytest.raises(ConfigError, match="value is out of range"):
        load_resim_variations(path)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"resim_variations": "x.yaml"}, "needs --resim"),
        ({"resim": 2, "process": "vz_bb"}, "truth-filtered"),
    ],
)
def test_other_resim_misuse(tmp_path, no_pythia, kwargs, match):
    args = {"process": "zjets", "n_events": 10, "out": tmp_path, **kwargs}
    with pytest.raises(ConfigError, match=match):
        generate(**args)


def test_cli_resim_bad_k(tmp_path):
    result = CliRunner().invoke(
        main, ["generate", "-p", "zjets", "-n", "5", "--resim", "1", "-o", str(tmp_path), "-q"]
    )
    assert result.exit_code != 0
    assert "K >= 2" in result.output


def test_split_ready_writes_complete_groups_in_group_then_copy_order():
    def part(groups, copy):
        groups = np.asarray(groups, np.uint64)
        return {
            "resim_group": groups,
            "resim_copy": np.full(len(groups), copy, np.int32),
            "Jet": ak.Array([[{"pt": float(g)}] for g in groups]),
        }

    ready, rest = gen_run._split_ready([part([1, 2, 3], 0), part([1, 2], 1)], frontier=3)
    assert ready["resim_group"].tolist() == [1, 1, 2, 2]
    assert ready["resim_copy"].tolist() == [0, 1, 0, 1]
    assert ak.to_list(ready["Jet"].pt) == [[1.0], [1.0], [2.0], [2.0]]
    assert [r["resim_group"].tolist() for r in rest] == [[3]]


def test_cli_resim_with_variations(tmp_path):
    variations = tmp_path / "v.yaml"
    variations.write_text("copies:\n  - {}\n  - {StringZ:aLund: 0.8}\n")
    args = ["generate", "-p", "zjets", "-n", "3", "--resim", "2", "-q"]
    args += ["--resim-variations", str(variations), "-o", str(tmp_path / "gen")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    files = sorted((tmp_path / "gen").glob("zjets_13TeV_resim2_s1_*.root"))
    copies = uproot.open(files[0])["Events"]["resim_copy"].array(library="np")
    assert copies.tolist() == [0, 1] * 3
