"""``jetfm inspect`` on the real 2012 collision data."""

from __future__ import annotations

from click.testing import CliRunner

from jetfm_coffea.cli import main


def test_inspect_prints_summary(singlemu):
    result = CliRunner().invoke(main, ["inspect", str(singlemu)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "10000 events" in out and "cutflow" in out
    for name in ("Jet", "Muon", "Electron", "Photon", "MET"):
        assert name in out
    assert "tokens per event: mean 3.60" in out


def test_inspect_missing_file_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(main, ["inspect", str(tmp_path / "nope.root")])
    assert result.exit_code == 1
    assert "nope.root" in result.output and "Traceback" not in result.output


def test_inspect_dask_mode_on_a_local_cluster(ttbar2015):
    result = CliRunner().invoke(main, ["inspect", str(ttbar2015), "--dask-mode"])
    assert result.exit_code == 0, result.output
    assert "mode: dask" in result.output and "200 events" in result.output
