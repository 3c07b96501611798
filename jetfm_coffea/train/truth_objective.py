"""``truth``: supervised pretraining by regression of generator truth targets (issue 26).

Each target is a ``GenTarget_*`` value of the event (NaN where it is not defined:
collision data, and the events of processes without that quantity); the ``truth`` head
predicts every target, standardised by the ``center`` and ``scale`` given (the pool's
median and spread, fixed in the config so that a run is reproducible), and each target's
term is the mean squared error over the events where it is defined, weighted by its
entry of ``targets``. An event without any target contributes nothing here: only the
self-supervised terms (no placeholder values). The head needs ``model.n_truth`` equal
to the number of targets.
"""

from __future__ import annotations

import torch
from pydantic import Field, model_validator

from jetfm_coffea.errors import TrainingError
from jetfm_coffea.train.registry import (
    Encoded,
    Objective,
    ObjectiveParams,
    register_objective,
    target_key,
)

__all__ = ["TruthParams", "TruthRegression"]


class TruthParams(ObjectiveParams):
    """``objective.truth``: regression of ``GenTarget_*`` values, one weight each."""

    weight: float = Field(0.0, ge=0.0)
    targets: dict[str, float] = Field(default_factory=dict, description="target -> weight")
    center: dict[str, float] = Field(default_factory=dict)
    scale: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> TruthParams:
        if self.weight > 0 and not self.targets:
            raise ValueError("objective.truth: give the targets (GenTarget_* name -> weight)")
        for name in self.targets:
            if name not in self.center or not self.scale.get(name, 0) > 0:
                raise ValueError(f"objective.truth: target {name!r} needs center and scale > 0")
        return self


@register_objective("truth")
class TruthRegression(Objective):
    """Masked, standardised mean squared error of the ``truth`` head, per target."""

    params = TruthParams
    heads = ("truth",)

    def loss(
        self, encoded: Encoded, params: TruthParams
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        batch, pooled = encoded.batch, encoded.pooled
        pred = encoded.heads["truth"](pooled).float()
        names = list(params.targets)
        if pred.shape[1] != len(names):
            raise TrainingError(
                f"objective.truth has {len(names)} targets, the truth head {pred.shape[1]} "
                f"outputs: set model.n_truth: {len(names)}"
            )
        total = pred.new_zeros(())
        parts: dict[str, torch.Tensor] = {}
        for k, name in enumerate(names):
            values = batch.get(target_key(name))
            if values is None:
                raise TrainingError(
                    f"objective.truth: the batch has no values of {name!r}; pretrain on events "
                    "read with their GenTarget_* branches (generated files)"
                )
            y = (values.float() - params.center[name]) / params.scale[name]
            ok = torch.isfinite(y)
            sq = (pred[:, k] - torch.nan_to_num(y, nan=0.0)).pow(2) * ok
            term = sq.sum() / ok.sum().clamp_min(1)
            parts[f"truth_{name.removeprefix('GenTarget_')}"] = term
            total = total + params.targets[name] * term
        return params.weight * total, parts

    def card_line(self, params: TruthParams) -> str:
        listed = ", ".join(f"{n} (weight {w})" for n, w in params.targets.items())
        return f"truth regression (weight {params.weight}): {listed}; undefined values masked"
