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
(see :mod:`jetfm_coffea.score.triton`). The formats are the exporters registry
(:mod:`jetfm_coffea.score.formats`); adding one is one registered function.

The export is itself a scoring model directory: :class:`~jetfm_coffea.score.JetFMScorer`
accepts it and checks every hash in the manifest first. ``model.pt2`` is for use
outside this package (C++/AOTInductor, a Triton server behind coffea's
``triton_wrapper``); note that ``torch.export.load`` unpickles its constants, so
:func:`load_exported_program` loads it only after its SHA-256 matched the manifest.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import uuid
from pathlib import Path
from typing import Any

import torch

from jetfm_coffea.atomic import atomic_write_text
from jetfm_coffea.digest import file_sha256
from jetfm_coffea.errors import ConfigError, ModelFileError
from jetfm_coffea.model.rundir import (
    DATA_SHEET,
    MANIFEST,
    MODEL_CONFIG,
    TOKEN_CONFIG,
    WEIGHTS,
    read_data_sheet,
)
from jetfm_coffea.score.artifact import ModelInfo, load_model, read_model_info
from jetfm_coffea.score.formats import (
    EXPORTERS,
    PROGRAM,
    ExportContext,
    Exporter,
    ScoringModule,
    example_inputs,
    resolve_exporters,
)
from jetfm_coffea.score.triton import MAX_BATCH_SIZE

__all__ = [
    "EXPORT_FORMATS",
    "export_model",
    "load_exported_program",
    "read_manifest",
]

#: The built-in export formats (the registry, :data:`EXPORTERS`, also lists added ones).
EXPORT_FORMATS = tuple(EXPORTERS)
SCORING_MANIFEST_FORMAT = "jetfm-scoring-model"


def _manifest(info: ModelInfo, files: dict[str, dict[str, Any]], version: str) -> dict:
    from jetfm_coffea import __version__

    cfg, tok = info.model_config, info.token_config
    extra = {"source_weights_check": info.weights_check}
    return {
        **extra,
        "schema_version": "1.0.0",
        "format": SCORING_MANIFEST_FORMAT,
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
                "description": info.scored.description,
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
    last, so a directory with a manifest is complete. The export is written beside
    ``out`` under a hidden name and swapped in only when complete (``overwrite``
    removes the old one only then); an ``out`` that is, contains or lies inside the
    source model folder is refused (:class:`~jetfm_coffea.errors.ConfigError`). The
    source's weights must have the SHA-256 its run recorded (``allow_modified_weights``
    exports them anyway and records ``source_weights_check: "modified"``); the export
    records the SHA-256 of its own copy as ``model_hash``.
    """
    from jetfm_coffea.schema import validate

    exporters = resolve_exporters(formats)
    info = read_model_info(source, allow_modified_weights=allow_modified_weights)
    if not info.score_head:
        raise ModelFileError(
            info.path, "has no scored head (such as a classification head) to export"
        )
    options = {"triton_name": triton_name, "triton_max_batch_size": triton_max_batch_size}
    out = Path(out)
    for e in exporters:
        if e.folder is not None:
            out = e.folder(out, options)
    src = Path(info.path)
    _check_out_apart(src, out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} exists and is not empty (overwrite=True replaces it)")
    out.parent.mkdir(parents=True, exist_ok=True)
    # written beside --out under a hidden name, then swapped in: a failed export leaves
    # the old one (and everything else) as it was
    staging_root = out.parent / f".{out.name}.tmp-export-{uuid.uuid4().hex[:12]}"
    staging = staging_root / out.name  # same name: the Triton exporter names the model by it
    try:
        staging.mkdir(parents=True)
        _write_export(src, staging, info, exporters, options, model_version, validate)
        _swap_in(staging, out)
    finally:
        shutil.rmtree(staging_root, ignore_errors=True)
    return out


def _check_out_apart(src: Path, out: Path) -> None:
    """Refuse an ``out`` that is, contains or is inside the model folder ``src``."""
    a, b = src.resolve(), out.resolve()
    if a == b:
        raise ConfigError(
            f"export --out {out} is the model folder {src}: cannot export onto itself"
        )
    if b in a.parents:
        raise ConfigError(
            f"export --out {out} contains the model folder {src} it exports; "
            "replacing it would delete the model: choose an --out outside it"
        )
    if a in b.parents:
        raise ConfigError(
            f"export --out {out} is inside the model folder {src} it exports; "
            "choose an --out outside it"
        )


def _swap_in(staging: Path, out: Path) -> None:
    """Move the finished export ``staging`` to ``out``; an old ``out`` is removed only after."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-export-{uuid.uuid4().hex[:12]}"
        os.rename(out, old)
    try:
        os.rename(staging, out)
    except BaseException:
        if old is not None:
            os.rename(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write_export(
    src: Path,
    out: Path,
    info: ModelInfo,
    exporters: list[Exporter],
    options: dict[str, Any],
    model_version: str | None,
    validate: Any,
) -> None:
    """Write every file of the export into the (empty) folder ``out``, the manifest last."""
    shutil.copyfile(src / WEIGHTS, out / WEIGHTS)
    shutil.copyfile(src / MODEL_CONFIG, out / MODEL_CONFIG)
    atomic_write_text(out / TOKEN_CONFIG, info.token_config.to_yaml())
    roles = {WEIGHTS: "weights", MODEL_CONFIG: "model_config", TOKEN_CONFIG: "token_config"}
    sheet = read_data_sheet(src)  # what the encoder was pretrained on, carried along
    if sheet is not None:
        atomic_write_text(out / DATA_SHEET, json.dumps(sheet, indent=1) + "\n")
        roles[DATA_SHEET] = "data_sheet"
    version = model_version or info.model_version
    ctx = ExportContext(
        out=out,
        info=info,
        module=ScoringModule(load_model(info, "cpu")).eval(),
        example=example_inputs(info),
        manifest=_manifest(info, {}, version),
        options=options,
    )
    for e in exporters:
        roles.update(e.write(ctx))
    files = {
        name: {"sha256": file_sha256(out / name), "size": (out / name).stat().st_size, "role": role}
        for name, role in roles.items()
    }
    manifest = _manifest(info, files, version)
    validate(manifest, "model_manifest", name=str(out / MANIFEST))
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=1) + "\n")


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
