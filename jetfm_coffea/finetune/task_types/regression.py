"""Task type ``regression``: one event-level quantity with a predicted width.

The head is the model's ``regressor`` (LayerNorm + linear to a value and a log width).
It trains on the target standardised with the labelled events' mean and standard
deviation, with a Gaussian negative log-likelihood (``loss: gaussian_nll``: value and
width together) or a Huber loss on the value (``loss: huber``, ``huber_delta`` in
standard deviations) plus the Gaussian likelihood of the width around the (detached)
value, so that a width is always predicted. After training the standardisation is
folded into the head, so the run's weights, the scorer and the exported model output
physical units: columns ``pred_<target>`` and ``sigma_<target>``.

Targets are per-event branches of the input files (``options.branch``, default
``GenTarget_<target>``: the generator's truth targets, :mod:`jetfm_coffea.generate.targets`);
events where the target is NaN (not defined) leave the task, counted per class in the
selection summary. Metrics (:func:`~jetfm_coffea.finetune.metrics.regression_metrics`):
resolution (interquartile half-width of (pred - true) / true), bias (its median),
coverage of the predicted width (expected 0.683), RMSE.

Example (``finetune/tasks/ttbar_top_pt.yaml``)::

    type: regression
    options: {target: hadTopPt, loss: gaussian_nll}
    classes: {ttbar: 0}
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from jetfm_coffea.errors import TrainingError
from jetfm_coffea.finetune.metrics import regression_metrics
from jetfm_coffea.finetune.plots import plot_pred_vs_true
from jetfm_coffea.finetune.task_types.classification import mean_std, run_cells, step_notes
from jetfm_coffea.finetune.task_types.registry import TaskLoss, TaskType, register_task_type

if TYPE_CHECKING:
    from jetfm_coffea.finetune.data import LabelledEvents

__all__ = ["GaussianLoss", "Regression", "RegressionOptions"]

#: Log widths are clamped to this range (standardised units) inside the loss only.
LOG_WIDTH_RANGE = (-6.0, 6.0)


class RegressionOptions(BaseModel):
    """``options`` of a regression task."""

    model_config = ConfigDict(extra="forbid")

    target: str = Field(..., pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="column name")
    branch: str | None = Field(None, description="input branch (default GenTarget_<target>)")
    loss: Literal["gaussian_nll", "huber"] = "gaussian_nll"
    huber_delta: float = Field(1.0, gt=0.0, description="huber: in standard deviations")

    @property
    def source(self) -> str:
        return self.branch or f"GenTarget_{self.target}"


class GaussianLoss(TaskLoss):
    """Loss on ``z = (y - offset) / scale`` of the head's raw ``[value, log width]``."""

    def __init__(self, offset: float, scale: float, loss: str, delta: float):
        self.offset, self.scale, self.kind, self.delta = offset, scale, loss, delta

    def _split(self, outputs: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = outputs.float()
        z = ((y.float() - self.offset) / self.scale)[:, None]
        return out[:, :1], out[:, 1:].clamp(*LOG_WIDTH_RANGE), z

    def loss(self, outputs: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        mu, log_w, z = self._split(outputs, y)
        centre = mu.detach() if self.kind == "huber" else mu
        per_event = (0.5 * ((z - centre) * torch.exp(-log_w)) ** 2 + log_w).sum(1)
        if self.kind == "huber":
            per_event = per_event + F.huber_loss(mu, z, delta=self.delta, reduction="none").sum(1)
        return (per_event * w).sum() / w.sum().clamp_min(1e-12)

    def val_record(self, outputs: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        mu, _, z = self._split(outputs, y)
        return {"val_rmse": float(((mu - z) ** 2).mean().sqrt()) * self.scale}

    def finalize(self, head: torch.nn.Module) -> None:
        head.rescale(torch.tensor([self.offset]), torch.tensor([self.scale]))

    def describe(self) -> dict[str, Any]:
        return {"target_offset": self.offset, "target_scale": self.scale}


@register_task_type
class Regression(TaskType):
    """Regression of one per-event target with a predicted Gaussian width."""

    name = "regression"
    head = "regressor"
    run_kind = "regressor"
    options_model = RegressionOptions
    primary = "resolution"
    higher_is_better = False
    study_metrics: ClassVar[tuple[str, ...]] = (
        "resolution", "bias", "coverage", "rmse", "wall_s", "steps", "best_step",
    )  # fmt: skip
    curve_metrics: ClassVar[tuple[str, ...]] = ("resolution", "coverage")

    def n_outputs(self) -> int:
        return 2

    @property
    def target(self) -> str:
        return self.options.target

    def value_branches(self) -> list[str]:
        return [self.options.source]

    def event_values(self, data: LabelledEvents) -> np.ndarray:
        branch = self.options.source
        if branch not in data.values:
            raise TrainingError(
                f"the data ({data.provenance.get('source', 'labelled events')}) carry no "
                f"regression target {branch!r} (present: {sorted(data.values) or 'none'}); "
                "read a fileset of files that have the branch (jetfm generate writes "
                "GenTarget_* branches)"
            )
        values = np.asarray(data.values[branch], np.float64)
        return np.where(np.isfinite(values), values, np.nan)

    def task_loss(self, y_train: np.ndarray, w_train: np.ndarray) -> TaskLoss:
        y = np.asarray(y_train, np.float64)
        offset = float(y.mean())
        scale = float(y.std())
        scale = scale if scale > 1e-6 * max(abs(offset), 1.0) else 1.0
        o = self.options
        return GaussianLoss(offset, scale, o.loss, o.huber_delta)

    def train_outputs(self, head: torch.nn.Module, embedding: torch.Tensor) -> torch.Tensor:
        return head.raw(embedding)

    def metrics(self, outputs: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        return regression_metrics(outputs[:, 0], outputs[:, 1], y)

    def columns(self) -> list[str]:
        return [f"pred_{self.target}", f"sigma_{self.target}"]

    def run_info(self) -> dict[str, Any]:
        o = self.options
        return {
            "classes": self.task.class_names,
            "class_labels": self.task.classes,
            "target": o.target,
            "target_branch": o.source,
            "loss": o.loss,
            **super().run_info(),
        }

    def score_arrays(self, outputs: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
        return {"pred": outputs[:, 0], "sigma": outputs[:, 1], "target": y}

    def headline(self, row: dict[str, Any]) -> str:
        return (
            f"resolution {row['resolution']:.4f}, bias {row['bias']:+.4f}, "
            f"coverage {row['coverage']:.3f}"
        )

    def card_lines(self, info: dict[str, Any], metrics: dict[str, Any]) -> dict[str, str]:
        o = self.options
        return {
            "head": "regression head (LayerNorm + linear) with a value and a width "
            f"(`pred_{o.target}`, `sigma_{o.target}`, GeV).",
            "task": f"Target `{o.source}` ({o.loss} loss); samples (data labels): "
            f"{self.task.classes}; events without the target are left out.",
            "metrics": f"resolution (IQR/2 of (pred - true)/true) {metrics['resolution']:.4f}, "
            f"bias (median) {metrics['bias']:+.4f}, coverage of ±σ {metrics['coverage']:.3f} "
            f"(0.683 expected), RMSE {metrics['rmse']:.2f}.",
        }

    def markdown_table(self, aggregate: Sequence[dict[str, Any]], title: str | None) -> str:
        pm = mean_std
        lines = [f"## {title}", ""] if title else []
        lines += [
            "| mode | labels | seeds | resolution | bias | coverage (±σ) | RMSE | "
            "steps (best) | lr | wall s |",
            "|---|---:|---:|---|---|---|---|---:|---:|---:|",
        ]
        for e in aggregate:
            lines.append(
                f"| {e['mode']} | {e['n_labels']} | {e['n_seeds']} | "
                f"{pm(e, 'resolution', '.4f')} | {pm(e, 'bias', '+.4f')} | "
                f"{pm(e, 'coverage', '.3f')} | {pm(e, 'rmse', '.1f')} | {run_cells(e)} |"
            )
        lines += [
            "",
            "resolution: interquartile half-width of (pred - true)/true; bias: its median; "
            "coverage: fraction of test events with |pred - true| < σ (0.683 expected).",
            *step_notes(aggregate),
        ]
        return "\n".join(lines) + "\n"

    def plots(self, outputs: np.ndarray, y: np.ndarray, out: Path, name: str) -> dict[str, Path]:
        path = out / "pred_vs_true.png"
        return {"pred_vs_true": plot_pred_vs_true({name: (outputs[:, 0], y)}, self.target, path)}

    def study_plots(
        self,
        aggregate: Sequence[dict[str, Any]],
        runs: dict[str, Path],
        out: Path,
        n_labels: int,
        seed: int,
    ) -> dict[str, Path]:
        panels = {}
        for mode, run_dir in runs.items():
            z = np.load(run_dir / "test_scores.npz")
            panels[f"{mode} (n={n_labels})"] = (z["pred"], z["target"])
        path = out / "pred_vs_true.png"
        return {"pred_vs_true": plot_pred_vs_true(panels, self.target, path)}
