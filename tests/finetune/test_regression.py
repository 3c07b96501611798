"""Regression through the task-type registry: truth targets -> training -> scores.

Machinery on a small generated sample (W+jets and tt̄, the neutrino pT / true MET): the
numbers say nothing about physics; the tests check that every piece is wired and exact.
"""

from __future__ import annotations

import json

import awkward as ak
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from coffea.nanoevents import NanoEventsFactory

from jetfm_coffea.cli import main
from jetfm_coffea.cluster import Execution
from jetfm_coffea.errors import ConfigError, TrainingError
from jetfm_coffea.finetune import (
    evaluate_run,
    finetune,
    label_efficiency,
    load_labelled,
    load_task_config,
    plan_task,
    predict_outputs,
    prepare_finetune,
)
from jetfm_coffea.finetune.metrics import regression_metrics
from jetfm_coffea.finetune.task_types import (
    TASK_TYPES,
    Regression,
    TaskType,
    register_task_type,
    task_type_for,
)
from jetfm_coffea.generate import generate
from jetfm_coffea.jobs.execution import run_coffea
from jetfm_coffea.nanoevents import JetFMNanoAODSchema
from jetfm_coffea.processors.analysis import ScoreAnalysisProcessor
from jetfm_coffea.score import JetFMScorer
from jetfm_coffea.score.export import export_model, load_exported_program, read_manifest
from jetfm_coffea.tokens import TokenConfig
from jetfm_coffea.train import load_run

N_EVENTS = 240


@pytest.fixture(scope="module")
def gen_fileset(tmp_path_factory):
    """240 W+jets and 240 tt̄ events at 13 TeV with GenTarget_* branches; a labelled fileset."""
    out = tmp_path_factory.mktemp("gen_regression")
    spec = {}
    for process in ("wjets", "ttbar"):
        res = generate(process, N_EVENTS, sqrts=13000, seed=21, out=out)
        spec.update(json.loads(res.fileset_path.read_text()))
    path = out / "labelled.json"
    path.write_text(json.dumps(spec))
    return path


@pytest.fixture(scope="module")
def gen_data(gen_fileset):
    return load_labelled(fileset=gen_fileset, token_config=TokenConfig())


def nu_task(**updates):
    """The shipped wjets_nu_pt task, capped to a few steps, no selection."""
    overrides = {
        "selection": [],
        "labels": [60, "all"],
        "seeds": [0],
        "min_val_events": 20,
        "optim.lr_grid": [],
        "optim.lr": 3e-3,
        "optim.warmup_steps": 0,
        "train.batch_size": 32,
        "train.max_steps": 12,
        "train.max_epochs": 4,
        "train.schedule": "cosine",
        "train.patience": 3,
        "train.min_eval_interval": 2,
        "train.device": "cpu",
        **updates,
    }
    return load_task_config("wjets_nu_pt", **overrides)


def test_registry_declares_both_types():
    assert {"classification", "regression"} <= set(TASK_TYPES)
    reg = task_type_for(nu_task())
    assert isinstance(reg, Regression) and reg.head == "regressor"
    assert reg.columns() == ["pred_nuPt", "sigma_nuPt"]
    cls = task_type_for(load_task_config("tth_vs_ttbar"))
    assert cls.columns() == ["score_ttbar", "score_tth"]
    with pytest.raises(ConfigError, match="unknown task type 'ranking'"):
        TASK_TYPES["ranking"]


def test_a_third_party_task_type_registers_in_one_file():
    """A new type is one registered subclass; the task YAML can then name it."""

    @register_task_type
    class Huberised(Regression):
        name = "test-huber-regression"

    try:
        task = load_task_config({"type": "test-huber-regression", "classes": {"w": 1},
                                 "options": {"target": "nuPt", "loss": "huber"}})  # fmt: skip
        assert isinstance(task_type_for(task), Huberised)
        assert issubclass(Huberised, TaskType)
    finally:
        TASK_TYPES.unregister("test-huber-regression")


def test_bad_regression_configs_are_refused():
    with pytest.raises(ConfigError, match="supports modes"):
        load_task_config("wjets_nu_pt", modes=["bdt-raw"])
    with pytest.raises(ConfigError, match="target"):
        load_task_config({"type": "regression", "classes": {"w": 1}, "options": {}})
    with pytest.raises(ConfigError, match="at least 2 classes"):
        load_task_config({"classes": {"w": 1}})  # classification still needs two


def test_classification_hash_unchanged_by_the_type_field():
    """Task configs written before ``type`` existed keep their hash (runs stay reusable)."""
    task = load_task_config({"classes": {"a": 0, "b": 1}})
    assert "type" not in task.canonical_json() and task.type == "classification"
    huber = nu_task(**{"options.loss": "huber"})
    assert nu_task().hash() != huber.hash()


def test_targets_are_read_and_undefined_events_dropped(gen_data):
    assert {"GenTarget_nuPt", "GenTarget_hadTopPt", "GenTarget_higgsPt"} <= set(gen_data.values)
    nu = gen_data.values["GenTarget_nuPt"]
    w = gen_data.label == 1
    assert np.isfinite(nu[w]).all()  # every W+jets event has its neutrino
    assert 0.2 < np.isnan(nu[~w]).mean() < 0.7  # all-hadronic tt̄ has none


def test_regression_run_end_to_end(gen_data, pretrained_run, tmp_path):
    setup = prepare_finetune(nu_task(), pretrained_run, gen_data)
    per_class = setup.selection["per_class"]
    assert per_class["ttbar"]["undefined_target"] == int(
        np.isnan(gen_data.values["GenTarget_nuPt"][gen_data.label == 0]).sum()
    )
    assert per_class["wjets"]["undefined_target"] == 0
    assert (setup.targets[np.isnan(setup.values)] == -1).all()
    results = {}
    for mode in ("linear-probe", "finetune", "scratch"):
        res = finetune(setup, tmp_path / mode, mode=mode, labels=60, seed=0, keep_model=True)
        results[mode] = res
        m = res.test_metrics
        assert {"resolution", "bias", "coverage", "rmse"} <= set(m)
        # the metrics of the stored test predictions, recomputed here
        z = np.load(tmp_path / mode / "test_scores.npz")
        np.testing.assert_array_equal(z["target"], setup.values[setup.test_index])
        rel = (z["pred"] - z["target"]) / z["target"]
        q25, q50, q75 = np.percentile(rel, [25, 50, 75])
        assert m["resolution"] == pytest.approx((q75 - q25) / 2, rel=1e-5)
        assert m["bias"] == pytest.approx(q50, rel=1e-5, abs=1e-7)
        covered = np.abs(z["pred"] - z["target"]) < z["sigma"]
        assert m["coverage"] == pytest.approx(covered.mean(), abs=1e-9)
        info = json.loads((tmp_path / mode / "run.json").read_text())
        assert info["kind"] == "regressor" and info["task_type"] == "regression"
        assert info["outputs"] == ["pred_nuPt", "sigma_nuPt"]
        assert info["target_scale"] > 0
        assert "regression head" in (tmp_path / mode / "MODEL_CARD.md").read_text()
    # the stored weights output physical units (the standardisation is folded in)
    res = results["finetune"]
    model, configs = load_run(tmp_path / "finetune")
    assert "regressor" in model.heads and configs.model.n_classes == 2
    z = np.load(tmp_path / "finetune" / "test_scores.npz")
    test_idx = setup.test_index
    x = torch.as_tensor(gen_data.tokens[test_idx])
    m = torch.as_tensor(gen_data.mask[test_idx])
    with torch.no_grad():
        out = model.heads["regressor"](model.encoder(x, m).embedding).numpy()
    np.testing.assert_allclose(out[:, 0], z["pred"], rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(out[:, 1], z["sigma"], rtol=1e-4, atol=1e-3)
    np.testing.assert_array_equal(z["target"], setup.values[test_idx])
    assert (z["sigma"] > 0).all()
    # the prediction lives on the target's scale (a standardised head would sit near 0)
    assert abs(np.median(z["pred"]) - np.median(z["target"])) < np.std(z["target"])
    # evaluate reads the run back with the type's metrics and figure
    ev = evaluate_run(tmp_path / "finetune", gen_data, out=tmp_path / "eval")
    assert ev["task_type"] == "regression"
    assert ev["resolution"] == pytest.approx(res.test_metrics["resolution"], rel=1e-4)
    assert (tmp_path / "eval" / "pred_vs_true.png").stat().st_size > 5_000


def test_huber_loss_trains_a_width_too(gen_data, pretrained_run, tmp_path):
    setup = prepare_finetune(nu_task(**{"options.loss": "huber"}), pretrained_run, gen_data)
    res = finetune(setup, tmp_path / "huber", mode="finetune", labels=60, seed=0)
    z = np.load(tmp_path / "huber" / "test_scores.npz")
    assert np.isfinite(z["sigma"]).all() and (z["sigma"] > 0).all()
    assert np.isfinite(res.best_val_loss)


def test_shards_without_targets_are_refused(gen_data, pretrained_run):
    bare = gen_data.take(np.arange(len(gen_data)))
    bare.values = {}
    with pytest.raises(TrainingError, match="carry no regression target 'GenTarget_nuPt'"):
        prepare_finetune(nu_task(), pretrained_run, bare)


def test_regression_label_efficiency_study(gen_data, pretrained_run, tmp_path):
    res = label_efficiency(nu_task(), pretrained_run, gen_data, tmp_path / "study")
    modes = {r["mode"] for r in res.rows}
    assert modes == {"linear-probe", "finetune", "scratch"}
    assert {e["n_labels"] for e in res.aggregate} == {60, res.aggregate[-1]["n_labels"]}
    table = (tmp_path / "study" / "results.md").read_text()
    assert "| mode | labels | seeds | resolution | bias | coverage" in table
    assert (tmp_path / "study" / "label_efficiency.png").stat().st_size > 5_000
    assert (tmp_path / "study" / "pred_vs_true.png").stat().st_size > 5_000
    payload = json.loads((tmp_path / "study" / "results.json").read_text())
    assert all("resolution_mean" in e for e in payload["aggregate"])
    # the reference rows are classification only
    with pytest.raises(ConfigError, match="does not apply to regression"):
        label_efficiency(nu_task(), pretrained_run, gen_data, tmp_path / "bad",
                         modes=["bdt-raw"])  # fmt: skip


def test_regression_metrics_by_hand():
    y = np.array([100.0, 100.0, 100.0, 100.0])
    pred = np.array([90.0, 100.0, 110.0, 120.0])
    m = regression_metrics(pred, np.full(4, 15.0), y)
    # relative errors -0.1, 0, 0.1, 0.2: quartiles -0.025 and 0.125 (numpy linear)
    assert m["resolution"] == pytest.approx(0.075)
    assert m["bias"] == pytest.approx(0.05)
    assert m["coverage"] == pytest.approx(0.75)  # |err| < 15 for three of four
    assert m["rmse"] == pytest.approx(np.sqrt((100 + 0 + 100 + 400) / 4))


@pytest.fixture(scope="module")
def regression_run(gen_data, pretrained_run, tmp_path_factory):
    """A fine-tuned W+jets/tt̄ neutrino-pT regressor and its setup."""
    setup = prepare_finetune(nu_task(), pretrained_run, gen_data)
    out = tmp_path_factory.mktemp("regression_run") / "finetune"
    finetune(setup, out, mode="finetune", labels=60, seed=0)
    return out, setup


def _wjets_file(gen_fileset):
    spec = json.loads(gen_fileset.read_text())
    name = next(n for n in spec if n.startswith("wjets"))
    return name, next(iter(spec[name]["files"]))


def _reference(setup, run_dir, file):
    """pred, sigma of the run on the events of ``file``, from the LabelledEvents tokens."""
    model, _ = load_run(run_dir)
    data = setup.data
    rows = np.flatnonzero(data.dataset_names() == data.datasets[data.dataset[0]])  # wjets first
    with torch.no_grad():
        emb = model.encoder(torch.as_tensor(data.tokens[rows]), torch.as_tensor(data.mask[rows]))
        out = model.heads["regressor"](emb.embedding).numpy()
    return data.event[rows], out


def test_scorer_columns_and_export(regression_run, gen_fileset, tmp_path):
    run_dir, setup = regression_run
    _, file = _wjets_file(gen_fileset)
    scorer = JetFMScorer(run_dir, device="cpu")
    assert scorer.fields == ["pred_nuPt", "sigma_nuPt", "n_tokens"]
    events = NanoEventsFactory.from_root(
        {file: "Events"}, schemaclass=JetFMNanoAODSchema, mode="eager"
    ).events()
    scores = scorer(events)
    event_ids, ref = _reference(setup, run_dir, file)
    np.testing.assert_array_equal(ak.to_numpy(events.event), event_ids)
    np.testing.assert_allclose(ak.to_numpy(scores.pred_nuPt), ref[:, 0], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(ak.to_numpy(scores.sigma_nuPt), ref[:, 1], rtol=1e-5, atol=1e-4)
    assert scores.pred_nuPt.layout.parameters["jetfm_model_hash"] == scorer.model_hash
    # the exported program outputs the same two columns
    out = export_model(run_dir, tmp_path / "export", formats=("torch.export",))
    manifest = read_manifest(out)
    assert manifest["class_names"] == ["pred_nuPt", "sigma_nuPt"]
    assert "regression value and width" in manifest["outputs"][0]["description"]
    program = load_exported_program(out).module()
    data = setup.data
    x, m = torch.as_tensor(data.tokens[:5]), torch.as_tensor(data.mask[:5])
    exported, _ = program(x, m)
    model, _ = load_run(run_dir)
    with torch.no_grad():
        direct = model.heads["regressor"](model.encoder(x, m).embedding)
    np.testing.assert_allclose(exported.detach().numpy(), direct.numpy(), rtol=1e-5, atol=1e-5)
    # the export scores like the run it came from
    again = JetFMScorer(out, device="cpu")(events)
    np.testing.assert_allclose(
        ak.to_numpy(again.pred_nuPt), ak.to_numpy(scores.pred_nuPt), rtol=1e-6
    )
    repo = export_model(run_dir, tmp_path / "triton", formats=("triton",))
    card = (repo / "MODEL_CARD.md").read_text()
    assert "jetfm event regression" in card and "regression value and width" in card
    # ONNX Runtime (the graph traced from the same weights) gives the same columns
    onnx = JetFMScorer(run_dir, device="cpu", backend="onnxruntime")(events)
    for column in ("pred_nuPt", "sigma_nuPt"):
        np.testing.assert_allclose(
            ak.to_numpy(onnx[column]), ak.to_numpy(scores[column]), rtol=1e-5, atol=1e-4
        )


def test_analysis_processor_fills_regression_columns(regression_run, gen_fileset):
    run_dir, setup = regression_run
    name, file = _wjets_file(gen_fileset)
    proc = ScoreAnalysisProcessor(run_dir, cut=40.0, return_scores=True, device="cpu")
    assert proc.score_field == "pred_nuPt" and proc.width_field == "sigma_nuPt"
    assert proc.signal is None and not proc.scored.per_class
    out, _ = run_coffea(
        proc, {name: {"files": {file: "Events"}}}, Execution(executor="iterative"), status=False
    )
    res = out[name]
    scores = res["scores"]
    assert set(scores.fields) >= {"pred_nuPt", "sigma_nuPt", "event"}
    n = len(scores)
    assert n == N_EVENTS and res["cutflow"]["events"] == n
    assert res["sigma"].sum().value == n and res["score"].sum().value <= n
    assert res["cutflow"]["pass"] == int((scores.pred_nuPt.to_numpy() > 40.0).sum())
    event_ids, ref = _reference(setup, run_dir, file)
    order = np.argsort(event_ids)
    np.testing.assert_allclose(scores.pred_nuPt.to_numpy(), ref[order, 0], rtol=1e-5, atol=1e-4)


@pytest.mark.gpu
def test_cuda_regression_outputs_reproducible_on_any_device(gen_data, pretrained_run, tmp_path):
    """Trained on the GPU (bf16): the stored pred/sigma are fp32, and the CPU reproduces
    them within 1e-5 (relative: the outputs are in GeV)."""
    setup = prepare_finetune(nu_task(**{"train.device": "cuda"}), pretrained_run, gen_data)
    assert setup.device.type == "cuda"
    res = finetune(setup, tmp_path / "gpu", mode="finetune", labels=60, seed=0, keep_model=True)
    z = np.load(tmp_path / "gpu" / "test_scores.npz")
    stored = np.stack([z["pred"], z["sigma"]], axis=1)
    kind = task_type_for(setup.task)
    on_gpu = predict_outputs(res.model, gen_data, setup.test_index, head=kind.head,
                             transform=kind.predict)  # fmt: skip
    np.testing.assert_allclose(on_gpu, stored, rtol=1e-6, atol=1e-5)
    model, _ = load_run(tmp_path / "gpu")  # the CPU
    on_cpu = predict_outputs(model, gen_data, setup.test_index, head=kind.head,
                             transform=kind.predict)  # fmt: skip
    np.testing.assert_allclose(on_cpu, stored, rtol=1e-5, atol=1e-4)


def test_shipped_top_pt_task_plans_on_generated_ttbar(gen_data):
    """ttbar_top_pt as shipped: lepton+jets selection, the hadronic top's pT defined only
    there; the W+jets sample is not a class of the task."""
    setup = plan_task("ttbar_top_pt", gen_data)
    per = setup.selection["per_class"]["ttbar"]
    assert per["before"] == N_EVENTS
    assert 0 < per["after"] < per["before"] and per["undefined_target"] > 0
    chosen = setup.targets >= 0
    assert chosen.sum() == per["after"]
    assert np.isfinite(setup.values[chosen]).all() and (setup.values[chosen] > 0).all()
    assert (gen_data.label[chosen] == 0).all()


def test_cli_finetune_and_evaluate_a_regression(gen_fileset, pretrained_run, tmp_path):
    runner = CliRunner()
    run = tmp_path / "cli"
    common = ["--pretrained", str(pretrained_run), "--fileset", str(gen_fileset)]
    res = runner.invoke(
        main,
        ["finetune", *common, "--task", "wjets_nu_pt", "--out", str(run), "--mode",
         "linear-probe", "--labels", "60", "--max-steps", "4", "--device", "cpu"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "test resolution" in res.output and "coverage" in res.output
    res = runner.invoke(main, ["evaluate", str(run), "--fileset", str(gen_fileset)])
    assert res.exit_code == 0, res.output
    assert "resolution" in res.output and (run / "eval" / "pred_vs_true.png").is_file()
