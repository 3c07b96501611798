"""The label-efficiency study: every mode over a grid of label counts x seeds.

``label_efficiency(task, pretrained, data, out)`` checks the whole grid first (label
counts against the training split, classes, the task selection, token configs), then
trains one model per (mode, label count, seed) into ``out/runs/<mode>_n<N>_s<seed>``
and writes::

    out/results.json          per-run rows, per-(mode, N) aggregates (mean, std, min, max),
                              the learning-rate search, the selection (events per class)
    out/results.md            the table (AUC, accuracy, 1/ε_B at 30% and 50%, ± seed std,
                              steps to the best validation loss, chosen learning rate)
    out/label_efficiency.png  AUC and 1/ε_B(50%) vs labelled events, one line per mode
    out/roc.png               ROC curves of every mode at the largest label count (seed 0)
    out/scores.png            score distributions per class, one panel per mode (same runs)

The task type (:mod:`.task_types`) sets the metrics, the table and the figures: for a
regression task ``results.md`` reports resolution, bias, width coverage and RMSE,
``label_efficiency.png`` the resolution and coverage vs labelled events, and
``pred_vs_true.png`` replaces the ROC and score figures.

Modes: the encoder modes (linear-probe, finetune, scratch) and, for classification, the
gradient-boosted reference rows (bdt-raw, bdt-features; :mod:`.reference`), on the same
labelled, validation and test events.  Fair training: with a learning-rate grid
(``optim.lr_grid`` for the encoder modes, ``reference.learning_rates`` for the trees),
each (mode, label count) trains the first seed once per rate and keeps the rate with
the lowest validation loss for every seed (those runs are named ``..._lr<rate>``); a
run that a step cap ended before its validation loss stopped improving is marked ‡ in
the table.  A completed run directory with the same task, pretrained weights and data
is reused, so an interrupted study continues where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jetfm_coffea.atomic import atomic_write_text
from jetfm_coffea.errors import ConfigError
from jetfm_coffea.finetune.config import (
    ALL_MODES,
    REFERENCE_MODES,
    LabelCount,
    TaskConfig,
    load_task_config,
)
from jetfm_coffea.finetune.data import LabelledEvents
from jetfm_coffea.finetune.plots import plot_label_efficiency
from jetfm_coffea.finetune.reference import reference_features, train_reference
from jetfm_coffea.finetune.task_types import TaskType, task_type_for
from jetfm_coffea.finetune.task_types.classification import Classification, classification_table
from jetfm_coffea.finetune.trainer import (
    FinetuneSetup,
    PretrainedEncoder,
    finetune,
    prepare_finetune,
)
from jetfm_coffea.model.rundir import RUN_INFO

__all__ = ["STUDY_METRICS", "StudyResult", "aggregate", "label_efficiency", "markdown_table"]

#: Metrics of a classification study aggregated over seeds (each task type declares its
#: own: :attr:`TaskType.study_metrics`).
STUDY_METRICS: tuple[str, ...] = Classification.study_metrics


@dataclass
class StudyResult:
    """Rows (one per run), aggregates (one per mode and label count), output paths."""

    out: Path
    rows: list[dict[str, Any]]
    aggregate: list[dict[str, Any]]
    files: dict[str, Path] = field(default_factory=dict)
    lr_search: list[dict[str, Any]] = field(default_factory=list)


def aggregate(rows: Sequence[dict[str, Any]], metrics: Sequence[str] = STUDY_METRICS) -> list[dict]:
    """Mean, standard deviation (ddof=1; 0 for one seed), min and max over seeds."""
    out = []
    keys = list(dict.fromkeys((r["mode"], r["n_labels"]) for r in rows))
    for mode, n in keys:
        group = [r for r in rows if r["mode"] == mode and r["n_labels"] == n]
        entry: dict[str, Any] = {"mode": mode, "n_labels": n, "n_seeds": len(group)}
        for m in metrics:
            v = np.array([r.get(m, np.nan) for r in group], float)
            entry[f"{m}_mean"] = float(v.mean())
            entry[f"{m}_std"] = float(v.std(ddof=1)) if len(v) > 1 else 0.0
            entry[f"{m}_min"], entry[f"{m}_max"] = float(v.min()), float(v.max())
        for key in ("rejection_30_capped", "rejection_50_capped"):
            entry[key] = any(bool(r.get(key, False)) for r in group)
        entry["n_step_capped"] = sum(r.get("stopped_by", "patience") != "patience" for r in group)
        entry["lr"] = group[0].get("lr")
        out.append(entry)
    mode_order = {m: i for i, m in enumerate(ALL_MODES)}
    return sorted(out, key=lambda e: (mode_order.get(e["mode"], 99), e["n_labels"]))


def markdown_table(agg: Sequence[dict[str, Any]], title: str | None = None) -> str:
    """The aggregate of a classification study as a Markdown table, ``mean ± std`` over
    seeds (other task types: :meth:`TaskType.markdown_table`)."""
    return classification_table(agg, title)


def _run_name(mode: str, n: int, seed: int, lr: float | None = None) -> str:
    base = f"{mode}_n{n}_s{seed}"
    return base if lr is None else f"{base}_lr{lr:g}"


def _reusable(run_dir: Path, setup: FinetuneSetup, mode: str) -> dict[str, Any] | None:
    """The summary row of a completed, matching run in ``run_dir``, else None."""
    try:
        info = json.loads((run_dir / RUN_INFO).read_text())
        metrics = json.loads((run_dir / "test_metrics.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    same = (
        info.get("status") == "completed"
        and info.get("mode") == mode
        and info.get("task_config_hash") == setup.task.hash()
        and info.get("data", {}).get("n_events") == setup.data.provenance.get("n_events")
    )
    if mode not in REFERENCE_MODES:  # the trees do not use the pretrained encoder
        pre = info.get("pretrained", {}).get("weights_sha256")
        same = same and pre == setup.pretrained.weights_sha256
    if not same:
        return None
    return {
        "run_dir": str(run_dir),
        "mode": info["mode"],
        "n_labels": info["n_labels"],
        "seed": info["seed"],
        "steps": info["steps_done"],
        "best_step": info["best_step"],
        "best_val_loss": info["best_val_loss"],
        "stopped_early": info["stopped_early"],
        "stopped_by": info.get("stopped_by", "patience" if info["stopped_early"] else "max_steps"),
        "lr": info.get("lr"),
        "wall_s": info["wall_s"],
        "train_s": info["train_s"],
        "reused": True,
        **{k: v for k, v in metrics.items() if not isinstance(v, dict)},
    }


class _Runner:
    """Trains (or reuses) one run of any mode, with a given learning rate."""

    def __init__(self, setup: FinetuneSetup, out: Path, reuse: bool):
        self.setup, self.out, self.reuse = setup, out, reuse
        self.features: dict[str, tuple[np.ndarray, list[str]]] = {}
        self._setups: dict[float | None, FinetuneSetup] = {None: setup}

    def grid(self, mode: str) -> list[float | None]:
        task = self.setup.task
        rates = task.reference.learning_rates if mode in REFERENCE_MODES else task.optim.lr_grid
        return list(rates) if len(rates) > 1 else [None]

    def _setup_for(self, lr: float | None, mode: str) -> FinetuneSetup:
        if mode in REFERENCE_MODES or lr is None:
            return self.setup
        if lr not in self._setups:
            task = load_task_config(self.setup.task, **{"optim.lr": lr})
            self._setups[lr] = dataclasses.replace(self.setup, task=task)
        return self._setups[lr]

    def run(self, mode: str, n: int, seed: int, lr: float | None) -> dict[str, Any]:
        run_dir = self.out / "runs" / _run_name(mode, n, seed, lr)
        setup = self._setup_for(lr, mode)
        row = _reusable(run_dir, setup, mode) if self.reuse else None
        if row is not None:
            return row
        if mode in REFERENCE_MODES:
            if mode not in self.features:
                data, ref = setup.data, setup.task.reference
                self.features[mode] = reference_features(
                    mode, data.tokens, data.mask, data.token_config, ref
                )
            rate = lr if lr is not None else setup.task.reference.learning_rates[0]
            res = train_reference(
                setup, run_dir, mode=mode, labels=n, seed=seed, lr=rate,
                features=self.features[mode],
            )  # fmt: skip
        else:
            res = finetune(setup, run_dir, mode=mode, labels=n, seed=seed, overwrite=True)
        return {**res.summary(), "reused": False}


def label_efficiency(
    task: TaskConfig | str | Path | dict,
    pretrained: str | Path | PretrainedEncoder,
    data: LabelledEvents,
    out: str | Path,
    *,
    modes: Sequence[str] | None = None,
    labels: Sequence[LabelCount] | None = None,
    seeds: Sequence[int] | None = None,
    reuse: bool = True,
    plots: bool = True,
    log: Callable[[str], None] | None = None,
) -> StudyResult:
    """Run the study (grid from the task config unless given); see the module docstring."""
    task = load_task_config(task)
    modes = list(modes or task.modes)
    labels = list(labels or task.labels)
    seeds = list(seeds if seeds is not None else task.seeds)
    kind = task_type_for(task)
    for m in modes:
        if m not in ALL_MODES:
            raise ConfigError(f"unknown mode {m!r}; choose from {list(ALL_MODES)}")
        if m not in kind.modes:
            raise ConfigError(
                f"mode {m!r} does not apply to {kind.name} tasks; choose from {list(kind.modes)}"
            )
    setup = prepare_finetune(task, pretrained, data, labels=labels)  # checks the whole grid
    counts = sorted({setup.resolve_labels(n) for n in labels})
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if "linear-probe" in modes:
        setup.embeddings()  # shared by every probe run; its time is reported on its own
    runner = _Runner(setup, out, reuse)
    rows: list[dict[str, Any]] = []
    lr_search: list[dict[str, Any]] = []
    total = len(modes) * len(counts) * len(seeds)
    t0 = time.perf_counter()

    def report(row: dict[str, Any], note: str = "") -> None:
        if log:
            log(
                f"[{len(rows)}/{total}] {row['mode']:12s} n={row['n_labels']:<7d} "
                f"seed={row['seed']}: {kind.headline(row)}, {row['steps']} steps "
                f"(best {row['best_step']}, {row['stopped_by']}), "
                f"{row['wall_s']:.1f}s{' (reused)' if row['reused'] else ''}{note}"
            )

    for mode in modes:
        for n in counts:
            grid = runner.grid(mode)
            chosen: float | None = grid[0]
            if len(grid) > 1:  # choose the rate on the first seed's validation loss
                trials = [runner.run(mode, n, seeds[0], lr) for lr in grid]
                best = min(range(len(grid)), key=lambda i: trials[i]["best_val_loss"])
                chosen = grid[best]
                lr_search.append(
                    {
                        "mode": mode,
                        "n_labels": n,
                        "seed": seeds[0],
                        "val_loss": {
                            f"{lr:g}": t["best_val_loss"]
                            for lr, t in zip(grid, trials, strict=True)
                        },
                        "chosen": chosen,
                    }
                )
                rows.append(trials[best])
                report(trials[best], f" (lr {chosen:g} of {[f'{g:g}' for g in grid]})")
                rest = seeds[1:]
            else:
                rest = seeds
            for seed in rest:
                rows.append(runner.run(mode, n, seed, chosen))
                report(rows[-1])
    agg = aggregate(rows, kind.study_metrics)
    result = StudyResult(out, rows, agg, lr_search=lr_search)
    payload = {
        "task": task.model_dump(mode="json"),
        "task_config_hash": task.hash(),
        "pretrained": setup.pretrained.describe(),
        "data": setup.data.provenance,
        "selection": setup.selection,
        "splits": {k: len(setup.pool(k)) for k in ("train", "val", "test")},
        "label_counts": counts,
        "modes": modes,
        "seeds": seeds,
        "embed_seconds": setup.embed_seconds,
        "wall_s": time.perf_counter() - t0,
        "rows": rows,
        "aggregate": agg,
        "lr_search": lr_search,
    }
    result.files["json"] = out / "results.json"
    atomic_write_text(result.files["json"], json.dumps(payload, indent=1, default=str))
    result.files["markdown"] = out / "results.md"
    atomic_write_text(result.files["markdown"], kind.markdown_table(agg, _title(kind)))
    if plots:
        _plots(result, kind, modes, counts[-1], seeds[0])
    return result


def _title(kind: TaskType) -> str:
    task = kind.task
    if kind.name == "classification":
        return f"Label efficiency: {' vs '.join(task.class_names)} (signal {task.signal_class})"
    target = getattr(kind, "target", "")
    return f"Label efficiency: {kind.name} {target} on {', '.join(task.class_names)}"


def _plots(result: StudyResult, kind: TaskType, modes: list[str], n_max: int, s0: int) -> None:
    out, agg = result.out, result.aggregate
    result.files["label_efficiency"] = plot_label_efficiency(
        agg, out / "label_efficiency.png", metrics=kind.curve_metrics
    )
    # the task type's figures: the largest label count, first seed, every mode
    runs = {}
    for mode in modes:
        row = next(
            r for r in result.rows if (r["mode"], r["n_labels"], r["seed"]) == (mode, n_max, s0)
        )
        runs[mode] = Path(row["run_dir"])
    result.files.update(kind.study_plots(agg, runs, out, n_max, s0))
