"""Task type ``classification``: softmax classes, weighted cross-entropy, AUC and rejections.

The head is the model's ``classifier`` (LayerNorm + linear, one output per class); the
scorer's columns are ``score_<class>`` (softmax probabilities). The study reports AUC,
accuracy and background rejections at 30% and 50% signal efficiency, with the ROC
curves and score distributions of every mode at the largest label count.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from jetfm_coffea.finetune.metrics import classification_metrics, roc
from jetfm_coffea.finetune.plots import plot_roc, plot_scores
from jetfm_coffea.finetune.task_types.registry import TaskLoss, TaskType, register_task_type

__all__ = [
    "Classification",
    "ClassificationLoss",
    "classification_table",
    "mean_std",
    "run_cells",
    "step_notes",
]


class ClassificationLoss(TaskLoss):
    """Cross-entropy weighted per event (class weights are in the event weights)."""

    def loss(self, outputs: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        ce = F.cross_entropy(outputs.float(), y, reduction="none")
        return (ce * w).sum() / w.sum().clamp_min(1e-12)

    def val_record(self, outputs: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        return {"val_acc": float((outputs.argmax(1) == y).float().mean())}


@register_task_type
class Classification(TaskType):
    """Event classification into the task's classes (the signal class is scored in ROCs)."""

    name = "classification"
    head = "classifier"
    run_kind = "classifier"
    primary = "auc"
    study_metrics: ClassVar[tuple[str, ...]] = (
        "auc", "accuracy", "rejection_30", "rejection_50", "wall_s", "steps", "best_step",
    )  # fmt: skip
    modes = ("linear-probe", "finetune", "scratch", "bdt-raw", "bdt-features")

    @classmethod
    def check_config(cls, task: Any) -> None:
        super().check_config(task)
        if len(task.classes) < 2:
            raise ValueError(f"a task needs at least 2 classes, got {list(task.classes)}")

    def n_outputs(self) -> int:
        return self.task.n_classes

    def task_loss(self, y_train: np.ndarray, w_train: np.ndarray) -> TaskLoss:
        return ClassificationLoss()

    def metrics(self, outputs: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        t = self.task
        return classification_metrics(outputs, y, t.signal_index, t.class_names)

    def columns(self) -> list[str]:
        return [f"score_{name}" for name in self.task.class_names]

    def run_info(self) -> dict[str, Any]:
        t = self.task
        return {
            "classes": t.class_names,
            "class_labels": t.classes,
            "signal": t.signal_class,
            **super().run_info(),
        }

    def score_arrays(self, outputs: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
        return {"probs": outputs, "target": y}

    def headline(self, row: dict[str, Any]) -> str:
        return f"AUC {row['auc']:.4f}, acc {row['accuracy']:.4f}"

    def card_lines(self, info: dict[str, Any], metrics: dict[str, Any]) -> dict[str, str]:
        t = self.task
        classes = ", ".join(f"{n} = data labels {v}" for n, v in t.classes.items())
        rej = ", ".join(
            f"1/ε_B at ε_S = {key.split('_')[1]}%: {metrics[key]:.1f}"
            + (" (lower bound)" if metrics[f"{key}_capped"] else "")
            for key in metrics
            if key.startswith("rejection_") and not key.endswith("_capped")
        )
        return {
            "head": f"classification head (LayerNorm + linear) with {t.n_classes} outputs "
            "(softmax).",
            "task": f"Classes (index order): {classes}; signal class for ROC metrics: "
            f"{t.signal_class}.",
            "metrics": f"AUC {metrics['auc']:.4f}, accuracy {metrics['accuracy']:.4f}; {rej}.",
        }

    def markdown_table(self, aggregate: Sequence[dict[str, Any]], title: str | None) -> str:
        return classification_table(aggregate, title)

    def study_plots(
        self,
        aggregate: Sequence[dict[str, Any]],
        runs: dict[str, Path],
        out: Path,
        n_labels: int,
        seed: int,
    ) -> dict[str, Path]:
        t = self.task
        curves, scores = {}, {}
        for mode, run_dir in runs.items():
            z = np.load(run_dir / "test_scores.npz")
            probs, y = z["probs"], z["target"]
            curves[f"{mode} (n={n_labels})"] = roc(probs, y, t.signal_index)
            scores[mode] = (probs, y)
        return {
            "roc": plot_roc(curves, out / "roc.png", f"test split, seed {seed}"),
            "scores": plot_scores(scores, t.class_names, t.signal_index, out / "scores.png"),
        }


def classification_table(agg: Sequence[dict[str, Any]], title: str | None = None) -> str:
    """The aggregate as a Markdown table, ``mean ± std`` over seeds."""
    pm = mean_std
    lines = [f"## {title}", ""] if title else []
    lines += [
        "| mode | labels | seeds | AUC | accuracy | 1/ε_B @ ε_S=30% | 1/ε_B @ ε_S=50% "
        "| steps (best) | lr | wall s |",
        "|---|---:|---:|---|---|---|---|---:|---:|---:|",
    ]
    for e in agg:
        f30 = " †" if e["rejection_30_capped"] else ""
        f50 = " †" if e["rejection_50_capped"] else ""
        lines.append(
            f"| {e['mode']} | {e['n_labels']} | {e['n_seeds']} | {pm(e, 'auc', '.4f')} | "
            f"{pm(e, 'accuracy', '.4f')} | {pm(e, 'rejection_30', '.1f')}{f30} | "
            f"{pm(e, 'rejection_50', '.1f')}{f50} | {run_cells(e)} |"
        )
    if any(e["rejection_30_capped"] or e["rejection_50_capped"] for e in agg):
        lines += ["", "† in some seed no background test event passed: 1/ε_B is a lower bound."]
    lines += step_notes(agg)
    return "\n".join(lines) + "\n"


def mean_std(e: dict[str, Any], metric: str, fmt: str) -> str:
    """``mean ± std`` of ``metric`` in one aggregate entry, formatted with ``fmt``."""
    return f"{e[metric + '_mean']:{fmt}} ± {e[metric + '_std']:{fmt}}"


def run_cells(e: dict[str, Any]) -> str:
    """The cells every study table ends with: ``steps (best)[‡] | lr | wall s``."""
    capped = " ‡" if e.get("n_step_capped") else ""
    steps = f"{e.get('steps_mean', float('nan')):.0f} ({e.get('best_step_mean', 0):.0f})"
    lr = f"{e['lr']:.3g}" if e.get("lr") is not None else "-"
    return f"{steps}{capped} | {lr} | {e['wall_s_mean']:.1f}"


def step_notes(agg: Sequence[dict[str, Any]]) -> list[str]:
    """The footnotes on step caps and step counts shared by every study table."""
    lines: list[str] = []
    if any(e.get("n_step_capped") for e in agg):
        lines += [
            "",
            "‡ a step cap ended some seed before its validation loss stopped improving.",
        ]
    return [
        *lines,
        "",
        "steps: optimiser steps (boosting iterations for the trees) until early stopping, "
        "mean over seeds; in brackets the step of the best validation loss (the model kept).",
    ]
