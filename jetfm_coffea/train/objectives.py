"""The module that combines the registered objectives for one (DDP-wrapped) forward.

All views and the (masked) copy of a batch go through the encoder in a single call,
so DDP sees exactly one forward per backward and the accelerator sees one big batch.
The objectives themselves are registered by name (:mod:`jetfm_coffea.train.registry`;
the built-in losses live in :mod:`jetfm_coffea.train.builtin_objectives`).
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from jetfm_coffea.errors import TrainingError
from jetfm_coffea.model.model import EventModel
from jetfm_coffea.train.config import ObjectiveConfig
from jetfm_coffea.train.registry import Encoded
from jetfm_coffea.train.views import ViewHook

__all__ = [
    "PretrainTask",
]


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
        self.active = objective.active()  # (objective, params) pairs, summation order
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
        active = self.active
        tokens, mask = batch["tokens"], batch["mask"].bool()
        b, t, _ = tokens.shape
        parts_x, parts_m, parts_h = [], [], []
        v = 0
        if any(objective.uses_views for objective, _ in active):
            views, view_mask = self._views(batch, generator)
            v = views.shape[1]
            parts_x.append(views.reshape(b * v, t, -1))
            parts_m.append(view_mask.reshape(b * v, t).bool())
            parts_h.append(torch.zeros_like(parts_m[-1]))
        hiding = [(o, p) for o, p in active if o.hides_tokens]
        use_tokens = bool(hiding) or any(o.uses_tokens for o, _ in active) or not parts_x
        hide = None
        if use_tokens:
            for objective, params in hiding:
                chosen = objective.hide(mask, params, generator)
                hide = chosen if hide is None else hide | chosen
            parts_x.append(tokens)
            parts_m.append(mask)
            parts_h.append(hide if hide is not None else torch.zeros_like(mask))
        x = torch.cat(parts_x) if len(parts_x) > 1 else parts_x[0]
        m = torch.cat(parts_m) if len(parts_m) > 1 else parts_m[0]
        h = torch.cat(parts_h) if len(parts_h) > 1 else parts_h[0]
        out = self.model(x, m, h if hiding else None, grouped=self.group_tokens)

        encoded = Encoded(
            batch=batch,
            model=self.model,
            pooled=out.embedding[:b],  # view 0 (or the tokens): monitors, supervised
            views=out.embedding[: b * v].reshape(b, v, -1) if v else None,
            tokens=out.tokens[-b:] if use_tokens else None,
            hide=hide,
        )
        losses: dict[str, torch.Tensor] = {}
        total = out.embedding.new_zeros((), dtype=torch.float32)
        for objective, params in active:
            term, parts = objective.loss(encoded, params)
            total = total + term
            losses.update(parts)
        losses = {k: val.detach() for k, val in losses.items()}
        return total, losses, encoded.pooled.detach()

    def unused_heads(self) -> list[str]:
        """Heads present in the model that this objective does not train."""
        used = set(self.objective.heads())
        return [name for name in self.model.heads if name not in used]
