"""Heads on top of the event encoder; separate modules, droppable after pretraining."""

from __future__ import annotations

import torch
from torch import nn

from jetfm_coffea.model.config import ModelConfig

__all__ = [
    "ClassificationHead",
    "MaskedObjectDecoder",
    "ProjectionHead",
    "RegressionHead",
    "TruthHead",
]


class ProjectionHead(nn.Module):
    """SimCLR-style MLP from the event embedding to the contrastive space."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        d = config.dim
        self.net = nn.Sequential(
            nn.Linear(d, d), nn.LayerNorm(d), nn.GELU(), nn.Linear(d, config.proj_dim)
        )

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.net(embedding)


class MaskedObjectDecoder(nn.Module):
    """Per-token decoder: regresses the continuous features and classifies the object type."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        d = config.dim
        self.n_continuous = len(config.continuous_features)
        self.n_types = config.n_types
        self.net = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.LayerNorm(d))
        self.regress = nn.Linear(d, self.n_continuous)
        self.classify = nn.Linear(d, self.n_types)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, T, D] -> (features [B, T, F_cont], type logits [B, T, n_types])``."""
        h = self.net(tokens)
        return self.regress(h), self.classify(h)


class ClassificationHead(nn.Module):
    """Event classifier on the pooled embedding (supervised auxiliary loss, fine-tuning)."""

    def __init__(self, config: ModelConfig, n_classes: int | None = None):
        super().__init__()
        self.norm = nn.LayerNorm(config.dim)
        self.linear = nn.Linear(config.dim, n_classes or config.n_classes)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.linear(self.norm(embedding))


class RegressionHead(nn.Module):
    """Event-level regression with a predicted width, on the pooled embedding.

    LayerNorm + linear to ``2 * n_targets`` numbers, ``n_targets = config.n_classes // 2``
    (the head's output count is the config's ``n_classes``): the values, then the log
    widths. :meth:`raw` gives ``[value, log width]`` (what a Gaussian likelihood is
    trained on); ``forward`` gives ``[value, width]`` (what a scorer or an exported model
    outputs), one column per target each.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.n_classes % 2:
            raise ValueError(
                f"a regression head has 2 outputs per target (value, width), got "
                f"n_classes={config.n_classes}"
            )
        self.n_targets = config.n_classes // 2
        self.norm = nn.LayerNorm(config.dim)
        self.linear = nn.Linear(config.dim, config.n_classes)

    def raw(self, embedding: torch.Tensor) -> torch.Tensor:
        """``[B, 2 n]``: values, then log widths."""
        return self.linear(self.norm(embedding))

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        """``[B, 2 n]``: values, then widths (``exp`` of the log widths)."""
        out = self.raw(embedding)
        n = self.n_targets
        return torch.cat([out[:, :n], out[:, n:].exp()], dim=1)

    @torch.no_grad()
    def rescale(self, offset: torch.Tensor, scale: torch.Tensor) -> None:
        """Fold ``value -> offset + scale * value``, ``width -> scale * width`` (per target)
        into the linear layer: a head trained on standardised targets then outputs
        physical units, exactly."""
        n = self.n_targets
        w, b = self.linear.weight, self.linear.bias
        scale = scale.to(w)
        w[:n] *= scale[:, None]
        b[:n] = b[:n] * scale + offset.to(b)
        b[n:] += scale.log()


class TruthHead(nn.Module):
    """Truth-regression head of supervised pretraining: ``config.n_truth`` standardised
    generator targets (``GenTarget_*``) from the pooled embedding."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.norm = nn.LayerNorm(config.dim)
        self.linear = nn.Linear(config.dim, max(config.n_truth, 1))

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.linear(self.norm(embedding))
