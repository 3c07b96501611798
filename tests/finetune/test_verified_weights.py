"""Verified models: pretraining and fine-tuning runs record the SHA-256 of their weights;
``load_run`` / ``finetune --pretrained`` refuse weights modified since."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from jetfm_coffea.cli import main
from jetfm_coffea.digest import file_sha256
from jetfm_coffea.errors import ModifiedWeightsError
from jetfm_coffea.finetune import finetune, load_pretrained, prepare_finetune
from jetfm_coffea.train import load_run

from .conftest import tiny_task


def _modify(run):
    """Flip one byte of the last weight (still a valid safetensors file)."""
    weights = run / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01
    weights.write_bytes(bytes(data))
    return weights


def test_pretraining_and_finetuning_runs_record_their_weights_hash(
    pretrained_run, labelled, tmp_path
):
    recorded = json.loads((pretrained_run / "run.json").read_text())["weights_sha256"]
    assert recorded == file_sha256(pretrained_run / "model.safetensors")
    _, configs = load_run(pretrained_run)
    assert configs.info["loaded_weights"] == {"sha256": recorded, "check": "verified"}

    setup = prepare_finetune(tiny_task(max_steps=2), pretrained_run, labelled)
    res = finetune(setup, tmp_path / "clf", mode="linear-probe", labels=40, seed=0)
    info = json.loads((res.run_dir / "run.json").read_text())
    assert info["weights_sha256"] == file_sha256(res.run_dir / "model.safetensors")
    assert info["pretrained"]["weights_sha256"] == recorded[:16]
    assert info["pretrained"]["weights_check"] == "verified"


def test_modified_pretrained_weights_are_refused_unless_allowed(pretrained_run, tmp_path):
    run = shutil.copytree(pretrained_run, tmp_path / "copy")
    recorded = json.loads((run / "run.json").read_text())["weights_sha256"]
    weights = _modify(run)
    actual = file_sha256(weights)
    with pytest.raises(ModifiedWeightsError) as err:
        load_pretrained(run)
    message = str(err.value)
    assert str(weights) in message and recorded in message and actual in message
    pre = load_pretrained(run, allow_modified_weights=True)
    assert pre.describe()["weights_check"] == "modified"
    assert pre.weights_sha256 == actual[:16]


def test_finetune_cli_refuses_then_records_modified_weights(
    pretrained_run, labelled_fileset, tmp_path
):
    run = shutil.copytree(pretrained_run, tmp_path / "copy")
    weights = _modify(run)
    task = tmp_path / "task.yaml"
    task.write_text(json.dumps(tiny_task(max_steps=2)))
    args = ["finetune", "--pretrained", str(run), "--task", str(task)]
    args += ["--fileset", str(labelled_fileset), "--max-events-per-dataset", "50"]
    args += ["--labels", "40", "--mode", "linear-probe"]
    refused = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "a")])
    assert refused.exit_code == 1
    assert "ModifiedWeightsError" in refused.output and str(weights) in refused.output
    allowed = CliRunner().invoke(
        main, [*args, "--out", str(tmp_path / "b"), "--allow-modified-weights"]
    )
    assert allowed.exit_code == 0, allowed.output
    info = json.loads((tmp_path / "b" / "run.json").read_text())
    assert info["pretrained"]["weights_check"] == "modified"


def test_legacy_pair_features_carry_into_the_finetuned_model(singlemu, labelled, tmp_path):
    """A pretraining run written before ``pair_version`` existed (legacy pair features)
    loads as version 1, and the classifier fine-tuned from it keeps version 1 (its
    encoder learnt those features) through to the scorer."""
    from jetfm_coffea.score import read_model_info
    from jetfm_coffea.tokens import TokenConfig
    from jetfm_coffea.train import pretrain
    from jetfm_coffea.train.data import events_source

    source = events_source(singlemu, TokenConfig(), max_events=64)
    source.batch_size = 32
    small = {"dim": 16, "heads": 2, "layers": 1, "pair_hidden": 8, "proj_dim": 8}
    cfg = {
        "model": {"size": "custom", "overrides": {**small, "pair_version": 1}},
        "objective": {"contrastive": "none", "masked_weight": 1.0},
        "train": {"steps": 1, "progress": False, "log_every": 1, "device": "cpu"},
    }
    run = tmp_path / "legacy"
    pretrain(cfg, source, run, keep_model=False)
    config = json.loads((run / "model_config.json").read_text())
    assert config.pop("pair_version") == 1
    (run / "model_config.json").write_text(json.dumps(config))  # as old runs have it
    pre = load_pretrained(run)
    assert pre.model_config.pair_version == 1
    setup = prepare_finetune(tiny_task(max_steps=1), run, labelled)
    res = finetune(setup, tmp_path / "clf", mode="linear-probe", labels=40, seed=0)
    assert json.loads((res.run_dir / "model_config.json").read_text())["pair_version"] == 1
    assert read_model_info(res.run_dir).model_config.pair_version == 1
    assert "pair_version 1 (legacy" in (res.run_dir / "MODEL_CARD.md").read_text()
