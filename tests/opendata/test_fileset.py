"""Filesets in coffea's format, with the metadata processors and the shard builder need."""

from __future__ import annotations

import json

import pytest
from coffea.dataset_tools import DataGroupSpec, max_files, preprocess

from jetfm_coffea.errors import ConfigError
from jetfm_coffea.opendata import (
    FileListUnavailableError,
    MissingCrossSectionError,
    UnknownDatasetError,
    build_fileset,
    load_catalogue,
    write_fileset,
)

GOLDEN_2012 = "Cert_190456-208686_8TeV_22Jan2013ReReco_Collisions12_JSON.txt"


def test_fileset_format_and_metadata_of_simulation():
    fs = build_fileset(["agc2015_single_top_tW"])
    entry = fs["agc2015_single_top_tW"]
    ds = load_catalogue()["agc2015_single_top_tW"]
    assert entry["files"] == {f.url: "Events" for f in ds.files}
    meta = entry["metadata"]
    assert meta["record_ids"] == [19412, 19419]
    assert (meta["year"], meta["sqrts_tev"], meta["is_data"]) == (2015, 13, False)
    assert (meta["process"], meta["variation"]) == ("single_top_tW", "nominal")
    assert meta["xsec"] == pytest.approx(75.842)
    assert meta["nevents"] == meta["nevents_total"] == 1999400
    assert meta["nfiles"] == meta["nfiles_total"] == 3
    assert "golden_json" not in meta
    json.dumps(fs)  # JSON-serialisable as is


def test_fileset_metadata_of_collision_data():
    (meta,) = [e["metadata"] for e in build_fileset("Run2012BC_DoubleMuParked_Muons").values()]
    assert meta["is_data"] is True and "xsec" not in meta
    assert meta["golden_json"] == GOLDEN_2012
    assert meta["golden_json_record_id"] == 1002
    assert meta["golden_json_sha256"] == load_catalogue().lumimasks[GOLDEN_2012].sha256


def test_max_files_and_protocol():
    fs = build_fileset(["agc2015_ttbar_nominal", "agc2015_wjets"], max_files=2, protocol="root")
    for entry in fs.values():
        assert len(entry["files"]) == 2
        assert all(u.startswith("root://eospublic.cern.ch//eos/opendata/") for u in entry["files"])
        assert entry["metadata"]["nfiles"] == 2
    ttbar = load_catalogue()["agc2015_ttbar_nominal"]
    assert fs["agc2015_ttbar_nominal"]["metadata"]["nevents"] == sum(
        f.nevents for f in ttbar.files[:2]
    )
    https = build_fileset("agc2015_wjets", max_files=1, protocol="https")
    assert next(iter(https["agc2015_wjets"]["files"])).startswith("https://")


def test_protocol_without_such_url_is_an_error():
    with pytest.raises(ConfigError, match="no https:// URL"):
        build_fileset("Run2012BC_DoubleMuParked_Muons", protocol="https")
    with pytest.raises(ConfigError, match="protocol must be one of root, https"):
        build_fileset("agc2015_wjets", protocol="gopher")
    with pytest.raises(ConfigError, match="max_files must be at least 1"):
        build_fileset("agc2015_wjets", max_files=0)


def test_unknown_dataset_name_suggests():
    with pytest.raises(UnknownDatasetError, match="did you mean 'agc2015_wjets'"):
        build_fileset(["agc2015_single_top_tW", "agc2015_wjet"])


def test_dataset_without_listed_files():
    with pytest.raises(FileListUnavailableError, match=r"record 30563.*regenerate\.py"):
        build_fileset("Run2016H_SingleMuon_NanoAODv9")


def test_simulation_without_cross_section():
    name = "UL16NanoAODv9_TTToHadronic_TuneCP5_13TeV-powheg-pythia8"
    with pytest.raises(MissingCrossSectionError, match=f"no cross-section for simulated .*{name}"):
        build_fileset(name, require_xsec=True)
    # collision data never needs one; a dataset with one passes
    build_fileset(["agc2015_wjets", "Run2012BC_DoubleMuParked_Muons"], require_xsec=True)


def test_cross_section_override(local_catalogue):
    fs = build_fileset(
        "local_ttbar_2015", xsec={"local_ttbar_2015": 831.76}, catalogue=local_catalogue
    )
    assert fs["local_ttbar_2015"]["metadata"]["xsec"] == 831.76
    with pytest.raises(ConfigError, match="collision data: it has no cross-section"):
        build_fileset(
            "local_singlemu_2012", xsec={"local_singlemu_2012": 1.0}, catalogue=local_catalogue
        )
    with pytest.raises(ConfigError, match="must be positive"):
        build_fileset(
            "local_ttbar_2015", xsec={"local_ttbar_2015": -1.0}, catalogue=local_catalogue
        )


def test_coffea_accepts_the_catalogue_fileset(tmp_path):
    fs = build_fileset(["agc2015_wjets", "Run2012BC_DoubleMuParked_Muons"], max_files=3)
    spec = DataGroupSpec.model_validate(fs)
    assert spec["agc2015_wjets"].metadata["xsec"] == fs["agc2015_wjets"]["metadata"]["xsec"]
    assert len(max_files(fs, 1)["agc2015_wjets"]["files"]) == 1
    # written and read back, it is the same fileset
    path = write_fileset(fs, tmp_path / "sub" / "fileset.json")
    assert json.loads(path.read_text()) == fs


def test_coffea_preprocesses_a_fileset_of_local_files(local_catalogue):
    fs = build_fileset(["local_singlemu_2012", "local_ttbar_2015"], catalogue=local_catalogue)
    available, _ = preprocess(
        DataGroupSpec.model_validate(fs), step_size=5000, scheduler="sync", save_form=False
    )
    singlemu = available["local_singlemu_2012"]
    (spec,) = singlemu.files.values()
    assert spec.num_entries == 10000 and spec.steps == [[0, 5000], [5000, 10000]]
    assert singlemu.metadata["golden_json"] == GOLDEN_2012
    (ttbar,) = available["local_ttbar_2015"].files.values()
    assert ttbar.num_entries == 200
