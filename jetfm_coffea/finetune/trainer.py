"""Fine-tuning a pretrained encoder for a downstream task, in three modes.

* ``linear-probe``: the pretrained encoder is frozen (no gradient, eval mode); only the
  task head (LayerNorm + linear) is trained, on embeddings computed once.
* ``finetune``: encoder and head are trained; the encoder at ``lr * encoder_lr_factor``.
* ``scratch``: the same architecture from a random initialisation (the baseline).

The task type (:mod:`.task_types`: classification, regression) supplies the head, the
loss, the metrics and the output columns. Use :func:`prepare_finetune` once (it checks
the inputs: token configs, classes, targets, label counts, before any training), then
:func:`finetune` per mode/label count/seed, which runs these steps: draw the labelled
events (:func:`_draw_events`), build the model, batch source and optimiser, start the run
directory (:func:`_start_run`), train with early stopping (:class:`_Trainer`: the best
validation checkpoint is kept, then the task type folds what it standardised into the
head), predict the test split and save the run (:func:`_save_run`).

A fine-tuning run directory has the layout of a pretraining run (so
:func:`jetfm_coffea.train.load_run` returns the encoder plus the task head: a
``classifier`` with ``n_classes`` outputs, or a ``regressor``), plus::

    RUN/task_config.yaml     resolved TaskConfig, first line "# hash: <sha256[:16]>"
    RUN/test_metrics.json    metrics of the best checkpoint on the test split
    RUN/test_scores.npz      the task type's outputs (class probabilities; pred, sigma),
                             labels, weight, ids (test split)

``config.yaml`` is the pretraining config of the encoder (architecture provenance);
``run.json`` has ``kind`` (``classifier``, ``regressor``), ``task_type``, ``outputs``
(the scorer's columns), the classes, mode, label count, seed and the pretrained run's
path and weight hash.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jetfm_coffea.atomic import atomic_write_text
from jetfm_coffea.errors import ConfigError, TrainingError
from jetfm_coffea.finetune.config import (
    MODES,
    REFERENCE_MODES,
    LabelCount,
    TaskConfig,
    label_fraction,
    load_task_config,
)
from jetfm_coffea.finetune.data import (
    SPLITS,
    LabelledEvents,
    assign_splits,
    balanced_batch_size,
    bootstrap_labels,
    sample_labels,
    task_targets,
    task_values,
)
from jetfm_coffea.finetune.encode import EVAL_PRECISION, encode_events, encode_options
from jetfm_coffea.finetune.heldout import (
    check_pool_excludes_held_out,
    read_pool_events,
)
from jetfm_coffea.finetune.loop import EmbeddingBatches, LoopResult, RunEvents, RunLoop, embed
from jetfm_coffea.finetune.task_types import TaskType, task_type_for
from jetfm_coffea.model.config import ModelConfig
from jetfm_coffea.model.model import EventModel, count_parameters
from jetfm_coffea.model.released import resolve_run
from jetfm_coffea.model.rundir import (
    DATA_SHEET_KEY,
    METRICS,
    POOL_EVENTS,
    WEIGHTS,
    write_model_card,
    write_weights,
)
from jetfm_coffea.runtime import matmul_precision, resolve_device, resolve_precision
from jetfm_coffea.selection.datasheet import data_sheet_markdown
from jetfm_coffea.tokens.config import TokenConfig, check_token_config
from jetfm_coffea.train.config import PretrainConfig
from jetfm_coffea.train.data import TensorEventDataset
from jetfm_coffea.train.loop import decay_groups, lr_lambda
from jetfm_coffea.train.pretrain_run import RunConfigs, load_run, write_run_files

__all__ = [
    "FinetuneResult",
    "FinetuneSetup",
    "PretrainedEncoder",
    "build_classifier",
    "build_finetune_optimizer",
    "build_task_model",
    "check_classes",
    "class_weights",
    "finetune",
    "load_pretrained",
    "plan_task",
    "planned_steps",
    "predict",
    "predict_outputs",
    "prepare_finetune",
    "save_score_arrays",
    "save_test_scores",
]

WEIGHTS_FORMAT = "jetfm-event-classifier"


@dataclass
class PretrainedEncoder:
    """The encoder weights and configs of a pretraining run."""

    model_config: ModelConfig
    token_config: TokenConfig
    pretrain_config: PretrainConfig
    encoder_state: dict[str, torch.Tensor]
    run_dir: Path | None = None
    weights_sha256: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """Provenance recorded in fine-tuning runs."""
        return {
            "run_dir": str(self.run_dir) if self.run_dir else None,
            "weights_sha256": self.weights_sha256,
            "weights_check": self.info.get("loaded_weights", {}).get("check"),
            "config_hash": self.pretrain_config.hash(),
            "model_config_hash": self.model_config.hash(),
            "token_config_hash": self.token_config.hash(),
            "steps_done": self.info.get("steps_done"),
        }


def load_pretrained(
    run: str | Path | PretrainedEncoder, *, allow_modified_weights: bool = False
) -> PretrainedEncoder:
    """Load the encoder of a run directory (safetensors, hash-checked by ``load_run``:
    weights modified since the run wrote them are refused unless
    ``allow_modified_weights``, which fine-tuning runs then record as
    ``pretrained.weights_check: "modified"``)."""
    if isinstance(run, PretrainedEncoder):
        return run
    run = resolve_run(run)  # builtin:<name>: a released encoder, checked against its card
    model, configs = load_run(run, heads=False, allow_modified_weights=allow_modified_weights)
    sha = configs.info["loaded_weights"]["sha256"][:16]
    state = {k: v.detach().clone() for k, v in model.encoder.state_dict().items()}
    return PretrainedEncoder(
        model_config=configs.model,
        token_config=configs.tokens,
        pretrain_config=configs.pretrain,
        encoder_state=state,
        run_dir=run.resolve(),
        weights_sha256=sha,
        info=configs.info,
    )


def build_task_model(
    pretrained: PretrainedEncoder, kind: TaskType, mode: str, seed: int = 0
) -> EventModel:
    """Encoder + the task type's head (``kind.head`` with ``kind.n_outputs()`` outputs);
    pretrained encoder weights unless ``mode == 'scratch'``.

    Initial weights are a pure function of ``seed`` (the head, and the whole model in
    scratch mode). In ``linear-probe`` mode the encoder parameters do not require grad.
    """
    return _build_model(pretrained, kind.head, kind.n_outputs(), mode, seed)


def build_classifier(
    pretrained: PretrainedEncoder, n_classes: int, mode: str, seed: int = 0
) -> EventModel:
    """Encoder + ``classifier`` head; pretrained encoder weights unless ``mode == 'scratch'``.

    Initial weights are a pure function of ``seed`` (the head, and the whole model in
    scratch mode). In ``linear-probe`` mode the encoder parameters do not require grad.
    """
    return _build_model(pretrained, "classifier", n_classes, mode, seed)


def _build_model(
    pretrained: PretrainedEncoder, head: str, n_outputs: int, mode: str, seed: int
) -> EventModel:
    _check_encoder_mode(mode)
    cfg = ModelConfig.model_validate(
        {**pretrained.model_config.model_dump(mode="json"), "n_classes": n_outputs}
    )
    torch.manual_seed(seed)
    model = EventModel(cfg, heads=[head])
    if mode != "scratch":
        model.encoder.load_state_dict(pretrained.encoder_state, strict=True)
    if mode == "linear-probe":
        model.encoder.requires_grad_(False)
    return model


def build_finetune_optimizer(
    model: EventModel, task: TaskConfig, mode: str, total_steps: int | None
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW: head at ``lr``; encoder at ``lr * encoder_lr_factor`` (finetune),
    ``lr * scratch_lr_factor`` (scratch), or not at all (linear-probe); warm-up, then cosine
    decay over ``total_steps`` or (``schedule: constant`` or no cap) a constant rate."""
    o = task.optim
    groups = decay_groups(model.heads, o.weight_decay, prefix="heads", lr=o.lr, name="head")
    if mode != "linear-probe":
        factor = o.encoder_lr_factor if mode == "finetune" else o.scratch_lr_factor
        groups += decay_groups(
            model.encoder, o.weight_decay, prefix="encoder", lr=o.lr * factor, name="encoder"
        )
    opt = torch.optim.AdamW(groups, lr=o.lr, betas=o.betas)
    if total_steps is None or task.train.schedule == "constant":
        warmup = o.warmup_steps if total_steps is None else min(o.warmup_steps, total_steps // 5)
        factor = _constant_after_warmup(warmup)
    else:
        factor = lr_lambda(o.warmup_steps, total_steps, o.min_lr_ratio)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    return opt, sched


def _constant_after_warmup(warmup: int) -> Callable[[int], float]:
    """Linear warm-up over ``warmup`` steps, then the full rate."""
    return lambda step: (step + 1) / warmup if step < warmup else 1.0


def planned_steps(task: TaskConfig, steps_per_epoch: int) -> int | None:
    """Optimiser steps a run may take at most (``None``: no cap, early stopping only)."""
    lt = task.train
    caps = []
    if lt.max_epochs is not None:
        caps.append(max(lt.min_steps, lt.max_epochs * steps_per_epoch))
    if lt.max_steps is not None:
        caps.append(lt.max_steps)
    return min(caps) if caps else None


@dataclass
class FinetuneSetup:
    """Validated inputs shared by the runs of a study: task, encoder, data, splits."""

    task: TaskConfig
    pretrained: PretrainedEncoder | None  # None: planned only (see plan_task)
    data: LabelledEvents
    targets: np.ndarray  # class index per event, -1: not part of the task
    split: np.ndarray  # SPLITS code per event
    device: torch.device
    selection: dict[str, Any] = field(default_factory=dict)  # per class: before/after
    _embeddings: torch.Tensor | None = None
    embed_seconds: float = 0.0
    values: np.ndarray | None = None  # per-event task values (regression targets), or None
    _labels: torch.Tensor | None = None
    #: with all labels: "all" (every seed trains on the whole train split) or "bootstrap"
    #: (each seed a stratified bootstrap of it, so seeds vary the data at 100% too)
    full_draw: str = "all"

    @functools.cached_property
    def kind(self) -> TaskType:
        """The task type of the task (classification, regression, ...)."""
        return task_type_for(self.task)

    def label_tensor(self) -> torch.Tensor:
        """The task type's training label of every event, on the device (built once)."""
        if self._labels is None:
            y = self.kind.labels(self.targets, self.values)
            self._labels = torch.as_tensor(y, device=self.device)
            if self._labels.is_floating_point():
                self._labels = self._labels.float()
        return self._labels

    def pool(self, split: str) -> np.ndarray:
        """Indices of the task's events in ``split``."""
        return np.flatnonzero((self.targets >= 0) & (self.split == SPLITS[split]))

    def resolve_labels(self, labels: LabelCount) -> int:
        """The number of labelled training events ``labels`` stands for (checked)."""
        available = len(self.pool("train"))
        frac = label_fraction(labels)
        if frac == 1.0:
            return available
        n = max(1, round(frac * available)) if frac is not None else int(labels)
        if n > available:
            t = self.task
            total = int((self.targets >= 0).sum())
            raise TrainingError(
                f"label count {n} is larger than the {available} labelled training events "
                f"available (train split {t.splits.train:.0%} of the {total} events of classes "
                f"{t.class_names}); use at most {available} or 'all'"
            )
        if n < self.task.n_classes:
            raise TrainingError(
                f"label count {n} is smaller than the number of classes ({self.task.n_classes})"
            )
        return n

    def select(self, n_labels: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """``(train, val)`` indices for ``n_labels`` labelled events and ``seed``."""
        t = self.task
        train_pool, val_pool = self.pool("train"), self.pool("val")
        if n_labels == len(train_pool) and self.full_draw == "bootstrap":
            train = bootstrap_labels(self.targets, train_pool, seed, t.n_classes)
        else:
            train = sample_labels(self.targets, train_pool, n_labels, seed, t.n_classes)
        if t.validation == "full" or n_labels == len(train_pool):
            n_val = len(val_pool)
        else:
            ratio = t.splits.val / t.splits.train
            n_val = min(len(val_pool), max(t.min_val_events, round(n_labels * ratio)))
        val = sample_labels(self.targets, val_pool, n_val, seed + 7_919, t.n_classes)
        return train, val

    @property
    def test_index(self) -> np.ndarray:
        return self.pool("test")

    def embeddings(self) -> torch.Tensor:
        """Frozen pretrained embeddings ``[N, D]`` of the task's events (computed once)."""
        if self._embeddings is None:
            t0 = time.perf_counter()
            model = build_classifier(self.pretrained, self.task.n_classes, "linear-probe")
            model.to(self.device).eval()
            idx = np.flatnonzero(self.targets >= 0)
            out = torch.zeros(len(self.data), model.config.dim, device=self.device)
            options = encode_options(self.task)
            emb = encode_events(model, self.data, idx, self.device, **options)
            out[torch.as_tensor(idx, device=self.device)] = emb
            self._embeddings = out
            self.embed_seconds = time.perf_counter() - t0
        return self._embeddings


def check_classes(
    task: TaskConfig, present: dict[int, int] | set[int], where: str = "data"
) -> None:
    """Raise :class:`TrainingError` if a task class has none of its labels in ``present``."""
    missing = {
        name: labs for name, labs in task.classes.items() if not any(lab in present for lab in labs)
    }
    if missing:
        shown = present if isinstance(present, dict) else sorted(present)
        raise TrainingError(
            f"task classes {sorted(missing)} (data labels {sorted(missing.values())}) are "
            f"missing from the {where}, which has labels {shown}"
            + (" (label: events)" if isinstance(present, dict) else "")
        )


def plan_task(
    task: TaskConfig | str | Path | dict,
    data: LabelledEvents,
    *,
    labels: list[LabelCount] | None = None,
) -> FinetuneSetup:
    """Classes, selection, splits and label counts of ``task`` on ``data``, all checked.

    Needs no encoder, so a study can check every task before it pretrains. Raises
    :class:`TrainingError` when a task class has no event in the data (or none passing
    the task's selection, or none in a split), and when a requested label count
    (``labels``, default none) exceeds the training split. The returned setup has no
    pretrained encoder (:func:`prepare_finetune` adds it).
    """
    task = load_task_config(task)
    check_classes(task, data.label_counts())
    targets, selected = task_targets(data, task)
    after = {name: c["after"] for name, c in selected["per_class"].items()}
    if task.selection and not all(after.values()):
        raise TrainingError(
            f"no event of classes {[n for n, k in after.items() if not k]} passes the task "
            f"selection {selected['requirements']} (events per class before/after: "
            f"{selected['per_class']})"
        )
    split = assign_splits(data, task.splits)
    device = resolve_device(task.train.device)
    setup = FinetuneSetup(task, None, data, targets, split, device, selection=selected)
    setup.values = task_values(data, task)
    for name in SPLITS:
        counts = np.bincount(targets[setup.pool(name)], minlength=task.n_classes)
        empty = [task.class_names[c] for c in range(task.n_classes) if counts[c] == 0]
        if empty:
            raise TrainingError(
                f"the {name} split has no event of classes {empty} ({len(setup.pool(name))} "
                f"events in it); give more events or change the split fractions"
            )
    for n in labels or []:
        setup.resolve_labels(n)
    return setup


def prepare_finetune(
    task: TaskConfig | str | Path | dict,
    pretrained: str | Path | PretrainedEncoder,
    data: LabelledEvents,
    *,
    labels: list[LabelCount] | None = None,
) -> FinetuneSetup:
    """Check everything that can be checked before training, and split the data.

    Raises (before any training) when the data's token config differs from the
    pretrained run's, when the run's recorded pretraining pool (``POOL_EVENTS`` in its
    directory, :mod:`.heldout`) holds test events of the task, and for everything
    :func:`plan_task` checks.
    """
    pre = load_pretrained(pretrained)
    check_token_config(pre.token_config, data.token_config, "fine-tuning data")
    setup = plan_task(task, data, labels=labels)
    pool = pre.run_dir / POOL_EVENTS if pre.run_dir else None
    if pool is not None and pool.is_file():
        check_pool_excludes_held_out(read_pool_events(pool), setup, pool_name=str(pool))
    setup.pretrained = pre
    return setup


@dataclass
class FinetuneResult:
    """What :func:`finetune` returns."""

    run_dir: Path
    mode: str
    n_labels: int
    seed: int
    steps: int
    best_step: int
    best_val_loss: float
    stopped_early: bool
    stopped_by: str  # patience, max_steps or max_epochs
    test_metrics: dict[str, Any]
    wall_s: float
    train_s: float
    train_cpu_s: float = 0.0  # process CPU time of the loop (robust on shared machines)
    probs: np.ndarray | None = None  # test-split class probabilities
    targets: np.ndarray | None = None  # test-split class indices
    model: EventModel | None = None
    lr: float | None = None  # the learning rate it trained with

    def summary(self) -> dict[str, Any]:
        """JSON-friendly row (no arrays, no model)."""
        return {
            "run_dir": str(self.run_dir),
            "mode": self.mode,
            "n_labels": self.n_labels,
            "seed": self.seed,
            "steps": self.steps,
            "best_step": self.best_step,
            "best_val_loss": self.best_val_loss,
            "stopped_early": self.stopped_early,
            "stopped_by": self.stopped_by,
            "lr": self.lr,
            "wall_s": self.wall_s,
            "train_s": self.train_s,
            **{k: v for k, v in self.test_metrics.items() if not isinstance(v, dict)},
        }


def predict(
    model: EventModel,
    data: LabelledEvents,
    index: np.ndarray | None = None,
    *,
    batch_size: int = 1024,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Class probabilities ``[n, K]`` of a classifier (encoder + ``classifier`` head).

    Computed in float32 (as the stored test scores) on ``device``, by default the device
    the model's weights are on; a model elsewhere is moved there first.
    """
    return predict_outputs(
        model, data, index, head="classifier", batch_size=batch_size, device=device,
        transform=lambda head, emb: head(emb).float().softmax(-1),
    )  # fmt: skip


def predict_outputs(
    model: EventModel,
    data: LabelledEvents,
    index: np.ndarray | None = None,
    *,
    head: str,
    transform: Callable[[torch.nn.Module, torch.Tensor], torch.Tensor],
    batch_size: int = 1024,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """``transform(model.heads[head], embeddings)`` of ``data[index]`` in float32 (a task
    type's :meth:`~TaskType.predict`, or softmax probabilities), on ``device``."""
    index = np.arange(len(data)) if index is None else np.asarray(index)
    device = next(model.parameters()).device if device is None else torch.device(device)
    model.to(device)
    was = model.training
    model.eval()
    with torch.no_grad():
        emb = encode_events(model, data, index, device, batch_size=batch_size)
        with matmul_precision(EVAL_PRECISION):
            outputs = transform(model.heads[head], emb)
    model.train(was)
    return outputs.cpu().numpy()


def class_weights(targets: np.ndarray, weight: np.ndarray, task: TaskConfig) -> np.ndarray:
    """Per-class loss weights: 1, or (``balanced``) equal total weight for every class."""
    k = task.n_classes
    if task.class_weighting == "none":
        return np.ones(k)
    sums = np.array([weight[targets == c].sum() for c in range(k)], dtype=np.float64)
    sums = np.where(np.abs(sums) > 0, sums, 1.0)
    return sums.sum() / (k * sums)


# ----------------------------------------------------------------------------- one run, in steps


def _check_encoder_mode(mode: str) -> None:
    if mode not in MODES:
        raise ConfigError(
            f"{mode!r} is not an encoder mode ({list(MODES)}); the reference rows "
            f"{list(REFERENCE_MODES)} are trained by jetfm_coffea.finetune.reference"
        )


def _draw_events(setup: FinetuneSetup, labels: LabelCount, seed: int) -> RunEvents:
    """Label count, the class-stratified draw of ``seed``, and the loss weights."""
    n_labels = setup.resolve_labels(labels)
    train, val = setup.select(n_labels, seed)
    data = setup.data
    cw = class_weights(setup.targets[train], data.weight[train], setup.task)
    weight = (data.weight * cw[np.maximum(setup.targets, 0)]).astype(np.float32)
    return RunEvents(n_labels, train, val, setup.test_index, weight)


def _training_source(setup: FinetuneSetup, events: RunEvents, probe: bool, seed: int) -> Any:
    """Epoch batches of the labelled events: cached embeddings (linear probe) or tokens.

    A token batch's ``label`` is the event's index in the data (the task type's label is
    looked up from it), so every task type shares one batch layout."""
    idx, device = events.train, setup.device
    bs = balanced_batch_size(len(idx), setup.task.train.batch_size)
    if probe:
        sel = torch.as_tensor(idx, device=device)
        return EmbeddingBatches(
            {
                "embedding": setup.embeddings()[sel],
                "target": setup.label_tensor()[sel],
                "w": torch.as_tensor(events.weight[idx], device=device),
            },
            bs,
            seed,
        )
    data = setup.data
    return TensorEventDataset(
        data.tokens[idx],
        data.mask[idx],
        batch_size=bs,
        token_config=data.token_config,
        run=data.run[idx],
        luminosityBlock=data.luminosityBlock[idx],
        event=data.event[idx],
        label=idx,
        weight=events.weight[idx],
        seed=seed,
    )


def _start_run(
    out: Path,
    setup: FinetuneSetup,
    model: EventModel,
    mode: str,
    seed: int,
    events: RunEvents,
    precision: str,
) -> RunConfigs:
    """Create the run directory: empty metrics log, run files (status running), task config."""
    out.mkdir(parents=True, exist_ok=True)
    (out / METRICS).write_text("")
    kind = setup.kind
    configs = RunConfigs(
        pretrain=setup.pretrained.pretrain_config,
        model=model.config,
        tokens=setup.data.token_config,
        augment=None,
        info={
            "kind": kind.run_kind,
            "status": "running",
            "mode": mode,
            **kind.run_info(),
            "n_labels": events.n_labels,
            "n_val": len(events.val),
            "n_test": len(events.test),
            "seed": seed,
            "task_config_hash": setup.task.hash(),
            "pretrained": setup.pretrained.describe(),
            # the encoder's pretraining data sheet, carried forward (scratch: no encoder)
            DATA_SHEET_KEY: None
            if mode == "scratch"
            else setup.pretrained.info.get(DATA_SHEET_KEY),
            "data": setup.data.provenance,
            "device": setup.device.type,
            "precision": precision,
        },
    )
    write_run_files(out, configs)
    atomic_write_text(out / "task_config.yaml", setup.task.to_yaml())
    return configs


def _predict_test(model: EventModel, setup: FinetuneSetup, index: np.ndarray, probe: bool):
    """The task type's outputs on ``index`` (fp32, eval mode), as numpy."""
    model.eval()
    with torch.no_grad():
        e = embed(model, setup, index, probe)
        with matmul_precision(EVAL_PRECISION):
            return setup.kind.predict(model.heads[setup.kind.head], e).cpu().numpy()


def _save_run(
    out: Path,
    setup: FinetuneSetup,
    model: EventModel,
    configs: RunConfigs,
    loop: LoopResult,
    events: RunEvents,
    outputs: np.ndarray,
    y_test: np.ndarray,
    test_metrics: dict[str, Any],
    extra: dict[str, Any],
) -> None:
    """Weights, test scores and metrics, the completed run files and the model card."""
    task, data = setup.task, setup.data
    weights_meta = {
        "model_config_hash": model.config.hash(),
        "token_config_hash": data.token_config.hash(),
        "config_hash": setup.pretrained.pretrain_config.hash(),
        "task_config_hash": task.hash(),
        "format": WEIGHTS_FORMAT,
        "best_step": str(loop.best_step),
    }
    write_weights(out, model.state_dict(), weights_meta)
    arrays = setup.kind.score_arrays(outputs, y_test)
    save_score_arrays(out, arrays, data, events.test)
    atomic_write_text(out / "test_metrics.json", json.dumps(test_metrics, indent=1))
    configs.info.update(
        {
            "status": "completed",
            "steps_done": loop.steps,
            "epochs": loop.epochs,
            "best_step": loop.best_step,
            "best_val_loss": loop.best_loss,
            "stopped_early": loop.stopped,
            "stopped_by": loop.stopped_by,
            "lr": task.optim.lr,
            "n_parameters_trainable": count_parameters(model),
            "train_s": loop.train_s,
            "train_cpu_s": loop.train_cpu_s,
            "events_per_s": loop.events / max(loop.train_s, 1e-9),
            "eval_every": loop.eval_every,
            "val_s": loop.val_s,
            "val_events": loop.val_events,
            **extra,
        }
    )
    write_run_files(out, configs)
    _write_card(out, configs, setup.kind, test_metrics)


def finetune(
    setup: FinetuneSetup,
    out: str | Path,
    *,
    mode: str = "finetune",
    labels: LabelCount = "all",
    seed: int = 0,
    keep_model: bool = False,
    overwrite: bool = False,
) -> FinetuneResult:
    """Train one model of the task's type and write its run directory; returns a
    :class:`FinetuneResult`.

    ``labels``: number of labelled training events (class-stratified draw from the
    train split with ``seed``) or ``"all"``. ``mode``: see the module docstring.
    """
    _check_encoder_mode(mode)
    out = Path(out)
    if (out / WEIGHTS).exists() and not overwrite:
        raise TrainingError(f"{out} already holds a run")
    t_start = time.perf_counter()
    task, device, kind = setup.task, setup.device, setup.kind
    events = _draw_events(setup, labels, seed)
    model = build_task_model(setup.pretrained, kind, mode, seed).to(device)
    precision = resolve_precision(task.train.precision, device, "train")
    probe = mode == "linear-probe"
    source = _training_source(setup, events, probe, seed)
    planned = planned_steps(task, len(source))  # None: until the validation loss stalls
    opt, sched = build_finetune_optimizer(model, task, mode, planned)
    y_all = kind.labels(setup.targets, setup.values)
    objective = kind.task_loss(y_all[events.train], events.weight[events.train])
    configs = _start_run(out, setup, model, mode, seed, events, precision)

    trainer = RunLoop(setup, model, mode, events, objective, precision, out / METRICS)
    loop = trainer.run(source, opt, sched, planned)
    trainer.restore_best(loop)

    outputs = _predict_test(model, setup, events.test, probe)
    y_test = y_all[events.test]
    test_metrics = kind.metrics(outputs, y_test)
    wall_s = time.perf_counter() - t_start
    extra = {"wall_s": wall_s, **objective.describe()}
    _save_run(out, setup, model, configs, loop, events, outputs, y_test, test_metrics, extra)
    return FinetuneResult(
        run_dir=out,
        mode=mode,
        n_labels=events.n_labels,
        seed=seed,
        steps=loop.steps,
        best_step=loop.best_step,
        best_val_loss=loop.best_loss,
        stopped_early=loop.stopped,
        stopped_by=loop.stopped_by,
        test_metrics=test_metrics,
        wall_s=wall_s,
        train_s=loop.train_s,
        train_cpu_s=loop.train_cpu_s,
        probs=outputs,
        targets=y_test,
        model=model if keep_model else None,
        lr=task.optim.lr,
    )


def save_test_scores(
    out: Path, probs: np.ndarray, targets: np.ndarray, data: LabelledEvents, index: np.ndarray
) -> None:
    """``out/test_scores.npz``: class probabilities, class index, weight and ids of the
    test events ``index`` of ``data`` (the file ``evaluate`` and the study read back)."""
    save_score_arrays(out, {"probs": probs, "target": targets}, data, index)


def save_score_arrays(
    out: Path, arrays: dict[str, np.ndarray], data: LabelledEvents, index: np.ndarray
) -> None:
    """``out/test_scores.npz``: the task type's ``arrays`` (:meth:`TaskType.score_arrays`)
    plus the weight and ids of the test events ``index`` of ``data``."""
    np.savez_compressed(
        out / "test_scores.npz",
        **arrays,
        weight=data.weight[index],
        run=data.run[index],
        luminosityBlock=data.luminosityBlock[index],
        event=data.event[index],
    )


def _write_card(out: Path, configs: RunConfigs, kind: TaskType, metrics: dict[str, Any]) -> None:
    info, m, task = configs.info, configs.model, kind.task
    pre = info["pretrained"]
    init = (
        "random initialisation (same architecture)"
        if info["mode"] == "scratch"
        else f"pretrained run `{pre['run_dir']}` (weights sha256 `{pre['weights_sha256']}`)"
    )
    lines = kind.card_lines(info, metrics)
    title = "event classifier" if kind.name == "classification" else f"event {kind.name}"
    text = f"""# Model card: jetfm {title} ({info["mode"]}, {m.size} encoder)

## Model
- Encoder: {m.layers} transformer blocks, width {m.dim}, {m.heads} heads, {m.pooling} pooling;
  {lines["head"]}
- Initialisation: {init}.
- Mode `{info["mode"]}`: {_MODE_TEXT[info["mode"]]}
- Trainable parameters: {info.get("n_parameters_trainable", 0):,}.

## Task
- {lines["task"]}
- Task config hash `{task.hash()}`; token config hash `{configs.tokens.hash()}`.
- Labelled training events: {info["n_labels"]} (seed {info["seed"]}); validation events
  {info["n_val"]}; test events {info["n_test"]}; splits by hash of (dataset, run, lumi, event).

## Training
- Steps: {info.get("steps_done")} ({info.get("epochs")} epochs); best validation loss
  {info.get("best_val_loss", float("nan")):.4f} at step {info.get("best_step")}; stopped early:
  {info.get("stopped_early")}. AdamW lr {task.optim.lr}, class weighting
  {task.class_weighting}.

## Test metrics (best checkpoint)
- {lines["metrics"]}

## Pretraining data sheet (of the encoder)
{data_sheet_markdown(info.get(DATA_SHEET_KEY))}

## Intended use and limits
Scores events built with the token configuration above; it is only as good as the
labelled samples it was trained on (simulation/data differences are not corrected).
"""
    write_model_card(out, text, m)


_MODE_TEXT = {
    "linear-probe": "encoder frozen, only the head trained.",
    "finetune": "encoder and head trained, encoder at a lower learning rate.",
    "scratch": "encoder and head trained from random weights.",
}
