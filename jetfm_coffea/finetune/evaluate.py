"""Evaluate one trained run (classifier, or any task type) on labelled events (``jetfm evaluate``).

Loads the run with :func:`jetfm_coffea.train.load_run` (safetensors, hash-checked),
reads its task config, checks that the data was built with the run's token config,
applies the task's hash split (``split="test"`` by default, the events the run never
trained or validated on) and writes to ``out`` (default ``RUN/eval``)::

    metrics.json   metrics, confusion matrix, calibration
    metrics.md     the same as a short Markdown report
    roc.png  confusion.png  calibration.png  scores.png

A run of another task type (e.g. regression) gets its type's metrics
(:meth:`TaskType.metrics`) and figures (:meth:`TaskType.plots`: ``pred_vs_true.png``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np

from jetfm_coffea.atomic import atomic_write_text
from jetfm_coffea.errors import TrainingError
from jetfm_coffea.finetune.config import TaskConfig, load_task_config
from jetfm_coffea.finetune.data import (
    SPLITS,
    LabelledEvents,
    assign_splits,
    task_targets,
    task_values,
)
from jetfm_coffea.finetune.metrics import calibration, classification_metrics, confusion, roc
from jetfm_coffea.finetune.plots import plot_calibration, plot_confusion, plot_roc, plot_scores
from jetfm_coffea.finetune.task_types import TaskType, task_type_for
from jetfm_coffea.finetune.trainer import predict, predict_outputs
from jetfm_coffea.tokens.config import check_token_config
from jetfm_coffea.train.pretrain_run import load_run

__all__ = ["evaluate_run", "load_classifier"]

Split = Literal["train", "val", "test", "all"]


def load_classifier(run: str | Path, device: str = "cpu") -> tuple[Any, Any, TaskConfig]:
    """``(model, RunConfigs, TaskConfig)`` of a fine-tuning run directory (any task type)."""
    run = Path(run)
    model, configs = load_run(run, device=device)
    task = None
    if (run / "task_config.yaml").is_file():
        task = load_task_config(run / "task_config.yaml")
    if task is None or task_type_for(task).head not in model.heads:
        raise TrainingError(
            f"{run} is not a classifier run or other fine-tuned run (no task_config.yaml or "
            "no head of its task type); evaluate takes the output of `jetfm finetune`"
        )
    return model, configs, task


def evaluate_run(
    run: str | Path,
    data: LabelledEvents,
    *,
    split: Split = "test",
    out: str | Path | None = None,
    device: str = "cpu",
    plots: bool = True,
) -> dict[str, Any]:
    """Metrics, ROC, confusion matrix and calibration of one classifier run; returns the dict."""
    run = Path(run)
    model, configs, task = load_classifier(run, device)
    check_token_config(configs.tokens, data.token_config, "evaluation data")
    targets, _ = task_targets(data, task)
    codes = assign_splits(data, task.splits)
    keep = targets >= 0
    if split != "all":
        keep &= codes == SPLITS[split]
    index = np.flatnonzero(keep)
    y = targets[index]
    absent = [task.class_names[c] for c in range(task.n_classes) if not (y == c).any()]
    if absent:
        raise TrainingError(
            f"the {split} events of the data ({len(index)}) hold no event of classes {absent}; "
            f"data labels present: {data.label_counts()}"
        )
    kind = task_type_for(task)
    if kind.name != "classification":
        values = task_values(data, task)
        y = kind.labels(targets, values)[index]
        return _evaluate_other(kind, model, configs, data, index, y, run, split, out, device, plots)
    probs = predict(model, data, index, device=device, batch_size=task.train.eval_batch_size)
    sig = task.signal_index
    result: dict[str, Any] = {
        "run": str(run),
        "split": split,
        "mode": configs.info.get("mode"),
        "classes": task.class_names,
        **classification_metrics(probs, y, sig, task.class_names),
        "confusion": confusion(probs, y, task.n_classes).tolist(),
        "calibration": calibration(probs, y, sig),
    }
    out = Path(out) if out is not None else run / "eval"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "metrics.json", json.dumps(result, indent=1))
    atomic_write_text(out / "metrics.md", _markdown(result))
    if plots:
        name = f"{configs.info.get('mode', 'model')} ({split})"
        plot_roc({name: roc(probs, y, sig)}, out / "roc.png")
        plot_confusion(np.asarray(result["confusion"]), task.class_names, out / "confusion.png")
        plot_calibration(result["calibration"], task.signal_class, out / "calibration.png")
        plot_scores({name: (probs, y)}, task.class_names, sig, out / "scores.png")
    result["out"] = str(out)
    return result


def _evaluate_other(
    kind: TaskType,
    model: Any,
    configs: Any,
    data: LabelledEvents,
    index: np.ndarray,
    y: np.ndarray,
    run: Path,
    split: str,
    out: str | Path | None,
    device: str,
    plots: bool,
) -> dict[str, Any]:
    """Metrics and figures of a run of a non-classification task type."""
    outputs = predict_outputs(
        model, data, index, head=kind.head, transform=kind.predict, device=device,
        batch_size=kind.task.train.eval_batch_size,
    )  # fmt: skip
    result: dict[str, Any] = {
        "run": str(run),
        "split": split,
        "mode": configs.info.get("mode"),
        "task_type": kind.name,
        "outputs": kind.columns(),
        **kind.metrics(outputs, y),
    }
    out = Path(out) if out is not None else run / "eval"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "metrics.json", json.dumps(result, indent=1))
    lines = [f"# Evaluation of `{run}` ({split} split, {kind.name})", ""]
    lines += [f"- {k}: {v:.4g}" for k, v in result.items() if isinstance(v, float)]
    atomic_write_text(out / "metrics.md", "\n".join(lines) + "\n")
    if plots:
        name = f"{configs.info.get('mode', 'model')} ({split})"
        result["figures"] = {k: str(v) for k, v in kind.plots(outputs, y, out, name).items()}
    result["out"] = str(out)
    return result


def _markdown(r: dict[str, Any]) -> str:
    rej = [k for k in r if k.startswith("rejection_") and not k.endswith("_capped")]
    per_class = ", ".join(f"{k}: {v}" for k, v in r["n_per_class"].items())
    lines = [
        f"# Evaluation of `{r['run']}` ({r['split']} split)",
        "",
        f"- events: {r['n_events']} ({per_class})",
        f"- AUC ({r['signal']} vs rest): {r['auc']:.4f}",
        f"- accuracy: {r['accuracy']:.4f}; log loss {r['log_loss']:.4f}; "
        f"Brier {r['calibration']['brier']:.4f}",
    ]
    for k in rej:
        bound = " (lower bound)" if r[f"{k}_capped"] else ""
        lines.append(f"- 1/ε_B at ε_S = {k.split('_')[1]}%: {r[k]:.2f}{bound}")
    lines += ["", "Confusion matrix (rows: true, columns: predicted):", ""]
    names = r["classes"]
    lines.append("| true \\ pred | " + " | ".join(names) + " |")
    lines.append("|---" * (len(names) + 1) + "|")
    for name, row in zip(names, r["confusion"], strict=True):
        lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines) + "\n"
