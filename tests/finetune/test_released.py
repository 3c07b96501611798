"""Released encoders: ``builtin:NAME`` wherever a run directory is taken, checked against
their release card; the encoders shipped with the package load and fine-tune."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

import jetfm_coffea.pretrained as pretrained
from jetfm_coffea.cli import main
from jetfm_coffea.errors import ConfigError, ModelFileError, TrainingError
from jetfm_coffea.finetune import load_task_config, prepare_finetune
from jetfm_coffea.finetune.heldout import write_pool_events
from jetfm_coffea.finetune.trainer import finetune, load_pretrained
from jetfm_coffea.model import released as rel
from jetfm_coffea.model.rundir import POOL_EVENTS
from jetfm_coffea.train.pretrain_run import load_run

from .conftest import tiny_task

CARD = {"size": "custom", "parameters": 1, "objectives": ["masked"], "steps": 2,
        "batch_size": 32, "date": "2026-12-07", "pool": {"events": 128, "real_events": 128,
        "processes": []}}  # fmt: skip


@pytest.fixture
def shipped(tmp_path, monkeypatch, pretrained_run, labelled):
    """``pretrained_run`` released as ``toy`` into a temporary package-data folder."""
    run = tmp_path / "run"
    shutil.copytree(pretrained_run, run)
    write_pool_events(run / POOL_EVENTS, labelled.take(np.arange(10)))
    root = tmp_path / "pretrained"
    monkeypatch.setattr(rel, "released_root", lambda: root)
    rel.release(run, "toy", CARD, root=root)
    return root / "toy"


def test_builtin_name_loads_like_the_run_directory(shipped, pretrained_run):
    a = load_pretrained("builtin:toy")
    b = load_pretrained(pretrained_run)
    assert a.weights_sha256 == b.weights_sha256 and a.run_dir == shipped.resolve()
    assert all(np.array_equal(a.encoder_state[k], b.encoder_state[k]) for k in b.encoder_state)
    assert pretrained.load("toy").weights_sha256 == a.weights_sha256
    model, _ = load_run("builtin:toy", heads=False)
    assert sum(p.numel() for p in model.parameters()) > 0
    assert set(pretrained.available()) == {"toy"}
    card = json.loads((shipped / rel.RELEASE_CARD).read_text())
    assert set(card["files"]) == set(rel.RELEASED_FILES) and card["name"] == "toy"


def test_unknown_name_lists_the_released_ones(shipped):
    with pytest.raises(ConfigError, match=r"no released encoder 'nope'; released: toy"):
        load_pretrained("builtin:nope")
    out = CliRunner().invoke(main, ["finetune", "--pretrained", "builtin:nope", "--task", "x",
                                    "--out", "o"])  # fmt: skip
    assert out.exit_code == 2 and "no released encoder 'nope'; released: toy" in out.output


@pytest.mark.parametrize("victim", ["model.safetensors", "MODEL_CARD.md", "pool_events.npz"])
def test_a_file_that_differs_from_its_card_is_refused_before_loading(shipped, victim):
    with open(shipped / victim, "ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelFileError, match=rf"{victim}: SHA-256 .* release card"):
        load_pretrained("builtin:toy")
    (shipped / victim).unlink()
    with pytest.raises(ModelFileError, match=rf"{victim}: missing"):
        pretrained.path("toy")


def test_release_refuses_an_unfinished_run(pretrained_run, tmp_path):
    with pytest.raises(ConfigError, match=r"not a finished pretraining run \(missing \['pool"):
        rel.release(pretrained_run, "x", CARD, root=tmp_path)


def test_cli_list_and_finetune_with_a_builtin_encoder(
    shipped, labelled, labelled_fileset, tmp_path
):
    out = CliRunner().invoke(main, ["pretrained", "list"])
    assert out.exit_code == 0, out.output
    assert out.output.startswith("toy: custom (1 parameters), objectives masked, 2 steps x 32")
    task = tmp_path / "task.yaml"
    task.write_text(json.dumps(tiny_task(max_steps=2)))
    args = ["finetune", "--pretrained", "builtin:toy", "--task", str(task), "--fileset",
            str(labelled_fileset), "--out", str(tmp_path / "ft"), "--labels", "40"]  # fmt: skip
    res = CliRunner().invoke(main, args)  # its pool holds some of the task's test events
    assert res.exit_code == 1 and f"{shipped / POOL_EVENTS} contains" in res.output
    run = tmp_path / "run"
    write_pool_events(run / POOL_EVENTS, labelled.take(np.arange(0)))  # a pool without them
    rel.release(run, "toy", CARD, root=shipped.parent)
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    info = json.loads(next((tmp_path / "ft").rglob("run.json")).read_text())
    assert str(shipped.resolve()) in json.dumps(info["pretrained"])


def test_shipped_encoders_verify_load_and_fine_tune(labelled, tmp_path):
    """Every encoder shipped with the package: its files match its card, it loads, and it
    fine-tunes on real files (a few steps); all of them fit the 5 MB budget."""
    cards = rel.released()
    assert "tiny-ssl" in cards  # the package data travels with the package (wheel included)
    total = sum(p.stat().st_size for p in rel.released_root().rglob("*") if p.is_file())
    assert total <= 5_000_000
    for name, card in cards.items():
        pre = pretrained.load(name)
        assert card["files"]["model.safetensors"].startswith(pre.weights_sha256)
        assert pretrained.describe(card).startswith(f"{name}: {card['size']}")
        setup = prepare_finetune(load_task_config(tiny_task(max_steps=2)), pre, labelled,
                                 labels=[40])  # fmt: skip
        res = finetune(setup, tmp_path / name, mode="finetune", labels=40, seed=0)
        assert np.isfinite(res.best_val_loss)


def test_a_pretraining_run_is_not_confused_with_a_builtin(tmp_path):
    with pytest.raises(TrainingError):
        load_run(tmp_path / "builtin:toy")  # a path that merely contains the word
