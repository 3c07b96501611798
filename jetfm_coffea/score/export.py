"""Portable model export: safetensors + configs + a hashed JSON manifest, plus compiled programs.

An export directory::

    OUT/manifest.json        schema ``model_manifest`` 1.0.0: inputs, outputs, classes,
                             token config, SHA-256 of every file, the model hash
    OUT/model.safetensors    weights, byte-identical to the source run (same model hash)
    OUT/model_config.json    architecture
    OUT/token_config.yaml    how to build the inputs (jetfm_coffea.tokens.build_tokens)
    OUT/model.pt2            torch.export program: (tokens, mask) -> (scores, embedding)
    OUT/model.onnx           the same as ONNX (only when ``onnx`` is installed)

The export is itself a scoring model directory: :class:`~jetfm_coffea.score.JetFMScorer`
accepts it and checks every hash in the manifest first. ``model.pt2`` is for use
outside this package (C++/AOTInductor, a Triton server behind coffea's
``triton_wrapper``); note that ``torch.export.load`` unpickles its constants, so
:func:`load_exported_program` loads it only after its SHA-256 matched the manifest.
"""

from __future__ import annotations

import json
import platform
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from jetfm_coffea.score.artifact import (
    MANIFEST,
    MODEL_CONFIG,
    TOKEN_CONFIG,
    WEIGHTS,
    ModelInfo,
    file_sha256,
    load_model,
    read_model_info,
)
from jetfm_coffea.score.errors import ModelFileError
from jetfm_coffea.selection.datasheet import DATA_SHEET_FILE, read_data_sheet

__all__ = [
    "EXPORT_FORMATS",
    "ScoringModule",
    "export_model",
    "load_exported_program",
    "read_manifest",
]

PROGRAM = "model.pt2"
ONNX = "model.onnx"
EXPORT_FORMATS = ("torch.export", "onnx")
MANIFEST_FORMAT = "jetfm-scoring-model"


class ScoringModule(nn.Module):
    """``(tokens [B,T,F] float32, mask [B,T] bool) -> (scores [B,C], embedding [B,D])``.

    Scores are the softmax of the classification head, as in the scorer's columns.
    """

    def __init__(self, model: Any):
        super().__init__()
        self.encoder = model.encoder
        self.classifier = model.heads["classifier"]

    def forward(
        self, tokens: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.encoder(tokens, mask).embedding
        return torch.softmax(self.classifier(emb), dim=-1), emb


def _manifest(info: ModelInfo, files: dict[str, dict[str, Any]], version: str) -> dict:
    from jetfm_coffea import __version__

    cfg, tok = info.model_config, info.token_config
    return {
        "schema_version": "1.0.0",
        "format": MANIFEST_FORMAT,
        "model_hash": info.model_hash,
        "model_version": version,
        "model_config_hash": cfg.hash(),
        "token_config_hash": tok.hash(),
        "class_names": list(info.class_names),
        "inputs": [
            {
                "name": "tokens",
                "dtype": "float32",
                "shape": ["batch", tok.n_tokens, len(tok.features)],
                "description": "event tokens from jetfm_coffea.tokens.build_tokens "
                "(padding slots all zero, valid tokens first)",
            },
            {
                "name": "mask",
                "dtype": "bool",
                "shape": ["batch", tok.n_tokens],
                "description": "True for real objects",
            },
        ],
        "outputs": [
            {
                "name": "scores",
                "dtype": "float32",
                "shape": ["batch", cfg.n_classes],
                "description": "softmax class probabilities, in class_names order",
            },
            {
                "name": "embedding",
                "dtype": "float32",
                "shape": ["batch", cfg.dim],
                "description": "pooled event embedding",
            },
        ],
        "feature_names": tok.feature_names,
        "n_tokens": tok.n_tokens,
        "token_config": tok.model_dump(mode="json"),
        "files": files,
        "created_with": {
            "jetfm_coffea": __version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
    }


def export_model(
    source: str | Path,
    out: str | Path,
    *,
    formats: tuple[str, ...] = ("torch.export",),
    model_version: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Export a scoring model (run directory or export) to ``out``; returns ``out``.

    ``formats``: compiled programs to add (``"torch.export"``, ``"onnx"``; ONNX needs the
    ``onnx`` extra). The manifest is validated against ``schemas/1.0.0/model_manifest.json``
    before it is written, last, so a directory with a manifest is complete.
    """
    from jetfm_coffea.schema import validate

    unknown = set(formats) - set(EXPORT_FORMATS)
    if unknown:
        raise ValueError(f"unknown export formats {sorted(unknown)}; choose from {EXPORT_FORMATS}")
    info = read_model_info(source)
    if not info.has_classifier:
        raise ModelFileError(info.path, "has no classification head to export")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out} exists and is not empty (overwrite=True replaces it)")
        if out.resolve() == Path(info.path):
            raise ValueError("cannot export a model onto itself")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    src = Path(info.path)
    shutil.copyfile(src / WEIGHTS, out / WEIGHTS)
    shutil.copyfile(src / MODEL_CONFIG, out / MODEL_CONFIG)
    (out / TOKEN_CONFIG).write_text(info.token_config.to_yaml())
    model = load_model(info, "cpu")
    module = ScoringModule(model).eval()
    n, t, f = 4, info.token_config.n_tokens, len(info.token_config.features)
    example = (torch.zeros(n, t, f), torch.zeros(n, t, dtype=torch.bool))
    example[1][:, 0] = True
    roles = {WEIGHTS: "weights", MODEL_CONFIG: "model_config", TOKEN_CONFIG: "token_config"}
    sheet = read_data_sheet(src)  # what the encoder was pretrained on, carried along
    if sheet is not None:
        (out / DATA_SHEET_FILE).write_text(json.dumps(sheet, indent=1) + "\n")
        roles[DATA_SHEET_FILE] = "data_sheet"
    if "torch.export" in formats:
        batch = torch.export.Dim("batch", min=1, max=1 << 20)
        dynamic = {"tokens": {0: batch}, "mask": {0: batch}}
        program = torch.export.export(module, example, dynamic_shapes=dynamic)
        torch.export.save(program, out / PROGRAM)
        roles[PROGRAM] = "torch.export"
    if "onnx" in formats:
        from jetfm_coffea._optional import import_optional

        import_optional("onnx", extra="onnx")
        # the TorchScript exporter: the dynamo one (torch 2.13) cannot decompose the
        # attention's reshape with a dynamic batch; tracing is exact here (no
        # data-dependent control flow; the conformance test runs onnxruntime)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", UserWarning)  # constant-folding notes
            # ONNX has had Sinh since opset 9; the TorchScript exporter lacks the mapping
            torch.onnx.register_custom_op_symbolic("aten::sinh", _onnx_sinh, 9)
            torch.onnx.export(
                module,
                example,
                str(out / ONNX),
                input_names=["tokens", "mask"],
                output_names=["scores", "embedding"],
                dynamic_axes={"tokens": {0: "batch"}, "mask": {0: "batch"}},
                dynamo=False,
            )
        roles[ONNX] = "onnx"
    files = {
        name: {"sha256": file_sha256(out / name), "size": (out / name).stat().st_size, "role": role}
        for name, role in roles.items()
    }
    manifest = _manifest(info, files, model_version or info.model_version)
    validate(manifest, "model_manifest", name=str(out / MANIFEST))
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return out


def _onnx_sinh(g: Any, x: Any) -> Any:
    return g.op("Sinh", x)


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The validated manifest of an export directory, every file hash checked."""
    info = read_model_info(path)
    if info.manifest is None:
        raise ModelFileError(str(path), f"no {MANIFEST}: not an export directory")
    return info.manifest


def load_exported_program(path: str | Path, expected_hash: str | None = None) -> Any:
    """Load ``model.pt2`` of an export, after checking every hash in its manifest.

    ``torch.export.load`` unpickles the program's constants, so this is only done for
    files whose SHA-256 matches a manifest that validates (and ``expected_hash``,
    the model hash, when given).
    """
    info = read_model_info(path, expected_hash)
    if info.manifest is None or PROGRAM not in info.manifest["files"]:
        raise ModelFileError(str(path), f"no {PROGRAM} listed in a {MANIFEST}")
    return torch.export.load(Path(path) / PROGRAM)
