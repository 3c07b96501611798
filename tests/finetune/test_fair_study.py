"""Hard-task machinery: shipped tasks, token selections, % label counts, uncapped early
stopping, the learning-rate grid and the gradient-boosted reference rows."""

from __future__ import annotations

import json

import awkward as ak
import numpy as np
import pytest
import uproot

from jetfm_coffea.errors import ConfigError, TrainingError
from jetfm_coffea.finetune import finetune, label_efficiency, load_task_config, prepare_finetune
from jetfm_coffea.finetune.config import ReferenceConfig, parse_label_count, shipped_tasks
from jetfm_coffea.finetune.reference import engineered_features, raw_features, train_reference
from jetfm_coffea.finetune.selection import ObjectRequirement, select_events
from jetfm_coffea.train import read_metrics

from .conftest import N_PER_DATASET, tiny_task


def test_shipped_tasks_load_by_name():
    assert {"tth_vs_ttbar", "vh_vs_vz_bb"} <= set(shipped_tasks())
    tth = load_task_config("tth_vs_ttbar")
    assert tth.classes == {"ttbar": [0], "tth": [6]} and tth.signal_class == "tth"
    assert [r.describe() for r in tth.selection] == [
        ">= 1 Muon/Electron (pT > 25, |eta| < 2.4)",
        ">= 4 Jet (pT > 30, |eta| < 2.4)",
    ]
    vh = load_task_config("vh_vs_vz_bb")
    assert vh.classes == {"vz_bb": [7], "hbb": [4]} and vh.signal_class == "hbb"
    assert vh.selection[0].min_btag == pytest.approx(0.2770) and vh.selection[0].min_count == 2
    for task in (tth, vh):
        assert "1%" in task.labels and len(task.seeds) >= 3
        assert task.train.max_steps is None and task.train.schedule == "constant"
        assert {"bdt-raw", "bdt-features"} <= set(task.modes)
        for grid in (task.optim.lr_grid, task.reference.learning_rates):  # fair tuning
            assert len(grid) >= 5 and max(grid) / min(grid) >= 30
        assert task.splits.test >= 0.5 > task.splits.train  # test sets sized for the question
    with pytest.raises(ConfigError, match="neither a file nor a shipped task"):
        load_task_config("no_such_task")


def test_label_count_syntax():
    assert parse_label_count("10%") == "10%" and parse_label_count("40") == 40
    assert parse_label_count("all") == "all"
    with pytest.raises(ConfigError, match="percentage"):
        parse_label_count("ten")
    with pytest.raises(ConfigError, match=r"in \(0%, 100%\]"):
        load_task_config({**tiny_task(), "labels": ["150%"]})
    with pytest.raises(ConfigError, match="schedule 'constant'"):
        load_task_config({**tiny_task(), "train": {"max_steps": None, "max_epochs": None}})


def test_selection_counts_match_the_nanoaod(labelled, ttbar_v5):
    """Jets with pT > 30, |eta| < 2.4 counted on the tokens = counted on the file."""
    ttbar = labelled.take(np.flatnonzero(labelled.label == 1))
    jets = uproot.open(ttbar_v5)["Events"].arrays(["Jet_pt", "Jet_eta"], entry_stop=N_PER_DATASET)
    good = (jets.Jet_pt > 30) & (np.abs(jets.Jet_eta) < 2.4)
    n_file = np.minimum(ak.to_numpy(ak.sum(good, axis=1)), 10)  # 10 jet tokens at most
    # a jet at exactly 30 GeV (NanoAOD's reduced-precision pT) sits on the float32 edge
    clear = ~ak.to_numpy(ak.any(np.abs(jets.Jet_pt - 30) < 1e-3, axis=1))
    assert clear.sum() >= N_PER_DATASET - 5
    cfg = labelled.token_config
    for k in (2, 4, 6):
        req = ObjectRequirement(collections=["Jet"], min_count=k, min_pt=30, max_abs_eta=2.4)
        got = select_events(ttbar.tokens, ttbar.mask, cfg, [req], chunk=64)
        np.testing.assert_array_equal(got[clear], (n_file >= k)[clear])
    both = [
        ObjectRequirement(collections="Jet", min_count=4, min_pt=30),
        ObjectRequirement(collections=["Muon", "Electron"], min_count=1, min_pt=25),
    ]
    sel = select_events(ttbar.tokens, ttbar.mask, cfg, both)
    assert 0 < sel.sum() < len(sel)
    with pytest.raises(ConfigError, match=r"collections \['FatJet'\]"):
        select_events(ttbar.tokens, ttbar.mask, cfg, [ObjectRequirement(collections="FatJet")])


def test_selection_is_applied_to_every_mode_before_splitting(labelled, pretrained_run, tmp_path):
    task = {**tiny_task(), "selection": [{"collections": ["Jet"], "min_count": 1, "min_pt": 25}]}
    setup = prepare_finetune(task, pretrained_run, labelled)
    passed = select_events(
        labelled.tokens, labelled.mask, labelled.token_config,
        load_task_config(task).selection,
    )  # fmt: skip
    assert ((setup.targets >= 0) == passed).all()
    per = setup.selection["per_class"]
    assert (
        per["ttbar"]["before"] == N_PER_DATASET
        and per["ttbar"]["after"] == passed[labelled.label == 1].sum()
    )
    # the reference rows see exactly the encoder modes' events
    res = finetune(setup, tmp_path / "ft", mode="scratch", labels=20, seed=0)
    ref = train_reference(setup, tmp_path / "bdt", mode="bdt-features", labels=20, seed=0)
    a, b = np.load(res.run_dir / "test_scores.npz"), np.load(ref.run_dir / "test_scores.npz")
    np.testing.assert_array_equal(a["event"], b["event"])
    assert passed[np.isin(labelled.event, a["event"])].all()
    # a selection that removes a whole class is an error before any training
    empty = {**tiny_task(), "selection": [{"collections": ["Jet"], "min_count": 11}]}
    with pytest.raises(TrainingError, match="passes the task selection"):
        prepare_finetune(empty, pretrained_run, labelled)


def test_percent_labels_and_uncapped_early_stopping(labelled, pretrained_run, tmp_path):
    loop = {"max_steps": None, "max_epochs": None, "schedule": "constant", "patience": 2,
            "min_eval_interval": 3}  # fmt: skip
    setup = prepare_finetune(tiny_task(**loop), pretrained_run, labelled, labels=["10%"])
    n_train = len(setup.pool("train"))
    assert setup.resolve_labels("10%") == round(0.1 * n_train)
    assert setup.resolve_labels("100%") == n_train
    res = finetune(setup, tmp_path / "free", mode="finetune", labels="10%", seed=0)
    assert res.stopped_by == "patience" and res.stopped_early  # no cap could end it
    vals = [r["step"] for r in read_metrics(tmp_path / "free") if "val_loss" in r]
    # one-step epochs: every 3 steps at most, rarer when validating would cost more than
    # a tenth of the encoder work (finetune.loop.default_eval_interval, issue 27)
    every = json.loads((tmp_path / "free" / "run.json").read_text())["eval_every"]
    assert every >= 3 and vals[0] == every and res.steps == vals[-1]
    assert res.steps - res.best_step == 2 * every  # patience validations after the best
    capped = prepare_finetune(tiny_task(max_steps=4, patience=50), pretrained_run, labelled)
    cap = finetune(capped, tmp_path / "cap", mode="finetune", labels=40, seed=0)
    assert cap.stopped_by == "max_steps" and cap.steps == 4
    info = json.loads((tmp_path / "cap" / "run.json").read_text())
    assert info["stopped_by"] == "max_steps" and info["lr"] == pytest.approx(3e-3)


def test_reference_features(labelled, ttbar_v5):
    ref = ReferenceConfig()
    x, names = engineered_features(labelled.tokens, labelled.mask, labelled.token_config, ref)
    assert x.shape == (len(labelled), len(names)) and len(set(names)) == len(names)
    col = {n: x[:, i] for i, n in enumerate(names)}
    # multiplicities and HT against the file (first events of the ttbar sample)
    ev = uproot.open(ttbar_v5)["Events"].arrays(
        ["Jet_pt", "Jet_eta", "Jet_btagDeepFlavB", "MET_pt"], entry_stop=N_PER_DATASET
    )
    top10 = ev.Jet_pt[(ev.Jet_pt > 20) & (np.abs(ev.Jet_eta) < 4.7)][:, :10]
    sel = top10 > 30
    clear = ~ak.to_numpy(ak.any(np.abs(ev.Jet_pt - 30) < 1e-3, axis=1))  # float32 edge
    tt = np.flatnonzero(labelled.label == 1)[clear]
    ht = ak.to_numpy(ak.sum(top10[sel], axis=1))[clear]
    np.testing.assert_allclose(col["ht"][tt], ht, rtol=1e-5)
    np.testing.assert_array_equal(col["n_jets"][tt], ak.to_numpy(ak.sum(sel, axis=1))[clear])
    tt = labelled.label == 1
    np.testing.assert_allclose(col["met"][tt], ak.to_numpy(ev.MET_pt), rtol=1e-5)
    # m_bb is defined exactly where two b-tagged jets are
    assert (np.isfinite(col["m_bb"]) == (col["n_btag"] >= 2)).all()
    assert (col["m_bb"][np.isfinite(col["m_bb"])] > 0).all()
    assert np.nanmax(col["btag_rank1"]) <= 1.0
    raw = raw_features(labelled.tokens, labelled.mask)
    assert raw.shape == (len(labelled), labelled.tokens.shape[1] * labelled.tokens.shape[2])
    assert np.isnan(raw).any() and not np.isnan(raw[:, : labelled.tokens.shape[2]]).all()


def test_study_with_references_and_lr_grid(labelled, pretrained_run, tmp_path):
    task = tiny_task(max_steps=4)
    task["optim"]["lr_grid"] = [1e-3, 1e-2]
    task["reference"] = {"learning_rates": [0.1, 0.3], "max_iter": 60, "patience": 20}
    task["modes"] = ["scratch", "bdt-raw", "bdt-features"]
    task["seeds"] = [0, 1]
    out = tmp_path / "study"
    res = label_efficiency(task, pretrained_run, labelled, out, labels=["10%", "all"])
    assert len(res.rows) == 3 * 2 * 2
    assert {s["mode"] for s in res.lr_search} == {"scratch", "bdt-raw", "bdt-features"}
    for search in res.lr_search:
        chosen = min(search["val_loss"], key=search["val_loss"].get)
        assert float(chosen) == search["chosen"]
        rows = [r for r in res.rows if r["mode"] == search["mode"]
                and r["n_labels"] == search["n_labels"]]  # fmt: skip
        assert {r["lr"] for r in rows} == {search["chosen"]}  # every seed uses the choice
    bdt = [r for r in res.rows if r["mode"].startswith("bdt")]
    assert all(r["steps"] >= r["best_step"] >= 1 for r in bdt)
    assert all(r["stopped_by"] == "patience" for r in bdt if r["steps"] < 60)
    assert all(r["auc"] > 0.9 for r in bdt if r["n_labels"] > 40)  # data vs ttbar: easy
    md = (out / "results.md").read_text()
    assert "bdt-features" in md and "steps (best)" in md and "‡" in md  # scratch hit max_steps
    payload = json.loads((out / "results.json").read_text())
    assert payload["lr_search"] and payload["selection"]["per_class"]["ttbar"]["after"] > 0
    # rerun: every run reused, including the grid's
    again = label_efficiency(task, pretrained_run, labelled, out, labels=["10%", "all"],
                             plots=False)  # fmt: skip
    assert all(r["reused"] for r in again.rows)
    assert [r["auc"] for r in again.rows] == [r["auc"] for r in res.rows]


def test_reference_keeps_its_best_iteration(labelled, pretrained_run, tmp_path):
    """The stored validation loss is the class-weighted log loss of the kept iteration."""
    import joblib

    from jetfm_coffea.finetune.reference import reference_features
    from jetfm_coffea.finetune.trainer import class_weights

    task = tiny_task()
    task["reference"] = {"max_iter": 300, "patience": 15, "learning_rates": [0.3]}
    setup = prepare_finetune(task, pretrained_run, labelled)
    res = train_reference(setup, tmp_path / "bdt", mode="bdt-raw", labels="all", seed=0)
    assert res.stopped_by == "patience" and res.steps - res.best_step >= 15
    clf = joblib.load(tmp_path / "bdt" / "model.joblib")
    x, names = reference_features(
        "bdt-raw", labelled.tokens, labelled.mask, labelled.token_config, setup.task.reference
    )
    info = json.loads((tmp_path / "bdt" / "run.json").read_text())
    train, val = setup.select(res.n_labels, 0)
    used = set(info["features"])
    keep = [i for i, n in enumerate(names) if n in used]
    probs = list(clf.staged_predict_proba(x[val][:, keep]))[res.best_step - 1]
    y = setup.targets[val]
    cw = class_weights(setup.targets[train], labelled.weight[train], setup.task)
    w = labelled.weight[val] * cw[y]
    loss = -(w * np.log(probs[np.arange(len(y)), y])).sum() / w.sum()
    assert loss == pytest.approx(res.best_val_loss, rel=1e-5)
    scores = np.load(tmp_path / "bdt" / "test_scores.npz")
    test_probs = list(clf.staged_predict_proba(x[setup.test_index][:, keep]))[res.best_step - 1]
    np.testing.assert_allclose(scores["probs"], test_probs, rtol=1e-6)


def test_reference_goes_on_past_max_iter_while_it_improves(
    labelled, pretrained_run, tmp_path, monkeypatch
):
    """max_iter is the first cap: a fit still improving there doubles it and goes on (warm
    start) until the validation loss stalls; only past the last doubling is it capped."""
    from jetfm_coffea.finetune import reference

    task = tiny_task()
    task["reference"] = {"max_iter": 8, "patience": 3, "learning_rates": [0.02]}
    setup = prepare_finetune(task, pretrained_run, labelled)
    monkeypatch.setattr(reference, "MAX_ITER_EXTENSIONS", 0)  # the old behaviour: stop there
    capped = train_reference(setup, tmp_path / "capped", mode="bdt-raw", labels="all", seed=0)
    assert capped.stopped_by == "max_steps" and capped.steps == 8
    monkeypatch.setattr(reference, "MAX_ITER_EXTENSIONS", 6)
    res = train_reference(setup, tmp_path / "on", mode="bdt-raw", labels="all", seed=0)
    assert res.stopped_by == "patience", (res.steps, res.best_step)
    assert res.steps > 8 and res.steps - res.best_step >= 3
    assert res.best_val_loss < capped.best_val_loss


def test_plots_leave_matplotlib_alone(tmp_path):
    """A library never switches the backend, nor the global style."""
    import matplotlib

    from jetfm_coffea.finetune.plots import plot_label_efficiency, plot_roc

    def style():  # matplotlib.use itself sets backend_fallback
        return {k: v for k, v in matplotlib.rcParams.items() if not k.startswith("backend")}

    before, rc = matplotlib.get_backend(), style()
    matplotlib.use("svg")
    try:
        fpr, tpr = np.array([0.01, 0.1, 1.0]), np.array([0.3, 0.7, 1.0])
        path = plot_roc({"finetune (n=10)": (fpr, tpr)}, tmp_path / "roc.png")
        agg = [{"mode": "finetune", "n_labels": n, "auc_mean": 0.9, "auc_std": 0.01,
                "rejection_50_mean": 20.0, "rejection_50_std": 1.0,
                "rejection_50_capped": n == 100} for n in (10, 100)]  # fmt: skip
        plot_label_efficiency(agg, tmp_path / "le.png")
        assert matplotlib.get_backend() == "svg"
        assert path.read_bytes()[:4] == b"\x89PNG" and (tmp_path / "le.png").stat().st_size > 5000
    finally:
        matplotlib.use(before)
    assert style() == rc
