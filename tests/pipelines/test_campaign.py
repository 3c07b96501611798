"""The hard-task study end to end at the ``ci`` preset, and its bad-input errors."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from jetfm_coffea.augment.config import standard_pipeline
from jetfm_coffea.cli import main
from jetfm_coffea.errors import ConfigError, TrainingError
from jetfm_coffea.finetune import load_labelled, load_task_config, plan_task
from jetfm_coffea.finetune.cellreport import check_summary
from jetfm_coffea.finetune.heldout import event_key_list, event_keys
from jetfm_coffea.finetune.study_presets import PRESETS, get_preset
from jetfm_coffea.pipelines.campaign import (
    ABLATIONS,
    MAIN_RUN,
    check_pool,
    goal_checks,
    held_out_keys,
    pool_stored_views,
    pretraining_pool,
    run_campaign,
)
from jetfm_coffea.tokens import TokenConfig
from jetfm_coffea.train.views import make_views


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    out = tmp_path_factory.mktemp("campaign")
    return out, run_campaign("ci", out)


def test_ci_campaign_runs_every_stage(campaign):
    out, summary = campaign
    assert set(summary["tasks"]) == {"tth_vs_ttbar", "vh_vs_vz_bb"}
    for task, res in summary["tasks"].items():
        payload = json.loads((out / f"label_efficiency_ci_{task}.json").read_text())
        check_summary(payload)
        arms = {(r["encoder"], r["mode"]) for r in payload["aggregate"]}
        assert arms == {("ssl", "linear-probe"), ("ssl", "finetune"), ("random", "linear-probe"),
                        ("random", "finetune"), ("no-signal", "linear-probe"),
                        ("no-signal", "finetune"), (None, "scratch"), (None, "bdt-raw"),
                        (None, "bdt-features"), ("hybrid", "linear-probe"),
                        ("hybrid", "finetune")}  # fmt: skip
        # the selection removed events (the same ones for every mode: one test set)
        per = res["selection"]["per_class"]
        assert all(0 < c["after"] < c["before"] for c in per.values())
        assert payload["test_events"] == res["splits"]["test"] >= 20
        enc = payload["encoders"]
        # provenance: the pools, their real events, what the control leaves out
        signal = payload["signal"]
        assert enc["ssl"]["pool"]["real_events"] > 0
        assert any(signal in d for d in enc["ssl"]["pool"]["datasets"])
        assert not any(signal in d for d in enc["no-signal"]["pool"]["datasets"])
        assert enc["no-signal"]["pool"]["events"] < enc["ssl"]["pool"]["events"]
        assert len({enc[k]["hash"] for k in ("ssl", "random", "no-signal", "hybrid")}) == 4
        assert enc["hybrid"]["mode"] == "hybrid" and enc["ssl"]["mode"] == "ssl"
        ablation = {(d["a"]["encoder"], d["b"]["encoder"]) for d in payload["differences"]}
        assert ("ssl", "hybrid") in ablation  # stated with its interval
        assert payload["provenance"]["generator_seeds"]["tth"] == 1006
        # the no-signal encoder was pretrained on its own pool
        for run, has_signal in ((f"pretrain_no-signal_{task}", False), ("pretrain", True)):
            sheet = json.loads((out / run / "run.json").read_text())
            assert sheet["status"] == "completed"
            assert any(signal in d for d in sheet["data"]["datasets"]) == has_signal, run
        goals = {(g["b"]["mode"], g["b"]["label_fraction"]) for g in res["goals"]}
        assert {("scratch", 1.0), ("bdt-raw", 1.0), ("bdt-features", 1.0)} <= goals
    # the hybrid encoder: supervised terms beside the self-supervised ones, logged each, and
    # neither task's signal process (tth 6, hbb 4) among its supervised labels
    cfg = yaml.safe_load((out / "pretrain_hybrid" / "config.yaml").read_text())
    labels = cfg["objective"]["process"]["labels"]
    assert labels and not {4, 6} & set(labels) and cfg["objective"]["contrastive"]["weight"] > 0
    logged = (out / "pretrain_hybrid" / "metrics.jsonl").read_text()
    assert '"process"' in logged and '"truth_nuPt"' in logged and '"ntxent"' in logged
    assert summary["pool_events"] >= 10 * summary["labelled_max"]
    assert "SingleMu_Run2012B" in summary["pool_datasets"]
    assert {"generate_s", "pretrain_s", "total_s"} <= set(summary["timings"])
    md = (out / "summary.md").read_text()
    assert "finetune with 10% of the labels − scratch with 100%: ΔAUC" in md and "scale `ci`" in md


def test_ci_campaign_regression_task(campaign, tmp_path):
    """The same machinery for a regression task (the true MET of W+jets and tt̄): its
    own pretraining pool (its test events excluded), encoder modes only, resolution."""
    out, _ = campaign
    shutil.copytree(out / "gen", tmp_path / "gen")  # the generated samples are reused
    summary = run_campaign("ci", tmp_path, tasks=["wjets_nu_pt"])
    res = summary["tasks"]["wjets_nu_pt"]
    assert res["task_type"] == "regression"
    per = res["selection"]["per_class"]
    assert per["wjets"]["undefined_target"] == 0 < per["ttbar"]["undefined_target"]
    payload = json.loads((tmp_path / "wjets_nu_pt" / "results.json").read_text())
    assert {r["mode"] for r in payload["rows"]} == {"linear-probe", "finetune", "scratch"}
    for r in payload["rows"]:  # the metrics of the stored test predictions, recomputed
        z = np.load(f"{r['run_dir']}/test_scores.npz")
        q25, q75 = np.percentile((z["pred"] - z["target"]) / z["target"], [25, 75])
        assert r["resolution"] == pytest.approx((q75 - q25) / 2, rel=1e-5), r["mode"]
        covered = np.abs(z["pred"] - z["target"]) < z["sigma"]
        assert r["coverage"] == pytest.approx(covered.mean(), abs=1e-9), r["mode"]
    goals = res["goals"]
    assert goals["metric"] == "resolution" and not goals["higher_is_better"]
    assert "scratch" in goals["main"]
    for name in ("results.md", "label_efficiency.png", "pred_vs_true.png"):
        assert (tmp_path / "wjets_nu_pt" / name).is_file(), name
    assert "resolution" in (tmp_path / "summary.md").read_text()


def test_pool_excludes_every_test_event(campaign):
    out, _ = campaign
    data = load_labelled(fileset=out / "campaign_fileset.json", token_config=TokenConfig(),
                         max_events_per_dataset=600)  # fmt: skip
    preset = get_preset("ci")
    setups = []
    for name, labels in (("tth_vs_ttbar", [0, 6]), ("vh_vs_vz_bb", [4, 7])):
        task_data = data.take(np.flatnonzero(np.isin(data.label, labels)))
        setups.append(plan_task(_ci_task(name, preset), task_data))
    pool = pretraining_pool(data, setups)
    held_out = held_out_keys(setups)
    assert held_out and not (event_keys(pool) & held_out)
    assert len(pool) + len(held_out) == len(data)  # everything else is in the pool
    keys = event_key_list(data)  # labels kept: the process labels, -1 for collision data
    label_of = dict(zip(keys, data.label.tolist(), strict=True))
    assert [label_of[k] for k in event_key_list(pool)] == pool.label.tolist()
    assert {-1, 0, 6} <= set(pool.label.tolist())
    # a pool with test events in it is refused before pretraining
    with pytest.raises(TrainingError, match=r"contains .* test events"):
        check_pool(data, held_out, 10, 1.0)
    with pytest.raises(TrainingError, match=r"fewer than 10 x"):
        check_pool(pool, held_out, len(pool), 10.0)


def _ci_task(name, preset):
    return load_task_config(name, **preset.task_overrides)


def test_bad_input_fails_before_any_training(campaign, tmp_path):
    out, _ = campaign
    ci = get_preset("ci")
    # a label grid larger than the training split
    big = dataclasses.replace(ci, labels=(10**6,))
    gen = tmp_path / "big"
    (gen / "gen").mkdir(parents=True)
    for f in (out / "gen").iterdir():  # reuse the generated samples (resumable)
        (gen / "gen" / f.name).symlink_to(f)
    with pytest.raises(TrainingError, match="label count 1000000 is larger"):
        run_campaign(big, gen)
    assert not (gen / "pretrain").exists()
    # a test set smaller than the preset's minimum
    with pytest.raises(ConfigError, match=r"task tth_vs_ttbar: \d+ selected test events at "
                       r"scale 'ci', fewer than its minimum of 1000000"):  # fmt: skip
        run_campaign(dataclasses.replace(ci, min_test_events=10**6), gen)
    assert not (gen / "pretrain").exists()
    # a task whose classes the store lacks
    data = load_labelled(fileset=out / "campaign_fileset.json", token_config=TokenConfig(),
                         max_events_per_dataset=50)  # fmt: skip
    no_tth = data.take(np.flatnonzero(data.label == 0))
    with pytest.raises(TrainingError, match=r"\['tth'\].*missing from the data"):
        plan_task(_ci_task("tth_vs_ttbar", ci), no_tth)
    lacking = dataclasses.replace(ci, events={"ttbar": 10, "hbb": 10})
    with pytest.raises(ConfigError, match=r"need data labels \[6, 7\]"):
        run_campaign(lacking, tmp_path / "lacking")
    with pytest.raises(ConfigError, match="unknown study scale"):
        get_preset("laptop")


def test_rerun_is_idempotent_via_the_cli(campaign):
    out, summary = campaign

    def table(t):
        return json.loads((out / f"label_efficiency_ci_{t}.json").read_text())["aggregate"]

    before = {t: table(t) for t in summary["tasks"]}
    res = CliRunner().invoke(main, ["label-efficiency", "--scale", "ci", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "already in" in res.output and "cell " not in res.output  # nothing retrained
    after = json.loads((out / "summary.json").read_text())
    for t in summary["tasks"]:
        assert json.loads((out / f"label_efficiency_ci_{t}.json").read_text())["cells_trained"] == 0
        assert table(t) == before[t]
    assert after["pool_events"] == summary["pool_events"]
    bad = CliRunner().invoke(
        main, ["label-efficiency", "--scale", "ci", "--out", str(out), "--pretrained", str(out)]
    )
    assert bad.exit_code != 0 and "drop --pretrained" in bad.output


def test_presets_meet_their_specification():
    cpu, gpu = PRESETS["cpu"], PRESETS["gpu"]
    test = load_task_config("tth_vs_ttbar").splits.test
    assert load_task_config("vh_vs_vz_bb").splits.test == test
    for p in (cpu, gpu):
        tasks = sum(p.events[k] for k in ("ttbar", "tth", "hbb", "vz_bb"))
        pool = p.generated_events + p.real_events - test * tasks  # test splits held out
        assert pool >= 200_000
        assert "1%" in p.labels and len(p.seeds) >= 3 and len(p.small_seeds) >= 5
        assert p.min_test_events >= 10_000 and p.strict and p.tune_seeds >= 2
        assert set(p.controls) == {"random", "no-signal"}
        # >= 10k selected test events expected (headroom-check selection efficiencies)
        eff = {"ttbar": 0.24, "tth": 0.39, "vz_bb": 0.11, "hbb": 0.18}
        for a, b in (("ttbar", "tth"), ("vz_bb", "hbb")):
            assert test * (eff[a] * p.events[a] + eff[b] * p.events[b]) >= 1.15 * 10_000
        assert {"bdt-raw", "bdt-features", "finetune", "scratch"} <= set(p.modes)
        assert not p.task_overrides  # the shipped tasks as they are: no step caps
    assert cpu.model == {"size": "tiny"} and cpu.workers == 2
    assert gpu.model["size"] in ("small", "base") and gpu.pretrain_views >= 10_000_000
    assert gpu.budget_s <= 600


def test_goal_checks_pick_the_grid_points():
    agg = [
        {"mode": m, "n_labels": n, "auc_mean": auc, "auc_std": 0.01}
        for m, n, auc in [
            ("finetune", 10, 0.80), ("finetune", 100, 0.90), ("finetune", 1000, 0.95),
            ("scratch", 100, 0.85), ("scratch", 1000, 0.91), ("bdt-raw", 1000, 0.92),
            ("bdt-features", 1000, 0.93),
        ]
    ]  # fmt: skip
    g = goal_checks(agg)
    assert (g["n_full"], g["n_tenth"], g["n_hundredth"]) == (1000, 100, 10)
    assert g["main"]["scratch"]["auc_gap"] == pytest.approx(-0.01)
    assert not g["main"]["scratch"]["met"] and not g["main"]["bdt-features"]["met"]
    assert g["stretch"]["a"]["n_labels"] == 10 and not g["stretch"]["met"]
    coarse = goal_checks([e for e in agg if e["n_labels"] != 10])
    assert coarse["stretch"] is None  # no grid point near 1%


def test_objective_and_views_ablation(campaign):
    out, summary = campaign
    again = run_campaign("ci", out, ablate=True)
    rows = again["ablation"]["rows"]
    variants = {r["pretraining"] for r in rows}
    assert variants == {MAIN_RUN, *ABLATIONS}
    assert set(ABLATIONS) == {
        "contrastive only", "masked-object only", "stored views", "no augmentation"
    }  # fmt: skip
    for task in summary["tasks"]:
        for variant in variants:
            got = {r["mode"] for r in rows if r["task"] == task and r["pretraining"] == variant}
            assert got == {"linear-probe", "finetune"}, (task, variant)
    masked_only = yaml.safe_load(
        (out / "ablation" / "pretrain_masked-object" / "config.yaml").read_text()
    )
    assert masked_only["objective"]["contrastive"]["loss"] == "none"
    contrastive_only = yaml.safe_load(
        (out / "ablation" / "pretrain_contrastive" / "config.yaml").read_text()
    )
    assert contrastive_only["objective"]["masked"]["weight"] == 0.0
    views = {
        name: yaml.safe_load((out / "ablation" / f"pretrain_{name}" / "config.yaml").read_text())
        for name in ("stored-views", "no-augmentation")
    }
    assert views["stored-views"]["views"] == "stored"
    assert views["no-augmentation"]["views"] == "fresh"
    assert views["no-augmentation"]["augment"]["steps"] == []
    assert "## Ablation: pretraining objective and views" in (out / "summary.md").read_text()


def test_stored_views_are_the_epoch_zero_fresh_views(campaign):
    """The stored-views ablation pretrains on what a store with ``views: 2`` would hold."""
    out, _ = campaign
    pool = load_labelled(fileset=out / "campaign_fileset.json", token_config=TokenConfig(),
                         max_events_per_dataset=5)  # fmt: skip
    views, view_mask = pool_stored_views(pool, chunk=7)  # several chunks: chunking must not matter
    assert views.shape[:2] == (len(pool), 2) and view_mask.shape == views.shape[:3]
    batch = {
        "objects": torch.as_tensor(pool.objects), "mask": torch.as_tensor(pool.mask),
        **{k: torch.as_tensor(getattr(pool, k)) for k in ("run", "luminosityBlock", "event")},
    }  # fmt: skip
    fresh0, m0 = make_views(batch, standard_pipeline(views=2, seed=0), pool.token_config, 0, 2)
    np.testing.assert_array_equal(views, fresh0.numpy())
    np.testing.assert_array_equal(view_mask, m0.numpy())
    fresh1, _ = make_views(batch, standard_pipeline(views=2, seed=0), pool.token_config, 1, 2)
    assert not np.allclose(views, fresh1.numpy())  # epoch 1 would have new views
