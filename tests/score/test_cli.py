"""``jetfm score`` and ``jetfm export``."""

from __future__ import annotations

import json
import pickle

import awkward as ak
from click.testing import CliRunner

from jetfm_coffea.cli import main


def test_score_writes_histograms_plot_and_parquet(tiny_run, ttbar2015, tmp_path):
    out = tmp_path / "out"
    args = ["score", str(ttbar2015), "--model", str(tiny_run), "--out", str(out)]
    result = CliRunner().invoke(main, [*args, "--cut", "0.4", "--parquet", "--chunksize", "150"])
    assert result.exit_code == 0, result.output
    assert "200 events" in result.output
    hists = pickle.loads((out / "histograms.pkl").read_bytes())
    (dataset,) = hists
    assert hists[dataset]["score"].sum().value == 200
    summary = json.loads((out / "summary.json").read_text())
    assert summary["events"] == 200
    assert summary["datasets"][dataset]["model"]["cut"] == 0.4
    assert (out / "score.png").stat().st_size > 10_000
    table = ak.from_parquet(out / "scores.parquet")
    assert len(table) == 200 and {"event", "score_signal", "dataset"} <= set(table.fields)


def test_score_reports_a_missing_collection(tiny_run, make_nanoaod, tmp_path):
    path = make_nanoaod({"MET_pt": [10.0], "MET_phi": [0.1]}, 1, name="nojets.root")
    args = ["score", str(path), "--model", str(tiny_run), "--out", str(tmp_path / "o")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "missing collections" in text and "Jet (nJet, Jet_pt" in text and "nojets.root" in text
    assert f"needed by the token config of model {tiny_run}" in text


def test_export_cli(tiny_run, tmp_path):
    out = tmp_path / "exp"
    result = CliRunner().invoke(main, ["export", str(tiny_run), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "model.pt2" in result.output and (out / "manifest.json").is_file()
    again = CliRunner().invoke(main, ["export", str(tiny_run), "--out", str(out)])
    assert again.exit_code == 1 and "not empty" in again.output
