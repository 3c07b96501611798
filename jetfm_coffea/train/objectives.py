"""Pretraining objectives and the module that combines them for one (DDP-wrapped) forward.

All views and the masked copy of a batch go through the encoder in a single call,
so DDP sees exactly one forward per backward and the accelerator sees one big batch.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from jetfm_coffea.errors import TrainingError
from jetfm_coffea.model.model import EventModel
from jetfm_coffea.train.config import ObjectiveConfig
from jetfm_coffea.train.views import ViewHook

__all__ = [
    "PretrainTask",
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


class PretrainTask(nn.Module):
    """``forward(batch, generator) -> (total loss, {name: detached loss}, embeddings)``.

    Holds the :class:`EventModel`; wrap this module (not the model) in DDP. The
    contrastive views are the batch's ``views`` (fresh views made by the training loop,
    or stored ones); an explicit ``view_hook`` makes them from the tokens instead.
    ``group_tokens``: encode events of similar length as separate groups
    (:meth:`~jetfm_coffea.model.EventEncoder.forward_grouped`).
    """

    def __init__(
        self,
        model: EventModel,
        objective: ObjectiveConfig,
        view_hook: ViewHook | None = None,
        group_tokens: bool = False,
    ):
        super().__init__()
        self.model = model
        self.group_tokens = group_tokens
        self.objective = objective
        self.view_hook = view_hook
        self._hook_takes_names = view_hook is not None and (
            "feature_names" in inspect.signature(view_hook).parameters
        )

    def _views(
        self, batch: dict[str, torch.Tensor], generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        v = self.objective.n_views
        if self.view_hook is None:
            if "views" not in batch or batch["views"].shape[1] < v:
                have = batch["views"].shape[1] if "views" in batch else 0
                raise TrainingError(
                    f"the contrastive objective needs {v} views per event, the batch has {have}: "
                    "use views: fresh (made on the device), or a store built with views: "
                    f"{v} (build config) and views: stored"
                )
            return batch["views"][:, :v], batch["view_mask"][:, :v]
        kwargs: dict[str, Any] = {}
        if self._hook_takes_names:
            kwargs["feature_names"] = self.model.config.feature_names
        return self.view_hook(batch, v, generator, **kwargs)

    def forward(
        self, batch: dict[str, torch.Tensor], generator: torch.Generator
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        obj = self.objective
        heads = self.model.heads
        tokens, mask = batch["tokens"], batch["mask"].bool()
        b, t, _ = tokens.shape
        parts_x, parts_m, parts_h = [], [], []
        v = 0
        if obj.uses_contrastive:
            views, view_mask = self._views(batch, generator)
            v = views.shape[1]
            parts_x.append(views.reshape(b * v, t, -1))
            parts_m.append(view_mask.reshape(b * v, t).bool())
            parts_h.append(torch.zeros_like(parts_m[-1]))
        use_masked = obj.masked_weight > 0
        if use_masked or not parts_x:
            hide = mask_tokens(mask, obj.mask_fraction, generator) if use_masked else None
            parts_x.append(tokens)
            parts_m.append(mask)
            parts_h.append(hide if hide is not None else torch.zeros_like(mask))
        x = torch.cat(parts_x) if len(parts_x) > 1 else parts_x[0]
        m = torch.cat(parts_m) if len(parts_m) > 1 else parts_m[0]
        h = torch.cat(parts_h) if len(parts_h) > 1 else parts_h[0]
        out = self.model(x, m, h if use_masked else None, grouped=self.group_tokens)

        losses: dict[str, torch.Tensor] = {}
        total = out.embedding.new_zeros((), dtype=torch.float32)
        if obj.uses_contrastive:
            z = heads["projection"](out.embedding[: b * v]).reshape(b, v, -1)
            if obj.contrastive == "ntxent":
                loss = nt_xent(z, obj.temperature)
            else:
                loss = vicreg(z, obj.vicreg_sim, obj.vicreg_var, obj.vicreg_cov)
            losses[obj.contrastive] = loss
            total = total + obj.contrastive_weight * loss
        if use_masked:
            enc = self.model.encoder
            pred, type_logits = heads["decoder"](out.tokens[-b:])
            mse, ce = masked_object_loss(
                pred, type_logits, tokens[..., enc.cont_idx], enc.type_ids(tokens), hide
            )
            losses["masked_mse"], losses["masked_type"] = mse, ce
            total = total + obj.masked_weight * (mse + obj.type_weight * ce)
        pooled = out.embedding[:b]  # view 0 (or the tokens): used for monitors/supervised
        if obj.supervised_weight > 0 and "classifier" in heads:
            logits = heads["classifier"](pooled).float()
            label = batch.get("label")
            if label is None:
                label = torch.full((b,), -1, dtype=torch.long, device=tokens.device)
            labelled = label >= 0
            weight = batch.get("weight", torch.ones(b, device=tokens.device)).float()
            ce = F.cross_entropy(logits, label.clamp_min(0), reduction="none")
            w = weight * labelled
            loss = (ce * w).sum() / w.sum().clamp_min(1e-12)
            losses["supervised"] = loss
            total = total + obj.supervised_weight * loss
        losses = {k: val.detach() for k, val in losses.items()}
        return total, losses, pooled.detach()

    def unused_heads(self) -> list[str]:
        """Heads present in the model that this objective does not train."""
        obj = self.objective
        used = {
            "projection": obj.uses_contrastive,
            "decoder": obj.masked_weight > 0,
            "classifier": obj.supervised_weight > 0,
        }
        return [name for name in self.model.heads if not used.get(name, False)]
