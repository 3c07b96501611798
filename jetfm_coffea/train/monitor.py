"""Representation monitors: collapse (embedding spread, effective rank) and a k-NN probe."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["collapse_metrics", "knn_accuracy"]


@torch.no_grad()
def collapse_metrics(embedding: torch.Tensor) -> dict[str, float]:
    """Spread of a batch of embeddings ``[B, D]``.

    ``emb_std``: mean per-dimension std of the L2-normalised embeddings (collapse -> 0,
    a uniform spread on the sphere -> 1/sqrt(D)); ``eff_rank``: exp of the entropy of
    the normalised singular values of the centred embeddings (Roy & Vetterli), between
    1 (collapsed to a line) and min(B, D).
    """
    z = F.normalize(embedding.float(), dim=-1)
    std = z.std(dim=0).mean().item() if len(z) > 1 else 0.0
    s = torch.linalg.svdvals(z - z.mean(0))
    p = s / s.sum().clamp_min(1e-12)
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum()
    return {"emb_std": std, "eff_rank": float(torch.exp(entropy))}


@torch.no_grad()
def knn_accuracy(embedding: torch.Tensor, label: torch.Tensor, k: int = 20) -> float:
    """Leave-one-out cosine k-NN accuracy (majority vote) of labelled embeddings."""
    z = F.normalize(embedding.float(), dim=-1)
    label = label.long()
    keep = label >= 0
    z, label = z[keep], label[keep]
    n = len(z)
    if n < 2:
        return float("nan")
    k = min(k, n - 1)
    sim = z @ z.T
    sim.fill_diagonal_(float("-inf"))
    nn_idx = sim.topk(k, dim=1).indices
    votes = F.one_hot(label[nn_idx], int(label.max()) + 1).sum(1)
    return float((votes.argmax(1) == label).float().mean())
