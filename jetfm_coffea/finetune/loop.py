"""The optimisation loop of one fine-tuning run: batches, steps, validation, early stopping.

:class:`RunLoop` trains a model built by the trainer on the labelled events of one run
(:class:`RunEvents`) with the task type's :class:`~.task_types.TaskLoss`, validates
every ``eval_every`` steps in float32, keeps the state of the best validation loss,
stops after ``patience`` validations without improvement (or at the planned cap) and
logs to ``metrics.jsonl``; :meth:`RunLoop.restore_best` loads the best state and lets
the objective fold what it standardised into the head.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from jetfm_coffea.errors import NonFiniteLossError
from jetfm_coffea.finetune.encode import EVAL_PRECISION, encode_events, encode_options
from jetfm_coffea.finetune.task_types import TaskLoss
from jetfm_coffea.runtime import (
    TrainProgress,
    append_metrics,
    autocast,
    guarded_step,
    matmul_precision,
)
from jetfm_coffea.train.data import batch_provenance, compact_batch

if TYPE_CHECKING:
    from jetfm_coffea.finetune.trainer import FinetuneSetup
    from jetfm_coffea.model.model import EventModel

__all__ = [
    "MAX_VALIDATION_SHARE",
    "VALIDATION_EVENT_COST",
    "EmbeddingBatches",
    "LoopResult",
    "RunEvents",
    "RunLoop",
    "default_eval_interval",
    "embed",
]

#: The default validation cadence keeps validation at most this share of a run's encoder
#: work (a run's cost is then set by its batches, not by its validation pool).
MAX_VALIDATION_SHARE = 0.1
#: Encoder work of validating one event relative to training on one: a forward pass
#: against a forward and a backward (about twice the forward).
VALIDATION_EVENT_COST = 1.0 / 3.0


def default_eval_interval(
    steps_per_epoch: int, min_interval: int, n_val: int, batch_size: int, probe: bool
) -> int:
    """Steps between validations when ``eval_every`` is not set.

    Once per epoch, at least every ``min_interval`` steps, and, for the modes that
    re-encode the validation events (finetune, scratch), rarely enough that validating
    ``n_val`` events is at most :data:`MAX_VALIDATION_SHARE` of the encoder work:
    ``n_val c <= s / (1 - s) x interval x batch_size``. A small label set has one-step
    epochs but a validation set of at least ``min_val_events``: without this bound it
    would validate more events than it trains on. The linear probe validates on cached
    embeddings (one head pass): no bound.
    """
    interval = max(steps_per_epoch, min_interval, 1)
    if probe or n_val <= 0:
        return interval
    share = MAX_VALIDATION_SHARE
    need = n_val * VALIDATION_EVENT_COST * (1 - share) / (share * max(batch_size, 1))
    return max(interval, math.ceil(need - 1e-9))


class EmbeddingBatches:
    """Epoch batches over cached embeddings, with the permutation rule of TensorEventDataset."""

    def __init__(self, arrays: dict[str, torch.Tensor], batch_size: int, seed: int):
        self.arrays, self.batch_size, self.seed, self.epoch = arrays, batch_size, seed, 0
        self.n = len(arrays["target"])

    def __len__(self) -> int:
        return self.n // self.batch_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        perm = torch.randperm(self.n, generator=gen)
        for b in range(len(self)):
            sel = perm[b * self.batch_size : (b + 1) * self.batch_size]
            yield {k: v[sel.to(v.device)] for k, v in self.arrays.items()}


@dataclass
class RunEvents:
    """The events of one run: labelled training, validation and test indices, weights."""

    n_labels: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    weight: np.ndarray  # per event of the data: data weight x class weight (float32)


def embed(model: EventModel, setup: FinetuneSetup, index: np.ndarray, probe: bool) -> torch.Tensor:
    """fp32 embeddings of ``index``: the cached frozen ones (probe) or the model's."""
    if probe:
        return setup.embeddings()[torch.as_tensor(index, device=setup.device)]
    return encode_events(model, setup.data, index, setup.device, **encode_options(setup.task))


@dataclass
class LoopResult:
    """How a training loop ended, and the best validation state it kept."""

    steps: int = 0
    epochs: int = 0
    best_loss: float = float("inf")
    best_step: int = 0
    best_state: dict[str, torch.Tensor] | None = None
    stopped: bool = False
    stopped_by: str = "patience"
    events: int = 0
    train_s: float = 0.0
    train_cpu_s: float = 0.0
    val_s: float = 0.0  # wall time of the validation passes (inside train_s)
    val_events: int = 0  # events validated, summed over the passes
    eval_every: int = 0  # steps between validations


class RunLoop:
    """The optimisation loop of one run: steps, validation, early stopping, metrics log."""

    def __init__(
        self,
        setup: FinetuneSetup,
        model: EventModel,
        mode: str,
        events: RunEvents,
        objective: TaskLoss,
        precision: str,
        metrics_path: Path,
    ):
        self.setup, self.model, self.mode, self.events = setup, model, mode, events
        self.objective, self.precision, self.metrics_path = objective, precision, metrics_path
        self.probe = mode == "linear-probe"
        self.kind = setup.kind
        self.head = model.heads[self.kind.head]
        device = setup.device
        self.labels = setup.label_tensor()
        self.val_y = self.labels[torch.as_tensor(events.val, device=device)]
        self.val_w = torch.as_tensor(events.weight[events.val], device=device)

    def _outputs(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.kind.train_outputs(self.head, embedding)

    def _batch_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
        """Loss of one batch (training precision) and its event count."""
        device, precision = self.setup.device, self.precision
        if self.probe:
            with matmul_precision(precision):
                outputs = self._outputs(batch["embedding"])
            y, w = batch["target"], batch["w"]
        else:
            if self.setup.task.train.compact_tokens:
                batch = compact_batch(batch)
            x, m = batch["tokens"].to(device), batch["mask"].to(device)
            with matmul_precision(precision), autocast(precision, device):
                outputs = self._outputs(self.model.encoder(x, m).embedding)
            y = self.labels[batch["label"].to(device)]
            w = batch["weight"].to(device)
        return self.objective.loss(outputs, y, w), len(y)

    def _step(self, opt: Any, sched: Any, batch: dict[str, torch.Tensor], step: int) -> tuple:
        """One optimiser step (gradient clipping, non-finite check); ``(loss, events)``."""
        loss, n = self._batch_loss(batch)
        opt.zero_grad(set_to_none=True)
        with matmul_precision(self.precision):
            loss.backward()
        params = [p for g in opt.param_groups for p in g["params"]]
        _, stepped = guarded_step(opt, sched, loss, params, self.setup.task.optim.grad_clip)
        if not stepped:
            where = "embeddings" if self.probe else batch_provenance(batch)
            raise NonFiniteLossError(step + 1, where)
        return loss, n

    def _validate(self) -> dict[str, float]:
        """``val_loss`` and the task type's validation numbers (fp32, eval mode)."""
        self.model.eval()
        with torch.no_grad():
            e = embed(self.model, self.setup, self.events.val, self.probe)
            with matmul_precision(EVAL_PRECISION):
                outputs = self._outputs(e).float()
        self._train_mode()
        loss = float(self.objective.loss(outputs, self.val_y, self.val_w))
        return {"val_loss": loss, **self.objective.val_record(outputs, self.val_y)}

    def _train_mode(self) -> None:
        self.model.train()
        if self.probe:
            self.model.encoder.eval()

    def _log(self, record: dict[str, Any]) -> None:
        record["time"] = time.time()
        append_metrics(self.metrics_path, record)

    def run(self, source: Any, opt: Any, sched: Any, planned: int | None) -> LoopResult:
        """Train until early stopping or the cap; keep the best validation state."""
        lt = self.setup.task.train
        eval_every = lt.eval_every or default_eval_interval(
            len(source), lt.min_eval_interval, len(self.events.val), source.batch_size,
            self.probe,
        )  # fmt: skip
        res = LoopResult(eval_every=eval_every)
        self._train_mode()
        bad = 0
        progress = TrainProgress(lt.progress, planned or 0, 0, label=self.mode)
        t_train, c_train = time.perf_counter(), time.process_time()
        log_loss_sum, log_n = 0.0, 0
        try:
            while (planned is None or res.steps < planned) and not res.stopped:
                source.set_epoch(res.epochs)
                for batch in source:
                    loss, n = self._step(opt, sched, batch, res.steps)
                    res.steps += 1
                    step = res.steps
                    res.events += n
                    log_loss_sum += float(loss.detach())
                    log_n += 1
                    record: dict[str, Any] = {}
                    if step % lt.log_every == 0:
                        record.update(step=step, epoch=res.epochs, lr=sched.get_last_lr()[0],
                                      loss=log_loss_sum / log_n)  # fmt: skip
                        log_loss_sum, log_n = 0.0, 0
                    if step % eval_every == 0 or step == planned:
                        t_val = time.perf_counter()
                        val = self._validate()
                        res.val_s += time.perf_counter() - t_val
                        res.val_events += len(self.events.val)
                        record.update(step=step, epoch=res.epochs, **val)
                        if val["val_loss"] < res.best_loss - lt.min_delta:
                            res.best_loss, res.best_step, bad = val["val_loss"], step, 0
                            res.best_state = self._trained_state()
                            record["best"] = True
                        else:
                            bad += 1
                            res.stopped = bad >= lt.patience
                    if record:
                        self._log(record)
                        progress.update(step, record.get("loss", float(loss.detach())), 0.0)
                    if (planned is not None and step >= planned) or res.stopped:
                        break
                res.epochs += 1
        finally:
            progress.close()
        if not res.stopped:  # a cap ended the run: its validation loss may still have improved
            res.stopped_by = "max_steps" if planned == lt.max_steps else "max_epochs"
        res.train_s = time.perf_counter() - t_train
        res.train_cpu_s = time.process_time() - c_train
        return res

    def _trained_state(self) -> dict[str, torch.Tensor]:
        # the frozen encoder never changes: keep only what trains
        trained = self.head if self.probe else self.model
        return {k: v.detach().clone() for k, v in trained.state_dict().items()}

    def restore_best(self, res: LoopResult) -> None:
        """Load the best validation state, then fold the objective into the head."""
        if res.best_state is not None:
            (self.head if self.probe else self.model).load_state_dict(res.best_state)
        self.objective.finalize(self.head)
