"""Heads on top of the event encoder; separate modules, droppable after pretraining."""

from __future__ import annotations

import torch
from torch import nn

from jetfm_coffea.model.config import ModelConfig

__all__ = ["ClassificationHead", "MaskedObjectDecoder", "ProjectionHead"]


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
