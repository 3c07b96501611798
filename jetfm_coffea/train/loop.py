"""The pretraining loop: plain torch, AdamW + warm-up/cosine, DDP, exact resume.

``pretrain(config, data, out)`` trains an :class:`~jetfm_coffea.model.EventModel` on
a batch source (see :mod:`jetfm_coffea.train.data`) and writes a run directory
(see :mod:`jetfm_coffea.train.pretrain_run`). Under ``torchrun`` every rank calls it with its
own data (pass a factory ``(rank, world_size) -> source``); rank 0 writes files.
"""

from __future__ import annotations

import copy
import json
import math
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel as DDP

from jetfm_coffea.augment.config import load_pipeline
from jetfm_coffea.errors import ModelFileError, NonFiniteLossError, TrainingError
from jetfm_coffea.model.config import ModelConfig, model_config_for
from jetfm_coffea.model.model import EventModel, count_parameters
from jetfm_coffea.model.rundir import (
    DATA_SHEET_KEY,
    METRICS,
    RUN_CONFIG,
    RUN_INFO,
    read_model_configs,
    write_weights,
)
from jetfm_coffea.runtime import (
    TrainProgress,
    append_metrics,
    autocast,
    guarded_step,
    matmul_precision,
    precision_context,
    resolve_precision,
    step_generator,
)
from jetfm_coffea.selection.datasheet import source_data_sheet
from jetfm_coffea.tokens.config import TokenConfig, check_token_config, load_token_config
from jetfm_coffea.train.checkpoint import (
    get_rng_state,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
    set_rng_state,
)
from jetfm_coffea.train.config import PretrainConfig, load_pretrain_config
from jetfm_coffea.train.data import batch_provenance, compact_batch
from jetfm_coffea.train.distributed import DistInfo, all_gather_objects, init_distributed
from jetfm_coffea.train.monitor import collapse_metrics, knn_accuracy
from jetfm_coffea.train.objectives import PretrainTask
from jetfm_coffea.train.prefetch import prefetch, to_device
from jetfm_coffea.train.pretrain_run import RunConfigs, write_pretrain_card, write_run_files
from jetfm_coffea.train.views import load_view_hook, make_views, sibling_views

__all__ = [
    "PretrainResult",
    "build_optimizer",
    "decay_groups",
    "lr_lambda",
    "pretrain",
]

DataArg = Any  # a batch source, or a factory (rank, world_size) -> batch source


@dataclass
class PretrainResult:
    """What :func:`pretrain` returns (on every rank)."""

    run_dir: Path
    steps: int
    losses: list[float] = field(default_factory=list)  # total loss of every step (this rank)
    last_metrics: dict[str, Any] = field(default_factory=dict)
    model: EventModel | None = None


def lr_lambda(warmup: int, total: int, min_ratio: float) -> Callable[[int], float]:
    """Linear warm-up over ``warmup`` steps, then cosine decay to ``min_ratio``.

    The warm-up is capped at a fifth of the run so that short runs reach full rate.
    """
    warmup = min(warmup, total // 5)

    def f(step: int) -> float:
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return f


def decay_groups(
    module: torch.nn.Module, weight_decay: float, prefix: str = "", **extra: Any
) -> list[dict[str, Any]]:
    """AdamW parameter groups of the trainable parameters of ``module``.

    No weight decay on biases, norms, embeddings and special tokens; ``extra`` (e.g.
    ``lr=...``) is added to both groups; empty groups are left out.
    """
    decay, no_decay = [], []
    for name, p in module.named_parameters(prefix=prefix):
        if not p.requires_grad:
            continue
        flat = p.ndim < 2 or "embed" in name or name.endswith(("_token", "_query"))
        (no_decay if flat else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": weight_decay, **extra},
        {"params": no_decay, "weight_decay": 0.0, **extra},
    ]
    return [g for g in groups if g["params"]]


def build_optimizer(
    model: torch.nn.Module, cfg: PretrainConfig
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (no weight decay on biases, norms, embeddings, special tokens) and its schedule."""
    o = cfg.optim
    opt = torch.optim.AdamW(decay_groups(model, o.weight_decay), lr=o.lr, betas=o.betas)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lr_lambda(o.warmup_steps, cfg.train.steps, o.min_lr_ratio)
    )
    return opt, sched


def pretrain(
    config: PretrainConfig | str | Path | dict | None,
    data: DataArg,
    out: str | Path,
    *,
    resume: bool = False,
    validation: dict[str, torch.Tensor] | None = None,
    provenance: dict[str, Any] | None = None,
    keep_model: bool = True,
    stop_at: int | None = None,
) -> PretrainResult:
    """Pretrain an event encoder; returns a :class:`PretrainResult`.

    ``data``: a batch source or ``factory(rank, world_size) -> source``.
    ``validation``: optional labelled set ``{"tokens", "mask", "label"}`` for the k-NN probe
    (else ``config.validation.path``, an ``.npz`` with those arrays, is used if set).
    ``resume``: continue from the newest checkpoint in ``out`` (same world size); the
    following steps are identical to those of an uninterrupted run.
    ``stop_at``: end this invocation after that step (checkpointed; e.g. a wall-time
    limit); the schedule still runs to ``train.steps`` and ``resume`` continues it.
    """
    out = Path(out)
    cfg = load_pretrain_config(config)
    info, device = init_distributed(cfg.train.device)
    try:
        run = _setup(cfg, data, out, resume, validation, provenance, info, device)
        end = run.cfg.train.steps if stop_at is None else min(stop_at, run.cfg.train.steps)
        losses, last = _train(run, end)
        return _finish(run, losses, last, keep_model)
    finally:
        info.close()


@dataclass
class _Run:
    """One pretraining invocation: what :func:`_setup` builds and the steps share."""

    cfg: PretrainConfig
    out: Path
    info: DistInfo
    device: torch.device
    source: Any
    tokens: TokenConfig
    model: EventModel
    task: PretrainTask
    runner: torch.nn.Module  # the task, DDP-wrapped and/or compiled
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    precision: str
    n_params: int
    configs: RunConfigs
    weights_meta: dict[str, str]
    validation: dict[str, torch.Tensor] | None
    fresh: bool  # fresh physics views made every step
    sibling_physics: bool  # fresh physics views of the re-simulated siblings (resim+physics)
    step: int = 0
    epoch: int = 0
    events_seen: int = 0
    loader_state: dict[str, Any] = field(default_factory=dict)  # after the last batch trained


# -- setup ---------------------------------------------------------------------------------


def _setup(
    cfg: PretrainConfig,
    data: DataArg,
    out: Path,
    resume: bool,
    validation: dict[str, torch.Tensor] | None,
    provenance: dict[str, Any] | None,
    info: DistInfo,
    device: torch.device,
) -> _Run:
    """Data, configs, model, optimiser and run files; the checkpoint's state on resume."""
    source = _resolve_data(data, info)
    _check_not_empty(source, cfg, info)
    data_tokens: TokenConfig = load_token_config(source.token_config)
    cfg, model_cfg = _resolve_configs(cfg, out, resume, data_tokens)

    # identical initial weights on every rank, then per-rank randomness (dropout)
    torch.manual_seed(cfg.train.seed)
    model = EventModel(model_cfg, heads=cfg.objective.heads()).to(device)
    torch.manual_seed(cfg.train.seed + 1 + info.rank)
    hook = load_view_hook(cfg.train.view_hook) if cfg.train.view_hook else None
    task = PretrainTask(model, cfg.objective, hook, cfg.train.group_tokens)
    opt, sched = build_optimizer(model, cfg)
    run = _Run(
        cfg=cfg,
        out=out,
        info=info,
        device=device,
        source=source,
        tokens=data_tokens,
        model=model,
        task=task,
        runner=task,
        opt=opt,
        sched=sched,
        precision=resolve_precision(cfg.train.precision, device, "train"),
        n_params=count_parameters(model),
        configs=RunConfigs(pretrain=cfg, model=model_cfg, tokens=data_tokens, augment=cfg.augment),
        weights_meta={
            "model_config_hash": model_cfg.hash(),
            "token_config_hash": data_tokens.hash(),
            "config_hash": cfg.hash(),
            "format": "jetfm-event-model",
        },
        validation=validation,
        fresh=cfg.objective.uses_views and cfg.views == "fresh" and hook is None,
        sibling_physics=cfg.objective.uses_views and cfg.views == "resim+physics" and hook is None,
    )
    if resume:
        _restore(run)
    else:
        source.set_epoch(0)
    _start_run_files(run, resume, provenance)
    run.runner = _wrap(task, cfg, info, device)
    if run.validation is None and cfg.validation.path:
        with np.load(cfg.validation.path) as z:
            run.validation = {k: torch.as_tensor(z[k]) for k in ("tokens", "mask", "label")}
    run.loader_state = copy.deepcopy(source.state_dict())
    return run


def _resolve_data(data: DataArg, info: DistInfo) -> Any:
    source = data(info.rank, info.world_size) if callable(data) and not _is_source(data) else data
    if not _is_source(source):
        raise TrainingError(
            f"data must be a batch source (iterable with token_config, set_epoch, state_dict, "
            f"load_state_dict) or a factory returning one, got {type(source).__name__}"
        )
    return source


def _is_source(obj: Any) -> bool:
    return all(hasattr(obj, a) for a in ("__iter__", "set_epoch", "state_dict", "token_config"))


def _check_not_empty(source: Any, cfg: PretrainConfig, info: DistInfo) -> None:
    if hasattr(source, "__len__") and len(source) == 0:
        n = getattr(source, "n_events", "?")
        raise TrainingError(
            f"no training batch: the data has {n} event(s), fewer than one batch of "
            f"{cfg.train.batch_size} per rank x {info.world_size} rank(s)"
        )


def _resolve_configs(
    cfg: PretrainConfig, out: Path, resume: bool, data_tokens: TokenConfig
) -> tuple[PretrainConfig, ModelConfig]:
    """The run's config and model config: new, or the run directory's on resume."""
    if resume and latest_checkpoint(out) is None:
        raise TrainingError(f"--resume: no checkpoint found in {out}")
    if not resume and latest_checkpoint(out) is not None:
        raise TrainingError(f"{out} already holds a run; pass --resume to continue it")
    if resume:
        run_cfg = load_pretrain_config(out / RUN_CONFIG)
        if run_cfg.train.steps != cfg.train.steps:
            run_cfg = load_pretrain_config(run_cfg, **{"train.steps": cfg.train.steps})
        cfg = run_cfg
        try:
            model_cfg, run_tokens = read_model_configs(out)
        except ModelFileError as err:
            raise TrainingError(f"--resume: {err}") from err
        check_token_config(run_tokens, data_tokens, "data")
    else:
        if cfg.tokens is not None:
            check_token_config(load_token_config(cfg.tokens), data_tokens, "data")
        model_cfg = model_config_for(data_tokens, cfg.model.size, **cfg.model.overrides)
    if model_cfg.feature_names != data_tokens.feature_names:
        raise TrainingError(
            f"model expects features {model_cfg.feature_names}, data has "
            f"{data_tokens.feature_names}"
        )
    return cfg, model_cfg


def _restore(run: _Run) -> None:
    """Weights, optimiser, schedule, RNG and loader position of the newest checkpoint."""
    weights, state = load_checkpoint(run.out)
    run.model.load_state_dict(weights)
    run.opt.load_state_dict(state["optimizer"])
    run.sched.load_state_dict(state["scheduler"])
    if state["world_size"] != run.info.world_size:
        raise TrainingError(
            f"checkpoint was written by {state['world_size']} rank(s), "
            f"now {run.info.world_size}: resume with the same number of processes"
        )
    local = state["ranks"][run.info.rank]
    set_rng_state(local["rng"])
    run.source.load_state_dict(local["loader"])
    run.step, run.epoch = int(state["step"]), int(state["epoch"])
    run.events_seen = int(state.get("events_seen", 0))


def _start_run_files(run: _Run, resume: bool, provenance: dict[str, Any] | None) -> None:
    """``run.json`` says "running" (with the data's provenance on a new run)."""
    configs, out = run.configs, run.out
    if resume and (out / RUN_INFO).is_file():
        configs.info = json.loads((out / RUN_INFO).read_text())
    configs.info.update(
        {
            "status": "running",
            "size": configs.model.size,
            "n_parameters": run.n_params,
            "heads": list(run.model.heads),
            "world_size": run.info.world_size,
            "precision": run.precision,
            "device": run.device.type,
            "steps_done": run.step,
            "views": _views_record(run.cfg),
        }
    )
    if not resume:
        prov = dict(provenance or getattr(run.source, "provenance", None) or {})
        configs.info["data"] = prov
        configs.info[DATA_SHEET_KEY] = source_data_sheet(run.source)  # what the model saw
    if run.info.is_main:
        write_run_files(out, configs)


def _wrap(
    task: PretrainTask, cfg: PretrainConfig, info: DistInfo, device: torch.device
) -> torch.nn.Module:
    """The task as trained: DDP over ranks, ``torch.compile`` when asked."""
    wrapped: torch.nn.Module = task
    if info.world_size > 1:
        wrapped = DDP(
            task,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=not cfg.objective.hides_tokens,
        )
    # grouped encoding sees a new token count and group size every step: compile for
    # symbolic shapes from the start instead of recompiling per shape
    dynamic = True if cfg.train.group_tokens else None
    return torch.compile(wrapped, dynamic=dynamic) if cfg.train.compile else wrapped


# -- the loop ------------------------------------------------------------------------------


def _train(run: _Run, end: int) -> tuple[list[float], dict[str, Any]]:
    """Steps up to ``end``: ``(total loss of every step, the last logged record)``."""
    cfg = run.cfg
    progress = TrainProgress(cfg.train.progress and run.info.is_main, cfg.train.steps, run.step)
    losses: list[float] = []
    last: dict[str, Any] = {}
    window = _Window()
    if cfg.train.prefetch > 0:
        stream = prefetch(_batches(run), run.device, _preparer(cfg), depth=cfg.train.prefetch)
    else:
        prepare = _preparer(cfg)
        stream = ((to_device(prepare(b), run.device), *rest) for b, *rest in _batches(run))
    run.task.train()
    try:
        with matmul_precision(run.precision):
            while run.step < end:
                t0 = time.perf_counter()
                batch, run.epoch, run.loader_state = next(stream)
                window.wait += time.perf_counter() - t0
                n_events = len(batch["tokens"]) * run.info.world_size
                loss, parts, emb, gnorm = _train_step(run, batch)
                run.events_seen += n_events
                losses.append(float(loss.detach()))
                window.add(losses[-1], parts, n_events)
                record = _evaluate(run, window, emb, gnorm, end)
                if record is not None:
                    last.update(record)
                    progress.update(
                        run.step, record.get("loss", losses[-1]), record.get("events_per_s", 0)
                    )
                if run.step % cfg.train.checkpoint_every == 0 and run.step < end:
                    _checkpoint(run)
    finally:
        stream.close()
        progress.close()
    return losses, last


def _batches(run: _Run) -> Iterator[tuple[dict[str, Any], int, dict[str, Any]]]:
    """``(batch, its epoch, loader state after it)``, epoch after epoch."""
    source, ep = run.source, run.epoch
    it = iter(source)
    while True:
        got_any = False
        for batch in it:
            got_any = True
            yield batch, ep, copy.deepcopy(source.state_dict())
        if not got_any and not _epoch_has_batches(source):
            raise TrainingError(
                f"the data yields no batch of {run.cfg.train.batch_size} events on rank "
                f"{run.info.rank} (empty store, or fewer events than batch size x ranks)"
            )
        ep += 1
        source.set_epoch(ep)
        it = iter(source)


def _preparer(cfg: PretrainConfig) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Batch preparation before the device copy: drop common padding when asked."""
    return compact_batch if cfg.train.compact_tokens else (lambda batch: batch)


def _train_step(
    run: _Run, batch: dict[str, Any]
) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """One optimiser step: ``(loss, its parts, embeddings, gradient norm)``.

    A non-finite loss or gradient on any rank checkpoints, marks the run failed and
    raises :class:`~jetfm_coffea.errors.NonFiniteLossError` naming the batch.
    """
    cfg, info = run.cfg, run.info
    if run.fresh:  # V new physics views per event, keyed by (event ids, epoch, view)
        batch["views"], batch["view_mask"] = make_views(
            batch, cfg.augment, run.tokens, run.epoch, cfg.objective.n_views
        )
    elif run.sibling_physics:  # physics views of the re-simulated siblings
        batch["views"], batch["view_mask"] = sibling_views(
            batch, cfg.augment, run.tokens, run.epoch, cfg.objective.n_views
        )
    gen = step_generator(cfg.train.seed, info.rank, run.step, run.device)
    with autocast(run.precision, run.device):
        loss, parts, emb = run.runner(batch, gen)
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    gnorm, stepped = guarded_step(
        run.opt, run.sched, loss, run.model.parameters(), cfg.optim.grad_clip,
        across_ranks=info.world_size > 1,
    )  # fmt: skip
    if not stepped:
        where = batch_provenance(batch)
        if info.world_size > 1:
            where = f"rank {info.rank}: {where}"
        path = _checkpoint(run)
        run.configs.info.update({"status": f"failed: non-finite loss at step {run.step + 1}"})
        if info.is_main:
            write_run_files(run.out, run.configs)
        raise NonFiniteLossError(run.step + 1, where, str(path) if path else None)
    run.step += 1
    return loss, parts, emb, gnorm


# -- metrics and checkpoints ---------------------------------------------------------------


@dataclass
class _Window:
    """Sums over the steps since the last logged record."""

    sums: dict[str, float] = field(default_factory=dict)
    n: int = 0
    events: int = 0
    wait: float = 0.0
    start: float = field(default_factory=time.perf_counter)

    def add(self, loss: float, parts: dict[str, torch.Tensor], n_events: int) -> None:
        self.sums["loss"] = self.sums.get("loss", 0.0) + loss
        for k, v in parts.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v)
        self.n += 1
        self.events += n_events

    def reset(self) -> None:
        self.sums, self.n, self.events, self.wait = {}, 0, 0, 0.0
        self.start = time.perf_counter()


def _evaluate(
    run: _Run, window: _Window, emb: torch.Tensor, gnorm: torch.Tensor, end: int
) -> dict[str, Any] | None:
    """The step's metrics record when one is due (logged losses, monitors, k-NN probe).

    Written to ``metrics.jsonl`` on rank 0; the window restarts after a logged record.
    """
    cfg, step = run.cfg, run.step
    record: dict[str, Any] | None = None
    if step % cfg.train.log_every == 0 or step == end:
        dt = time.perf_counter() - window.start
        record = {
            "step": step,
            "epoch": run.epoch,
            "lr": run.sched.get_last_lr()[0],
            **{k: v / window.n for k, v in window.sums.items()},
            "grad_norm": float(gnorm),
            "events_per_s": window.events / max(dt, 1e-9),
            "step_time_s": dt / window.n,
            "loader_wait_frac": window.wait / max(dt, 1e-9),
            "events_seen": run.events_seen,
            "time": time.time(),
        }
        window.reset()
    if step % cfg.train.monitor_every == 0 or step == end:
        record = record or {"step": step, "epoch": run.epoch, "time": time.time()}
        record.update(collapse_metrics(emb))
    if run.validation is not None and (step % cfg.validation.every == 0 or step == end):
        record = record or {"step": step, "epoch": run.epoch, "time": time.time()}
        record["knn_acc"] = _knn_probe(run.model, run.validation, cfg, run.device)
    if record is not None and run.info.is_main:
        append_metrics(run.out / METRICS, record)
    return record


def _checkpoint(run: _Run) -> Path | None:
    """Checkpoint the current step (every rank's RNG and loader state; rank 0 writes)."""
    # the loader state of the last batch trained on (the prefetcher reads ahead)
    local_state = {"rng": get_rng_state(), "loader": run.loader_state}
    ranks = all_gather_objects(local_state, run.info)
    if not run.info.is_main:
        return None
    state = {
        "optimizer": run.opt.state_dict(),
        "scheduler": run.sched.state_dict(),
        "epoch": run.epoch,
        "events_seen": run.events_seen,
        "world_size": run.info.world_size,
        "ranks": ranks,
    }
    return save_checkpoint(run.out, run.step, run.model.state_dict(), state, run.weights_meta)


def _finish(
    run: _Run, losses: list[float], last: dict[str, Any], keep_model: bool
) -> PretrainResult:
    """Final checkpoint, weights, run files and model card."""
    _checkpoint(run)
    done = run.step >= run.cfg.train.steps
    run.configs.info.update({"status": "completed" if done else "stopped", "steps_done": run.step})
    if run.info.is_main:
        write_weights(run.out, run.model.state_dict(), run.weights_meta)
        write_run_files(run.out, run.configs)
        write_pretrain_card(run.out, run.configs, run.n_params)
    return PretrainResult(run.out, run.step, losses, last, run.model if keep_model else None)


def _views_record(cfg: PretrainConfig) -> dict[str, Any]:
    """How the contrastive views are made (``run.json`` and the model card)."""
    if not cfg.objective.uses_views:
        return {"mode": "none"}
    if cfg.train.view_hook:
        return {"mode": "hook", "hook": cfg.train.view_hook}
    if cfg.views in ("stored", "resim"):
        return {"mode": cfg.views}
    pipeline = load_pipeline(cfg.augment)
    return {
        "mode": cfg.views,
        "n_views": cfg.objective.n_views,
        "pipeline_hash": pipeline.hash(),
        "seed": pipeline.seed,
        "steps": [step.name for step in pipeline.steps],
    }


def _epoch_has_batches(source: Any) -> bool:
    try:
        return len(source) > 0
    except TypeError:
        return False


@torch.no_grad()
def _knn_probe(
    model: EventModel,
    val: dict[str, torch.Tensor],
    cfg: PretrainConfig,
    device: torch.device,
) -> float:
    """k-NN accuracy of the embeddings of the validation events (inference: fp32)."""
    was_training = model.training
    model.eval()
    n = min(len(val["tokens"]), cfg.validation.max_events)
    embs = []
    for i in range(0, n, 1024):
        x = val["tokens"][i : min(i + 1024, n)].to(device)
        m = val["mask"][i : min(i + 1024, n)].to(device)
        with precision_context("fp32", device):
            embs.append(model.encoder(x, m).embedding.float())
    model.train(was_training)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return knn_accuracy(torch.cat(embs), val["label"][:n].to(device), cfg.validation.k)
