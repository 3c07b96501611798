"""The label-efficiency study as cells: fair tuning, controls, paired intervals, provenance.

``cell_study(setup, encoders, store, plan)`` runs one task:

1. checks everything before any training: the test set against the plan's minimum, the
   label grid against the training split, the tuning grids (strict plans: at least 5
   learning rates spanning at least 30x, at least 2 tuning seeds), and every stored
   cell of the task against the current code, data and encoders
   (:class:`~jetfm_coffea.finetune.cells.StaleCellError`);
2. writes the test set once (``<task>/testset.json``: its hash, size, classes);
3. runs the groups (arm = encoder + mode, label count) in order of value
   (:func:`priority`: fine-tuned with 10% of the labels against scratch and the BDTs
   with all of them first), each: tune on the mean validation loss of the tuning seeds
   (encoder modes: the learning rate; BDTs: learning rate, leaves, L2 in turn; a choice
   on the edge of its grid extends the grid, up to ``max_extend`` times), then the
   other seeds at the chosen values; every cell trains until its validation loss stops
   improving and is stored as it finishes (:class:`~.cells.CellStore`), so an
   interrupted study resumes from its finished cells;
4. returns the summary (:func:`summarize`): per row the mean AUC over seeds with 68% and
   95% intervals (paired bootstrap over test events + seed spread,
   :mod:`.intervals`), the stated differences with their intervals, the tuning record,
   per-cell timings (wall, CPU, load average) and the provenance.

Encoders are named (``ssl``, ``random``, ``no-signal``, ...); scratch and the BDTs use
none and are computed once.  With all labels each seed trains on its own stratified
bootstrap of the training split (``FinetuneSetup.full_draw``), so seeds vary the data at
every label count.  A row's label count is reported as training + validation labels
(``n_labels``) and both parts (``n_train``, ``n_val``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jetfm_coffea.atomic import atomic_write_bytes, atomic_write_text
from jetfm_coffea.errors import ConfigError
from jetfm_coffea.finetune.cells import (
    REFERENCE_VERSION,
    TRAINER_VERSION,
    CellKey,
    CellStore,
    code_version,
    quantise,
)
from jetfm_coffea.finetune.config import (
    REFERENCE_MODES,
    LabelCount,
    label_fraction,
    load_task_config,
)
from jetfm_coffea.finetune.heldout import check_supervised_labels
from jetfm_coffea.finetune.intervals import LEVELS, auc, bootstrap_counts, difference, estimate
from jetfm_coffea.finetune.reference import iteration_cap, reference_features, train_reference
from jetfm_coffea.finetune.trainer import (
    FinetuneSetup,
    PretrainedEncoder,
    build_classifier,
    finetune,
)
from jetfm_coffea.tokens.fields import ID_FIELDS

__all__ = [
    "CONTROLS",
    "CellPlan",
    "TaskStudy",
    "cell_studies",
    "cell_study",
    "encoder_architecture",
    "load_scores",
    "priority",
    "random_encoder",
    "summarize",
    "test_set_hash",
]

Arm = tuple[str | None, str]  # (encoder name or None, mode)
#: Encoder names of the controls (never a study's main encoder).
CONTROLS: tuple[str, ...] = ("random", "no-signal")


@dataclass(frozen=True)
class CellPlan:
    """The grid and tuning of a cell study (learning-rate grids come from the task)."""

    labels: tuple[LabelCount, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    small_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)  # at label fractions <= small_fraction
    small_fraction: float = 0.03
    tune_seeds: int = 2  # tuning: the mean validation loss of the first this many seeds
    bdt_leaves: tuple[int, ...] = (7, 15, 31, 63, 127)
    bdt_l2: tuple[float, ...] = (0.0, 0.1, 1.0, 10.0)
    max_extend: int = 3  # grid extensions when a choice sits on an edge
    min_test_events: int = 0
    strict: bool = True  # enforce the fair-tuning minimums (False: test-suite scale)
    n_boot: int = 1000
    modes: tuple[str, ...] = ("linear-probe", "finetune", "scratch", "bdt-raw", "bdt-features")

    def seeds_for(self, labels: LabelCount, n_train: int, n_all: int) -> tuple[int, ...]:
        frac = label_fraction(labels)
        frac = n_train / max(n_all, 1) if frac is None else frac
        return self.small_seeds if frac <= self.small_fraction + 1e-12 else self.seeds

    def describe(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_grid(name: str, grid: Sequence[float], strict: bool) -> None:
    if not grid:
        raise ConfigError(f"{name}: the tuning grid is empty")
    if strict and (len(grid) < 5 or max(grid) / min(grid) < 30):
        raise ConfigError(
            f"{name}: a fair study tunes over at least 5 values spanning at least 30x; "
            f"got {list(grid)}"
        )


def test_set_hash(setup: FinetuneSetup) -> str:
    """SHA-256 (16 hex) of the task's selected test events: dataset names, ids, class
    index and token bytes, in test order."""
    idx = setup.test_index
    d = setup.data
    h = hashlib.sha256()
    h.update("\n".join(d.dataset_names()[idx].tolist()).encode())
    for a in (d.run[idx], d.luminosityBlock[idx], d.event[idx], setup.targets[idx]):
        h.update(np.ascontiguousarray(a, np.int64).tobytes())
    h.update(np.ascontiguousarray(d.tokens[idx], np.float32).tobytes())
    h.update(np.ascontiguousarray(d.mask[idx]).tobytes())
    return h.hexdigest()[:16]


def encoder_architecture(encoder: PretrainedEncoder) -> str:
    """Hash (8 hex) of ``encoder``'s architecture without its pretraining heads' sizes (a
    scratch cell's key: encoders pretrained with other heads, e.g. ``hybrid``'s process
    classes, share its scratch cells)."""
    config = encoder.model_config.model_copy(update={"n_classes": 2, "n_truth": 0})
    return config.hash()[:8]


def random_encoder(like: PretrainedEncoder, seed: int = 0) -> PretrainedEncoder:
    """An untrained encoder of ``like``'s architecture (initialised with ``seed``): the
    control that tells what pretraining adds over a random embedding."""
    model = build_classifier(like, 2, "scratch", seed)
    state = {k: v.detach().clone() for k, v in model.encoder.state_dict().items()}
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode() + state[k].cpu().numpy().tobytes())
    return dataclasses.replace(
        like, encoder_state=state, run_dir=None, weights_sha256=h.hexdigest()[:16],
        info={"random_init_seed": seed},
    )  # fmt: skip


def priority(arm: Arm, frac: float, main_encoder: str = "ssl") -> tuple[int, float, int]:
    """Sort key of a group: the comparisons that decide the goals first (the main encoder
    fine-tuned with 10% of the labels; scratch and both BDTs with 100%), then the rest of
    10% and the random-encoder control there, the 1% stretch, the other label counts,
    the other encoders and controls last."""
    enc, mode = arm
    baseline = enc is None
    main = enc == main_encoder
    if (main and mode == "finetune" and frac == 0.1) or (baseline and frac == 1.0):
        tier = 0
    elif frac == 0.1 and (baseline or main or enc == "random"):
        tier = 1
    elif frac == 0.01 and (baseline or (main and mode == "finetune")):
        tier = 2
    elif baseline or main:
        tier = 3
    elif enc == "random":
        tier = 4
    else:
        tier = 5
    order = ["finetune", "scratch", "bdt-features", "bdt-raw", "linear-probe"]
    return tier, -frac if tier == 3 else frac, order.index(mode) if mode in order else 9


def _loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # not on every platform
        return []


#: What "-dirty" looks at: the code, not the results files a running study rewrites.
_CODE_PATHS = ("jetfm_coffea", "processors", "benchmarks", ":(exclude)benchmarks/results")


def _git_version(root: Path | None = None) -> str | None:
    """``git describe`` of the checkout, ``-dirty`` when its code has uncommitted changes
    (the study's own result files, rewritten as it goes, do not count)."""
    root = root or Path(__file__).resolve().parents[2]

    def git(*args: str) -> str:
        run = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
        if run.returncode:
            raise subprocess.CalledProcessError(run.returncode, args)
        return run.stdout.strip()

    try:
        described = git("describe", "--always")
        changed = git("status", "--porcelain", "--untracked-files=no", "--", *_CODE_PATHS)
    except (OSError, subprocess.CalledProcessError):
        return None
    if not described:
        return None
    return f"{described}-dirty" if changed else described


class _Study:
    """One task's cells: keys, training, tuning."""

    def __init__(
        self,
        setup: FinetuneSetup,
        encoders: dict[str, PretrainedEncoder],
        store: CellStore,
        plan: CellPlan,
        work: Path,
        log: Callable[[str], None],
        task_name: str,
    ):
        self.base, self.encoders, self.store, self.plan = setup, encoders, store, plan
        self.work, self.log, self.name = work, log, task_name
        self.base.full_draw = "bootstrap"
        self.task = setup.task
        self.context = {
            "task_config_hash": self.task.hash(),
            "test_set_hash": test_set_hash(setup),
        }
        self.n_all = len(setup.pool("train"))
        self.setups: dict[tuple, FinetuneSetup] = {}
        self.features: dict[str, tuple[np.ndarray, list[str]]] = {}
        self.trained = 0
        self.tuning: list[dict[str, Any]] = []
        self.chosen: dict[tuple, dict[str, Any]] = {}
        self.signal = self.task.signal_index
        self.y_test = setup.targets[setup.test_index] == self.signal

    # ------------------------------------------------------------------ keys and setups
    def key(self, arm: Arm, labels: LabelCount, seed: int, hyper: dict[str, Any]) -> CellKey:
        enc, mode = arm
        n = self.base.resolve_labels(labels)
        train, val = self.base.select(n, seed)
        hyper = dict(hyper)
        if mode == "scratch":  # no encoder, but the architecture decides the result
            hyper["arch"] = encoder_architecture(next(iter(self.encoders.values())))
        return CellKey(
            task=self.name, task_config_hash=self.context["task_config_hash"],
            test_set_hash=self.context["test_set_hash"], encoder=enc,
            encoder_hash=None if enc is None else self.encoders[enc].weights_sha256,
            mode=mode, labels=str(labels), n_train=len(train), n_val=len(val), seed=seed,
            hyper=hyper, code_version=code_version(mode),
        )  # fmt: skip

    def setup_for(self, enc: str | None, hyper: dict[str, Any]) -> FinetuneSetup:
        ident = (enc, tuple(sorted(hyper.items())))
        if ident not in self.setups:
            pre = self.encoders[enc] if enc is not None else next(iter(self.encoders.values()))
            base_key = (enc, ())
            if base_key not in self.setups:
                self.setups[base_key] = dataclasses.replace(
                    self.base, pretrained=pre, _embeddings=None, embed_seconds=0.0
                )
            base = self.setups[base_key]
            updates = {}
            if "lr" in hyper and "leaves" not in hyper:
                updates["optim.lr"] = hyper["lr"]
            if "leaves" in hyper:
                updates["reference.max_leaf_nodes"] = hyper["leaves"]
                updates["reference.l2_regularization"] = hyper["l2"]
            task = load_task_config(self.task, **updates) if updates else self.task
            self.setups[ident] = dataclasses.replace(base, task=task)
        return self.setups[ident]

    # ------------------------------------------------------------------ one cell
    def cell(self, arm: Arm, labels: LabelCount, seed: int, hyper: dict[str, Any]) -> dict:
        key = self.key(arm, labels, seed, hyper)
        done = self.store.load(key)
        if done is not None:
            return done
        enc, mode = arm
        setup = self.setup_for(enc, {k: v for k, v in hyper.items() if k != "arch"})
        run_dir = self.work / key.relpath()
        if mode == "linear-probe":
            base = self.setups[(enc, ())]
            base.embeddings()
            setup._embeddings = base._embeddings
        load0, cpu0, t0 = _loadavg(), time.process_time(), time.perf_counter()
        if mode in REFERENCE_MODES:
            if mode not in self.features:
                d = setup.data
                self.features[mode] = reference_features(
                    mode, d.tokens, d.mask, d.token_config, setup.task.reference
                )
            res = train_reference(setup, run_dir, mode=mode, labels=labels, seed=seed,
                                  lr=hyper["lr"], features=self.features[mode])  # fmt: skip
        else:
            res = finetune(setup, run_dir, mode=mode, labels=labels, seed=seed, overwrite=True)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        m = res.test_metrics
        result = {
            "result": {
                "best_val_loss": res.best_val_loss,
                "steps": res.steps,
                "best_step": res.best_step,
                "stopped_by": res.stopped_by,
                "step_cap": iteration_cap(setup.task.reference)
                if mode in REFERENCE_MODES
                else setup.task.train.max_steps,
                "patience": setup.task.reference.patience
                if mode in REFERENCE_MODES
                else setup.task.train.patience,
                "auc": m["auc"],
                # the AUC of the stored scores (8-bit rank quantiles), which the intervals use
                "auc_stored": auc(quantise(res.probs[:, self.signal]), self.y_test),
                "accuracy": m["accuracy"],
                "n_test": m["n_events"],
            },
            "timing": {
                "wall_s": round(wall, 3),
                "cpu_s": round(cpu, 3),
                "train_s": round(res.train_s, 3),
                "s_per_step": round(res.train_s / max(res.steps, 1), 5),
                "loadavg_before": load0,
                "loadavg_after": _loadavg(),
                "torch_threads": torch.get_num_threads(),
                "embed_s": round(self.setups[(enc, ())].embed_seconds, 3)
                if mode == "linear-probe"
                else 0.0,
            },
        }
        self.store.save(key, result, res.probs[:, self.signal])
        self.trained += 1
        self.log(
            f"cell {key.relpath()}: AUC {m['auc']:.4f}, val loss {res.best_val_loss:.4f}, "
            f"{res.steps} steps ({res.stopped_by}), {wall:.1f} s wall, {cpu:.1f} s CPU, "
            f"load {result['timing']['loadavg_after'][:1]}"
        )
        return self.store.load(key)

    # ------------------------------------------------------------------ tuning
    def _mean_loss(self, arm: Arm, labels: LabelCount, seeds: Sequence[int], hyper: dict) -> float:
        self.trial_keys += [self.key(arm, labels, s, hyper) for s in seeds]
        return float(np.mean([self.cell(arm, labels, s, hyper)["result"]["best_val_loss"]
                              for s in seeds]))  # fmt: skip

    def _search(
        self, arm: Arm, labels: LabelCount, seeds: Sequence[int], name: str,
        grid: Sequence[float], fixed: dict[str, Any], extend: str,
    ) -> tuple[Any, dict[str, Any]]:  # fmt: skip
        """Choose ``name`` over ``grid`` (others ``fixed``) on the mean validation loss over
        ``seeds``; ``extend``: 'both', 'up' or 'none' (which edges may grow)."""
        values = sorted(set(grid))
        losses: dict[Any, float] = {}
        extended = 0
        while True:
            for v in values:
                if v not in losses:
                    losses[v] = self._mean_loss(arm, labels, seeds, {**fixed, name: v})
            best = min(values, key=lambda v: losses[v])
            edge = None
            if best == values[0] and extend == "both" and len(values) > 1:
                edge, new = "low", _step_out(values[0], values[1], name)
            elif best == values[-1] and extend in ("both", "up") and len(values) > 1:
                edge, new = "high", _step_out(values[-1], values[-2], name)
            if edge is None or extended >= self.plan.max_extend or new is None:
                break
            values = sorted({*values, new})
            extended += 1
        record = {
            "parameter": name,
            "values": values,
            "mean_val_loss": {_slug(v): losses[v] for v in values},
            "chosen": best,
            "extended": extended,
            "at_edge": (best == values[0] and extend == "both")
            or (best == values[-1] and extend != "none"),
            "seeds": list(seeds),
        }
        return best, record

    def group(self, arm: Arm, labels: LabelCount) -> dict[str, Any]:
        """Tune then train every seed of one (arm, label count); returns the table entry."""
        enc, mode = arm
        n = self.base.resolve_labels(labels)
        seeds = self.plan.seeds_for(labels, n, self.n_all)
        tune = seeds[: max(1, self.plan.tune_seeds)]
        self.trial_keys: list[CellKey] = []
        records = []
        if mode in REFERENCE_MODES:
            ref = self.task.reference
            lr, rec = self._search(arm, labels, tune, "lr", ref.learning_rates,
                                   {"leaves": ref.max_leaf_nodes, "l2": ref.l2_regularization},
                                   "both")  # fmt: skip
            records.append(rec)
            leaves, rec = self._search(arm, labels, tune, "leaves", self.plan.bdt_leaves,
                                       {"lr": lr, "l2": ref.l2_regularization}, "both")  # fmt: skip
            records.append(rec)
            l2, rec = self._search(arm, labels, tune, "l2", self.plan.bdt_l2,
                                   {"lr": lr, "leaves": leaves}, "up")  # fmt: skip
            records.append(rec)
            hyper = {"lr": lr, "leaves": leaves, "l2": l2}
        else:
            lr, rec = self._search(arm, labels, tune, "lr", self.task.optim.lr_grid or
                                   [self.task.optim.lr], {}, "both")  # fmt: skip
            records.append(rec)
            hyper = {"lr": lr}
        cells = [self.cell(arm, labels, s, hyper) for s in seeds]
        chosen = [self.key(arm, labels, s, hyper) for s in seeds]
        self._drop_unchosen({k.relpath() for k in chosen})
        self.store.commit_scores(
            chosen, f"label-efficiency scores {self.name}/{enc or 'none'}/{mode}/{labels}: "
            f"{len(chosen)} seeds at {_hyper_text(hyper)}",
        )  # fmt: skip
        entry = {"encoder": enc, "mode": mode, "labels": str(labels), "hyper": hyper,
                 "seeds": list(seeds), "tuning": records, "cells": cells}  # fmt: skip
        self.chosen[(enc, mode, str(labels))] = entry
        return entry

    def _drop_unchosen(self, keep: set[Path]) -> None:
        """Tuning cells off the chosen point keep their JSON but lose their scores."""
        for key in self.trial_keys:
            if key.relpath() not in keep and self.store.paths(key)[0].is_file():
                self.store.drop_scores(key, "tuning cell, not chosen")


def _slug(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _hyper_text(hyper: dict[str, Any]) -> str:
    return ", ".join(f"{k} {_slug(v)}" for k, v in sorted(hyper.items()))


def _step_out(edge: float, neighbour: float, name: str) -> float | None:
    """The next grid value beyond ``edge`` (geometric step of the edge interval)."""
    if name == "l2":
        return edge * 10.0 if edge > 0 else None
    if edge <= 0 or neighbour <= 0:
        return None
    value = edge * edge / neighbour
    if name == "leaves":
        value = round(value)
        return value if value >= 2 and value != edge else None
    return float(f"{value:.3g}")


@dataclass
class TaskStudy:
    """One task's part of a cell study (see :func:`cell_studies`)."""

    setup: FinetuneSetup
    encoders: dict[str, PretrainedEncoder]
    store: CellStore
    plan: CellPlan
    task_name: str
    work: Path
    scale: str = "custom"
    provenance: dict[str, Any] | None = None
    summary_path: Path | None = None


def cell_study(
    setup: FinetuneSetup,
    encoders: dict[str, PretrainedEncoder],
    store: CellStore,
    plan: CellPlan,
    *,
    task_name: str,
    work: str | Path,
    scale: str = "custom",
    provenance: dict[str, Any] | None = None,
    summary_path: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run (or resume) one task's cells and return its summary; see the module docstring.

    ``encoders``: name -> encoder, the main one first (``ssl``; the goals and stated
    differences are about it); ``store``: where finished
    cells live (commit them with ``CellStore(..., commit=True)``); ``work``: scratch run
    directories (not kept); ``summary_path``: where the summary JSON goes (written only
    here, after every group).  Everything is checked before the first cell trains.
    """
    task = TaskStudy(setup, encoders, store, plan, task_name, Path(work), scale, provenance,
                     None if summary_path is None else Path(summary_path))  # fmt: skip
    return cell_studies([task], log=log)[task_name]


def cell_studies(
    tasks: Sequence[TaskStudy], log: Callable[[str], None] | None = None
) -> dict[str, dict[str, Any]]:
    """Run (or resume) several tasks' cells, interleaved in order of value across tasks
    (every task's goal comparison before any task's lesser groups: a study stopped
    midway has the most important rows of every task); returns each task's summary.
    Every task is checked before the first cell of any trains."""
    say = log or (lambda _msg: None)
    studies = [_prepare(t, say) for t in tasks]
    groups = sorted(
        (
            (i, arm, lab)
            for i, (study, t) in enumerate(zip(studies, tasks, strict=True))
            for arm in _arms(study.encoders, t.plan)
            for lab in t.plan.labels
        ),
        key=lambda g: (
            priority(g[1], _fraction(g[2], tasks[g[0]].setup), next(iter(tasks[g[0]].encoders))),
            g[0],
        ),
    )
    planned = [sum(g[0] == i for g in groups) for i in range(len(tasks))]
    done = [0] * len(tasks)
    t0 = time.perf_counter()
    for i, arm, labels in groups:
        trained = studies[i].trained
        studies[i].group(arm, labels)
        done[i] += 1
        # a group replayed from finished cells changes no number: a resumed study writes its
        # summary again only once new cells have trained (each write bootstraps every row)
        new = studies[i].trained > trained
        if tasks[i].summary_path is not None and done[i] < planned[i] and new:
            progress = {"complete": False, "groups_done": done[i], "groups_planned": planned[i]}
            _write_summary(studies[i], tasks[i], t0, progress)
    out = {}
    for study, t, n in zip(studies, tasks, planned, strict=True):
        progress = {"complete": True, "groups_done": n, "groups_planned": n}
        if t.summary_path is None:
            out[t.task_name] = _summary(study, t, t0, progress)
        else:
            out[t.task_name] = _write_summary(study, t, t0, progress)
    return out


def _arms(encoders: dict[str, PretrainedEncoder], plan: CellPlan) -> list[Arm]:
    arms: list[Arm] = []
    for name in encoders:
        arms += [(name, m) for m in ("linear-probe", "finetune") if m in plan.modes]
    arms += [(None, m) for m in ("scratch", *REFERENCE_MODES) if m in plan.modes]
    return arms


def _prepare(t: TaskStudy, say: Callable[[str], None]) -> _Study:
    """Every check of one task before any training; its study object."""
    setup, plan, task_name, encoders = t.setup, t.plan, t.task_name, t.encoders
    if not encoders or next(iter(encoders)) in CONTROLS:
        raise ConfigError(
            "a cell study needs its main encoder first (the one its goals are about), not a "
            f"control ({', '.join(CONTROLS)}); got {list(encoders)}"
        )
    n_test = len(setup.test_index)
    if n_test < plan.min_test_events:
        raise ConfigError(
            f"task {task_name}: the test set has {n_test} selected events, fewer than the "
            f"{plan.min_test_events} the study needs; generate more events or raise the test "
            f"fraction (splits.test = {setup.task.splits.test:g})"
        )
    for labels in plan.labels:
        setup.resolve_labels(labels)  # a label count larger than the training split: error
    _check_grid(f"task {task_name}: optim.lr_grid", setup.task.optim.lr_grid, plan.strict)
    _check_grid(
        f"task {task_name}: reference.learning_rates", setup.task.reference.learning_rates,
        plan.strict,
    )  # fmt: skip
    if plan.strict and (plan.tune_seeds < 2 or len(plan.small_seeds) < 5):
        raise ConfigError("a fair study tunes on >= 2 seeds and runs >= 5 seeds at 1% and 3%")
    for name, encoder in encoders.items():  # no encoder was taught the task's signal
        check_supervised_labels(name, encoder, setup.task)
    study = _Study(setup, encoders, t.store, plan, t.work, say, task_name)
    t.store.check(task_name, study.context, {k: e.weights_sha256 for k, e in encoders.items()})
    _write_test_set(t.store, task_name, setup, study.context["test_set_hash"])
    return study


def _summary(study: _Study, t: TaskStudy, t0: float, progress: dict[str, Any]) -> dict[str, Any]:
    summary = summarize(study, scale=t.scale, provenance=t.provenance or {})
    summary.update(progress)
    summary["wall_s"] = time.perf_counter() - t0
    summary["cells_trained"] = study.trained
    return summary


def _write_summary(
    study: _Study, t: TaskStudy, t0: float, progress: dict[str, Any]
) -> dict[str, Any]:
    """Write the summary JSON and its score index (after every group: a study stopped
    midway leaves the summary of what it finished, ``complete: false``)."""
    assert t.summary_path is not None
    path = t.summary_path
    summary = _summary(study, t, t0, progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    scores = path.with_name(path.stem + "_scores.npz")
    _write_scores(scores, study)
    try:  # a repository-relative path where it can be (the committed summaries)
        summary["scores"] = str(scores.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        summary["scores"] = str(scores.resolve())
    atomic_write_text(path, json.dumps(summary, indent=1, default=str) + "\n")
    return summary


def _fraction(labels: LabelCount, setup: FinetuneSetup) -> float:
    frac = label_fraction(labels)
    if frac is None:
        return setup.resolve_labels(labels) / max(len(setup.pool("train")), 1)
    return frac


def _write_test_set(store: CellStore, task: str, setup: FinetuneSetup, digest: str) -> None:
    path = store.root / task / "testset.json"
    idx = setup.test_index
    y = setup.targets[idx]
    info = {
        "test_set_hash": digest,
        "n_events": len(idx),
        "per_class": {n: int((y == c).sum()) for c, n in enumerate(setup.task.class_names)},
        "signal": setup.task.signal_class,
    }
    if path.is_file() and json.loads(path.read_text()) == info:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(info, indent=1) + "\n")


def _write_scores(path: Path, study: _Study) -> None:
    """The task's per-event score file: the test events' class and ids, and for every
    table cell (``<encoder>/<mode>/<labels>/s<seed>``) the path of its score file
    (relative to this file's folder: the cells' score files are the one stored copy of
    the scores; :func:`load_scores` reads them back)."""
    s = study.base
    idx = s.test_index
    rows, cells = [], []
    for (enc, mode, labels), entry in study.chosen.items():
        for seed in entry["seeds"]:
            key = study.key((enc, mode), labels, seed, entry["hyper"])
            rows.append(f"{enc or 'none'}/{mode}/{labels}/s{seed}")
            cells.append(os.path.relpath(study.store.paths(key)[1], path.parent))
    buf = io.BytesIO()
    ids = {name: getattr(s.data, name)[idx] for name in ID_FIELDS}
    np.savez_compressed(
        buf, target=s.targets[idx].astype(np.int8), **ids,
        rows=np.array(rows, dtype=str), cells=np.array(cells, dtype=str),
    )  # fmt: skip
    atomic_write_bytes(path, buf.getvalue())


def load_scores(path: str | Path) -> dict[str, np.ndarray]:
    """A task's per-event score file as arrays: ``target``, ``run``, ``luminosityBlock``,
    ``event`` and one array of stored scores per table cell, by row name."""
    path = Path(path)
    with np.load(path) as f:
        out = {k: f[k] for k in ("target", *ID_FIELDS)}
        for row, cell in zip(f["rows"].tolist(), f["cells"].tolist(), strict=True):
            with np.load(path.parent / cell) as c:
                out[row] = c["score_q"] if "score_q" in c.files else c["score"]
    return out


#: The differences every summary states: (a, b) as (encoder, mode, fraction or None = same).
def _stated(fracs: Sequence[float], encoders: Sequence[str]) -> list[tuple]:
    main = encoders[0]
    pairs = []
    for f in fracs:
        for ref in ("scratch", "bdt-raw", "bdt-features"):
            pairs.append(((main, "finetune", f), (None, ref, f)))
        for other in encoders[1:]:
            for mode in ("finetune", "linear-probe"):
                pairs.append(((main, mode, f), (other, mode, f)))
    if 0.1 in fracs and 1.0 in fracs:  # the goal: 10% fine-tuned against all labels
        for ref in ("scratch", "bdt-raw", "bdt-features"):
            pairs.append(((main, "finetune", 0.1), (None, ref, 1.0)))
    if 0.3 in fracs and 1.0 in fracs:  # 30% against scratch with all labels
        pairs.append(((main, "finetune", 0.3), (None, "scratch", 1.0)))
    if 0.01 in fracs and 0.1 in fracs:  # the stretch goal
        pairs.append(((main, "finetune", 0.01), (None, "scratch", 0.1)))
    return pairs


def summarize(study: _Study, *, scale: str, provenance: dict[str, Any]) -> dict[str, Any]:
    """The summary of a finished study (rows, differences, tuning, timings, provenance)."""
    s = study.base
    y = s.targets[s.test_index] == study.signal
    counts = bootstrap_counts(y, study.plan.n_boot, seed=0)
    rows, by_id, cell_rows = [], {}, []
    for (enc, mode, labels), entry in study.chosen.items():
        keys = [study.key((enc, mode), labels, sd, entry["hyper"]) for sd in entry["seeds"]]
        scores = [study.store.scores(k) for k in keys]
        est = estimate(scores, y, counts)
        frac = round(_fraction(labels, s), 6)
        k0 = keys[0]
        row = {
            "mode": mode, "encoder": enc, "label_fraction": frac, "labels": labels,
            "n_labels": k0.n_train + k0.n_val, "n_train": k0.n_train, "n_val": k0.n_val,
            "n_seeds": len(scores), "seeds": entry["seeds"], "auc_mean": est.mean,
            "auc_ci68": est.ci(0.68), "auc_ci95": est.ci(0.95), "auc_seed_sd": est.seed_sd,
            "auc_boot_sd": est.boot_sd, "hyper": entry["hyper"],
            "steps_mean": float(np.mean([c["result"]["steps"] for c in entry["cells"]])),
            "n_step_capped": sum(c["result"]["stopped_by"] != "patience"
                                 for c in entry["cells"]),
            "tuning_at_edge": [r["parameter"] for r in entry["tuning"] if r["at_edge"]],
        }  # fmt: skip
        rows.append(row)
        by_id[(enc, mode, frac)] = (row, scores)
        for c in entry["cells"]:
            cell_rows.append({"key": c["key"], "result": c["result"], "timing": c["timing"]})
    fracs = sorted({r["label_fraction"] for r in rows})
    diffs = []
    for a, b in _stated(fracs, list(study.encoders)):
        if a not in by_id or b not in by_id:
            continue
        (ra, sa), (rb, sb) = by_id[a], by_id[b]
        paired = ra["seeds"] == rb["seeds"] and a[2] == b[2]
        est = difference(sa, sb, y, counts, paired_seeds=paired)
        diffs.append({
            "a": {"mode": a[1], "encoder": a[0], "label_fraction": a[2]},
            "b": {"mode": b[1], "encoder": b[0], "label_fraction": b[2]},
            "delta_auc": est.mean, "ci68": est.ci(0.68), "ci95": est.ci(0.95),
            "paired_seeds": paired, "n_seeds": est.n_seeds,
        })  # fmt: skip
    order = {m: i for i, m in enumerate(study.plan.modes)}
    enc_order = {e: i for i, e in enumerate(study.encoders)}
    rows.sort(key=lambda r: (order.get(r["mode"], 9), enc_order.get(r["encoder"], -1),
                             r["label_fraction"]))  # fmt: skip
    tuning = [{"mode": e["mode"], "encoder": e["encoder"], "labels": e["labels"],
               "search": e["tuning"]} for e in study.chosen.values()]  # fmt: skip
    timing = [c["timing"] for c in cell_rows]
    stored = [abs(c["result"]["auc"] - c["result"]["auc_stored"]) for c in cell_rows
              if "auc_stored" in c["result"]]  # fmt: skip
    every = [c["timing"] for _, c in study.store.cells(study.name) if "timing" in c]
    return {
        "task": study.name,
        "scale": scale,
        "test_events": len(s.test_index),
        "test_set_hash": study.context["test_set_hash"],
        "test_per_class": {
            n: int((s.targets[s.test_index] == c).sum()) for c, n in enumerate(s.task.class_names)
        },
        "signal": s.task.signal_class,
        "splits": {k: len(s.pool(k)) for k in ("train", "val", "test")},
        "task_config_hash": study.context["task_config_hash"],
        "code_version": TRAINER_VERSION,
        "reference_version": REFERENCE_VERSION,
        "git": _git_version(),
        "main_encoder": next(iter(study.encoders)),
        "encoders": {
            k: {
                "hash": e.weights_sha256,
                **e.describe(),
                **(provenance.get("encoders", {}).get(k, {})),
            }
            for k, e in study.encoders.items()
        },
        "plan": study.plan.describe(),
        "intervals": {
            "levels": list(LEVELS),
            "n_boot": study.plan.n_boot,
            "method": "stratified paired bootstrap over test events, combined in "
            "quadrature with the seed spread (Student t)",
        },
        "aggregate": rows,
        "differences": diffs,
        "tuning": tuning,
        "score_storage": {
            "codec": "uint8 rank quantiles (cells.quantise); intervals use the stored levels",
            "max_abs_auc_change": max(stored) if stored else None,
        },
        "cells": cell_rows,
        "timing_totals": {  # the table's cells, and every cell of the task (tuning too)
            "cells": len(timing),
            "wall_s": float(sum(t["wall_s"] for t in timing)),
            "cpu_s": float(sum(t["cpu_s"] for t in timing)),
            "all_cells": len(every),
            "all_wall_s": float(sum(t["wall_s"] for t in every)),
            "all_cpu_s": float(sum(t["cpu_s"] for t in every)),
        },
        "provenance": {k: v for k, v in provenance.items() if k != "encoders"},
        "scores": None,
    }
