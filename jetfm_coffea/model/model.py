"""The event foundation model: an encoder plus named, droppable heads."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from jetfm_coffea.errors import ConfigError
from jetfm_coffea.model.config import ModelConfig
from jetfm_coffea.model.encoder import EncoderOutput, EventEncoder
from jetfm_coffea.model.heads import (
    ClassificationHead,
    MaskedObjectDecoder,
    ProjectionHead,
    RegressionHead,
    TruthHead,
)
from jetfm_coffea.registry import Registry

__all__ = [
    "DEFAULT_HEADS",
    "HEADS",
    "EventModel",
    "Head",
    "ScoredOutputs",
    "build_model",
    "count_parameters",
    "register_head",
    "score_head",
]


@dataclass(frozen=True)
class ScoredOutputs:
    """How a downstream head's outputs become the columns a scorer injects: everything
    the scorer, the exporters, the Triton configuration and the analysis processor need.

    ``activation`` maps the head's float32 output ``[B, C]`` to the scored one (torch ops
    only: it is exported with the model). Columns are ``column_prefix + name`` per class
    name, or (``column_prefix`` None) the output names the run recorded (``outputs``).
    ``per_class``: one column per class (an analysis cuts on a chosen class's column);
    otherwise it cuts on the first column, and ``width_column`` (if set) is a predicted
    width it also histograms. ``axis``: the score histogram's ``(bins, low, high,
    unit)``. ``description`` goes into the export manifest, ``label`` into model cards.
    """

    activation: Callable[[torch.Tensor], torch.Tensor]
    description: str
    label: str
    column_prefix: str | None = "score_"
    per_class: bool = True
    axis: tuple[int, float, float, str] = (50, 0.0, 1.0, "")
    width_column: int | None = None

    def columns(self, names: tuple[str, ...]) -> tuple[str, ...]:
        """The scored columns for the class (or output) ``names`` the run recorded."""
        if self.column_prefix is None:
            return tuple(names)
        return tuple(f"{self.column_prefix}{name}" for name in names)


@dataclass(frozen=True)
class Head:
    """A registered head: how to build it, and (downstream heads) how it is scored."""

    factory: Callable[[ModelConfig], nn.Module]
    scored: ScoredOutputs | None = None  # None: a pretraining head, never scored


def _softmax(outputs: torch.Tensor) -> torch.Tensor:
    return torch.softmax(outputs, dim=-1)


def _identity(outputs: torch.Tensor) -> torch.Tensor:
    return outputs


#: Every head a model can carry, by name, in registration order (the order
#: :func:`score_head` prefers downstream heads in).
HEADS: Registry[Head] = Registry(
    "model head",
    hint="add one with jetfm_coffea.model.register_head",
    same=lambda old, new: old.factory is new.factory and old.scored == new.scored,
)


def register_head(
    name: str,
    factory: Callable[[ModelConfig], nn.Module],
    scored: ScoredOutputs | None = None,
) -> Head:
    """Make a head known to :class:`EventModel` (and :func:`~jetfm_coffea.train.load_run`).

    ``factory(config)`` builds it (e.g. an ``nn.Module`` class); ``scored`` says how a
    scorer reads it (a downstream head: fine-tuning trains it, scoring injects its
    columns). A name registered with another factory raises
    :class:`~jetfm_coffea.errors.ConfigError`.
    """
    return HEADS.register(name, Head(factory, scored))


register_head("projection", ProjectionHead)
register_head("decoder", MaskedObjectDecoder)
register_head(
    "classifier",
    ClassificationHead,
    ScoredOutputs(_softmax, "softmax class probabilities, in class_names order", "classifier"),
)
register_head(
    "regressor",
    RegressionHead,
    ScoredOutputs(
        _identity,
        "regression value and width (GeV), in class_names order",
        "regression",
        column_prefix=None,
        per_class=False,
        axis=(50, 0.0, 500.0, "GeV"),
        width_column=1,
    ),
)
register_head("truth", TruthHead)
#: Heads a model gets unless told otherwise (the regression heads only on request).
DEFAULT_HEADS: tuple[str, ...] = ("projection", "decoder", "classifier")


def score_head(heads: Iterable[str]) -> str | None:
    """The downstream head a model with ``heads`` is scored with: the first registered
    head among them that is scored, or None (a bare encoder)."""
    present = set(heads)
    return next((n for n, h in HEADS.items() if n in present and h.scored is not None), None)


class EventModel(nn.Module):
    """``encoder`` (:class:`EventEncoder`) and ``heads`` (a ModuleDict of optional heads)."""

    def __init__(self, config: ModelConfig, heads: Iterable[str] = DEFAULT_HEADS):
        super().__init__()
        self.config = config
        self.encoder = EventEncoder(config)
        unknown = set(heads) - set(HEADS)
        if unknown:
            raise ConfigError(f"unknown heads {sorted(unknown)}; choose from {list(HEADS)}")
        self.heads = nn.ModuleDict({name: HEADS[name].factory(config) for name in heads})

    def forward(
        self,
        tokens: torch.Tensor,
        mask: torch.Tensor,
        hide: torch.Tensor | None = None,
        grouped: bool = False,
    ) -> EncoderOutput:
        """Encode events (see :meth:`EventEncoder.forward`); heads are applied by the caller.

        ``grouped``: encode groups of events of similar length separately
        (:meth:`EventEncoder.forward_grouped`; same result, less padding computed).
        """
        if grouped:
            return self.encoder.forward_grouped(tokens, mask, hide)
        return self.encoder(tokens, mask, hide)

    @torch.no_grad()
    def embed(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Event embeddings ``[B, D]`` in inference mode."""
        return self.encoder(tokens, mask).embedding

    def drop_heads(self, *names: str) -> EventModel:
        """Remove heads (all if none are named), e.g. after pretraining; returns self."""
        for name in names or list(self.heads):
            if name in self.heads:
                del self.heads[name]
        return self


def build_model(config: ModelConfig, heads: Iterable[str] = DEFAULT_HEADS) -> EventModel:
    """Construct an :class:`EventModel` (random weights) for ``config``."""
    return EventModel(config, heads)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
