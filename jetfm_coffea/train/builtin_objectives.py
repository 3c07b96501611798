"""The built-in pretraining objectives and their losses, registered like any other.

* ``contrastive``: NT-Xent (SimCLR) or VICReg between the views of every event;
* ``masked``: masked object modelling (hidden tokens: continuous features regressed,
  object type classified);
* ``supervised``: an auxiliary cross-entropy on the labelled events (label >= 0).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from jetfm_coffea.train.registry import Encoded, Objective, ObjectiveParams, register_objective

__all__ = [
    "Contrastive",
    "ContrastiveParams",
    "MaskedObjects",
    "MaskedParams",
    "Supervised",
    "SupervisedParams",
    "labelled_cross_entropy",
    "mask_tokens",
    "masked_object_loss",
    "nt_xent",
    "vicreg",
]


def nt_xent(z: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """NT-Xent (SimCLR) for ``z`` ``[B, V, P]``: views of the same event are positives.

    For V = 2 this is the usual SimCLR loss; for V > 2 each anchor averages the
    log-likelihood of its V-1 positives against all other B·V-1 candidates.
    """
    b, v, _ = z.shape
    z = F.normalize(z.float(), dim=-1).reshape(b * v, -1)
    logits = z @ z.T / temperature
    eye = torch.eye(b * v, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(eye, float("-inf"))
    event = torch.arange(b, device=z.device).repeat_interleave(v)
    pos = (event[:, None] == event[None, :]) & ~eye
    logp = logits.log_softmax(dim=1)
    return -(logp.masked_fill(~pos, 0.0).sum(1) / (v - 1)).mean()


def vicreg(z: torch.Tensor, sim: float = 25.0, var: float = 25.0, cov: float = 1.0) -> torch.Tensor:
    """VICReg (invariance, variance, covariance) of ``z`` ``[B, V, P]``, mean over view pairs."""
    z = z.float()
    b, v, p = z.shape
    inv = sum(F.mse_loss(z[:, i], z[:, j]) for i in range(v) for j in range(i + 1, v)) / (
        v * (v - 1) / 2
    )
    std_loss = torch.zeros((), device=z.device)
    cov_loss = torch.zeros((), device=z.device)
    for i in range(v):
        x = z[:, i] - z[:, i].mean(0)
        std = torch.sqrt(x.var(0) + 1e-4)
        std_loss = std_loss + F.relu(1.0 - std).mean() / v
        c = (x.T @ x) / max(b - 1, 1)
        off = c - torch.diag(torch.diag(c))
        cov_loss = cov_loss + off.pow(2).sum() / p / v
    return sim * inv + var * std_loss + cov * cov_loss


def labelled_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Event-weighted mean cross-entropy over the events with ``target >= 0`` (the others,
    unlabelled, contribute nothing: neither loss nor gradient); 0 without any."""
    w = torch.ones(len(logits), device=logits.device) if weight is None else weight.float()
    w = w * (target >= 0)
    ce = F.cross_entropy(logits, target.clamp_min(0), reduction="none")
    return (ce * w).sum() / w.sum().clamp_min(1e-12)


def mask_tokens(mask: torch.Tensor, fraction: float, generator: torch.Generator) -> torch.Tensor:
    """Choose ``fraction`` of the valid tokens (Bernoulli) to hide; ``[B, T]`` bool."""
    u = torch.rand(mask.shape, generator=generator, device=generator.device).to(mask.device)
    return mask.bool() & (u < fraction)


def masked_object_loss(
    pred: torch.Tensor,
    type_logits: torch.Tensor,
    target: torch.Tensor,
    target_types: torch.Tensor,
    hide: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(MSE of continuous features, CE of object type)`` over the hidden tokens."""
    n = hide.sum().clamp_min(1).float()
    sq = (pred.float() - target.float()).pow(2).mean(-1)
    mse = (sq * hide).sum() / n
    ce = F.cross_entropy(
        type_logits.float().flatten(0, 1), target_types.flatten(), reduction="none"
    )
    ce = (ce * hide.flatten()).sum() / n
    return mse, ce


class ContrastiveParams(ObjectiveParams):
    """``objective.contrastive``: views of the same event attract, others repel."""

    loss: Literal["ntxent", "vicreg", "none"] = "ntxent"
    weight: float = Field(1.0, ge=0.0)
    temperature: float = Field(0.1, gt=0.0, description="NT-Xent temperature")
    vicreg_sim: float = Field(25.0, ge=0.0)
    vicreg_var: float = Field(25.0, ge=0.0)
    vicreg_cov: float = Field(1.0, ge=0.0)
    n_views: int = Field(2, ge=2, le=8, description="views per event for the contrastive loss")


@register_objective("contrastive")
class Contrastive(Objective):
    """NT-Xent or VICReg on the projected embeddings of ``n_views`` views per event."""

    params = ContrastiveParams
    heads = ("projection",)
    uses_views = True

    def active(self, params: ContrastiveParams) -> bool:
        return params.loss != "none" and params.weight > 0

    def n_views(self, params: ContrastiveParams) -> int:
        return params.n_views

    def loss(
        self, encoded: Encoded, params: ContrastiveParams
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        assert encoded.views is not None
        b, v, _ = encoded.views.shape
        z = encoded.heads["projection"](encoded.views.flatten(0, 1)).reshape(b, v, -1)
        if params.loss == "ntxent":
            loss = nt_xent(z, params.temperature)
        else:
            loss = vicreg(z, params.vicreg_sim, params.vicreg_var, params.vicreg_cov)
        return params.weight * loss, {params.loss: loss}

    def card_line(self, params: ContrastiveParams) -> str:
        t = f", temperature {params.temperature}" if params.loss == "ntxent" else ""
        return f"contrastive {params.loss} (weight {params.weight}, {params.n_views} views{t})"


class MaskedParams(ObjectiveParams):
    """``objective.masked``: masked object modelling."""

    weight: float = Field(1.0, ge=0.0, description="masked object modelling weight")
    mask_fraction: float = Field(0.25, gt=0.0, lt=1.0, description="fraction of tokens hidden")
    type_weight: float = Field(1.0, ge=0.0, description="object-type CE within the masked loss")


@register_objective("masked")
class MaskedObjects(Objective):
    """Hide a fraction of the tokens; regress their continuous features, classify their type."""

    params = MaskedParams
    heads = ("decoder",)
    uses_tokens = True
    hides_tokens = True

    def hide(
        self, mask: torch.Tensor, params: MaskedParams, generator: torch.Generator
    ) -> torch.Tensor:
        return mask_tokens(mask, params.mask_fraction, generator)

    def loss(
        self, encoded: Encoded, params: MaskedParams
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        assert encoded.tokens is not None and encoded.hide is not None
        enc = encoded.model.encoder
        tokens = encoded.batch["tokens"]
        pred, type_logits = encoded.heads["decoder"](encoded.tokens)
        mse, ce = masked_object_loss(
            pred, type_logits, tokens[..., enc.cont_idx], enc.type_ids(tokens), encoded.hide
        )
        term = params.weight * (mse + params.type_weight * ce)
        return term, {"masked_mse": mse, "masked_type": ce}

    def card_line(self, params: MaskedParams) -> str:
        return (
            f"masked object modelling (weight {params.weight}, "
            f"{params.mask_fraction:.0%} of tokens, type CE weight {params.type_weight})"
        )


class SupervisedParams(ObjectiveParams):
    """``objective.supervised``: auxiliary cross-entropy where ``label >= 0``."""

    weight: float = Field(0.0, ge=0.0, description="aux CE where label >= 0")


@register_objective("supervised")
class Supervised(Objective):
    """Weighted cross-entropy of the classifier head on the labelled events of the batch."""

    params = SupervisedParams
    heads = ("classifier",)

    def loss(
        self, encoded: Encoded, params: SupervisedParams
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        batch, pooled = encoded.batch, encoded.pooled
        b, device = len(pooled), batch["tokens"].device
        logits = encoded.heads["classifier"](pooled).float()
        label = batch.get("label")
        if label is None:
            label = torch.full((b,), -1, dtype=torch.long, device=device)
        loss = labelled_cross_entropy(logits, label, batch.get("weight"))
        return params.weight * loss, {"supervised": loss}

    def card_line(self, params: SupervisedParams) -> str:
        return f"supervised auxiliary (weight {params.weight})"
