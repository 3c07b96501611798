"""The model directory (``jetfm_coffea.model.rundir``): one reader and writer for every stage."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from jetfm_coffea.digest import file_sha256
from jetfm_coffea.errors import ModelFileError, ModifiedWeightsError, TrainingError
from jetfm_coffea.finetune.testing import make_classifier_run
from jetfm_coffea.model.rundir import (
    MODEL_CARD,
    MODEL_CONFIG,
    TOKEN_CONFIG,
    WEIGHTS,
    WEIGHTS_HASH_KEY,
    build_model_from,
    read_model_configs,
    read_model_files,
    save_run_weights,
    write_model_card,
)
from jetfm_coffea.score import read_model_info
from jetfm_coffea.score.export import export_model
from jetfm_coffea.train.pretrain_run import load_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_classifier_run(tmp_path_factory.mktemp("rundir") / "run", "tiny", seed=3)


def test_one_reader_for_runs_and_exports(run, tmp_path):
    """The run reader (load_run), the scorer (read_model_info) and an export all see the
    same checked directory: same hash, configs and heads."""
    files = read_model_files(run)
    assert files.model_hash == file_sha256(run / WEIGHTS) == files.run_info[WEIGHTS_HASH_KEY]
    assert files.weights.status == "verified" and files.heads == ("classifier",)
    model, configs = load_run(run)
    info = read_model_info(run)
    assert configs.model == files.model_config == info.model_config
    assert info.model_hash == files.model_hash and info.heads == files.heads
    exported = read_model_files(
        out := export_model(run, tmp_path / "export"),
        recorded=json.loads((out / "manifest.json").read_text())["model_hash"],
    )
    assert exported.model_hash == files.model_hash
    rebuilt = build_model_from(files)
    for (name, a), b in zip(model.state_dict().items(), rebuilt.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_every_check_names_the_file(run, tmp_path):
    broken = shutil.copytree(run, tmp_path / "broken")
    (broken / WEIGHTS).rename(broken / "model.pt")
    with pytest.raises(ModelFileError, match=r"broken: no model.safetensors; found \['model.pt'\]"):
        read_model_files(broken)
    with pytest.raises(TrainingError, match="pickled weights are refused"):  # load_run's type
        load_run(broken)
    other = shutil.copytree(run, tmp_path / "other")
    data = json.loads((other / "model_config.json").read_text())
    (other / "model_config.json").write_text(json.dumps({**data, "dim": 64}))
    with pytest.raises(ModelFileError, match=r"model.safetensors: written for model config"):
        read_model_files(other)
    (other / "model_config.json").write_text("{")
    with pytest.raises(ModelFileError, match="incomplete model directory"):
        read_model_files(other)
    with pytest.raises(ModelFileError, match="model directory not found"):
        read_model_files(tmp_path / "absent")


def test_rewritten_weights_are_recorded_others_refused(run, tmp_path):
    copy = shutil.copytree(run, tmp_path / "copy")
    model, _ = load_run(copy)
    state = {k: v + 1 for k, v in model.state_dict().items()}
    meta = {"model_config_hash": read_model_files(copy).model_config.hash()}
    sha = save_run_weights(copy, state, meta)  # a legitimate rewrite records the new hash
    assert read_model_files(copy).model_hash == sha != read_model_files(run).model_hash
    (copy / WEIGHTS).write_bytes((run / WEIGHTS).read_bytes())  # a silent swap is refused
    with pytest.raises(ModifiedWeightsError, match=sha):
        read_model_files(copy)
    assert read_model_files(copy, allow_modified_weights=True).weights.status == "modified"


def test_one_model_card_writer(run, tmp_path):
    """Every card ends with the same "Model files" section: weights hash, pair features."""
    files = read_model_files(run)
    card = write_model_card(run, "# Model card: test\n\nbody\n", files.model_config)
    assert (run / MODEL_CARD).read_text() == card
    assert f"SHA-256 `{files.model_hash}`" in card and "pair_version 2" in card
    repo = export_model(run, tmp_path / "repo", formats=("triton",))
    triton_card = (repo / MODEL_CARD).read_text()
    assert "## Model files" in triton_card and files.model_hash in triton_card
    manifest = json.loads((repo / "manifest.json").read_text())
    assert manifest["files"][MODEL_CARD]["sha256"] == file_sha256(repo / MODEL_CARD)


def test_configs_read_without_weights_as_a_resumed_run_needs(run, tmp_path):
    """Resume reads the configs through the owner: no weights needed, same checks."""
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in (MODEL_CONFIG, TOKEN_CONFIG):
        shutil.copy(run / name, bare / name)
    model_config, token_config = read_model_configs(bare)
    assert model_config == read_model_files(run).model_config
    assert model_config.token_config_hash == token_config.hash()
    tokens = (bare / TOKEN_CONFIG).read_text()
    (bare / TOKEN_CONFIG).write_text(tokens.replace("min_pt: 20.0", "min_pt: 25.0", 1))
    with pytest.raises(ModelFileError, match=r"bare: model built for token config .*token_config"):
        read_model_configs(bare)
    (bare / MODEL_CONFIG).unlink()
    with pytest.raises(ModelFileError, match="bare: incomplete model directory"):
        read_model_configs(bare)
