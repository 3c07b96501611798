"""Real data: the 2012 dimuon spectrum is unchanged by boosts and rotations; the CLI."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from jetfm_coffea.augment import augment_objects, load_pipeline
from jetfm_coffea.augment.check import (
    BINS,
    PEAKS,
    SYMMETRY_PIPELINE,
    muon_objects,
    muon_token_config,
    objects_dimuon_mass,
    spectrum_check,
)
from jetfm_coffea.cli import main


def test_dimuon_spectrum_unchanged_by_boosts_and_rotations(dimuon100k):
    objects = muon_objects(dimuon100k)
    assert len(objects["event"]) == 100_000
    result, m0, m1 = spectrum_check(objects)
    assert result.passed, result.to_markdown()
    assert result.n_pairs > 30_000
    assert result.max_rel_mass_change < 1e-4  # float32 storage of boosted components
    pair = np.isfinite(m0)
    h0, _ = np.histogram(m0[pair], BINS)
    h1, _ = np.histogram(m1[pair], BINS)
    assert np.abs(h1 - h0).sum() <= 1e-3 * h0.sum()  # only float32 bin-edge migrations
    for name, mass in PEAKS.items():  # the resonances are where they belong
        assert abs(result.peaks_before[name] - mass) / mass < 0.02, name
    # ...while the individual muons did change
    after = augment_objects(objects, SYMMETRY_PIPELINE, muon_token_config(), acceptance=False)
    moved = objects["mask"]
    assert np.mean(np.abs(after.eta[moved] - objects["eta"][moved]) > 1e-3) > 0.9
    assert np.mean(np.abs(after.pt[moved] - objects["pt"][moved]) > 1e-3) > 0.9


def test_views_of_the_dimuon_file_do_not_depend_on_chunking(dimuon100k):
    """Entry numbers are the event ids of this file: any chunking gives the same views."""
    pipe = load_pipeline({**SYMMETRY_PIPELINE, "steps": [*SYMMETRY_PIPELINE["steps"],
                          {"name": "smear_energy"}, {"name": "drop_objects"}]})  # fmt: skip
    cfg = muon_token_config()
    whole = augment_objects(muon_objects(dimuon100k, 0, 6000), pipe, cfg, 1)
    parts = [
        augment_objects(muon_objects(dimuon100k, a, b), pipe, cfg, 1)
        for a, b in [(0, 777), (777, 4000), (4000, 6000)]
    ]
    for f in ("pt", "eta", "phi", "mass", "mask"):
        assert np.array_equal(getattr(whole, f), np.concatenate([getattr(p, f) for p in parts]))
    m = objects_dimuon_mass(whole)
    assert np.isfinite(m).sum() > 1000


def test_augment_check_cli_writes_plot_and_summary(tmp_path, dimuon100k):
    out = tmp_path / "check"
    res = CliRunner().invoke(
        main,
        ["augment-check", str(dimuon100k), "--max-events", "20000", "--out", str(out)],
    )
    assert res.exit_code == 0, res.output
    assert "PASS" in res.output
    png = out / "augment_check.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "augment_check.json").read_text())
    assert summary["passed"] and summary["n_events"] == 20000
    assert "J/psi" in (out / "augment_check.md").read_text()


def test_augment_check_cli_rejects_bad_pipeline(tmp_path, dimuon100k):
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: [{name: spin}]\n")
    res = CliRunner().invoke(
        main, ["augment-check", "--input", str(dimuon100k), "--pipeline", str(bad)]
    )
    assert res.exit_code != 0 and "unknown augmentation 'spin'" in res.output
