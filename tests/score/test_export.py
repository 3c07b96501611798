"""Portable export: manifest schema, hashes, torch.export conformance, refusal of tampering."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from jetfm_coffea.errors import ModifiedWeightsError, SchemaValidationError
from jetfm_coffea.schema import validate
from jetfm_coffea.score import JetFMScorer, ModelFileError, load_model, read_model_info
from jetfm_coffea.score.export import (
    ScoringModule,
    export_model,
    load_exported_program,
    read_manifest,
)
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


def test_exported_program_equals_eager(exported, ttbar_events):
    info = read_model_info(exported)
    shard = build_tokens(ttbar_events, info.token_config)
    x, m = torch.from_numpy(shard.tokens), torch.from_numpy(shard.mask)
    program = load_exported_program(exported, expected_hash=info.model_hash)
    with torch.no_grad():
        eager = ScoringModule(load_model(info)).eval()(x, m)
        compiled = program.module()(x, m)
        odd_batch = program.module()(x[:3], m[:3])  # dynamic batch size
    for a, b in zip(compiled, eager, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)
    np.testing.assert_allclose(odd_batch[0].numpy(), eager[0][:3].numpy(), atol=1e-5)


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


def test_onnx_export_equals_eager(tiny_run, tmp_path, ttbar_events):
    """The ONNX file, run by onnxruntime at two batch sizes, gives the eager outputs:
    almost every value to 1e-4, and none further off than the eager model itself moves
    when its float32 inputs change by one unit in the last place (the pair feature
    ln m^2 = ln(E^2 - p^2) cancels for near-collinear pairs)."""
    ort = pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    out = export_model(tiny_run, tmp_path / "onnx", formats=("onnx",))
    assert read_manifest(out)["files"]["model.onnx"]["role"] == "onnx"
    info = read_model_info(out)
    shard = build_tokens(ttbar_events, info.token_config)
    x, m = torch.from_numpy(shard.tokens), torch.from_numpy(shard.mask)
    module = ScoringModule(load_model(info)).eval()
    generator = torch.Generator().manual_seed(0)
    ulp = x * 1.2e-7 * torch.randn(x.shape, generator=generator)
    with torch.no_grad():
        eager, nudged = module(x, m), module(x + ulp, m)
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    for n in (len(x), 3):
        got = session.run(None, {"tokens": shard.tokens[:n], "mask": shard.mask[:n]})
        for a, b, c in zip(got, eager, nudged, strict=True):
            diff = np.abs(a - b[:n].numpy())
            floor = np.abs(c[:n].numpy() - b[:n].numpy()).max()
            assert diff.max() <= max(floor, 1e-5), (diff.max(), floor)
            assert np.mean(diff < 1e-4) > 0.95
