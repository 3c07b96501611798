"""``process``: supervised pretraining by process classification (issue 26).

Every simulated event of the pool carries its generator process label (``label``, the
stable numbers of :data:`jetfm_coffea.generate.PROCESSES`); collision data and any
unlabelled event carry ``-1`` and only train the self-supervised terms (masked out
here, no placeholder class). ``labels`` lists the process labels that are classes, in
class order: events of any other label are unlabelled for this term (this is how a
task's signal process is kept out of the supervised labels of the encoder it evaluates,
see :func:`jetfm_coffea.finetune.heldout.check_supervised_labels`). With
``tt_flavour`` the tt̄ events (``tt_label``) are split by their truth extra-flavour label
``GenTarget_ttHF`` into tt̄ + light (the tt̄ class), tt̄ + c and tt̄ + b (two classes after
the others). The ``classifier`` head needs ``model.n_classes`` equal to the number of
classes (:meth:`ProcessParams.n_classes`).
"""

from __future__ import annotations

import torch
from pydantic import Field, model_validator

from jetfm_coffea.errors import TrainingError
from jetfm_coffea.train.builtin_objectives import labelled_cross_entropy
from jetfm_coffea.train.registry import (
    Encoded,
    Objective,
    ObjectiveParams,
    register_objective,
    target_key,
)

__all__ = ["TTHF_TARGET", "ProcessClassification", "ProcessParams", "class_index"]

#: The truth branch that splits tt̄ by extra flavour (0 light, 1 c, 2 b; NaN otherwise).
TTHF_TARGET = "GenTarget_ttHF"


class ProcessParams(ObjectiveParams):
    """``objective.process``: cross-entropy over the pool's process classes."""

    weight: float = Field(0.0, ge=0.0)
    labels: list[int] = Field(default_factory=list, description="process labels, class order")
    tt_flavour: bool = Field(False, description="split tt-bar into + light / + c / + b")
    tt_label: int = Field(0, ge=0, description="the tt-bar process label")

    @model_validator(mode="after")
    def _check(self) -> ProcessParams:
        if self.weight > 0 and not self.labels:
            raise ValueError("objective.process: give the process labels that are classes")
        if len(set(self.labels)) != len(self.labels) or min(self.labels, default=0) < 0:
            raise ValueError(f"objective.process.labels: distinct labels >= 0, got {self.labels}")
        if self.tt_flavour and self.tt_label not in self.labels:
            raise ValueError("objective.process.tt_flavour: tt_label is not among the labels")
        return self

    def n_classes(self) -> int:
        """Classes of the head: one per label, two more with ``tt_flavour``."""
        return len(self.labels) + 2 * self.tt_flavour


def class_index(
    label: torch.Tensor, params: ProcessParams, tt_hf: torch.Tensor | None = None
) -> torch.Tensor:
    """Per event: its class (``-1``: not a class of this term, masked)."""
    lut = torch.full((max(params.labels) + 2,), -1, dtype=torch.long, device=label.device)
    lut[torch.tensor(params.labels, device=label.device)] = torch.arange(
        len(params.labels), device=label.device
    )
    known = (label >= 0) & (label < len(lut) - 1)
    out = torch.where(known, lut[label.clamp(0, len(lut) - 1)], torch.full_like(label, -1))
    if params.tt_flavour:
        if tt_hf is None:
            raise TrainingError(
                f"objective.process.tt_flavour needs the truth label {TTHF_TARGET} in the "
                "batch (pretrain on generated events with their GenTarget_* values)"
            )
        tt = label == params.tt_label
        flavour = torch.nan_to_num(tt_hf, nan=0.0).round().long()
        extra = len(params.labels) - 1 + flavour  # + c -> n, + b -> n + 1
        out = torch.where(tt & (flavour > 0), extra, out)
    return out


@register_objective("process")
class ProcessClassification(Objective):
    """Weighted cross-entropy of the ``classifier`` head over the process classes."""

    params = ProcessParams
    heads = ("classifier",)

    def loss(
        self, encoded: Encoded, params: ProcessParams
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        batch, pooled = encoded.batch, encoded.pooled
        logits = encoded.heads["classifier"](pooled).float()
        if logits.shape[1] != params.n_classes():
            raise TrainingError(
                f"objective.process has {params.n_classes()} classes, the classifier head "
                f"{logits.shape[1]} outputs: set model.n_classes: {params.n_classes()}"
            )
        label = batch.get("label")
        if label is None:
            label = torch.full((len(pooled),), -1, dtype=torch.long, device=pooled.device)
        target = class_index(label, params, batch.get(target_key(TTHF_TARGET)))
        loss = labelled_cross_entropy(logits, target, batch.get("weight"))
        return params.weight * loss, {"process": loss}

    def card_line(self, params: ProcessParams) -> str:
        split = " (tt-bar split into + light / + c / + b)" if params.tt_flavour else ""
        return (
            f"process classification (weight {params.weight}, {params.n_classes()} classes "
            f"from process labels {params.labels}{split}; unlabelled events masked)"
        )
