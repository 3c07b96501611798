"""Verified scoring models: the recorded weights hash is checked by the scorer, ``jetfm
score`` and ``jetfm export``; ``--allow-modified-weights`` overrides and is recorded."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from jetfm_coffea.cli import main
from jetfm_coffea.digest import file_sha256
from jetfm_coffea.errors import ModifiedWeightsError
from jetfm_coffea.score import JetFMScorer, read_model_info
from jetfm_coffea.score.export import export_model
from jetfm_coffea.train import load_run


def _modify(folder):
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # still a valid float32 and a valid safetensors file
    weights.write_bytes(bytes(data))
    return weights, file_sha256(weights)


@pytest.fixture
def modified_run(tiny_run, tmp_path):
    run = shutil.copytree(tiny_run, tmp_path / "modified")
    recorded = json.loads((run / "run.json").read_text())["weights_sha256"]
    weights, actual = _modify(run)
    return run, weights, recorded, actual


def test_run_records_and_scorer_verifies_the_weights_hash(tiny_run, ttbar_events):
    recorded = json.loads((tiny_run / "run.json").read_text())["weights_sha256"]
    assert recorded == file_sha256(tiny_run / "model.safetensors")
    info = read_model_info(tiny_run)
    assert info.weights_check == "verified" and info.model_hash == recorded
    scores = JetFMScorer(tiny_run)(ttbar_events[:5])
    assert scores.layout.parameters["jetfm_weights_check"] == "verified"


def test_modified_weights_are_refused_naming_file_and_hashes(modified_run, ttbar_events):
    run, weights, recorded, actual = modified_run
    for load in (JetFMScorer, read_model_info, lambda r: load_run(r)):
        with pytest.raises(ModifiedWeightsError) as err:
            load(run)
        assert str(weights) in str(err.value)
        assert recorded in str(err.value) and actual in str(err.value)
        assert err.value.recorded == recorded and err.value.actual == actual
    scorer = JetFMScorer(run, allow_modified_weights=True)
    scores = scorer(ttbar_events[:5])
    assert scores.layout.parameters["jetfm_weights_check"] == "modified"
    assert scores.layout.parameters["jetfm_model_hash"] == actual
    _, configs = load_run(run, allow_modified_weights=True)
    assert configs.info["loaded_weights"] == {"sha256": actual, "check": "modified"}


def test_export_refuses_modified_source_and_records_an_allowed_one(modified_run, tmp_path):
    run, weights, _, actual = modified_run
    with pytest.raises(ModifiedWeightsError, match=str(weights)):
        export_model(run, tmp_path / "exp")
    out = export_model(run, tmp_path / "exp", allow_modified_weights=True)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source_weights_check"] == "modified"
    assert manifest["model_hash"] == actual  # the export records its own weights' hash
    assert read_model_info(out).weights_check == "verified"
    exp_weights, exp_actual = _modify(out)
    with pytest.raises(ModifiedWeightsError) as err:
        JetFMScorer(out)
    assert str(exp_weights) in str(err.value) and "manifest.json" in str(err.value)
    assert actual in str(err.value) and exp_actual in str(err.value)
    assert JetFMScorer(out, allow_modified_weights=True).infos[0].weights_check == "modified"


def test_cli_score_and_export_refuse_then_allow(modified_run, ttbar2015, tmp_path):
    run, weights, recorded, actual = modified_run
    args = ["score", str(ttbar2015), "--model", str(run), "--out", str(tmp_path / "s")]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 1
    assert "ModifiedWeightsError" in refused.output and recorded in refused.output
    assert str(weights) in refused.output
    allowed = CliRunner().invoke(main, [*args, "--allow-modified-weights"])
    assert allowed.exit_code == 0, allowed.output
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert summary["allow_modified_weights"] is True
    (model,) = [d["model"] for d in summary["datasets"].values()]
    assert model["weights_check"] == "modified" and model["hash"] == actual

    exp = ["export", str(run), "--out", str(tmp_path / "e")]
    refused = CliRunner().invoke(main, exp)
    assert refused.exit_code == 1 and actual in refused.output
    allowed = CliRunner().invoke(main, [*exp, "--allow-modified-weights"])
    assert allowed.exit_code == 0, allowed.output
