"""The ONNX Runtime backend of the scorer (the CPU speed option)."""

from __future__ import annotations

import numpy as np
import pytest

from jetfm_coffea.errors import ConfigError
from jetfm_coffea.score import JetFMScorer
from jetfm_coffea.score.export import export_model

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")


def test_onnxruntime_backend_matches_torch(tiny_run, tmp_path, singlemu_events):
    torch_scores = JetFMScorer(tiny_run, embedding=True)(singlemu_events)
    ort = JetFMScorer(tiny_run, backend="onnxruntime", embedding=True, num_threads=1)
    scores = ort(singlemu_events)
    assert scores.layout.parameters["jetfm_backend"] == "onnxruntime"
    for name in ("score_signal", "embedding"):  # every event, real 2012 data
        np.testing.assert_allclose(
            scores[name].to_numpy(), torch_scores[name].to_numpy(), atol=1e-5, rtol=0
        )
    exported = export_model(tiny_run, tmp_path / "exp", formats=("onnx",))  # its model.onnx
    again = JetFMScorer(exported, backend="onnxruntime")(singlemu_events)
    np.testing.assert_allclose(
        again.score_signal.to_numpy(), scores.score_signal.to_numpy(), atol=1e-6, rtol=0
    )
    with pytest.raises(ConfigError, match="backend 'tvm'"):
        JetFMScorer(tiny_run, backend="tvm")
    with pytest.raises(ConfigError, match="bf16"):
        JetFMScorer(tiny_run, backend="onnxruntime", precision="bf16")


def test_cli_backend_option(tiny_run, ttbar2015, tmp_path):
    import json

    from click.testing import CliRunner

    from jetfm_coffea.cli import main

    out = tmp_path / "out"
    args = ["score", str(ttbar2015), "--model", str(tiny_run), "--out", str(out)]
    result = CliRunner().invoke(main, [*args, "--backend", "onnxruntime"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "summary.json").read_text())["events"] == 200


def test_onnxruntime_threads_do_not_spin(tiny_run):
    """Sleeping pool threads (issue 27): spinning ones steal a shared CPU's cores."""
    from jetfm_coffea.score.artifact import read_model_info
    from jetfm_coffea.score.onnx_runtime import OnnxRuntimeModel

    model = OnnxRuntimeModel(read_model_info(tiny_run), threads=2)
    options = model.session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
