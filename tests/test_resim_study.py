"""The re-simulation study script (benchmarks/resim_study.py) end to end at a tiny scale."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from jetfm_coffea.finetune import evaluate_run, load_labelled, load_task_config
from jetfm_coffea.finetune.data import task_targets

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "resim_study.py"


@pytest.fixture(scope="module")
def resim_study():
    spec = importlib.util.spec_from_file_location("resim_study", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_resim_study_smoke(resim_study, tmp_path, monkeypatch, capsys):
    """Generation, three pretraining variants, fine-tuned and scratch classifiers scored on
    both showers, both tables written; a rerun reuses every run."""
    argv = ["resim_study.py", "--out", str(tmp_path / "study"), "--hard", "20",
            "--labelled", "120", "--steps", "2", "--batch-size", "16", "--seeds", "5",
            "--labels", "all", "--max-steps", "4", "--results", str(tmp_path / "res")]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    resim_study.main()
    summary = json.loads((tmp_path / "res" / "resim_study.json").read_text())
    table = (tmp_path / "res" / "resim_study.md").read_text()
    variants = {r["variant"] for r in summary["rows"]}
    assert variants == {*resim_study.VARIANTS, resim_study.SCRATCH}
    # every classifier is scored on the whole varied-shower sample: each of its task events
    varied = load_labelled(shards=tmp_path / "study" / "stores" / "varied")
    targets, _ = task_targets(varied, load_task_config(summary["task"]))
    for row in summary["rows"]:
        assert row["n_varied"] == (targets >= 0).sum()
        assert row["auc_shift"] == pytest.approx(row["auc_varied"] - row["auc"])
        # on the varied sample (not the default one, which has as many events)
        again = evaluate_run(row["run_dir"], varied, split="all", plots=False, out=tmp_path / "e")
        assert row["auc_varied"] == pytest.approx(again["auc"], abs=1e-6)
    modes = {(r["variant"], r["mode"]) for r in summary["rows"]}
    assert modes == {(resim_study.SCRATCH, "scratch")} | {
        (v, m) for v in resim_study.VARIANTS for m in ("linear-probe", "finetune")
    }
    assert set(summary["probe"]) == {*resim_study.VARIANTS, "random encoder"}
    assert "| resim+physics | finetune |" in table and "Frozen-embedding probe" in table
    capsys.readouterr()
    resim_study.main()  # rerun: samples, stores, encoders and classifiers are reused
    assert "(reused)" in capsys.readouterr().out
    rerun = json.loads((tmp_path / "res" / "resim_study.json").read_text())
    assert [r["auc"] for r in rerun["rows"]] == [r["auc"] for r in summary["rows"]]
