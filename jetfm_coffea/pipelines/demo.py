"""``jetfm demo``: generate -> shards (dask LocalCluster) -> pretrain -> fine-tune -> score
-> report, every stage resumable, on built-in data with no network and no GPU.

Each stage function is ``stage(stage_dir, **params) -> outputs`` and calls the same
public API as the corresponding CLI command, so the demo is also the reference for the
documented sequence ``generate -> build-shards -> pretrain -> finetune -> score``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import uproot
from rich.console import Console

from jetfm_coffea._resources import DIMUON_2012, GOLDEN_JSON_2012, SINGLEMU_2012, cms_file
from jetfm_coffea.augment import standard_pipeline
from jetfm_coffea.augment.check import muon_objects, plot_spectra, spectrum_check
from jetfm_coffea.cluster import Execution
from jetfm_coffea.finetune import (
    TaskConfig,
    label_efficiency,
    load_labelled,
    load_pretrained,
    plan_task,
    prepare_finetune,
)
from jetfm_coffea.finetune.heldout import (
    HELD_OUT_SPLITS,
    check_pool_excludes_held_out,
    pool_without_held_out,
    write_pool_events,
)
from jetfm_coffea.generate import generate
from jetfm_coffea.jobs.score import run_score_analysis, write_outputs
from jetfm_coffea.jobs.shards import build_store
from jetfm_coffea.model.rundir import POOL_EVENTS
from jetfm_coffea.pipelines.campaign import pool_stored_views
from jetfm_coffea.pipelines.demo_plan import DemoPlan
from jetfm_coffea.pipelines.report import write_demo_report
from jetfm_coffea.pipelines.stages import Stage, StageRecord, run_stage
from jetfm_coffea.train.config import load_pretrain_config
from jetfm_coffea.train.data import TensorEventDataset
from jetfm_coffea.train.loop import pretrain
from jetfm_coffea.train.plot import plot_run

__all__ = ["demo_task", "run_demo"]

TASK_CLASSES = {"wjets": [1], "ttbar": [0]}  # the generator's process labels
REAL_DATA = "data2012_singlemu"
N_STAGES = 6


def _write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, indent=1, default=str) + "\n")
    return path


def stage_generate(stage_dir: Path, plan: dict, real_data: str | None) -> dict[str, Any]:
    """Pythia 8 samples for the pretraining mix and the labelled task (+ real 2012 data)."""

    p = DemoPlan.model_validate(plan)
    fileset: dict[str, Any] = {}
    labelled: dict[str, Any] = {}
    for sample in p.samples:
        result = generate(
            sample.process,
            p.n_events(sample),
            sqrts=p.sqrts,
            seed=p.seed,
            out=stage_dir,
            execution=Execution("futures", workers=p.workers),  # a process pool
        )
        fileset.update(result.fileset())
        if sample.finetune:
            labelled.update(result.fileset())
    outputs: dict[str, Any] = {}
    if real_data:
        fileset[REAL_DATA] = {
            "files": {real_data: "Events"},
            "metadata": {
                "is_data": True,
                "description": "CMS 2012 SingleMu (CMS Open Data)",
                "golden_json": GOLDEN_JSON_2012,  # certified luminosity sections only
            },
        }
        with uproot.open(real_data) as f:
            outputs["real_data"] = {"file": real_data, "events": f["Events"].num_entries}
    return {
        "fileset": str(_write_json(stage_dir / "pretrain_fileset.json", fileset)),
        "labelled": str(_write_json(stage_dir / "labelled_fileset.json", labelled)),
        "datasets": sorted(fileset),
        **outputs,
    }


def stage_shards(
    stage_dir: Path, fileset: str, plan: dict, scheduler: str | None
) -> dict[str, Any]:
    """Ragged Zarr shards (2 stored views if the plan pretrains on stored views), built by
    the coffea ShardProcessor on a dask cluster."""

    p = DemoPlan.model_validate(plan)
    summary = build_store(
        fileset,
        stage_dir / "store",
        execution=Execution(executor="dask", workers=p.workers, scheduler=scheduler),
        augmentation=standard_pipeline(views=2, seed=p.seed) if p.views == "stored" else None,
        status=True,
    )
    return {
        "store": summary.store,
        "events_written": summary.events_in,
        "views_written": summary.views_written,
        "skipped": [list(s) for s in summary.skipped_files],
    }


def demo_task(plan: DemoPlan) -> TaskConfig:
    """The demo's fine-tuning task: ttbar vs W+jets (its splits decide the held-out events)."""
    return TaskConfig(
        classes=TASK_CLASSES,
        signal="ttbar",
        labels=["all"],
        seeds=plan.seeds,
        train={
            "max_steps": plan.finetune_max_steps,
            "min_steps": min(60, plan.finetune_max_steps),
            "patience": 3,
        },
    )


def stage_pretrain(stage_dir: Path, store: str, plan: dict) -> dict[str, Any]:
    """Self-supervised pretraining of the tiny encoder (CPU) on the shard store minus the
    fine-tuning task's validation and test events (by dataset and event id)."""

    p = DemoPlan.model_validate(plan)
    cfg = load_pretrain_config(
        None,
        **{
            "model.size": p.pretrain_size,
            "train.steps": p.pretrain_steps,
            "train.batch_size": p.batch_size,
            "train.seed": p.seed,
            "views": p.views,
        },
    )
    data = load_labelled(shards=store)
    setup = plan_task(demo_task(p), data)
    pool = pool_without_held_out(data, setup)
    check_pool_excludes_held_out(pool, setup, pool_name=store, splits=HELD_OUT_SPLITS)
    run = stage_dir / "run"
    run.mkdir(parents=True, exist_ok=True)
    write_pool_events(run / POOL_EVENTS, pool)
    stored: dict[str, Any] = {}
    if cfg.views == "stored":
        stored["views"], stored["view_mask"] = pool_stored_views(pool, seed=p.seed)
    source = TensorEventDataset(
        pool.tokens, pool.mask, batch_size=cfg.train.batch_size, seed=cfg.train.seed,
        token_config=pool.token_config, run=pool.run, luminosityBlock=pool.luminosityBlock,
        event=pool.event, objects=pool.objects,  # the fresh physics views are made from them
        provenance={"source": "shards minus the task's val/test events", "store": store,
                    "n_events": len(pool)},
        **stored,
    )  # fmt: skip
    result = pretrain(cfg, source, run, resume=(run / "checkpoints").exists(), keep_model=False)
    plot = plot_run(run)
    return {
        "run": str(run),
        "steps": result.steps,
        "final_loss": result.losses[-1],
        "plot": str(plot),
        "pool_events": len(pool),
        "held_out_events": len(data) - len(pool),
    }


def stage_finetune(stage_dir: Path, store: str, pretrained: str, plan: dict) -> dict[str, Any]:
    """Label efficiency: linear probe, fine-tune and from-scratch over a label grid."""

    p = DemoPlan.model_validate(plan)
    task = demo_task(p)
    data = load_labelled(shards=store)
    # a small demo (--events) has fewer training events than the plan's largest label counts:
    # keep the counts that fit, always with "all". prepare_finetune refuses an encoder whose
    # recorded pretraining pool holds the task's test events (finetune.heldout).
    encoder = load_pretrained(pretrained)  # read once for the count and the study
    available = len(prepare_finetune(task, encoder, data).pool("train"))
    labels = [n for n in p.label_grid if n < available] + ["all"]
    result = label_efficiency(task, encoder, data, stage_dir, labels=labels)
    # the classifier for the analysis: fine-tuned on every label, first seed
    rows = [r for r in result.rows if r["mode"] == "finetune" and r["seed"] == p.seeds[0]]
    classifier = max(rows, key=lambda r: r["n_labels"])["run_dir"]
    return {
        "results": str(result.files["json"]),
        "markdown": str(result.files["markdown"]),
        "plots": {k: str(v) for k, v in result.files.items() if str(v).endswith(".png")},
        "classifier": str(classifier),
    }


def stage_score(
    stage_dir: Path, labelled: str, classifier: str, plan: dict, scheduler: str | None
) -> dict[str, Any]:
    """Scores injected into an analysis processor (Runner, dask executor) -> histograms."""

    p = DemoPlan.model_validate(plan)
    output, report, seconds = run_score_analysis(
        labelled,
        [classifier],
        execution=Execution(executor="dask", workers=p.workers, scheduler=scheduler),
        cut=0.5,
        signal="ttbar",
    )
    summary = {"events": report.events, "seconds": seconds, "mode": report.mode}
    files = write_outputs(output, stage_dir, parquet=False, summary=summary)
    return {"files": [str(f) for f in files], **summary}


def stage_augment_check(stage_dir: Path, real_file: str, events: int) -> dict[str, Any]:
    """Boosts and rotations leave the real 2012 dimuon spectrum unchanged."""

    objects = muon_objects(real_file, 0, events)
    result, m0, m1 = spectrum_check(objects)
    png = plot_spectra(m0, m1, stage_dir / "augment_check.png", "CMS 2012 DoubleMuParked")
    (stage_dir / "augment_check.md").write_text(result.to_markdown())
    return {"passed": result.passed, "plot": str(png), "pairs": result.n_pairs}


def run_demo(
    workdir: str | Path,
    plan: DemoPlan | None = None,
    scheduler: str | None = None,
    console: Console | None = None,
) -> Path:
    """Run (or resume) the whole demo in ``workdir``; return the path of the report."""

    console = console or Console()
    plan = plan or DemoPlan()
    workdir = Path(workdir).resolve()
    real = str(cms_file(SINGLEMU_2012)) if plan.include_real_data else None

    def fields(*names: str) -> dict[str, Any]:
        """The plan fields a stage uses: only they enter its hash."""
        return plan.model_dump(mode="json", include=set(names))

    workdir.mkdir(parents=True, exist_ok=True)
    records: dict[str, StageRecord] = {}

    def run(name: str, func: Any, description: str, **stage_params: Any) -> dict[str, Any]:
        if records:  # depend on everything before: a redone stage redoes what follows
            stage_params["_after"] = list(records.values())[-1].dependency
        stage = Stage(name, func, stage_params, description)
        records[name] = run_stage(stage, workdir, len(records) + 1, N_STAGES, console)
        return records[name].outputs

    gen = run(
        "generate",
        stage_generate,
        "Pythia 8 + FastJet + CMS-like detector -> NanoAOD files",
        plan=fields("events", "sqrts", "seed", "workers", "samples"),
        real_data=real,
    )
    shards = run(
        "shards",
        stage_shards,
        "coffea ShardProcessor on a dask cluster -> ragged Zarr shards",
        fileset=gen["fileset"],
        plan=fields("seed", "workers", "views"),
        scheduler=scheduler,
    )
    pre = run(
        "pretrain",
        stage_pretrain,
        "contrastive + masked-object pretraining of the tiny encoder (fresh or stored views) "
        "on the shards minus the fine-tuning task's validation and test events",
        store=shards["store"],
        plan=fields("pretrain_size", "pretrain_steps", "batch_size", "seed", "views"),
        _pool="without the task's val/test events",  # older markers pretrained on all
    )
    fine = run(
        "finetune",
        stage_finetune,
        "ttbar vs W+jets: linear probe, fine-tune and from scratch over a label grid",
        store=shards["store"],
        pretrained=pre["run"],
        plan=fields("label_grid", "seeds", "finetune_max_steps"),
    )
    run(
        "score",
        stage_score,
        "classifier scores as coffea columns in an analysis processor",
        labelled=gen["labelled"],
        classifier=fine["classifier"],
        plan=fields("workers"),
        scheduler=scheduler,
    )
    run(
        "augment-check",
        stage_augment_check,
        "dimuon spectrum before/after boosts and rotations (real 2012 data)",
        real_file=str(cms_file(DIMUON_2012)),
        events=plan.augment_check_events,
    )
    report = write_demo_report(workdir, records, plan)
    console.print(f"[bold green]report[/]: {report}")
    return report
