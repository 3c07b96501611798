"""The three modes: frozen encoder, lower encoder LR, random init; early stopping; run dirs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from jetfm_coffea.errors import TokenConfigMismatchError, TrainingError
from jetfm_coffea.finetune import (
    build_classifier,
    build_finetune_optimizer,
    evaluate_run,
    finetune,
    load_pretrained,
    load_task_config,
    predict,
    prepare_finetune,
)
from jetfm_coffea.tokens import TokenConfig
from jetfm_coffea.train import load_run, read_metrics
from tests.metric_checks import run_auc

from .conftest import tiny_task


@pytest.fixture(scope="module")
def setup(pretrained_run, labelled):
    return prepare_finetune(tiny_task(), pretrained_run, labelled)


def _encoder(state):
    return {k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")}


def test_linear_probe_keeps_the_encoder_frozen(setup, tmp_path):
    pre = setup.pretrained
    model = build_classifier(pre, 2, "linear-probe")
    assert not any(p.requires_grad for p in model.encoder.parameters())
    opt, _ = build_finetune_optimizer(model, setup.task, "linear-probe", 10)
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    assert not in_opt & {id(p) for p in model.encoder.parameters()}
    assert {id(p) for p in model.heads.parameters()} <= in_opt

    res = finetune(setup, tmp_path / "probe", mode="linear-probe", labels=40, seed=0)
    assert res.steps > 0
    saved = load_file(str(tmp_path / "probe" / "model.safetensors"))
    for name, value in _encoder(saved).items():
        torch.testing.assert_close(value, pre.encoder_state[name], rtol=0, atol=0, msg=name)
    head0 = build_classifier(pre, 2, "linear-probe", seed=0).heads.state_dict()
    assert any(
        not torch.equal(saved[f"heads.{k}"], v) for k, v in head0.items()
    )  # the head did learn


def test_finetune_trains_the_encoder_at_a_lower_rate(setup, tmp_path):
    task = setup.task
    model = build_classifier(setup.pretrained, 2, "finetune")
    opt, _ = build_finetune_optimizer(model, task, "finetune", 10)
    lrs = {g["name"]: g["lr"] for g in opt.param_groups}
    assert lrs["encoder"] == pytest.approx(task.optim.lr * task.optim.encoder_lr_factor)
    assert lrs["encoder"] < lrs["head"] == pytest.approx(task.optim.lr)
    n_enc = sum(len(g["params"]) for g in opt.param_groups if g["name"] == "encoder")
    assert n_enc == len(list(model.encoder.parameters()))
    scratch_opt, _ = build_finetune_optimizer(model, task, "scratch", 10)
    assert {g["lr"] for g in scratch_opt.param_groups} == {task.optim.lr}

    res = finetune(setup, tmp_path / "ft", mode="finetune", labels=40, seed=0)
    saved = _encoder(load_file(str(tmp_path / "ft" / "model.safetensors")))
    changed = [k for k, v in saved.items() if not torch.equal(v, setup.pretrained.encoder_state[k])]
    assert changed, "fine-tuning left the encoder untouched"
    records = read_metrics(tmp_path / "ft")
    assert any("val_loss" in r for r in records) and any("loss" in r for r in records)
    assert res.test_metrics["n_events"] == len(setup.test_index)


def test_scratch_is_the_same_architecture_with_random_weights(setup):
    pre = setup.pretrained
    scratch = build_classifier(pre, 2, "scratch", seed=0).encoder.state_dict()
    tuned = build_classifier(pre, 2, "finetune", seed=0).encoder.state_dict()
    assert scratch.keys() == tuned.keys() == pre.encoder_state.keys()
    for k in scratch:
        assert scratch[k].shape == tuned[k].shape
        torch.testing.assert_close(tuned[k], pre.encoder_state[k], rtol=0, atol=0)
    differ = [k for k in scratch if not torch.equal(scratch[k], pre.encoder_state[k])]
    assert len(differ) > len(scratch) // 2
    again = build_classifier(pre, 2, "scratch", seed=0).encoder.state_dict()
    other = build_classifier(pre, 2, "scratch", seed=1).encoder.state_dict()
    assert all(torch.equal(scratch[k], again[k]) for k in scratch)  # seeded
    assert any(not torch.equal(scratch[k], other[k]) for k in scratch)


def test_early_stopping_keeps_the_best_checkpoint(setup, labelled, pretrained_run, tmp_path):
    noise = labelled.take(np.arange(len(labelled)))
    noise.label = np.random.default_rng(0).integers(0, 2, len(noise))  # unlearnable labels
    task = tiny_task(max_epochs=100, max_steps=200, patience=2, eval_every=1)
    task["optim"]["lr"] = 3e-2
    s = prepare_finetune(task, setup.pretrained, noise)
    res = finetune(s, tmp_path / "es", mode="scratch", labels="all", seed=0)
    assert res.stopped_early and res.steps < 200
    vals = [r for r in read_metrics(tmp_path / "es") if "val_loss" in r]
    assert len(vals) == res.steps  # one validation per step
    best = min(vals, key=lambda r: r["val_loss"])
    assert res.best_step == best["step"] < res.steps
    assert res.best_val_loss == pytest.approx(best["val_loss"])
    assert [r["step"] for r in vals if r.get("best")][-1] == res.best_step
    # the saved weights are those of the best step: they reproduce its validation loss
    model, configs = load_run(tmp_path / "es")
    assert configs.info["best_step"] == res.best_step and configs.info["stopped_early"]
    _, val_idx = s.select(len(s.pool("train")), 0)
    probs = predict(model, noise, val_idx)
    y = s.targets[val_idx]
    train = s.pool("train")
    sums = np.bincount(s.targets[train], weights=noise.weight[train])  # balanced class weights
    w = noise.weight[val_idx] * (sums.sum() / (2 * sums))[y]
    loss = -(w * np.log(probs[np.arange(len(y)), y])).sum() / w.sum()
    assert loss == pytest.approx(res.best_val_loss, rel=1e-4)


def test_classifier_run_loads_and_evaluates(setup, labelled, tmp_path):
    run = tmp_path / "clf"
    res = finetune(setup, run, mode="finetune", labels="all", seed=1)
    for name in (
        "config.yaml",
        "model_config.json",
        "token_config.yaml",
        "task_config.yaml",
        "model.safetensors",
        "metrics.jsonl",
        "run.json",
        "MODEL_CARD.md",
        "test_metrics.json",
        "test_scores.npz",
    ):
        assert (run / name).is_file(), name
    assert (run / "task_config.yaml").read_text().startswith(f"# hash: {setup.task.hash()}")
    model, configs = load_run(run)
    assert list(model.heads) == ["classifier"] and model.config.n_classes == 2
    info = configs.info
    assert info["kind"] == "classifier" and info["classes"] == ["collisions", "ttbar"]
    assert info["pretrained"]["weights_sha256"] == setup.pretrained.weights_sha256
    assert info["n_labels"] == len(setup.pool("train"))
    scores = np.load(run / "test_scores.npz")
    probs = predict(model, labelled, setup.test_index)
    np.testing.assert_allclose(probs, scores["probs"], atol=1e-5)
    with pytest.raises(TrainingError, match="already holds a run"):
        finetune(setup, run, mode="finetune", labels=40)

    ev = evaluate_run(run, labelled, out=tmp_path / "eval")
    assert ev["n_events"] == len(setup.test_index)
    assert ev["auc"] == pytest.approx(res.test_metrics["auc"], abs=1e-6)
    # both against the stored test scores, recomputed here (pair counting, not sklearn)
    sig = setup.task.signal_index
    assert ev["auc"] == pytest.approx(run_auc(run, sig), abs=1e-6)
    np.testing.assert_array_equal(scores["target"], setup.targets[setup.test_index])
    assert np.asarray(ev["confusion"]).sum() == ev["n_events"]
    is_sig = scores["target"] == sig
    brier = np.mean((scores["probs"][:, sig] - is_sig) ** 2)
    assert ev["calibration"]["brier"] == pytest.approx(brier, rel=1e-5)
    for name in ("metrics.json", "metrics.md", "roc.png", "confusion.png", "calibration.png"):
        assert (tmp_path / "eval" / name).is_file(), name
    with pytest.raises(TrainingError, match="not a classifier run"):
        evaluate_run(setup.pretrained.run_dir, labelled)


def test_multiclass(setup, labelled, tmp_path):
    data = labelled.take(np.arange(len(labelled)))
    data.label = np.where(labelled.label == 1, 1, 10 + labelled.event % 2)  # 3 classes
    task = tiny_task()
    task["classes"] = {"even": 10, "odd": [11], "ttbar": 1}
    s = prepare_finetune(task, setup.pretrained, data)
    res = finetune(s, tmp_path / "mc", mode="finetune", labels=60, seed=0)
    m = res.test_metrics
    assert res.probs.shape == (len(s.test_index), 3)
    assert "auc_ovr_macro" in m and m["signal"] == "ttbar"
    assert sum(m["n_per_class"].values()) == m["n_events"]
    ev = evaluate_run(tmp_path / "mc", data, plots=False, out=tmp_path / "mc-eval")
    assert np.asarray(ev["confusion"]).shape == (3, 3)
    model, _ = load_run(tmp_path / "mc")
    assert model.config.n_classes == 3


def test_bad_input_fails_before_training(setup, labelled, pretrained_run, tmp_path):
    missing = tiny_task()
    missing["classes"] = {"collisions": 0, "wjets": 5}
    with pytest.raises(TrainingError, match=r"\['wjets'\].*missing from the data"):
        prepare_finetune(missing, pretrained_run, labelled)
    other = labelled.take(np.arange(len(labelled)))
    other.token_config = TokenConfig(max_tokens=12)  # same features, different config
    with pytest.raises(TokenConfigMismatchError, match="max_tokens"):
        prepare_finetune(tiny_task(), pretrained_run, other)
    n_train = len(setup.pool("train"))
    with pytest.raises(TrainingError, match=f"label count 100000 is larger than the {n_train}"):
        prepare_finetune(tiny_task(), pretrained_run, labelled, labels=[40, 100_000])
    with pytest.raises(TrainingError, match="larger than"):
        finetune(setup, tmp_path / "never", labels=n_train + 1)
    with pytest.raises(TrainingError, match="smaller than the number of classes"):
        finetune(setup, tmp_path / "never", labels=1)
    assert not (tmp_path / "never").exists()
    one_class = labelled.take(np.flatnonzero(labelled.label == 0))
    with pytest.raises(TrainingError, match="missing from the data"):
        prepare_finetune(tiny_task(), pretrained_run, one_class)
    tiny = labelled.take(np.array([0, 1, 2, N - 1]) if (N := len(labelled)) else None)
    with pytest.raises(TrainingError, match="split has no event of classes"):
        prepare_finetune(tiny_task(), pretrained_run, tiny)
    pre = load_pretrained(pretrained_run)
    assert load_task_config(tiny_task()).n_classes == 2 and pre.run_dir is not None
    info = json.loads((pretrained_run / "run.json").read_text())
    assert info.get("kind") != "classifier"


@pytest.mark.gpu
def test_cuda_finetune_scores_equal_predict_on_any_device(pretrained_run, labelled, tmp_path):
    """Trained on the GPU (bf16): the stored test scores are fp32 and reproducible anywhere."""
    s = prepare_finetune(tiny_task(device="cuda"), pretrained_run, labelled)
    assert s.device.type == "cuda"
    res = finetune(s, tmp_path / "gpu", mode="finetune", labels="all", seed=0, keep_model=True)
    scores = np.load(tmp_path / "gpu" / "test_scores.npz")["probs"]
    on_gpu = predict(res.model, labelled, s.test_index)  # the model's device: cuda
    np.testing.assert_allclose(on_gpu, scores, atol=1e-6)
    model, _ = load_run(tmp_path / "gpu")  # load_run: the CPU unless asked
    assert next(model.parameters()).device.type == "cpu"
    np.testing.assert_allclose(predict(model, labelled, s.test_index), scores, atol=1e-5)
