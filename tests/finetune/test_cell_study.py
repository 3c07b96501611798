"""The cell study end to end at a tiny scale: tuning, controls, intervals, resume, bad input.

Real runs on the real CMS files of the fine-tuning fixtures (2012 collisions vs ttbar
simulation: machinery, not physics)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from jetfm_coffea.errors import ConfigError, TrainingError
from jetfm_coffea.finetune import cellstudy, load_task_config, prepare_finetune
from jetfm_coffea.finetune.cellreport import block_of, check_summary, readme_block, rows_block
from jetfm_coffea.finetune.cells import CellKey, CellStore, StaleCellError, quantise
from jetfm_coffea.finetune.cellstudy import (
    CellPlan,
    TaskStudy,
    cell_studies,
    cell_study,
    load_scores,
    priority,
    random_encoder,
)
from jetfm_coffea.finetune.intervals import auc
from jetfm_coffea.finetune.trainer import load_pretrained

from .conftest import tiny_task

REPO = Path(__file__).resolve().parents[2]


def _task():
    cfg = tiny_task(max_epochs=None, max_steps=6, schedule="constant", min_eval_interval=2,
                    patience=2)  # fmt: skip
    cfg["modes"] = ["linear-probe", "finetune", "scratch", "bdt-raw", "bdt-features"]
    cfg["optim"]["lr_grid"] = [1e-3, 3e-3]
    cfg["reference"] = {"learning_rates": [0.1, 0.3], "max_iter": 15, "patience": 4}
    cfg["min_val_events"] = 10
    return load_task_config(cfg)


PLAN = CellPlan(
    labels=("10%", "all"), seeds=(0, 1), small_seeds=(0, 1, 2), small_fraction=0.1,
    bdt_leaves=(15,), bdt_l2=(0.0,), max_extend=1, strict=False, n_boot=200,
)  # fmt: skip


def _setup(labelled, pretrained_run):
    return prepare_finetune(_task(), pretrained_run, labelled, labels=list(PLAN.labels))


def _encoders(pretrained_run, random=True):
    ssl = load_pretrained(pretrained_run)
    return {"ssl": ssl, **({"random": random_encoder(ssl, seed=0)} if random else {})}


@pytest.fixture(scope="module")
def study(labelled, pretrained_run, tmp_path_factory):
    root = tmp_path_factory.mktemp("cells")
    store = CellStore(root / "cells")
    summary_path = root / "label_efficiency_tiny_toy.json"
    lines: list[str] = []
    summary = cell_study(
        _setup(labelled, pretrained_run), _encoders(pretrained_run), store, PLAN,
        task_name="toy", work=root / "work", scale="tiny", summary_path=summary_path,
        provenance={"generator_seeds": {"none": 0}}, log=lines.append,
    )  # fmt: skip
    return summary, store, summary_path, lines


def test_summary_rows_intervals_and_controls(study, labelled, pretrained_run):
    summary, _, path, _ = study
    assert json.loads(path.read_text()) == json.loads(json.dumps(summary, default=str))
    check_summary(summary)
    rows = {(r["encoder"], r["mode"], r["label_fraction"]): r for r in summary["aggregate"]}
    arms = {(e, m) for e, m, _ in rows}
    assert arms == {("ssl", "linear-probe"), ("ssl", "finetune"), ("random", "linear-probe"),
                    ("random", "finetune"), (None, "scratch"), (None, "bdt-raw"),
                    (None, "bdt-features")}  # fmt: skip
    setup = _setup(labelled, pretrained_run)
    n_all = len(setup.pool("train"))
    for (_, _, frac), r in rows.items():
        assert r["n_seeds"] == (3 if frac == 0.1 else 2)  # more seeds at small label counts
        assert r["n_labels"] == r["n_train"] + r["n_val"] and r["n_val"] > 0
        assert r["n_train"] == (n_all if frac == 1.0 else round(0.1 * n_all))
        lo68, hi68 = r["auc_ci68"]
        lo95, hi95 = r["auc_ci95"]
        assert lo95 < lo68 < r["auc_mean"] < hi68 < hi95
    # the per-event score file reproduces every row's mean AUC
    f = load_scores(summary["scores"])
    y = f["target"] == setup.task.signal_index
    assert len(y) == summary["test_events"] == len(setup.test_index)
    for (enc, mode, frac), r in rows.items():
        label = "all" if frac == 1.0 else "10%"
        aucs = [auc(f[f"{enc or 'none'}/{mode}/{label}/s{s}"], y) for s in r["seeds"]]
        assert np.mean(aucs) == pytest.approx(r["auc_mean"], abs=1e-12)
    # stored as 8-bit levels: the AUC moves by less than 1/256 of the pairs' weight
    assert 0 <= summary["score_storage"]["max_abs_auc_change"] < 2e-3
    assert summary["complete"] and summary["groups_done"] == summary["groups_planned"]
    # the stated differences: goal (10% vs all), same-fraction references, controls
    pairs = {((d["a"]["encoder"], d["a"]["mode"], d["a"]["label_fraction"]),
              (d["b"]["encoder"], d["b"]["mode"], d["b"]["label_fraction"])): d
             for d in summary["differences"]}  # fmt: skip
    goal = pairs[(("ssl", "finetune", 0.1), (None, "scratch", 1.0))]
    assert not goal["paired_seeds"]
    ctrl = pairs[(("ssl", "linear-probe", 0.1), ("random", "linear-probe", 0.1))]
    assert ctrl["paired_seeds"]
    for ref in ("bdt-raw", "bdt-features"):
        d = pairs[(("ssl", "finetune", 1.0), (None, ref, 1.0))]
        want = rows[("ssl", "finetune", 1.0)]["auc_mean"] - rows[(None, ref, 1.0)]["auc_mean"]
        assert d["delta_auc"] == pytest.approx(want, abs=1e-12)
        assert d["ci95"][0] < d["ci68"][0] < d["delta_auc"] < d["ci68"][1] < d["ci95"][1]


def test_every_seed_draws_its_own_training_events_with_all_labels(labelled, pretrained_run):
    setup = _setup(labelled, pretrained_run)
    setup.full_draw = "bootstrap"
    n = setup.resolve_labels("all")
    a, _ = setup.select(n, 0)
    b, _ = setup.select(n, 1)
    assert len(a) == len(b) == n and not np.array_equal(a, b)
    assert len(np.unique(a)) < n  # a bootstrap: repeats
    y = setup.targets
    assert np.bincount(y[a]).tolist() == np.bincount(y[setup.pool("train")]).tolist()


def test_tuning_record_extension_and_pruned_tuning_cells(study):
    summary, store, _, _ = study
    for entry in summary["tuning"]:
        params = [s["parameter"] for s in entry["search"]]
        assert params == (["lr", "leaves", "l2"] if entry["mode"].startswith("bdt") else ["lr"])
        for s in entry["search"]:
            losses = s["mean_val_loss"]
            chosen = min(losses, key=losses.get)
            assert float(chosen) == pytest.approx(float(s["chosen"]))
            assert s["seeds"] == [0, 1]
            # a choice on an edge grew the grid once (max_extend=1)
            if s["values"] != sorted(set(s["values"])):
                raise AssertionError(s)
    lr = [s for e in summary["tuning"] for s in e["search"] if s["parameter"] == "lr"]
    assert any(s["extended"] == 1 and len(s["values"]) == 3 for s in lr)
    cells = list(store.cells("toy"))
    totals = summary["timing_totals"]
    assert (
        totals["all_cells"]
        == len(cells)
        > totals["cells"]
        == sum(r["n_seeds"] for r in summary["aggregate"])
    )
    assert totals["all_wall_s"] == pytest.approx(sum(c["timing"]["wall_s"] for _, c in cells))
    dropped = [c for _, c in cells if c["scores"] is None]
    assert dropped and all(c["scores_dropped"] == "tuning cell, not chosen" for c in dropped)
    for path, c in cells:
        assert path.with_name(path.stem + ".npz").is_file() == (c["scores"] is not None)
        t = c["timing"]
        assert t["cpu_s"] > 0 and t["wall_s"] > 0 and len(t["loadavg_after"]) == 3
        assert c["result"]["stopped_by"] in ("patience", "max_steps")


def test_rerun_reuses_every_cell_and_adds_encoders_without_recomputing(
    study, labelled, pretrained_run, tmp_path
):
    summary, store, _, _ = study
    lines: list[str] = []
    again = cell_study(
        _setup(labelled, pretrained_run), _encoders(pretrained_run), store, PLAN,
        task_name="toy", work=tmp_path, scale="tiny", log=lines.append,
    )  # fmt: skip
    assert again["cells_trained"] == 0 and not lines
    assert again["aggregate"] == summary["aggregate"]
    # scratch and BDT cells do not depend on the encoder: a study with only the main
    # encoder trains nothing either (the random encoder's cells are simply not asked for)
    only = cell_study(
        _setup(labelled, pretrained_run), _encoders(pretrained_run, random=False), store,
        PLAN, task_name="toy", work=tmp_path, scale="tiny",
    )  # fmt: skip
    assert only["cells_trained"] == 0
    assert {r["encoder"] for r in only["aggregate"]} == {"ssl", None}


class _Stop(Exception):
    pass


def test_interrupted_study_resumes_from_its_finished_cells(labelled, pretrained_run, tmp_path):
    plan = CellPlan(labels=("all",), seeds=(0, 1), small_seeds=(0, 1), tune_seeds=1,
                    modes=("finetune", "bdt-features"), max_extend=0, strict=False,
                    bdt_leaves=(7,), bdt_l2=(0.0,), n_boot=50)  # fmt: skip
    store = CellStore(tmp_path / "cells")
    trained: list[str] = []

    def stop_after_three(msg: str) -> None:
        trained.append(msg)
        if len(trained) == 3:
            raise _Stop  # the session ends here

    with pytest.raises(_Stop):
        cell_study(_setup(labelled, pretrained_run), _encoders(pretrained_run, False), store,
                   plan, task_name="toy", work=tmp_path / "w", log=stop_after_three)  # fmt: skip
    finished = {p: (c["key"], c["result"], c["timing"]) for p, c in store.cells("toy")}
    assert len(finished) == 3
    rest: list[str] = []
    summary = cell_study(_setup(labelled, pretrained_run), _encoders(pretrained_run, False),
                         store, plan, task_name="toy", work=tmp_path / "w",
                         log=rest.append)  # fmt: skip
    total = len(list(store.cells("toy")))
    assert summary["cells_trained"] == len(rest) == total - 3 > 0
    now = {p: (c["key"], c["result"], c["timing"]) for p, c in store.cells("toy")}
    assert all(now[p] == v for p, v in finished.items())  # reused, not retrained


def test_stale_cell_is_refused_before_any_training(study, labelled, pretrained_run, tmp_path):
    _, store, _, _ = study
    path, _ = next(iter(store.cells("toy")))
    copy = CellStore(tmp_path / "cells")
    for p, c in store.cells("toy"):
        dest = copy.root / p.relative_to(store.root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        c["key"]["code_version"] = "0123456789abcdef" if p == path else c["key"]["code_version"]
        dest.write_text(json.dumps(c))
        npz = p.with_name(p.stem + ".npz")
        if npz.is_file():
            dest.with_name(npz.name).write_bytes(npz.read_bytes())
    trained: list[str] = []
    rel = str(path.relative_to(store.root))
    with pytest.raises(StaleCellError, match=rf"{rel}.*code_version: stored '0123456789abcdef'"):
        cell_study(_setup(labelled, pretrained_run), _encoders(pretrained_run), copy, PLAN,
                   task_name="toy", work=tmp_path / "w", log=trained.append)  # fmt: skip
    assert not trained
    # another encoder under the same name: its cells are stale too
    other = _encoders(pretrained_run)
    other["random"] = random_encoder(other["ssl"], seed=1)
    with pytest.raises(StaleCellError, match=r"encoder_hash"):
        cell_study(_setup(labelled, pretrained_run), other, store, PLAN, task_name="toy",
                   work=tmp_path / "w", log=trained.append)  # fmt: skip
    assert not trained


def test_bad_input_fails_before_any_training(labelled, pretrained_run, tmp_path):
    enc = _encoders(pretrained_run, False)
    store = CellStore(tmp_path / "cells")

    def run(plan, setup=None):
        return cell_study(setup or _setup(labelled, pretrained_run), enc, store, plan,
                          task_name="toy", work=tmp_path / "w")  # fmt: skip

    n_test = len(_setup(labelled, pretrained_run).test_index)
    small = CellPlan(labels=("all",), min_test_events=10**5, strict=False)
    with pytest.raises(ConfigError, match=rf"test set has {n_test} selected events, fewer than"):
        run(small)
    with pytest.raises(TrainingError, match="label count 100000 is larger"):
        run(CellPlan(labels=(10**5,), strict=False))
    with pytest.raises(ConfigError, match=r"optim.lr_grid: a fair study tunes over at least 5"):
        run(CellPlan(labels=("all",)))  # strict: the tiny task's 2-value grid is refused
    with pytest.raises(ConfigError, match=r"needs its main encoder first .* not a control"):
        cell_study(
            _setup(labelled, pretrained_run),
            {"random": enc["ssl"]},
            store,
            CellPlan(labels=("all",), strict=False),
            task_name="toy",
            work=tmp_path,
        )
    assert not list(store.root.rglob("*.json"))


def test_cells_are_committed_as_they_finish(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    for cmd in (["init", "-q"], ["config", "user.email", "t@t"], ["config", "user.name", "t"]):
        subprocess.run(["git", "-C", str(repo), *cmd], check=True)
    (repo / "results").mkdir()
    monkeypatch.chdir(repo / "results")  # a relative store, committed from a subfolder
    store = CellStore(Path("cells"), commit=True)
    keys = [CellKey("toy", "h", "t", None, None, "bdt-raw", "all", 10, 5, s, {"lr": 0.1}, "c")
            for s in range(2)]  # fmt: skip
    for k in keys:
        store.save(k, {"result": {"best_val_loss": 0.5}}, np.arange(4, dtype=np.float32))
    log = subprocess.run(["git", "-C", str(repo), "log", "--name-only", "--format=%s"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    for k in keys:  # the JSON at once; the scores only when the study keeps them
        assert f"({k.digest()})" in log and f"{k.relpath()}.json" in log
        assert f"{k.relpath()}.npz" not in log
    store.commit_scores(keys[1:], "scores of the chosen point")
    n_commits = len(log.splitlines())
    store.commit_scores(keys[1:], "again, as a resumed study does")  # nothing new: no commit
    store.drop_scores(keys[0], "tuning cell, not chosen")
    log = subprocess.run(["git", "-C", str(repo), "log", "--name-only", "--format=%s"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert f"{keys[1].relpath()}.npz" in log and f"{keys[0].relpath()}.npz" not in log
    assert "again, as a resumed study does" not in log and len(log.splitlines()) > n_commits
    status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain"],
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert status == ""  # the removal is committed too
    assert store.load(keys[0])["scores"] is None
    assert store.scores(keys[1]).tolist() == [32, 96, 160, 224]  # mid-rank levels of 4


def test_stored_scores_keep_the_order_and_the_auc():
    rng = np.random.default_rng(3)
    y = rng.random(12_000) < 0.4
    s = rng.normal(size=len(y)) + 1.2 * y
    s[:50] = s[50]  # ties stay ties
    q = quantise(s)
    assert q.dtype == np.uint8 and q.min() == 0 and q.max() == 255
    order = np.argsort(s, kind="stable")
    assert (np.diff(q[order].astype(int)) >= 0).all()  # a higher score never a lower level
    assert len(set(q[:51].tolist())) == 1
    assert np.bincount(q, minlength=256).max() <= 2 * len(y) / 256 + 51
    assert abs(auc(q, y) - auc(s, y)) < 5e-4


def test_a_cell_without_its_score_file_is_trained_again(study, tmp_path):
    _, store, _, _ = study
    path, cell = next((p, c) for p, c in store.cells("toy") if c.get("scores"))
    key = CellKey(**cell["key"])
    copy = CellStore(tmp_path / "cells")
    dest = copy.root / path.relative_to(store.root)
    dest.parent.mkdir(parents=True)
    dest.write_text(path.read_text())  # the committed JSON, its scores not (yet) committed
    assert copy.load(key) is None
    dest.with_name(dest.stem + ".npz").write_bytes(path.with_name(path.stem + ".npz").read_bytes())
    assert copy.load(key)["key"] == cell["key"]


def test_priority_runs_the_goal_comparison_first():
    groups = [(arm, f) for arm in [("ssl", "finetune"), ("ssl", "linear-probe"),
              ("random", "finetune"), ("no-signal", "finetune"), (None, "scratch"),
              (None, "bdt-raw")] for f in (0.01, 0.03, 0.1, 0.3, 1.0)]  # fmt: skip
    ordered = sorted(groups, key=lambda g: priority(*g))
    first = set(ordered[:3])
    assert first == {(("ssl", "finetune"), 0.1), ((None, "scratch"), 1.0),
                     ((None, "bdt-raw"), 1.0)}  # fmt: skip
    assert ordered[-1][0] == ("no-signal", "finetune")
    assert ordered.index((("random", "finetune"), 0.1)) < ordered.index((("ssl", "finetune"), 0.3))


@pytest.mark.parametrize("task", ["tth_vs_ttbar", "vh_vs_vz_bb"])
def test_readme_tables_are_generated_from_the_committed_json(task):
    """The README's block of each task (every difference) and the docs' block (every row)
    are readme_block() / rows_block() of the committed summary JSON, byte for byte (or the
    pending text while no summary is committed)."""
    path = REPO / "benchmarks" / "results" / f"label_efficiency_cpu_{task}.json"
    summary = json.loads(path.read_text()) if path.is_file() else None
    if summary is not None:
        check_summary(summary)
        assert summary["task"] == task and summary["scale"] == "cpu"
        assert load_scores(REPO / summary["scores"])["target"].shape == (summary["test_events"],)
    readme = (REPO / "README.md").read_text()
    docs = (REPO / "docs" / "label-efficiency.md").read_text()
    assert block_of(readme, f"label-efficiency-cpu:{task}") == readme_block(summary, task)
    assert block_of(docs, f"label-efficiency-cpu-rows:{task}") == rows_block(summary, task)


def test_readme_block_of_a_summary(study):
    summary, *_ = study
    text = readme_block(summary, "toy")
    lines = text.splitlines()
    assert sum(line.startswith("| ") and "|---" not in line for line in lines) == (
        1 + len(summary["differences"])
    )
    d = summary["differences"][0]
    assert f"{d['delta_auc']:+.4f} | [{d['ci68'][0]:.4f}, {d['ci68'][1]:.4f}]" in text
    rows = rows_block(summary, "toy")
    assert sum(line.startswith("| ") and "|---" not in line for line in rows.splitlines()) == (
        1 + len(summary["aggregate"])
    )
    r = summary["aggregate"][0]
    assert f"{r['auc_mean']:.4f} | [{r['auc_ci68'][0]:.4f}, {r['auc_ci68'][1]:.4f}]" in rows
    assert "In progress" not in text
    partial = {**summary, "complete": False, "groups_done": 3, "groups_planned": 9}
    assert "**In progress:** 3 of 9 groups" in readme_block(partial, "toy")


def test_readme_states_each_goal_in_words_with_its_interval():
    """The goal line reads the goal's difference row: met only above 0 at 95%, not met
    (with by how much) below, not resolved when the interval holds 0; a wrong row (another
    encoder, another label count) is not taken for the goal."""
    main = {"mode": "finetune", "encoder": "ssl", "label_fraction": 0.1}
    scratch = {"mode": "scratch", "encoder": None, "label_fraction": 1.0}

    def summary(ci95, a=main):
        d = {"a": a, "b": scratch, "delta_auc": sum(ci95) / 2, "ci68": ci95, "ci95": ci95}
        return {"task": "t", "scale": "cpu", "test_events": 10, "test_per_class": {"x": 10},
                "test_set_hash": "h", "code_version": "v", "main_encoder": "ssl",
                "aggregate": [], "differences": [d], "scores": None}  # fmt: skip

    goal = "Goal (ssl) fine-tuned with 10% of the labels ≥ scratch with all"
    assert f"{goal}: **not met**, ΔAUC -0.0470, 95% [-0.0610, -0.0330]." in readme_block(
        summary([-0.061, -0.033]), "t"
    )
    assert f"{goal}: **met**, ΔAUC +0.0100" in readme_block(summary([0.005, 0.015]), "t")
    assert f"{goal}: **not resolved**" in readme_block(summary([-0.01, 0.02]), "t")
    random = {**main, "encoder": "random"}
    assert "Goal" not in readme_block(summary([0.005, 0.015], a=random), "t")
    assert "Goal" not in readme_block(
        summary([0.005, 0.015], a={**main, "label_fraction": 0.03}), "t"
    )


def test_a_study_stopped_midway_leaves_the_summary_of_what_it_finished(
    labelled, pretrained_run, tmp_path
):
    stop = RuntimeError("stopped after the first group")
    done: list[str] = []

    path = tmp_path / "s.json"

    def log(line: str) -> None:
        done.append(line)
        if line.startswith("cell ") and path.is_file():  # the second group's first cell
            raise stop

    with pytest.raises(RuntimeError, match="stopped after"):
        cell_study(_setup(labelled, pretrained_run), _encoders(pretrained_run, False),
                   CellStore(tmp_path / "cells"), PLAN, task_name="toy", work=tmp_path / "w",
                   summary_path=path, log=log)  # fmt: skip
    s = json.loads(path.read_text())
    check_summary(s)
    assert not s["complete"] and s["groups_done"] == 1 and s["groups_planned"] > 1
    assert (
        len(s["aggregate"]) == 1
        and len(load_scores(s["scores"])) == 4 + s["aggregate"][0]["n_seeds"]
    )


def test_docs_plan_block_is_the_code_written_plan():
    """docs/label-efficiency.md's plan of the cpu study is label_efficiency_plan.py's output."""
    plan = REPO / "benchmarks" / "results" / "label_efficiency_cpu_plan.md"
    est = json.loads(plan.with_suffix(".json").read_text())
    assert est["scale"] == "cpu" and est["cells"] == sum(g["cells"] for g in est["groups"])
    page = (REPO / "docs" / "label-efficiency.md").read_text()
    begin, end = (
        "<!-- label-efficiency-cpu:plan:begin -->\n",
        "<!-- label-efficiency-cpu:plan:end -->",
    )
    assert page.split(begin, 1)[1].split(end, 1)[0] == plan.read_text()


def test_cpu_budget_is_the_measured_cost_of_the_committed_study():
    """Once the committed cpu study is complete, the preset's ``budget_s`` is its measured
    total (the plan's ``measured``, from both task summaries' recorded cell times plus
    generation and pretraining), rounded up by at most a quarter."""
    from jetfm_coffea.finetune.study_presets import get_preset

    results = REPO / "benchmarks" / "results"
    summaries = [json.loads((results / f"label_efficiency_cpu_{t}.json").read_text())
                 for t in ("tth_vs_ttbar", "vh_vs_vz_bb")]  # fmt: skip
    est = json.loads((results / "label_efficiency_cpu_plan.json").read_text())
    if not all(s["complete"] for s in summaries):
        assert est.get("measured") is None  # nothing claimed while the study runs
        pytest.skip("the committed cpu study is not complete yet")
    m = est["measured"]
    cells_s = sum(s["timing_totals"]["all_wall_s"] for s in summaries)
    assert m["cells_hours"] == pytest.approx(cells_s / 3600)
    assert m["total_hours"] == pytest.approx(m["cells_hours"] + m["setup_hours"])
    budget_h = get_preset("cpu").budget_s / 3600
    assert m["total_hours"] <= budget_h <= 1.25 * m["total_hours"]


def test_check_summary_names_the_bad_field(study):
    summary, *_ = study
    bad = json.loads(json.dumps(summary, default=str))
    del bad["aggregate"][1]["auc_ci95"]
    with pytest.raises(ConfigError, match=r"aggregate\[1\]: missing field 'auc_ci95'"):
        check_summary(bad)
    bad = json.loads(json.dumps(summary, default=str))
    bad["differences"][0]["ci68"] = [0.2, 0.1]
    with pytest.raises(ConfigError, match=r"differences\[0\]: interval 'ci68'"):
        check_summary(bad)
    bad["differences"][0]["ci68"] = [0.1, 0.2]
    bad["test_events"] = "12"
    with pytest.raises(ConfigError, match="field 'test_events' is '12'"):
        check_summary(bad)


def test_tasks_are_interleaved_in_order_of_value(labelled, pretrained_run, tmp_path, monkeypatch):
    """Two tasks: each task's goal groups run before either task's lesser groups, so a
    study stopped midway has the goal rows of every task."""
    plan = dataclasses.replace(PLAN, modes=("finetune", "bdt-raw"), seeds=(0,), small_seeds=(0,),
                               tune_seeds=1)  # fmt: skip
    store = CellStore(tmp_path / "cells")
    lines: list[str] = []
    parts = [TaskStudy(_setup(labelled, pretrained_run), _encoders(pretrained_run, False), store,
                       plan, name, tmp_path / name, summary_path=tmp_path / f"{name}.json")
             for name in ("a", "b")]  # fmt: skip
    out = cell_studies(parts, log=lines.append)
    groups = []
    for line in lines:
        group = "/".join(line.split()[1].split("/")[:4])
        if not groups or groups[-1] != group:
            groups.append(group)
    assert groups == ["a/ssl/finetune/10pct", "b/ssl/finetune/10pct", "a/none/bdt-raw/all",
                      "b/none/bdt-raw/all", "a/none/bdt-raw/10pct", "b/none/bdt-raw/10pct",
                      "a/ssl/finetune/all", "b/ssl/finetune/all"]  # fmt: skip
    assert out["a"]["aggregate"] == out["b"]["aggregate"]  # same data, same numbers
    assert json.loads((tmp_path / "b.json").read_text())["complete"]
    # resumed with every cell finished: no cell trains, each summary is written once
    writes: list[str] = []
    real = cellstudy._write_summary

    def counted(study, t, *args):
        writes.append(t.task_name)
        return real(study, t, *args)

    monkeypatch.setattr(cellstudy, "_write_summary", counted)
    again = cell_studies(parts, log=lines.append)
    assert sorted(writes) == ["a", "b"] and again["a"]["aggregate"] == out["a"]["aggregate"]


def test_code_version_is_dirty_for_code_changes_only(tmp_path):
    """A running study rewrites its committed summaries: that must not mark the code
    version dirty; an uncommitted change of the code must."""

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    (tmp_path / "jetfm_coffea").mkdir()
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "jetfm_coffea" / "trainer.py").write_text("x = 1\n")
    (tmp_path / "benchmarks" / "results" / "summary.json").write_text("{}\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "c")
    clean = cellstudy._git_version(tmp_path)
    assert clean and not clean.endswith("-dirty")
    (tmp_path / "benchmarks" / "results" / "summary.json").write_text('{"cells": 1}\n')
    assert cellstudy._git_version(tmp_path) == clean
    (tmp_path / "jetfm_coffea" / "trainer.py").write_text("x = 2\n")
    assert cellstudy._git_version(tmp_path) == f"{clean}-dirty"
