"""Portable model export: safetensors + configs + a hashed JSON manifest, plus compiled programs.

An export directory::

    OUT/manifest.json        schema ``model_manifest`` 1.0.0: inputs, outputs, classes,
                             token config, SHA-256 of every file, the model hash
    OUT/model.safetensors    weights, byte-identical to the source run (same model hash)
    OUT/model_config.json    architecture
    OUT/token_config.yaml    how to build the inputs (jetfm_coffea.tokens.build_tokens)
    OUT/model.pt2            torch.export program: (tokens, mask) -> (scores, embedding)
    OUT/model.onnx           the same as ONNX (only when ``onnx`` is installed)

``formats=("triton",)`` makes ``OUT`` a Triton model repository and writes the export
into ``OUT/<triton_name>/`` with ``config.pbtxt``, ``1/model.onnx`` and ``MODEL_CARD.md``
(see :mod:`jetfm_coffea.score.triton`).

The export is itself a scoring model directory: :class:`~jetfm_coffea.score.JetFMScorer`
accepts it and checks every hash in the manifest first. ``model.pt2`` is for use
outside this package (C++/AOTInductor, a Triton server behind coffea's
``triton_wrapper``); note that ``torch.export.load`` unpickles its constants, so
:func:`load_exported_program` loads it only after its SHA-256 matched the manifest.
"""

from __future__ import annotations

import io
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
from jetfm_coffea.score.triton import (
    HASH_PARAMETER,
    MAX_BATCH_SIZE,
    TRITON_CONFIG,
    onnx_path,
    triton_config_text,
    triton_model_card,
)
from jetfm_coffea.selection.datasheet import DATA_SHEET_FILE, read_data_sheet

__all__ = [
    "EXPORT_FORMATS",
    "ScoringModule",
    "example_inputs",
    "export_model",
    "load_exported_program",
    "read_manifest",
    "write_onnx",
]

PROGRAM = "model.pt2"
ONNX = "model.onnx"
CARD = "MODEL_CARD.md"
EXPORT_FORMATS = ("torch.export", "onnx", "triton")
MANIFEST_FORMAT = "jetfm-scoring-model"


class ScoringModule(nn.Module):
    """``(tokens [B,T,F] float32, mask [B,T] bool) -> (scores [B,C], embedding [B,D])``.

    Scores are the softmax of the classification head, or the regression head's value
    and width (``pred_<target>``, ``sigma_<target>``), as in the scorer's columns.
    """

    def __init__(self, model: Any):
        super().__init__()
        self.encoder = model.encoder
        self.softmax = "classifier" in model.heads
        self.classifier = model.heads["classifier" if self.softmax else "regressor"]

    def forward(
        self, tokens: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.encoder(tokens, mask).embedding
        scores = self.classifier(emb)
        return (torch.softmax(scores, dim=-1) if self.softmax else scores), emb


def _manifest(info: ModelInfo, files: dict[str, dict[str, Any]], version: str) -> dict:
    from jetfm_coffea import __version__

    cfg, tok = info.model_config, info.token_config
    extra = {"source_weights_check": info.weights_check}
    return {
        **extra,
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
                "description": "softmax class probabilities, in class_names order"
                if info.score_head == "classifier"
                else "regression value and width (GeV), in class_names order",
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
    allow_modified_weights: bool = False,
    triton_name: str = "jetfm",
    triton_max_batch_size: int = MAX_BATCH_SIZE,
) -> Path:
    """Export a scoring model (run directory or export) to ``out``; returns the folder.

    ``formats``: compiled programs to add (``"torch.export"``, ``"onnx"``; ONNX needs the
    ``onnx`` extra; ``"triton"``: ``out`` is a Triton model repository, the export goes
    to ``out/triton_name`` with the ONNX (dynamic batch and token axes) as version 1,
    ``config.pbtxt`` and a model card; that folder is returned). The manifest is
    validated against ``schemas/1.0.0/model_manifest.json`` before it is written,
    last, so a directory with a manifest is complete. The
    source's weights must have the SHA-256 its run recorded (``allow_modified_weights``
    exports them anyway and records ``source_weights_check: "modified"``); the export
    records the SHA-256 of its own copy as ``model_hash``.
    """
    from jetfm_coffea.schema import validate

    unknown = set(formats) - set(EXPORT_FORMATS)
    if unknown:
        raise ValueError(f"unknown export formats {sorted(unknown)}; choose from {EXPORT_FORMATS}")
    info = read_model_info(source, allow_modified_weights=allow_modified_weights)
    if not info.score_head:
        raise ModelFileError(
            info.path, "has no classification head (nor a regression head) to export"
        )
    out = Path(out)
    triton = "triton" in formats
    if triton:
        if not triton_name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"Triton model name {triton_name!r}: use letters, digits, _ and -")
        out = out / triton_name
        formats = (*formats, "onnx")
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
    f = len(info.token_config.features)
    example = example_inputs(info)
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
        write_onnx(module, example, out / ONNX)
        roles[ONNX] = "onnx"
    if triton:
        cfg = info.model_config
        parameters = {
            HASH_PARAMETER: info.model_hash,
            "jetfm_token_config_hash": info.token_config.hash(),
            "jetfm_class_names": ",".join(info.class_names),
        }
        text = triton_config_text(
            triton_name, f, cfg.n_classes, cfg.dim, parameters, triton_max_batch_size
        )
        (out / TRITON_CONFIG).write_text(text)
        roles[TRITON_CONFIG] = "triton_config"
        onnx_path(out).parent.mkdir()
        shutil.copyfile(out / ONNX, onnx_path(out))
    files = {
        name: {"sha256": file_sha256(out / name), "size": (out / name).stat().st_size, "role": role}
        for name, role in roles.items()
    }
    manifest = _manifest(info, files, model_version or info.model_version)
    if triton:
        (out / CARD).write_text(triton_model_card(triton_name, manifest))
        manifest["files"][CARD] = {
            "sha256": file_sha256(out / CARD),
            "size": (out / CARD).stat().st_size,
            "role": "model_card",
        }
    validate(manifest, "model_manifest", name=str(out / MANIFEST))
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return out


def write_onnx(module: nn.Module, example: tuple, target: str | Path | io.BytesIO) -> None:
    """Export ``module`` (a :class:`ScoringModule`) to ONNX: inputs tokens and mask,
    outputs scores and embedding, batch and token axes dynamic (needs the ``onnx``
    extra)."""
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
            target if isinstance(target, io.BytesIO) else str(target),
            input_names=["tokens", "mask"],
            output_names=["scores", "embedding"],
            dynamic_axes={"tokens": {0: "batch", 1: "tokens"}, "mask": {0: "batch", 1: "tokens"}},
            dynamo=False,
        )


def example_inputs(info: ModelInfo, n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs to trace a scoring module with: ``n`` events with one valid token each."""
    t, f = info.token_config.n_tokens, len(info.token_config.features)
    example = (torch.zeros(n, t, f), torch.zeros(n, t, dtype=torch.bool))
    example[1][:, 0] = True
    return example


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
