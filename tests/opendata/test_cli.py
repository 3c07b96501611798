"""``jetfm opendata list/show/fileset`` through click's CliRunner."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from jetfm_coffea.cli import main
from jetfm_coffea.opendata import build_fileset


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(main, ["opendata", *args], catch_exceptions=False)

    return invoke


def test_group_is_registered(run):
    result = run("--help")
    assert result.exit_code == 0
    for cmd in ("list", "show", "fileset"):
        assert cmd in result.output


def test_list_table_and_filters(run):
    result = run("list")
    assert result.exit_code == 0
    assert (
        "agc2015_ttbar_nominal" in result.output
        and "Run2016H_SingleMuon_NanoAODv9" in result.output
    )
    names = json.loads(run("list", "--year", "2015", "--json").output)
    assert names and all(n.startswith("agc2015_") for n in names)
    data = json.loads(run("list", "--data", "--with-files", "--json").output)
    assert data == ["Run2012BC_DoubleMuParked_Muons"]
    assert "agc2015" not in run("list", "--grep", "SingleMu").output


def test_show_dataset_and_golden_json(run):
    result = run("show", "agc2015_single_top_tW", "--files")
    assert result.exit_code == 0
    assert "19412, 19419" in result.output and "75.842 pb" in result.output
    assert result.output.count("root://eospublic.cern.ch//eos/opendata/cms/upload/agc/") == 3
    result = run("show", "Run2016G_DoubleMuon_NanoAODv9")
    assert "/DoubleMuon/Run2016G-UL2016_MiniAODv2_NanoAODv9-v2/NANOAOD" in result.output
    assert "Cert_271036-284044_13TeV_Legacy2016_Collisions16_JSON.txt" in result.output
    result = run("show", "Cert_271036-284044_13TeV_Legacy2016_Collisions16_JSON.txt")
    assert "14220" in result.output and "8690115c" in result.output


def test_unknown_name_suggests(run):
    result = run("show", "Run2016H_SingleMuon")
    assert result.exit_code == 1
    assert "did you mean 'Run2016H_SingleMuon_NanoAODv9'" in result.output
    result = run("fileset", "agc2015_ttbar_nominall")
    assert result.exit_code == 1 and "did you mean 'agc2015_ttbar_nominal'" in result.output


def test_fileset_to_stdout_and_file(run, tmp_path):
    result = run("fileset", "agc2015_wjets", "--max-files", "2")
    assert result.exit_code == 0
    assert json.loads(result.output) == build_fileset("agc2015_wjets", max_files=2)
    out = tmp_path / "fileset.json"
    result = run(
        "fileset",
        "agc2015_ttbar_scaleup",
        "Run2012BC_DoubleMuParked_Muons",
        "--max-files",
        "1",
        "--protocol",
        "root",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text())
    assert written == build_fileset(
        ["agc2015_ttbar_scaleup", "Run2012BC_DoubleMuParked_Muons"], max_files=1, protocol="root"
    )
    assert "fileset written to" in result.output and "agc2015_ttbar_scaleup" in result.output


def test_fileset_errors_are_clean(run):
    name = "UL16NanoAODv9_TTToHadronic_TuneCP5_13TeV-powheg-pythia8"
    result = run("fileset", name, "--require-xsec")
    assert result.exit_code == 1 and "no cross-section for simulated" in result.output
    result = run("fileset", "Run2016H_SingleMuon_NanoAODv9")
    assert result.exit_code == 1 and "lists no file URLs" in result.output
    result = run("fileset", "agc2015_wjets", "--xsec", "agc2015_wjets=abc")
    assert result.exit_code == 2 and "expected NAME=PB" in result.output
    assert run("fileset", "agc2015_wjets", "--max-files", "0").exit_code == 2


def test_fileset_xsec_override(run):
    name = "UL16NanoAODv9_TTToHadronic_TuneCP5_13TeV-powheg-pythia8"
    result = run("fileset", name, "--require-xsec", "--xsec", f"{name}=380.0")
    # the cross-section is satisfied; what remains is the missing file list
    assert result.exit_code == 1 and "lists no file URLs" in result.output
    result = run("fileset", "agc2015_wjets", "--max-files", "1", "--xsec", "agc2015_wjets=61526.7")
    assert json.loads(result.output)["agc2015_wjets"]["metadata"]["xsec"] == 61526.7


def test_fileset_check_reports_unreachable_files(run, monkeypatch, singlemu, tmp_path):
    """--check opens every file; here one URL fails and the others read a local file."""
    from jetfm_coffea.opendata import remote

    real = remote._open_once

    def local_or_fail(url, options):
        if "_20000_" in url:
            raise ConnectionError("no route to host")
        return real(singlemu.as_uri(), options)

    monkeypatch.setattr(remote, "_open_once", local_or_fail)
    monkeypatch.setattr(remote, "ensure_handler", lambda url: None)
    out = tmp_path / "checked.json"
    result = run("fileset", "agc2015_single_top_tW", "--check", "--retries", "0", "--out", str(out))
    assert result.exit_code == 0, result.output
    (bad,) = [line for line in result.output.splitlines() if line.startswith("unreachable")]
    assert "_20000_" in bad and "ConnectionError: no route to host" in bad
    assert "1 of 3 files unreachable: skipped" in result.output
    kept = json.loads(out.read_text())["agc2015_single_top_tW"]["files"]
    every = build_fileset("agc2015_single_top_tW")["agc2015_single_top_tW"]["files"]
    assert list(kept) == [u for u in every if "_20000_" not in u]
    result = run("fileset", "agc2015_single_top_tW", "--check", "--strict", "--retries", "0")
    assert result.exit_code == 1 and "1 of 3 file(s) unreachable" in result.output
