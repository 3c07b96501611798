"""A miniature label-efficiency study and the CLI (machinery, not physics)."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from jetfm_coffea.cli import main
from jetfm_coffea.finetune import label_efficiency, load_task_config

from .conftest import tiny_task


def test_miniature_study(pretrained_run, labelled, tmp_path):
    out = tmp_path / "study"
    res = label_efficiency(tiny_task(max_steps=5), pretrained_run, labelled, out)
    n_all = res.rows[-1]["n_labels"]
    assert len(res.rows) == 3 * 2 * 2
    assert {(r["mode"], r["n_labels"]) for r in res.rows} == {
        (m, n) for m in ("linear-probe", "finetune", "scratch") for n in (40, n_all)
    }
    assert len(res.aggregate) == 6
    for entry in res.aggregate:
        assert entry["n_seeds"] == 2
        assert 0 <= entry["auc_mean"] <= 1 and entry["auc_std"] >= 0
        assert entry["rejection_50_mean"] >= 1
        assert entry["auc_min"] <= entry["auc_mean"] <= entry["auc_max"]
    payload = json.loads((out / "results.json").read_text())
    assert payload["task_config_hash"] == load_task_config(tiny_task(max_steps=5)).hash()
    assert payload["label_counts"] == [40, n_all] and len(payload["rows"]) == 12
    assert sum(payload["splits"].values()) == len(labelled)
    md = (out / "results.md").read_text()
    assert md.count("\n| ") == 7 and "± " in md  # header + 6 rows
    for name in ("label_efficiency.png", "roc.png", "scores.png"):
        assert (out / name).stat().st_size > 5_000, name
    # seeds differ (different label subsets and initialisations), the test set does not
    a, b = (np.load(out / "runs" / f"scratch_n40_s{s}" / "test_scores.npz") for s in (0, 1))
    np.testing.assert_array_equal(a["event"], b["event"])
    assert not np.allclose(a["probs"], b["probs"])
    # a second call reuses the completed runs
    again = label_efficiency(
        tiny_task(max_steps=5), pretrained_run, labelled, out, modes=["scratch"], plots=False
    )
    assert all(r["reused"] for r in again.rows) and len(again.rows) == 4
    assert [r["auc"] for r in again.rows] == [r["auc"] for r in res.rows if r["mode"] == "scratch"]


def test_cli_finetune_evaluate_and_errors(pretrained_run, labelled_fileset, tmp_path):
    task = tmp_path / "task.yaml"
    task.write_text(load_task_config(tiny_task()).to_yaml())
    runner = CliRunner()
    common = [
        "--pretrained",
        str(pretrained_run),
        "--fileset",
        str(labelled_fileset),
        "--task",
        str(task),
        "--max-events-per-dataset",
        "100",
    ]
    run = tmp_path / "clf"
    res = runner.invoke(
        main, ["finetune", *common, "--out", str(run), "--mode", "linear-probe", "--labels", "30"]
    )
    assert res.exit_code == 0, res.output
    assert "linear-probe: 30 labels" in res.output and "test AUC" in res.output
    assert json.loads((run / "run.json").read_text())["n_labels"] == 30

    data_args = ["--fileset", str(labelled_fileset), "--max-events-per-dataset", "100"]
    res = runner.invoke(main, ["evaluate", str(run), *data_args])
    assert res.exit_code == 0, res.output
    assert "AUC (ttbar vs rest)" in res.output and (run / "eval" / "confusion.png").is_file()

    study = tmp_path / "study"
    res = runner.invoke(
        main, ["label-efficiency", *common, "--out", str(study), "--labels", "30,5000"]
    )
    assert res.exit_code != 0
    assert "label count 5000 is larger than" in res.output
    assert not (study / "runs").exists()  # nothing was trained
    no_data = [*common[:2], *common[4:6]]
    res = runner.invoke(main, ["finetune", *no_data, "--out", str(tmp_path / "x")])
    assert res.exit_code != 0 and "exactly one data source" in res.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("classes: {collisions: 0, wjets: 7}\n")
    res = runner.invoke(
        main, ["finetune", *common[:4], "--task", str(bad), "--out", str(tmp_path / "y")]
    )
    assert res.exit_code != 0 and "['wjets']" in res.output
    assert "missing from the fileset" in res.output
