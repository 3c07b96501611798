"""``jetfm pretrain`` / ``jetfm plot-training`` end to end on a real NanoAOD file."""

from __future__ import annotations

import json

from click.testing import CliRunner

from jetfm_coffea.cli import main


def test_pretrain_events_resume_and_plot(singlemu, tmp_path):
    out = tmp_path / "run"
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        "model:\n  size: custom\n  overrides: {dim: 16, heads: 2, layers: 1, pair_hidden: 8,"
        " proj_dim: 8}\ntrain:\n  steps: 4\n  log_every: 1\n"
        "objective:\n  contrastive: vicreg\n"
    )
    runner = CliRunner()
    args = [
        "pretrain",
        "--events",
        str(singlemu),
        "--config",
        str(cfg),
        "--out",
        str(out),
        "--batch-size",
        "32",
        "--max-events",
        "300",
        "--no-progress",
    ]
    res = runner.invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "4 steps done" in res.output
    info = json.loads((out / "run.json").read_text())
    assert info["data"]["n_events"] == 300 and info["data"]["runs"]
    res = runner.invoke(main, [*args[:7], "--resume", "--steps", "6", *args[7:]])
    assert res.exit_code == 0, res.output
    assert json.loads((out / "run.json").read_text())["steps_done"] == 6
    res = runner.invoke(main, ["plot-training", str(out)])
    assert res.exit_code == 0, res.output
    assert (out / "loss.png").stat().st_size > 1000


def test_pretrain_clear_errors(singlemu, tmp_path):
    runner = CliRunner()
    res = runner.invoke(
        main,
        [
            "pretrain",
            "--shards",
            str(tmp_path / "s.zarr"),
            "--out",
            str(tmp_path / "r"),
            "--no-progress",
        ],
    )
    assert res.exit_code != 0 and "Error" in res.output
    res = runner.invoke(main, ["pretrain", "--out", str(tmp_path / "r")])
    assert res.exit_code != 0 and "exactly one" in res.output
    res = runner.invoke(
        main,
        [
            "pretrain",
            "--events",
            str(singlemu),
            "--max-events",
            "10",
            "--batch-size",
            "32",
            "--out",
            str(tmp_path / "r"),
            "--no-progress",
        ],
    )
    assert res.exit_code != 0 and "no training batch" in res.output


def test_pretrain_events_fileset_with_relative_paths(singlemu, tmp_path, monkeypatch):
    """``--events fileset.json``: file paths relative to the JSON's folder, from any cwd."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "mu.root").symlink_to(singlemu)
    fileset = data / "fs.json"
    fileset.write_text(json.dumps({"mu": {"files": ["mu.root"], "metadata": {"is_data": False}}}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        "model:\n  size: custom\n  overrides: {dim: 8, heads: 2, layers: 1, pair_hidden: 8,"
        " proj_dim: 8}\ntrain:\n  steps: 1\n"
    )
    args = ["pretrain", "--events", "../data/fs.json", "--config", str(cfg), "--out", "run"]
    res = CliRunner().invoke(main, [*args, "--batch-size", "16", "--max-events", "64"])
    assert res.exit_code == 0, res.output
    info = json.loads((elsewhere / "run" / "run.json").read_text())
    assert info["data"]["n_events"] == 64
    assert info["data"]["files"] == [str(data / "mu.root")]  # absolute: valid from any cwd
