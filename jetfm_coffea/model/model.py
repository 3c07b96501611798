"""The event foundation model: an encoder plus named, droppable heads."""

from __future__ import annotations

from collections.abc import Callable, Iterable

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
    "build_model",
    "count_parameters",
    "register_head",
]

#: Head name -> factory (a module class taking the ModelConfig).
HEADS: Registry[Callable[[ModelConfig], nn.Module]] = Registry(
    "model head", hint="add one with jetfm_coffea.model.register_head"
)
for _name, _factory in (
    ("projection", ProjectionHead),
    ("decoder", MaskedObjectDecoder),
    ("classifier", ClassificationHead),
    ("regressor", RegressionHead),
    ("truth", TruthHead),
):
    HEADS.register(_name, _factory)
#: Heads a model gets unless told otherwise (the regression heads only on request).
DEFAULT_HEADS: tuple[str, ...] = ("projection", "decoder", "classifier")


def register_head(name: str, factory: Callable[[ModelConfig], nn.Module]) -> None:
    """Make a head known to :class:`EventModel` (and :func:`~jetfm_coffea.train.load_run`).

    ``factory(config)`` builds it (e.g. an ``nn.Module`` class); a name registered with
    another factory raises :class:`~jetfm_coffea.errors.ConfigError`.
    """
    HEADS.register(name, factory)


class EventModel(nn.Module):
    """``encoder`` (:class:`EventEncoder`) and ``heads`` (a ModuleDict of optional heads)."""

    def __init__(self, config: ModelConfig, heads: Iterable[str] = DEFAULT_HEADS):
        super().__init__()
        self.config = config
        self.encoder = EventEncoder(config)
        unknown = set(heads) - set(HEADS)
        if unknown:
            raise ConfigError(f"unknown heads {sorted(unknown)}; choose from {list(HEADS)}")
        self.heads = nn.ModuleDict({name: HEADS[name](config) for name in heads})

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
