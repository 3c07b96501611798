"""Export formats: the registry of compiled formats ``jetfm export --format`` can add.

An exporter writes files into the export folder from an :class:`ExportContext` (the
verified model as a :class:`ScoringModule`, example inputs, the model's info, the
manifest fields so far and the command's options) and returns ``{file name: role}``;
:func:`~jetfm_coffea.score.export.export_model` hashes those files into the manifest.
Built in: ``torch.export`` (``model.pt2``), ``onnx`` (``model.onnx``) and ``triton``
(a Triton model repository; it requires ``onnx``). The CLI's ``--format`` choices are
the names of :data:`EXPORTERS`.

Adding one takes a function in one file (and a test)::

    from jetfm_coffea.score.formats import register_exporter

    @register_exporter("onnx-fp16", requires=("onnx",))
    def onnx_fp16(ctx):
        from onnxconverter_common import float16
        import onnx

        model = float16.convert_float_to_float16(onnx.load(ctx.out / "model.onnx"))
        onnx.save(model, ctx.out / "model_fp16.onnx")
        return {"model_fp16.onnx": "onnx-fp16"}
"""

from __future__ import annotations

import io
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from jetfm_coffea.atomic import atomic_write_text
from jetfm_coffea.model.model import HEADS, score_head
from jetfm_coffea.model.rundir import MODEL_CARD, write_model_card
from jetfm_coffea.registry import Registry
from jetfm_coffea.score.artifact import ModelInfo
from jetfm_coffea.score.triton import (
    HASH_PARAMETER,
    MAX_BATCH_SIZE,
    TRITON_CONFIG,
    onnx_path,
    triton_config_text,
    triton_model_card,
)

__all__ = [
    "EXPORTERS",
    "ONNX",
    "PROGRAM",
    "ExportContext",
    "Exporter",
    "ScoringModule",
    "example_inputs",
    "register_exporter",
    "resolve_exporters",
    "write_onnx",
]

PROGRAM = "model.pt2"
ONNX = "model.onnx"

Write = Callable[["ExportContext"], dict[str, str]]


class ScoringModule(nn.Module):
    """``(tokens [B,T,F] float32, mask [B,T] bool) -> (scores [B,C], embedding [B,D])``.

    Scores are the scored head's outputs through its registered activation (e.g. the
    classifier's softmax, the regressor's value and width), as in the scorer's columns.
    """

    def __init__(self, model: Any):
        super().__init__()
        self.encoder = model.encoder
        name = score_head(model.heads)
        if name is None:
            raise ValueError(f"no scored head among {list(model.heads)}")
        self.head = model.heads[name]
        self.activation = HEADS[name].scored.activation

    def forward(
        self, tokens: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        emb = self.encoder(tokens, mask).embedding
        return self.activation(self.head(emb)), emb


@dataclass
class ExportContext:
    """What an exporter writes from: ``out`` is the export folder (files go there)."""

    out: Path
    info: ModelInfo
    module: ScoringModule
    example: tuple[torch.Tensor, torch.Tensor]
    manifest: dict[str, Any]  # the manifest's fields, files not yet listed
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Exporter:
    """A registered export format: ``write(ctx) -> {file: role}``.

    ``requires``: formats written before this one (their files are in ``ctx.out``);
    ``folder(out, options)``: where the export goes (a Triton repository puts it in
    ``out/NAME``); default ``out`` itself.
    """

    name: str
    write: Write
    requires: tuple[str, ...] = ()
    folder: Callable[[Path, dict[str, Any]], Path] | None = None
    description: str = ""


#: The export formats by name, in registration order (the CLI's ``--format`` choices).
EXPORTERS: Registry[Exporter] = Registry(
    "export format",
    hint="add one with jetfm_coffea.score.formats.register_exporter",
    same=lambda old, new: old.write is new.write,
)


def register_exporter(
    name: str,
    *,
    requires: tuple[str, ...] = (),
    folder: Callable[[Path, dict[str, Any]], Path] | None = None,
) -> Callable[[Write], Write]:
    """Decorator registering ``write(ctx) -> {file: role}`` as export format ``name``."""

    def add(write: Write) -> Write:
        for required in requires:
            EXPORTERS[required]  # an unknown requirement is an UnknownNameError
        doc = (write.__doc__ or "").strip().splitlines()
        EXPORTERS.register(
            name, Exporter(name, write, tuple(requires), folder, doc[0] if doc else "")
        )
        return write

    return add


def resolve_exporters(formats: tuple[str, ...] | list[str]) -> list[Exporter]:
    """The exporters of ``formats`` plus what they require, in registration order."""
    for name in formats:
        EXPORTERS[name]  # an unknown format is an UnknownNameError naming the known ones
    wanted: set[str] = set()
    todo = list(formats)
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo.extend(EXPORTERS[name].requires)
    return [e for name, e in EXPORTERS.items() if name in wanted]


# -- the built-in exporters ----------------------------------------------------------------


@register_exporter("torch.export")
def _torch_export(ctx: ExportContext) -> dict[str, str]:
    """torch.export program ``model.pt2`` (dynamic batch axis)."""
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    dynamic = {"tokens": {0: batch}, "mask": {0: batch}}
    program = torch.export.export(ctx.module, ctx.example, dynamic_shapes=dynamic)
    torch.export.save(program, ctx.out / PROGRAM)
    return {PROGRAM: "torch.export"}


@register_exporter("onnx")
def _onnx(ctx: ExportContext) -> dict[str, str]:
    """ONNX ``model.onnx`` (dynamic batch and token axes; needs the onnx extra)."""
    write_onnx(ctx.module, ctx.example, ctx.out / ONNX)
    return {ONNX: "onnx"}


def _triton_folder(out: Path, options: dict[str, Any]) -> Path:
    name = options.get("triton_name", "jetfm")
    if not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"Triton model name {name!r}: use letters, digits, _ and -")
    return out / name


@register_exporter("triton", requires=("onnx",), folder=_triton_folder)
def _triton(ctx: ExportContext) -> dict[str, str]:
    """Triton model repository: OUT/NAME with config.pbtxt, 1/model.onnx, model card."""
    info, cfg = ctx.info, ctx.info.model_config
    name = ctx.out.name
    parameters = {
        HASH_PARAMETER: info.model_hash,
        "jetfm_token_config_hash": info.token_config.hash(),
        "jetfm_class_names": ",".join(info.class_names),
    }
    max_batch = ctx.options.get("triton_max_batch_size", MAX_BATCH_SIZE)
    n_features = len(info.token_config.features)
    text = triton_config_text(name, n_features, cfg.n_classes, cfg.dim, parameters, max_batch)
    atomic_write_text(ctx.out / TRITON_CONFIG, text)
    onnx_path(ctx.out).parent.mkdir()
    shutil.copyfile(ctx.out / ONNX, onnx_path(ctx.out))
    write_model_card(ctx.out, triton_model_card(name, ctx.manifest, ctx.info.scored.label), cfg)
    return {TRITON_CONFIG: "triton_config", MODEL_CARD: "model_card"}


# -- ONNX ------------------------------------------------------------------------------------


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
        # ONNX has had Sinh and Cosh since opset 9; the TorchScript exporter lacks them
        torch.onnx.register_custom_op_symbolic("aten::sinh", _onnx_sinh, 9)
        torch.onnx.register_custom_op_symbolic("aten::cosh", _onnx_cosh, 9)
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


def _onnx_cosh(g: Any, x: Any) -> Any:
    return g.op("Cosh", x)
