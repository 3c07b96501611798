"""The hard-task label-efficiency study end to end, at a preset scale.

``run_campaign(preset, out)``:

1. generates every process of the preset (``jetfm generate``'s API, one seed per process,
   resumable: a sample already complete in ``out/gen`` is kept) -> ``out/gen``;
2. reads every generated sample plus the real 2012 SingleMu events into tokens (one
   token-building path for pretraining and fine-tuning);
3. plans every task (classes, selection, splits, label grid, the preset's minimum of
   selected test events: all checked before any training) and builds the pretraining
   pool: every generated process plus the real events, **minus the test events of every
   task** (by dataset and event id, the split key), at least ``min_pool_factor`` times
   the largest labelled training set; with the ``no-signal`` control, one more pool per
   task without its signal samples (checked the same way);
4. pretrains the encoder on the pool (kept when already complete) -> ``out/pretrain``
   (and the no-signal encoders -> ``out/pretrain_no-signal_<task>``);
5. runs each classification task as a cell study (:mod:`.cellstudy`: the main, random
   and no-signal encoders, scratch, the BDTs; fair tuning, paired intervals; cells in
   ``cells``, the summary JSON in ``results_dir``) and each regression task as the
   per-run study (:func:`.study.label_efficiency`) -> ``out/<task>/``;
6. with ``ablate=True``, pretrains once per ablation (:data:`ABLATIONS`: contrastive
   only, masked-object only, stored views, no augmentation; same pool, steps, seeds)
   and compares linear-probe / finetune at ~10% of the labels with the main run (both
   objectives, fresh physics views) -> ``out/ablation/``;
7. writes ``out/summary.json`` and ``out/summary.md``: the goal checks of each task
   (fine-tuned with 10% of the labels against scratch and both BDTs with 100%; the
   stretch goal, 1% against scratch with 10%), stage timings against the preset's
   budget, pool and labelled-set sizes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jetfm_coffea._resources import GOLDEN_JSON_2012, SINGLEMU_2012, cms_file
from jetfm_coffea.atomic import atomic_write_text
from jetfm_coffea.augment.config import standard_pipeline
from jetfm_coffea.cluster import Execution
from jetfm_coffea.errors import ConfigError, JetFMError, TrainingError
from jetfm_coffea.fileset import load_fileset
from jetfm_coffea.finetune.cellreport import direction
from jetfm_coffea.finetune.cells import CellStore
from jetfm_coffea.finetune.cellstudy import CellPlan, TaskStudy, cell_studies, random_encoder
from jetfm_coffea.finetune.config import load_task_config
from jetfm_coffea.finetune.data import SPLITS, LabelledEvents, load_labelled
from jetfm_coffea.finetune.heldout import (
    check_pool_without_labels,
    check_supervised_labels,
    event_keys,
    without_events,
    write_pool_events,
)
from jetfm_coffea.finetune.study import label_efficiency
from jetfm_coffea.finetune.study_presets import StudyPreset, get_preset
from jetfm_coffea.finetune.trainer import (
    FinetuneSetup,
    PretrainedEncoder,
    load_pretrained,
    plan_task,
)
from jetfm_coffea.generate.processes import PROCESSES
from jetfm_coffea.generate.run import dataset_name, generate
from jetfm_coffea.model.rundir import POOL_EVENTS, WEIGHTS
from jetfm_coffea.tokens.config import TokenConfig
from jetfm_coffea.tokens.fields import ID_FIELDS
from jetfm_coffea.train.data import TensorEventDataset
from jetfm_coffea.train.loop import pretrain
from jetfm_coffea.train.objective_modes import needed_values, objective_mode, supervised_sections
from jetfm_coffea.train.views import make_views

__all__ = [
    "ABLATIONS",
    "DEFAULT_TASKS",
    "MAIN_RUN",
    "REAL_DATASET",
    "check_pool",
    "generate_samples",
    "goal_checks",
    "held_out_keys",
    "mode_overrides",
    "pool_info",
    "pool_stored_views",
    "pretraining_pool",
    "run_campaign",
]

#: The shipped tasks a campaign studies by default.
DEFAULT_TASKS: tuple[str, ...] = ("tth_vs_ttbar", "vh_vs_vz_bb")
#: Dataset name of the real 2012 events in the pool (label -1: never a task class).
REAL_DATASET = "SingleMu_Run2012B"
SQRTS = 13000


def process_seed(process: str) -> int:
    """The generator seed of ``process`` in a campaign (fixed: reruns are identical)."""
    return 1000 + PROCESSES[process].label


def _complete(out: Path, process: str, n_events: int) -> bool:
    path = out / f"{dataset_name(process, SQRTS)}_s{process_seed(process)}.fileset.json"
    try:
        (entry,) = load_fileset(path).values()
    except (JetFMError, ValueError):  # missing, unreadable or not one dataset: generate it
        return False
    files = [Path(f) for f in entry["files"]]
    return entry["metadata"].get("nevents") == n_events and all(f.is_file() for f in files)


def generate_samples(
    events: dict[str, int],
    out: Path,
    execution: Execution,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Generate ``events[process]`` events of every process into ``out``; returns the
    folder's ``fileset.json``. A sample already complete there is kept, an interrupted
    one continues from its finished files (resumable). ``execution.workers`` also sets
    the chunking, i.e. the events: keep it to regenerate the same samples."""
    out.mkdir(parents=True, exist_ok=True)
    for process, n in events.items():
        if _complete(out, process, n):
            if log:
                log(f"generate {process}: {n} events already in {out}")
            continue
        res = generate(process, n, sqrts=SQRTS, seed=process_seed(process), out=out,
                       execution=execution, resume=True)  # fmt: skip
        if log:
            log(f"generate {process}: {res.n_events} events, {res.events_per_second:.1f} ev/s")
    return out / "fileset.json"


def _campaign_fileset(gen_fileset: Path, real: Path | None, out: Path) -> Path:
    """A labelled fileset of every generated sample (+ the real events, label -1, masked
    with the 2012 golden JSON: certified luminosity sections only)."""
    spec = load_fileset(gen_fileset)  # absolute paths: the new fileset lives elsewhere
    if real is not None:
        metadata = {"label": -1, "is_data": True, "golden_json": GOLDEN_JSON_2012}
        spec[REAL_DATASET] = {"files": {str(real): "Events"}, "metadata": metadata}
    path = out / "campaign_fileset.json"
    atomic_write_text(path, json.dumps(spec, indent=1))
    return path


def check_pool(
    pool: LabelledEvents, held_out_keys: set[tuple], labelled: int, factor: float
) -> None:
    """Raise :class:`TrainingError` if the pretraining pool holds a test event of a task,
    or has fewer than ``factor`` x ``labelled`` events."""
    leaked = event_keys(pool) & held_out_keys
    if leaked:
        shown = sorted(leaked)[:5]
        raise TrainingError(
            f"the pretraining pool contains {len(leaked)} test events of the tasks (by "
            f"dataset and event id), e.g. {shown}; exclude them before pretraining"
        )
    if len(pool) < factor * labelled:
        raise TrainingError(
            f"the pretraining pool has {len(pool)} events, fewer than {factor:g} x the "
            f"{labelled} labelled training events; generate more events"
        )


def held_out_keys(setups: Sequence[FinetuneSetup]) -> set[tuple]:
    """Keys of every event in the test split of any task (selected or not: the split is a
    property of the event, so events the selection drops stay out of pretraining too)."""
    keys: set[tuple] = set()
    for s in setups:
        keys |= event_keys(s.data, np.flatnonzero(s.split == SPLITS["test"]))
    return keys


def pretraining_pool(data: LabelledEvents, setups: Sequence[FinetuneSetup]) -> LabelledEvents:
    """Every event of ``data`` except the held-out events of every task in ``setups``,
    with their data labels (the generator's process labels, -1 for collision data): the
    self-supervised terms never read them, the supervised ones (``hybrid``,
    ``supervised``) learn them with the tasks' signal labels excluded, and the control
    pools are checked by them (:func:`~.heldout.check_pool_without_labels`)."""
    return without_events(data, held_out_keys(setups))


def _task_data(data: LabelledEvents, task_labels: set[int]) -> LabelledEvents:
    return data.take(np.flatnonzero(np.isin(data.label, sorted(task_labels))))


#: The main run's pretraining, as the ablation tables name it.
MAIN_RUN = "both objectives, fresh views (main run)"
#: Pretraining ablations: name -> (directory slug, overrides of the main run's config).
#: ``views: stored`` pretrains on the epoch-0 views of the standard pipeline made once
#: per event (what a store built with ``views: 2`` holds, reused every epoch); ``no
#: augmentation`` makes its views with an empty pipeline (identical copies).
ABLATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "contrastive only": ("contrastive", {"objective": {"masked": {"weight": 0.0}}}),
    "masked-object only": ("masked-object", {"objective": {"contrastive": {"loss": "none"}}}),
    "stored views": ("stored-views", {"views": "stored"}),
    "no augmentation": ("no-augmentation", {"augment": {"views": 2, "steps": []}}),
}


def pool_stored_views(
    pool: LabelledEvents, n_views: int = 2, seed: int = 0, chunk: int = 8192
) -> tuple[np.ndarray, np.ndarray]:
    """The epoch-0 standard-pipeline views of every pool event, made once (``[N, V, T, F]``).

    The same views a shard store built with ``views: n_views`` holds (fresh view ``v``
    of epoch 0 is stored view ``v``), for pretraining with ``views: stored``.
    """
    if pool.objects is None:
        raise TrainingError("stored views need the raw objects of the pool (objects=None)")
    pipeline = standard_pipeline(views=n_views, seed=seed)
    views, masks = [], []
    for lo in range(0, len(pool), chunk):
        sl = slice(lo, lo + chunk)
        batch = {
            "objects": torch.as_tensor(pool.objects[sl]),
            "mask": torch.as_tensor(pool.mask[sl]),
            **{k: torch.as_tensor(np.asarray(getattr(pool, k)[sl], np.int64))
               for k in ID_FIELDS},
        }  # fmt: skip
        v, m = make_views(batch, pipeline, pool.token_config, 0, n_views)
        views.append(v.numpy())
        masks.append(m.numpy())
    return np.concatenate(views), np.concatenate(masks)


def mode_overrides(pool: LabelledEvents, mode: str, exclude: set[int]) -> dict[str, Any]:
    """Pretraining config overrides of mode ``mode`` (``ssl``, ``supervised``, ``hybrid``)
    on ``pool``: the objective sections, the heads' sizes (``model``) and the truth values
    the batches carry (``values``); the process labels in ``exclude`` (the tasks' signal
    processes) are never supervised labels."""
    if mode == "ssl":
        return {}
    sections, model = supervised_sections(pool.label, pool.values, exclude=exclude)
    return {"objective": objective_mode(mode, sections), "model_overrides": model,
            "values": needed_values(sections)}  # fmt: skip


def _pretrain(
    pool: LabelledEvents, preset: StudyPreset, out: Path, overrides: dict[str, Any]
) -> PretrainedEncoder:
    """Pretrain on ``pool`` into ``out`` (kept when complete); returns the encoder.

    ``overrides``: top-level pretraining config sections replacing the main run's
    (``objective``, ``views``, ``augment``; see :data:`ABLATIONS`), and from
    :func:`mode_overrides` ``model_overrides`` (head sizes) and ``values`` (the truth
    values the batches carry, with the pool's process labels).
    """
    if not (out / WEIGHTS).is_file():
        overrides = dict(overrides)
        model = dict(preset.model)
        if extra := overrides.pop("model_overrides", None):
            model = {**model, "overrides": {**model.get("overrides", {}), **extra}}
        values = overrides.pop("values", None)
        cfg: dict[str, Any] = {
            "model": model,
            "train": {
                "steps": preset.pretrain_steps,
                "batch_size": preset.pretrain_batch,
                "device": preset.device,
                "progress": False,
            },
            **overrides,
        }
        stored: dict[str, Any] = {}
        if overrides.get("views") == "stored":
            stored["views"], stored["view_mask"] = pool_stored_views(pool)
        if values is not None:  # supervised terms: labels and truth values, masked per event
            stored["label"] = pool.label
            stored["targets"] = {name: pool.values[name] for name in values}
        source = TensorEventDataset(
            pool.tokens, pool.mask, batch_size=preset.pretrain_batch,
            token_config=pool.token_config, run=pool.run,
            luminosityBlock=pool.luminosityBlock, event=pool.event, seed=0,
            objects=pool.objects,  # the fresh physics views are made from them
            provenance={"source": "campaign pool", "n_events": len(pool),
                        "datasets": sorted(set(pool.dataset_names().tolist()))},
            **stored,
        )  # fmt: skip
        # the pool's event keys beside the encoder: fine-tuning against it checks them
        out.mkdir(parents=True, exist_ok=True)
        write_pool_events(out / POOL_EVENTS, pool)
        pretrain(cfg, source, out, keep_model=False)
    return load_pretrained(out)


def _ablation(
    pool: LabelledEvents,
    preset: StudyPreset,
    setups: dict[str, FinetuneSetup],
    results: dict[str, Any],
    out: Path,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """linear-probe / finetune AUC at ~10% of the labels for every pretraining ablation."""
    labels = "10%" if "10%" in preset.labels else preset.labels[0]
    modes = ["linear-probe", "finetune"]
    rows: list[dict[str, Any]] = []
    for task, setup in setups.items():
        n = setup.resolve_labels(labels)
        if "summary" in results[task]:  # a cell study: the main encoder's rows
            cell_rows = json.loads(Path(results[task]["summary"]).read_text())["aggregate"]
            agg = [
                {"mode": r["mode"], "n_labels": r["n_train"], "n_seeds": r["n_seeds"],
                 "auc_mean": r["auc_mean"], "auc_std": r["auc_seed_sd"]}
                for r in cell_rows if r["encoder"] == "ssl"
            ]  # fmt: skip
        else:
            agg = json.loads((out / task / "results.json").read_text())["aggregate"]
        for e in agg:
            if e["mode"] in modes and e["n_labels"] == n:
                rows.append(_ablation_row(MAIN_RUN, task, e, setup.kind.primary))
    for variant, (slug, overrides) in ABLATIONS.items():
        pre = _pretrain(pool, preset, out / "ablation" / f"pretrain_{slug}", overrides)
        for task, setup in setups.items():
            res = label_efficiency(
                setup.task, pre, setup.data, out / "ablation" / slug / task, modes=modes,
                labels=[labels], seeds=list(preset.seeds), log=say, plots=False,
            )  # fmt: skip
            rows += [_ablation_row(variant, task, e, setup.kind.primary) for e in res.aggregate]
    return {"labels": labels, "rows": rows}


def _ablation_row(variant: str, task: str, e: dict[str, Any], metric: str) -> dict[str, Any]:
    """One ablation row: the task's headline ``metric`` (AUC, resolution) over seeds."""
    return {
        "pretraining": variant,
        "task": task,
        "mode": e["mode"],
        "n_labels": e["n_labels"],
        "metric": metric,
        metric: [e[f"{metric}_mean"], e[f"{metric}_std"]],
        "n_seeds": e["n_seeds"],
    }


def goal_checks(
    aggregate: Sequence[dict[str, Any]], metric: str = "auc", higher_is_better: bool = True
) -> dict[str, Any]:
    """The issue's goals on one task's aggregate (mean ``metric`` over seeds, with the std).

    ``main``: finetune at ~10% of the labels at least as good as scratch, bdt-raw and
    bdt-features (those present) at 100%; ``stretch``: finetune at ~1% at least as good as
    scratch at ~10%. "As good": ``metric`` higher (AUC) or, with ``higher_is_better=False``,
    lower (a regression's resolution). Label counts are matched to the nearest grid point
    (within a factor 1.5, else the check is absent); a comparison needs both rows.
    """
    counts = sorted({e["n_labels"] for e in aggregate})
    full = counts[-1]
    sign = 1.0 if higher_is_better else -1.0

    def nearest(frac: float) -> int | None:
        """The grid count closest to ``frac`` of all labels, if within a factor 1.5."""
        n = min(counts, key=lambda c: abs(np.log(c / (frac * full))))
        return n if abs(np.log(n / (frac * full))) <= np.log(1.5) else None

    def entry(mode: str, n: int) -> dict[str, Any] | None:
        return next((e for e in aggregate if e["mode"] == mode and e["n_labels"] == n), None)

    def compare(mode_a: str, n_a: int | None, mode_b: str, n_b: int | None) -> dict | None:
        if n_a is None or n_b is None or (n_a == n_b and mode_a == mode_b):
            return None
        a, b = entry(mode_a, n_a), entry(mode_b, n_b)
        if a is None or b is None:
            return None
        gap = sign * (a[f"{metric}_mean"] - b[f"{metric}_mean"])
        return {
            "metric": metric,
            "a": {"mode": mode_a, "n_labels": n_a, metric: [a[f"{metric}_mean"],
                                                            a[f"{metric}_std"]]},
            "b": {"mode": mode_b, "n_labels": n_b, metric: [b[f"{metric}_mean"],
                                                            b[f"{metric}_std"]]},
            f"{metric}_gap": gap,
            "combined_std": float(np.hypot(a[f"{metric}_std"], b[f"{metric}_std"])),
            "met": bool(gap >= 0.0),
        }  # fmt: skip

    tenth, hundredth = nearest(0.1), nearest(0.01)
    main = {ref: compare("finetune", tenth, ref, full) for ref in ("scratch", "bdt-raw",
                                                                   "bdt-features")}  # fmt: skip
    return {
        "metric": metric,
        "higher_is_better": higher_is_better,
        "n_full": full,
        "n_tenth": tenth,
        "n_hundredth": hundredth,
        "main": {k: v for k, v in main.items() if v is not None},
        "stretch": compare("finetune", hundredth, "scratch", tenth),
    }


def _goal_lines(task: str, goals: dict[str, Any]) -> list[str]:
    lines = [f"### {task}", ""]
    metric = goals.get("metric", "auc")
    name = "AUC" if metric == "auc" else metric
    checks = [*goals["main"].values(), goals["stretch"]]
    for c in checks:
        if c is None:
            continue
        a, b = c["a"], c["b"]
        verdict = "met" if c["met"] else f"not met (short by {-c[f'{metric}_gap']:.4f})"
        lines.append(
            f"- {a['mode']} with {a['n_labels']} labels: {name} {a[metric][0]:.4f} ± "
            f"{a[metric][1]:.4f} vs {b['mode']} with {b['n_labels']}: {b[metric][0]:.4f} ± "
            f"{b[metric][1]:.4f}: {verdict}"
        )
    return [*lines, ""]


def run_campaign(
    preset: StudyPreset | str,
    out: str | Path,
    *,
    tasks: Sequence[str] = DEFAULT_TASKS,
    real_file: str | Path | None = None,
    log: Callable[[str], None] | None = None,
    execution: Execution | None = None,
    ablate: bool = False,
    cells: str | Path | None = None,
    results_dir: str | Path | None = None,
    commit_cells: bool = False,
) -> dict[str, Any]:
    """Run the whole study at ``preset`` scale into ``out``; returns the summary.

    Classification tasks run as a cell study (:mod:`.cellstudy`: fair tuning, the
    random-encoder and no-signal-pool controls, paired intervals): finished cells go to
    ``cells`` (default ``out/cells``; committed to git one by one with
    ``commit_cells``), each task's summary JSON to
    ``results_dir/label_efficiency_<scale>_<task>.json`` (default ``out``).  Regression
    tasks run the per-run study (:func:`.study.label_efficiency`).

    ``real_file``: the 2012 SingleMu NanoAOD file (default: the shared test data's);
    ``None`` there and no file found: the pool holds generated events only.
    ``execution``: where generation runs (its executor and scheduler; the workers are
    the preset's, which set the chunking and so the events; default a process pool).
    ``ablate``: also pretrain once per ablation (:data:`ABLATIONS`: one objective at a
    time, stored views, no augmentation; same pool, steps and seeds) and compare
    linear-probe / finetune at ~10% of the labels.
    """
    preset = get_preset(preset) if isinstance(preset, str) else preset
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    say = log or (lambda _msg: None)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    configs = {name: load_task_config(name, **preset.task_overrides) for name in tasks}
    needed = {lab for cfg in configs.values() for labs in cfg.classes.values() for lab in labs}
    generated = {PROCESSES[p].label for p in preset.events}
    if missing := sorted(needed - generated):
        raise ConfigError(
            f"the tasks {list(tasks)} need data labels {missing} that the preset "
            f"{preset.name!r} does not generate (it generates {sorted(preset.events)})"
        )

    gen_execution = dataclasses.replace(
        execution or Execution("futures"), workers=preset.workers, dask_mode=False
    )
    gen_fileset = generate_samples(preset.events, out / "gen", gen_execution, say)
    timings["generate_s"] = time.perf_counter() - t0

    t = time.perf_counter()
    real = Path(real_file) if real_file is not None else cms_file(SINGLEMU_2012)
    fileset = _campaign_fileset(gen_fileset, real, out)
    cap = max([*preset.events.values(), preset.real_events])
    data = load_labelled(fileset=fileset, token_config=TokenConfig(), max_events_per_dataset=cap)
    if real is not None:  # the real sample: its first real_events events
        names = data.dataset_names()
        rank = np.cumsum(names == REAL_DATASET)
        data = data.take(np.flatnonzero((names != REAL_DATASET) | (rank <= preset.real_events)))
    timings["tokens_s"] = time.perf_counter() - t

    # every check before any training: classes, selections, splits, label grid, pool
    setups = {}
    for name, cfg in configs.items():
        task_data = _task_data(data, set(cfg.label_map()))
        setups[name] = plan_task(cfg, task_data, labels=list(preset.labels))
    cell_tasks = [n for n, s in setups.items() if s.kind.name == "classification"]
    for name in cell_tasks:
        n_test = len(setups[name].test_index)
        if n_test < preset.min_test_events:
            raise ConfigError(
                f"task {name}: {n_test} selected test events at scale {preset.name!r}, fewer "
                f"than its minimum of {preset.min_test_events}; generate more events"
            )
    pool = pretraining_pool(data, list(setups.values()))
    labelled = max(s.resolve_labels("all") for s in setups.values())
    held_out = held_out_keys(list(setups.values()))
    check_pool(pool, held_out, labelled, preset.min_pool_factor)
    say(f"pool: {len(pool)} events ({labelled} labelled training events at most)")
    control_pools = {}
    if "no-signal" in preset.controls:  # one pool per task without its signal process
        for name in cell_tasks:
            task = setups[name].task
            signal = task.classes[task.signal_class]
            keep = np.flatnonzero(~np.isin(data.label, signal))
            control_pools[name] = pretraining_pool(data.take(keep), list(setups.values()))
            check_pool_without_labels(control_pools[name], task, f"the no-signal pool of {name}")
            check_pool(control_pools[name], held_out, labelled, preset.min_pool_factor)

    t = time.perf_counter()
    # the tasks' signal processes are never supervised labels (issue 26)
    exclude = {int(x) for n in cell_tasks for x in configs[n].classes[configs[n].signal_class]}
    (main, main_mode), *more = preset.encoders.items()
    pre = _pretrain(pool, preset, out / "pretrain", mode_overrides(pool, main_mode, exclude))
    extra = {
        name: _pretrain(pool, preset, out / f"pretrain_{name}", mode_overrides(pool, m, exclude))
        for name, m in more
    }
    timings["pretrain_s"] = time.perf_counter() - t

    results: dict[str, Any] = {}
    if cell_tasks:  # one interleaved cell study: every task's goal rows first
        t = time.perf_counter()
        store = CellStore(Path(cells) if cells is not None else out / "cells", commit=commit_cells)
        parts = [
            _cell_task(name, setups[name], {main: pre, **extra}, pool, control_pools.get(name),
                       preset, out, store, Path(results_dir) if results_dir is not None else out,
                       mode_overrides(control_pools[name], main_mode, exclude)
                       if name in control_pools else {})
            for name in cell_tasks
        ]  # fmt: skip
        summaries = cell_studies(parts, log=say)
        for part in parts:
            summary = summaries[part.task_name]
            results[part.task_name] = {
                "task_type": "classification",
                "summary": str(part.summary_path),
                "goals": [
                    d for d in summary["differences"] if _is_goal(d, summary["main_encoder"])
                ],
                "selection": part.setup.selection,
                "splits": {k: len(part.setup.pool(k)) for k in SPLITS},
            }
        timings["cell_study_s"] = time.perf_counter() - t
    for name, setup in setups.items():
        if name in cell_tasks:
            continue
        t = time.perf_counter()
        kind = setup.kind
        check_supervised_labels(main, pre, setup.task)  # not taught the task's target
        res = label_efficiency(
            setup.task, pre, setup.data, out / name,
            modes=[m for m in preset.modes if m in kind.modes],
            labels=list(preset.labels), seeds=list(preset.seeds), log=say,
        )  # fmt: skip
        timings[f"{name}_s"] = time.perf_counter() - t
        results[name] = {
            "task_type": kind.name,
            "table": str(res.files["markdown"]),
            "goals": goal_checks(res.aggregate, kind.primary, kind.higher_is_better),
            "selection": setup.selection,
            "splits": {k: len(setup.pool(k)) for k in SPLITS},
        }
    ablation: dict[str, Any] = {}
    if ablate:
        t = time.perf_counter()
        ablation = _ablation(pool, preset, setups, results, out, say)
        timings["ablation_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0
    summary = {
        "preset": preset.describe(),
        "pool_events": len(pool),
        "pool_datasets": sorted(set(pool.dataset_names().tolist())),
        "labelled_max": labelled,
        "timings": timings,
        "within_budget": timings["total_s"] <= preset.budget_s,
        "tasks": results,
        "ablation": ablation,
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=1, default=str))
    atomic_write_text(out / "summary.md", summary_markdown(summary))
    return summary


def pool_info(pool: LabelledEvents) -> dict[str, Any]:
    """What a pretraining pool holds: events, real (collision) events, events per dataset."""
    names, counts = np.unique(pool.dataset_names(), return_counts=True)
    per = {str(n): int(c) for n, c in zip(names, counts, strict=True)}
    return {"events": len(pool), "real_events": per.get(REAL_DATASET, 0), "datasets": per}


def _cell_task(
    name: str,
    setup: FinetuneSetup,
    trained: dict[str, PretrainedEncoder],
    pool: LabelledEvents,
    control_pool: LabelledEvents | None,
    preset: StudyPreset,
    out: Path,
    store: CellStore,
    results_dir: Path,
    control_overrides: dict[str, Any],
) -> TaskStudy:
    """One classification task's part of the cell study: the ``trained`` encoders (the
    main one first) and the preset's controls (the no-signal encoder, pretrained in the
    main encoder's mode with ``control_overrides``, is pretrained here, once, kept in
    ``out``)."""
    (main, pre), *_ = trained.items()
    setup.pretrained = pre
    encoders = dict(trained)
    modes = dict(preset.encoders)
    info: dict[str, Any] = {
        name: {"pool": pool_info(pool), "mode": modes.get(name, "ssl"),
               "run_dir": str(out / ("pretrain" if name == main else f"pretrain_{name}"))}
        for name in trained
    }  # fmt: skip
    if "random" in preset.controls:
        encoders["random"] = random_encoder(pre, seed=0)
        info["random"] = {"pool": None, "init_seed": 0}
    if control_pool is not None:
        run = out / f"pretrain_no-signal_{name}"
        encoders["no-signal"] = _pretrain(control_pool, preset, run, control_overrides)
        info["no-signal"] = {"pool": pool_info(control_pool), "run_dir": str(run),
                             "without": setup.task.signal_class}  # fmt: skip
    plan = CellPlan(
        labels=tuple(preset.labels), seeds=tuple(preset.seeds),
        small_seeds=tuple(preset.small_seeds), tune_seeds=preset.tune_seeds,
        bdt_leaves=tuple(preset.bdt_leaves), bdt_l2=tuple(preset.bdt_l2),
        min_test_events=preset.min_test_events, strict=preset.strict,
        modes=tuple(m for m in preset.modes if m in setup.kind.modes),
    )  # fmt: skip
    provenance = {
        "preset": preset.describe(),
        "generator_seeds": {p: process_seed(p) for p in preset.events},
        "sqrt_s": SQRTS,
        "encoders": info,
        "environment": {k: os.environ.get(k) for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")},
    }
    return TaskStudy(
        setup, encoders, store, plan, name, out / name / "runs", preset.name, provenance,
        results_dir / f"label_efficiency_{preset.name}_{name}.json",
    )  # fmt: skip


def _is_goal(d: dict[str, Any], main_encoder: str = "ssl") -> bool:
    """The goal rows (the main encoder fine-tuned with 10% or 30% of the labels vs all
    labels) and the stretch row (1% vs 10% scratch)."""
    a, b = d["a"], d["b"]
    main = a["label_fraction"] in (0.1, 0.3) and b["label_fraction"] == 1.0
    stretch = a["label_fraction"] == 0.01 and b["label_fraction"] == 0.1
    return a["encoder"] == main_encoder and a["mode"] == "finetune" and (main or stretch)


def _cell_goal_lines(task: str, goals: list[dict[str, Any]]) -> list[str]:
    lines = [f"### {task}", ""]
    for d in goals:
        a, b = d["a"], d["b"]
        lo, hi = d["ci95"]
        verdict = {1: "met", -1: "not met", 0: "not resolved at 95%"}[direction(d["ci95"])]
        lines.append(
            f"- finetune with {a['label_fraction']:.0%} of the labels − {b['mode']} with "
            f"{b['label_fraction']:.0%}: ΔAUC {d['delta_auc']:+.4f}, 68% "
            f"[{d['ci68'][0]:+.4f}, {d['ci68'][1]:+.4f}], 95% [{lo:+.4f}, {hi:+.4f}]: {verdict}"
        )
    return [*lines, ""]


def summary_markdown(summary: dict[str, Any]) -> str:
    """The goal checks and timings of a campaign, as Markdown."""
    p, tm = summary["preset"], summary["timings"]
    lines = [
        f"# Label-efficiency study, scale `{p['name']}`",
        "",
        f"- pretraining pool: {summary['pool_events']} events (test events of every task "
        f"excluded); largest labelled training set {summary['labelled_max']}",
        f"- encoder {p['model']}, {p['pretrain_steps']} steps x {p['pretrain_batch']} "
        f"= {p['pretrain_views']} event-views",
        f"- wall time {tm['total_s']:.0f} s (budget {p['budget_s']:.0f} s): "
        + ", ".join(f"{k} {v:.0f}" for k, v in tm.items() if k != "total_s"),
        "",
        "## Goals (mean over seeds ± std: AUC, higher is better; resolution, lower is better)",
        "",
    ]
    for task, res in summary["tasks"].items():
        if "summary" in res:
            lines += _cell_goal_lines(task, res["goals"])
        else:
            lines += _goal_lines(task, res["goals"])
    ablation = summary.get("ablation") or {}
    if ablation.get("rows"):
        lines += [
            f"## Ablation: pretraining objective and views ({ablation['labels']} of the labels, "
            "mean over seeds ± std)",
            "",
            "| pretraining | task | mode | labels | metric | value |",
            "|---|---|---|---:|---|---|",
        ]
        for r in ablation["rows"]:
            lines.append(
                f"| {r['pretraining']} | {r['task']} | {r['mode']} | {r['n_labels']} | "
                f"{r['metric']} | {r[r['metric']][0]:.4f} ± {r[r['metric']][1]:.4f} |"
            )
        lines.append("")
    return "\n".join(lines)
