"""The command line: --lumi-mask / --no-lumi-mask / --blind on the commands reading NanoAOD."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from jetfm_coffea.cli import main
from jetfm_coffea.selection.lumi import LumiMaskWarning
from jetfm_coffea.shards.verification import verify

from .conftest import GOLDEN_2012, GOLDEN_2016, independent_keep


@pytest.fixture
def data_fileset(tmp_path, singlemu):
    path = tmp_path / "fs.json"
    path.write_text(
        json.dumps({"smu": {"files": {str(singlemu): "Events"}, "metadata": {"is_data": True}}})
    )
    return path


def test_inspect_refuses_unmasked_data_and_prints_the_certified_line(
    data_fileset, partial_golden, ids
):
    refused = CliRunner().invoke(main, ["inspect", str(data_fileset)])
    assert refused.exit_code == 1
    assert "MissingLumiMaskError" in refused.output and "--no-lumi-mask" in refused.output
    ok = CliRunner().invoke(
        main, ["inspect", str(data_fileset), "--lumi-mask", str(partial_golden)]
    )
    assert ok.exit_code == 0, ok.output
    line = next(ln for ln in ok.output.splitlines() if "certified lumi" in ln)
    assert str(independent_keep(partial_golden, ids).sum()) in line
    unmasked = CliRunner().invoke(main, ["inspect", str(data_fileset), "--no-lumi-mask"])
    assert unmasked.exit_code == 0 and "certified lumi" not in unmasked.output


@pytest.mark.filterwarnings("ignore:Missing cross-reference:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:Branch .* already exists:RuntimeWarning")
def test_build_shards_with_a_wrong_era_mask_warns_and_writes_nothing(tmp_path, data_fileset):
    args = ["build-shards", str(data_fileset), "--out", str(tmp_path / "s"), "--json"]
    args += ["--executor", "iterative", "--lumi-mask", GOLDEN_2016]
    with pytest.warns(
        LumiMaskWarning, match=r"'smu'.*every one of its 10000 events.*194711, 195916"
    ):
        result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{") :])
    assert summary["events_written"] == 0
    cert = summary["selection"]["smu"]["certified"]
    assert cert["events_dropped"] == 10_000 and cert["runs_dropped"] == [194711, 195916]
    assert verify(tmp_path / "s").ok  # an empty shard records what was dropped


def test_build_shards_blind_option_and_config_section(tmp_path, data_fileset):
    region = "regions:\n  - name: two_mu\n    all: [{objects: [Muon], min_count: 2}]\n"
    (tmp_path / "blind.yaml").write_text(region)
    (tmp_path / "build.yaml").write_text("tokens: {}\nblinding:\n  " + region.replace("\n", "\n  "))
    outs = {}
    for name, extra in (
        ("option", ["--blind", str(tmp_path / "blind.yaml")]),
        ("config", ["--config", str(tmp_path / "build.yaml")]),
    ):
        args = ["build-shards", str(data_fileset), "--out", str(tmp_path / name), "--json"]
        args += ["--executor", "iterative", "--lumi-mask", GOLDEN_2012, *extra]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        outs[name] = json.loads(result.output[result.output.index("{") :])
    blinded = outs["option"]["selection"]["smu"]["blinding"]
    assert blinded["regions"]["two_mu"] > 0
    assert outs["option"]["events_written"] == 10_000 - blinded["events_removed"]
    assert outs["config"]["selection"] == outs["option"]["selection"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("regions:\n  - name: sr\n    all: [{objects: [Bjet]}]\n")
    args = ["build-shards", str(data_fileset), "--out", str(tmp_path / "bad"), "--blind", str(bad)]
    result = CliRunner().invoke(main, [*args, "--lumi-mask", GOLDEN_2012])
    assert result.exit_code == 1
    assert f"blinding config {bad}, regions[0] (sr).all[0].objects" in result.output


def test_no_lumi_mask_is_recorded_in_the_shards_and_the_data_sheet(tmp_path, data_fileset):
    args = ["build-shards", str(data_fileset), "--out", str(tmp_path / "s"), "--json"]
    result = CliRunner().invoke(main, [*args, "--executor", "iterative", "--no-lumi-mask"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{") :])
    assert summary["events_in"] == summary["events_written"] == 10_000
    sel = summary["selection"]["smu"]
    assert sel["lumi_mask_disabled"] is True and sel["certified"] is None
    info = CliRunner().invoke(main, ["shards", "info", str(tmp_path / "s")])
    assert "NO certified-luminosity mask (--no-lumi-mask)" in info.output
