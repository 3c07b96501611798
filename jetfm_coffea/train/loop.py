"""The pretraining loop: plain torch, AdamW + warm-up/cosine, DDP, exact resume.

``pretrain(config, data, out)`` trains an :class:`~jetfm_coffea.model.EventModel` on
a batch source (see :mod:`jetfm_coffea.train.data`) and writes a run directory
(see :mod:`jetfm_coffea.train.run`). Under ``torchrun`` every rank calls it with its
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

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from jetfm_coffea.augment.config import load_pipeline
from jetfm_coffea.errors import NonFiniteLossError, TrainingError
from jetfm_coffea.model.config import ModelConfig, model_config_for
from jetfm_coffea.model.model import EventModel, count_parameters
from jetfm_coffea.runtime import (
    autocast,
    matmul_precision,
    precision_context,
    resolve_precision,
)
from jetfm_coffea.selection.datasheet import DATA_SHEET_KEY, source_data_sheet
from jetfm_coffea.tokens.config import TokenConfig, check_token_config, load_token_config
from jetfm_coffea.train.checkpoint import (
    get_rng_state,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
    save_weights,
    set_rng_state,
)
from jetfm_coffea.train.config import PretrainConfig, load_pretrain_config
from jetfm_coffea.train.data import batch_provenance, compact_batch
from jetfm_coffea.train.distributed import DistInfo, all_gather_objects, init_distributed
from jetfm_coffea.train.monitor import collapse_metrics, knn_accuracy
from jetfm_coffea.train.objectives import PretrainTask
from jetfm_coffea.train.prefetch import prefetch, to_device
from jetfm_coffea.train.run import RunConfigs, write_model_card, write_run_files
from jetfm_coffea.train.views import load_view_hook, make_views, sibling_views

__all__ = [
    "PretrainResult",
    "TrainProgress",
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


def _step_generator(seed: int, rank: int, step: int, device: torch.device) -> torch.Generator:
    """Per-step RNG for views and masking: a pure function of (seed, rank, step)."""
    gen = torch.Generator(device=device if device.type == "cuda" else "cpu")
    gen.manual_seed((seed * 1_000_003 + rank * 7_919 + step) % (2**63 - 1))
    return gen


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


def _used_heads(cfg: PretrainConfig) -> list[str]:
    obj = cfg.objective
    heads = []
    if obj.uses_contrastive:
        heads.append("projection")
    if obj.masked_weight > 0:
        heads.append("decoder")
    if obj.supervised_weight > 0:
        heads.append("classifier")
    return heads


class TrainProgress:
    """rich progress bar on rank 0 (a no-op elsewhere or when disabled)."""

    def __init__(self, enabled: bool, total: int, start: int, label: str = "pretrain"):
        self.bar = None
        if not enabled:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn(f"[bold]{label}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[rate]} ev/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        )
        self.bar.start()
        self.task = self.bar.add_task(label, total=total, completed=start, loss="-", rate="-")

    def update(self, step: int, loss: float, rate: float) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=step, loss=f"{loss:.4f}", rate=f"{rate:,.0f}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


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
        return _pretrain(
            cfg, data, out, resume, validation, provenance, keep_model, stop_at, info, device
        )
    finally:
        info.close()


def _pretrain(
    cfg: PretrainConfig,
    data: DataArg,
    out: Path,
    resume: bool,
    validation: dict[str, torch.Tensor] | None,
    provenance: dict[str, Any] | None,
    keep_model: bool,
    stop_at: int | None,
    info: DistInfo,
    device: torch.device,
) -> PretrainResult:
    seed = cfg.train.seed
    source = _resolve_data(data, info)
    if hasattr(source, "__len__") and len(source) == 0:
        n = getattr(source, "n_events", "?")
        raise TrainingError(
            f"no training batch: the data has {n} event(s), fewer than one batch of "
            f"{cfg.train.batch_size} per rank x {info.world_size} rank(s)"
        )
    data_tokens: TokenConfig = load_token_config(source.token_config)
    ck_pointer = latest_checkpoint(out) if resume else None
    if resume and ck_pointer is None:
        raise TrainingError(f"--resume: no checkpoint found in {out}")
    if not resume and latest_checkpoint(out) is not None:
        raise TrainingError(f"{out} already holds a run; pass --resume to continue it")

    if resume:
        run_cfg = load_pretrain_config(out / "config.yaml")
        if run_cfg.train.steps != cfg.train.steps:
            run_cfg = load_pretrain_config(run_cfg, **{"train.steps": cfg.train.steps})
        cfg = run_cfg
        model_cfg = ModelConfig.model_validate_json((out / "model_config.json").read_text())
        run_tokens = load_token_config(out / "token_config.yaml")
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

    # identical initial weights on every rank, then per-rank randomness (dropout)
    torch.manual_seed(seed)
    model = EventModel(model_cfg, heads=_used_heads(cfg)).to(device)
    torch.manual_seed(seed + 1 + info.rank)
    hook = load_view_hook(cfg.train.view_hook) if cfg.train.view_hook else None
    task = PretrainTask(model, cfg.objective, hook, cfg.train.group_tokens)
    fresh = cfg.objective.uses_contrastive and cfg.views == "fresh" and hook is None
    physics_of_siblings = (
        cfg.objective.uses_contrastive and cfg.views == "resim+physics" and hook is None
    )
    opt, sched = build_optimizer(model, cfg)
    precision = resolve_precision(cfg.train.precision, device, "train")
    n_params = count_parameters(model)

    step, epoch, events_seen = 0, 0, 0
    if resume:
        weights, state = load_checkpoint(out)
        model.load_state_dict(weights)
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        if state["world_size"] != info.world_size:
            raise TrainingError(
                f"checkpoint was written by {state['world_size']} rank(s), "
                f"now {info.world_size}: resume with the same number of processes"
            )
        local = state["ranks"][info.rank]
        set_rng_state(local["rng"])
        source.load_state_dict(local["loader"])
        step, epoch = int(state["step"]), int(state["epoch"])
        events_seen = int(state.get("events_seen", 0))
    else:
        source.set_epoch(0)

    configs = RunConfigs(
        pretrain=cfg,
        model=model_cfg,
        tokens=data_tokens,
        augment=cfg.augment,
        info={},
    )
    if resume and (out / "run.json").is_file():
        configs.info = json.loads((out / "run.json").read_text())
    configs.info.update(
        {
            "status": "running",
            "size": model_cfg.size,
            "n_parameters": n_params,
            "heads": list(model.heads),
            "world_size": info.world_size,
            "precision": precision,
            "device": device.type,
            "steps_done": step,
            "views": _views_record(cfg),
        }
    )
    if not resume:
        prov = dict(provenance or getattr(source, "provenance", None) or {})
        configs.info["data"] = prov
        configs.info[DATA_SHEET_KEY] = source_data_sheet(source)  # what the model saw
    if info.is_main:
        write_run_files(out, configs)

    wrapped: torch.nn.Module = task
    if info.world_size > 1:
        wrapped = DDP(
            task,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=cfg.objective.masked_weight == 0,
        )
    # grouped encoding sees a new token count and group size every step: compile for
    # symbolic shapes from the start instead of recompiling per shape
    dynamic = True if cfg.train.group_tokens else None
    runner = torch.compile(wrapped, dynamic=dynamic) if cfg.train.compile else wrapped

    if validation is None and cfg.validation.path:
        import numpy as np

        with np.load(cfg.validation.path) as z:
            validation = {k: torch.as_tensor(z[k]) for k in ("tokens", "mask", "label")}
    metrics_path = out / "metrics.jsonl"
    weights_meta = {
        "model_config_hash": model_cfg.hash(),
        "token_config_hash": data_tokens.hash(),
        "config_hash": cfg.hash(),
        "format": "jetfm-event-model",
    }

    def checkpoint(at_step: int) -> Path | None:
        # the loader state of the last batch trained on (the prefetcher reads ahead)
        local_state = {"rng": get_rng_state(), "loader": loader_state}
        ranks = all_gather_objects(local_state, info)
        path = None
        if info.is_main:
            state = {
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "epoch": epoch,
                "events_seen": events_seen,
                "world_size": info.world_size,
                "ranks": ranks,
            }
            path = save_checkpoint(out, at_step, model.state_dict(), state, weights_meta)
        return path

    def batches() -> Iterator[tuple[dict[str, Any], int, dict[str, Any]]]:
        """``(batch, its epoch, loader state after it)``, epoch after epoch."""
        ep = epoch
        it = iter(source)
        while True:
            got_any = False
            for batch in it:
                got_any = True
                yield batch, ep, copy.deepcopy(source.state_dict())
            if not got_any and not _epoch_has_batches(source):
                raise TrainingError(
                    f"the data yields no batch of {cfg.train.batch_size} events on rank "
                    f"{info.rank} (empty store, or fewer events than batch size x ranks)"
                )
            ep += 1
            source.set_epoch(ep)
            it = iter(source)

    def prepare(batch: dict[str, Any]) -> dict[str, Any]:
        return compact_batch(batch) if cfg.train.compact_tokens else batch

    loader_state = copy.deepcopy(source.state_dict())

    end = cfg.train.steps if stop_at is None else min(stop_at, cfg.train.steps)
    progress = TrainProgress(cfg.train.progress and info.is_main, cfg.train.steps, step)
    losses: list[float] = []
    last: dict[str, Any] = {}
    window: dict[str, float] = {}
    n_window, t_window, wait_window, events_window = 0, time.perf_counter(), 0.0, 0
    if cfg.train.prefetch > 0:
        stream = prefetch(batches(), device, prepare, depth=cfg.train.prefetch)
    else:
        stream = ((to_device(prepare(b), device), *rest) for b, *rest in batches())
    task.train()
    try:
        with matmul_precision(precision):
            while step < end:
                t0 = time.perf_counter()
                batch, epoch, loader_state = next(stream)
                wait_window += time.perf_counter() - t0
                n_events = len(batch["tokens"]) * info.world_size
                if fresh:  # V new physics views per event, keyed by (event ids, epoch, view)
                    batch["views"], batch["view_mask"] = make_views(
                        batch, cfg.augment, data_tokens, epoch, cfg.objective.n_views
                    )
                elif physics_of_siblings:  # physics views of the re-simulated siblings
                    batch["views"], batch["view_mask"] = sibling_views(
                        batch, cfg.augment, data_tokens, epoch, cfg.objective.n_views
                    )
                gen = _step_generator(seed, info.rank, step, device)
                with autocast(precision, device):
                    loss, parts, emb = runner(batch, gen)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                clip = cfg.optim.grad_clip if cfg.optim.grad_clip is not None else float("inf")
                gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
                ok = (torch.isfinite(loss) & torch.isfinite(gnorm)).float()
                if info.world_size > 1:
                    dist.all_reduce(ok, op=dist.ReduceOp.MIN)
                if ok.item() < 1:
                    where = batch_provenance(batch)
                    if info.world_size > 1:
                        where = f"rank {info.rank}: {where}"
                    path = checkpoint(step)
                    configs.info.update({"status": f"failed: non-finite loss at step {step + 1}"})
                    if info.is_main:
                        write_run_files(out, configs)
                    raise NonFiniteLossError(step + 1, where, str(path) if path else None)
                opt.step()
                sched.step()
                step += 1
                events_seen += n_events
                loss_value = float(loss.detach())
                losses.append(loss_value)
                window["loss"] = window.get("loss", 0.0) + loss_value
                for k, v in parts.items():
                    window[k] = window.get(k, 0.0) + float(v)
                n_window += 1
                events_window += n_events

                record: dict[str, Any] | None = None
                if step % cfg.train.log_every == 0 or step == end:
                    dt = time.perf_counter() - t_window
                    record = {
                        "step": step,
                        "epoch": epoch,
                        "lr": sched.get_last_lr()[0],
                        **{k: v / n_window for k, v in window.items()},
                        "grad_norm": float(gnorm),
                        "events_per_s": events_window / max(dt, 1e-9),
                        "step_time_s": dt / n_window,
                        "loader_wait_frac": wait_window / max(dt, 1e-9),
                        "events_seen": events_seen,
                        "time": time.time(),
                    }
                    window, n_window, t_window = {}, 0, time.perf_counter()
                    wait_window, events_window = 0.0, 0
                if step % cfg.train.monitor_every == 0 or step == end:
                    record = record or {"step": step, "epoch": epoch, "time": time.time()}
                    record.update(collapse_metrics(emb))
                if validation is not None and (step % cfg.validation.every == 0 or step == end):
                    record = record or {"step": step, "epoch": epoch, "time": time.time()}
                    record["knn_acc"] = _knn_probe(model, validation, cfg, device)
                if record is not None:
                    last.update(record)
                    if info.is_main:
                        with open(metrics_path, "a") as fh:
                            fh.write(json.dumps(record) + "\n")
                    progress.update(
                        step, record.get("loss", loss_value), record.get("events_per_s", 0)
                    )
                if step % cfg.train.checkpoint_every == 0 and step < end:
                    checkpoint(step)
    finally:
        stream.close()
        progress.close()

    checkpoint(step)
    done = step >= cfg.train.steps
    configs.info.update({"status": "completed" if done else "stopped", "steps_done": step})
    if info.is_main:
        save_weights(out / "model.safetensors", model.state_dict(), weights_meta)
        write_run_files(out, configs)
        write_model_card(out, configs, n_params)
    return PretrainResult(out, step, losses, last, model if keep_model else None)


def _views_record(cfg: PretrainConfig) -> dict[str, Any]:
    """How the contrastive views are made (``run.json`` and the model card)."""
    if not cfg.objective.uses_contrastive:
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
