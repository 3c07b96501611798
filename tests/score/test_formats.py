"""The export formats registry: the CLI's --format choices, requirements, and adding one."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from jetfm_coffea.cli import main
from jetfm_coffea.errors import ConfigError
from jetfm_coffea.score.export import EXPORT_FORMATS, export_model, read_manifest
from jetfm_coffea.score.formats import (
    EXPORTERS,
    register_exporter,
    resolve_exporters,
)


def test_builtin_formats_and_requirements():
    assert list(EXPORTERS)[:3] == ["torch.export", "onnx", "triton"] == list(EXPORT_FORMATS)
    assert [e.name for e in resolve_exporters(("triton",))] == ["onnx", "triton"]
    assert EXPORTERS["onnx"].description.startswith("ONNX")
    with pytest.raises(ConfigError, match=r"unknown export format 'tflite'; registered: torch"):
        resolve_exporters(("tflite",))
    with pytest.raises(ConfigError, match="unknown export format 'nothing'"):
        register_exporter("x", requires=("nothing",))(lambda ctx: {})
    assert "x" not in EXPORTERS
    with pytest.raises(ConfigError, match="export format named 'onnx' is already registered"):
        register_exporter("onnx")(lambda ctx: {})


@pytest.fixture
def features_exporter():
    """A new export format, added the way a user would: one decorated function."""

    @register_exporter("features")
    def features(ctx):
        """The token feature names, one a line."""
        (ctx.out / "features.txt").write_text("\n".join(ctx.info.token_config.feature_names))
        return {"features.txt": "features"}

    yield "features"
    EXPORTERS.unregister("features")  # keep the registry of the other tests built-in only


def test_an_added_exporter_reaches_the_cli_and_the_manifest(features_exporter, tiny_run, tmp_path):
    result = CliRunner().invoke(main, ["export", "--help"])
    assert "torch.export|onnx|triton|features" in result.output
    out = tmp_path / "export"
    args = ["export", str(tiny_run), "--out", str(out), "--format", "features"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    manifest = read_manifest(out)  # validates, every hash checked
    assert manifest["files"]["features.txt"]["role"] == "features"
    assert (out / "features.txt").read_text().splitlines()[0] == "log_pt"
    bad = CliRunner().invoke(main, [*args[:4], "--format", "tflite"])
    assert bad.exit_code != 0 and "'tflite' is not one of" in bad.output


def test_triton_folder_and_name_checks(tiny_run, tmp_path):
    with pytest.raises(ValueError, match="Triton model name 'a b'"):
        export_model(tiny_run, tmp_path / "repo", formats=("triton",), triton_name="a b")
    folder = export_model(tiny_run, tmp_path / "repo", formats=("triton",), triton_name="m1")
    assert folder == tmp_path / "repo" / "m1"
    roles = {
        n: e["role"] for n, e in json.loads((folder / "manifest.json").read_text())["files"].items()
    }
    assert roles["model.onnx"] == "onnx" and roles["config.pbtxt"] == "triton_config"
    assert roles["MODEL_CARD.md"] == "model_card"
