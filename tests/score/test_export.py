"""Portable export: manifest schema, hashes, torch.export conformance, refusal of tampering."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
import torch

from jetfm_coffea.errors import ModifiedWeightsError, SchemaValidationError
from jetfm_coffea.finetune.testing import make_classifier_run
from jetfm_coffea.schema import validate
from jetfm_coffea.score import JetFMScorer, ModelFileError, load_model, read_model_info
from jetfm_coffea.score.export import export_model, load_exported_program, read_manifest
from jetfm_coffea.score.formats import ScoringModule
from jetfm_coffea.tokens import build_tokens


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    return export_model(tiny_run, tmp_path_factory.mktemp("export") / "tiny", model_version="1.2.0")


def test_manifest_validates_and_records_the_model(exported, tiny_run):
    manifest = read_manifest(exported)
    validate(manifest, "model_manifest")
    info = read_model_info(tiny_run)
    assert manifest["model_hash"] == info.model_hash  # weights copied byte for byte
    assert manifest["model_version"] == "1.2.0"
    assert manifest["class_names"] == ["background", "signal"]
    assert manifest["inputs"][0]["shape"] == ["batch", 23, 9]
    assert set(manifest["files"]) >= {"model.safetensors", "model.pt2", "token_config.yaml"}
    broken = {**manifest, "model_hash": "xyz"}
    with pytest.raises(SchemaValidationError, match=r"\$\.model_hash"):
        validate(broken, "model_manifest")


def _real_inputs(info, *event_sets):
    """Token tensors of real CMS events (the score tests' ttbar and 2012 SingleMu)."""
    shards = [build_tokens(events, info.token_config) for events in event_sets]
    x = torch.from_numpy(np.concatenate([s.tokens for s in shards]))
    return x, torch.from_numpy(np.concatenate([s.mask for s in shards]))


def test_exported_program_equals_eager(exported, ttbar_events, singlemu_events):
    """torch.export and TorchScript (the ONNX exporter's trace) give the eager outputs
    within 1e-5 on real events, at two batch sizes."""
    info = read_model_info(exported)
    x, m = _real_inputs(info, ttbar_events, singlemu_events)
    program = load_exported_program(exported, expected_hash=info.model_hash)
    module = ScoringModule(load_model(info)).eval()
    with torch.no_grad():
        eager = module(x, m)
        with warnings.catch_warnings():  # deprecated in torch 2.13, still what ONNX traces
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            traced = torch.jit.trace(module, (x[:4], m[:4]), check_trace=False)
        for compiled in (program.module()(x, m), traced(x, m)):
            for a, b in zip(compiled, eager, strict=True):
                np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5, rtol=0)
        odd_batch = program.module()(x[:3], m[:3])  # dynamic batch size
    np.testing.assert_allclose(odd_batch[0].numpy(), eager[0][:3].numpy(), atol=1e-5, rtol=0)


def test_scorer_accepts_the_export(exported, tiny_run, ttbar_events):
    a = JetFMScorer(exported)(ttbar_events)
    b = JetFMScorer(tiny_run)(ttbar_events)
    np.testing.assert_array_equal(a.score_signal.to_numpy(), b.score_signal.to_numpy())
    assert a.layout.parameters["jetfm_model_version"] == "1.2.0"
    assert a.layout.parameters["jetfm_model_hash"] == b.layout.parameters["jetfm_model_hash"]


@pytest.mark.parametrize("name", ["model.pt2", "token_config.yaml", "model.safetensors"])
def test_tampered_export_is_refused(exported, tmp_path, name):
    copy = shutil.copytree(exported, tmp_path / "copy")
    target = copy / name
    target.write_bytes(target.read_bytes() + b" ")
    # the weights: ModifiedWeightsError (recorded hash); other files: ModelFileError
    error = ModifiedWeightsError if name == "model.safetensors" else ModelFileError
    with pytest.raises(error, match=rf"{name}: SHA-256 .* does not match .*manifest"):
        JetFMScorer(copy)
    with pytest.raises(error):
        load_exported_program(copy)


def test_invalid_manifest_is_refused(exported, tmp_path):
    copy = shutil.copytree(exported, tmp_path / "copy")
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["files"]["model.pt2"]["sha256"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError, match="invalid manifest"):
        read_manifest(copy)
    with pytest.raises(FileExistsError):
        export_model(exported, copy)


def _onnx_vs_eager(run, out, events):
    """Largest |ONNX Runtime - eager torch| over scores and embeddings, two batch sizes."""
    ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    out = export_model(run, out, formats=("onnx",))
    assert read_manifest(out)["files"]["model.onnx"]["role"] == "onnx"
    info = read_model_info(out)
    x, m = _real_inputs(info, *events)
    with torch.no_grad():
        eager = ScoringModule(load_model(info)).eval()(x, m)
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    worst = 0.0
    for n in (len(x), 3):
        got = session.run(None, {"tokens": x[:n].numpy(), "mask": m[:n].numpy()})
        for a, b in zip(got, eager, strict=True):
            worst = max(worst, float(np.abs(a - b[:n].numpy()).max()))
    return worst


def test_onnx_export_equals_eager(tiny_run, tmp_path, ttbar_events, singlemu_events):
    """The ONNX file, run by onnxruntime at two batch sizes, gives the eager outputs within
    1e-5 on 2,200 real CMS events (pair features without float32 cancellation)."""
    worst = _onnx_vs_eager(tiny_run, tmp_path / "onnx", (ttbar_events, singlemu_events))
    assert worst <= 1e-5, worst


def test_legacy_pair_features_miss_1e5(tmp_path, ttbar_events, singlemu_events):
    """Why version 2 exists, and proof that the 1e-5 test above can fail: a model with
    the legacy pair features (ln m² from (E1 + E2)² - |p1 + p2|², which cancels in
    float32) misses 1e-5 between ONNX Runtime and torch on the same real events."""
    legacy = make_classifier_run(tmp_path / "legacy", "tiny", seed=1, pair_version=1)
    worst = _onnx_vs_eager(legacy, tmp_path / "onnx", (ttbar_events, singlemu_events))
    assert worst > 1e-5, worst


def test_old_run_keeps_its_pair_features(tmp_path, ttbar_events):
    """A run written before ``pair_version`` existed (no such key in model_config.json)
    loads and scores with the legacy definition it was trained with; its export and
    model card keep saying so."""
    legacy = make_classifier_run(tmp_path / "legacy", "tiny", seed=1, pair_version=1)
    assert "pair_version" not in json.loads((legacy / "model_config.json").read_text())
    info = read_model_info(legacy)
    assert info.model_config.pair_version == 1
    scores = JetFMScorer(legacy)(ttbar_events).score_signal.to_numpy()
    shard = build_tokens(ttbar_events, info.token_config)
    x, m = torch.from_numpy(shard.tokens), torch.from_numpy(shard.mask)
    model = load_model(info)
    with torch.no_grad():
        own = ScoringModule(model).eval()(x, m)[0][:, 1].numpy()
        model.encoder.config = model.config.model_copy(update={"pair_version": 2})
        other = ScoringModule(model).eval()(x, m)[0][:, 1].numpy()
    np.testing.assert_allclose(scores, own, atol=2e-6, rtol=0)
    assert np.abs(other - own).max() > 1e-6  # the definition is what the scorer used
    repo = export_model(legacy, tmp_path / "repo", formats=("triton",))
    assert read_model_info(repo).model_config.pair_version == 1
    assert "pair_version 1 (legacy" in (repo / "MODEL_CARD.md").read_text()
