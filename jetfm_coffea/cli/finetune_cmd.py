"""``jetfm finetune``, ``jetfm label-efficiency`` and ``jetfm evaluate``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from jetfm_coffea.cli.common import RUN_DIR, fail_cleanly

__all__ = ["evaluate_cmd", "finetune_cmd", "label_efficiency_cmd"]


def _data_options(func: Callable) -> Callable:
    options = [
        click.option("--shards", type=click.Path(), help="Zarr shard store with labels."),
        click.option(
            "--fileset",
            type=click.Path(exists=True, dir_okay=False),
            help="coffea fileset JSON with an integer metadata.label per dataset.",
        ),
        click.option(
            "--max-events-per-dataset",
            type=int,
            help="--fileset: read at most this many events per dataset.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _task_options(func: Callable, required: bool = True) -> Callable:
    options = [
        click.option(
            "--pretrained",
            required=required,
            type=RUN_DIR,
            help="Pretraining run directory (its encoder and token config), or "
            "builtin:NAME, a released encoder (jetfm pretrained list).",
        ),
        click.option(
            "--task",
            "task_path",
            required=required,
            help="Task config YAML (classes, selection, splits, optimiser, grid) or the name "
            "of a shipped task: tth_vs_ttbar, vh_vs_vz_bb.",
        ),
        click.option(
            "--tokens",
            type=click.Path(exists=True, dir_okay=False),
            help="--fileset: build tokens with this config (default: the pretrained run's).",
        ),
        click.option(
            "--allow-modified-weights",
            is_flag=True,
            help="Load --pretrained weights whose SHA-256 differs from the one its run "
            "recorded (recorded in the new runs).",
        ),
        click.option("--max-steps", type=int, help="Override train.max_steps."),
        click.option("--device", help="auto (default), cpu, cuda."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _labels(value: str) -> Any:
    from jetfm_coffea.finetune.config import parse_label_count

    return parse_label_count(value)


def _load(pretrained: str, task_path: str, tokens: str | None, max_steps: Any, device: Any, **kw):
    from jetfm_coffea.finetune import load_labelled, load_pretrained, load_task_config
    from jetfm_coffea.finetune.data import read_labelled_fileset
    from jetfm_coffea.finetune.task_types import task_type_for
    from jetfm_coffea.finetune.trainer import check_classes

    task = load_task_config(task_path, **{"train.max_steps": max_steps, "train.device": device})
    if kw["fileset"] is not None:  # fail before reading any event
        labels = {ds["label"] for ds in read_labelled_fileset(kw["fileset"])}
        check_classes(task, labels, f"fileset {kw['fileset']}")
    pre = load_pretrained(pretrained, allow_modified_weights=kw["allow_modified_weights"])
    data = load_labelled(
        shards=kw["shards"],
        fileset=kw["fileset"],
        token_config=tokens or pre.token_config,
        max_events_per_dataset=kw["max_events_per_dataset"] or task.max_events_per_dataset,
        value_branches=task_type_for(task).value_branches(),
    )
    return task, pre, data


@click.command("finetune")
@_task_options
@_data_options
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run directory.")
@click.option(
    "--mode",
    type=click.Choice(["linear-probe", "finetune", "scratch"]),
    default="finetune",
    show_default=True,
)
@click.option(
    "--labels",
    default="all",
    show_default=True,
    help="Labelled training events: a count, a percentage of the train split (10%) or all.",
)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--progress/--no-progress", default=False, help="Progress bar.")
@fail_cleanly
def finetune_cmd(
    pretrained: str,
    task_path: str,
    tokens: str | None,
    allow_modified_weights: bool,
    max_steps: int | None,
    device: str | None,
    shards: str | None,
    fileset: str | None,
    max_events_per_dataset: int | None,
    out: str,
    mode: str,
    labels: str,
    seed: int,
    progress: bool,
) -> None:
    """Train an event classifier on a pretrained encoder (or from scratch)."""
    from jetfm_coffea.finetune import finetune as run_finetune
    from jetfm_coffea.finetune import load_task_config, prepare_finetune

    task, pre, data = _load(
        pretrained,
        task_path,
        tokens,
        max_steps,
        device,
        shards=shards,
        fileset=fileset,
        max_events_per_dataset=max_events_per_dataset,
        allow_modified_weights=allow_modified_weights,
    )
    task = load_task_config(task, **{"train.progress": progress or None})
    n = _labels(labels)
    setup = prepare_finetune(task, pre, data, labels=[n])
    res = run_finetune(setup, out, mode=mode, labels=n, seed=seed)
    m = res.test_metrics
    if setup.kind.name == "classification":
        metrics = (
            f"test AUC {m['auc']:.4f}, accuracy {m['accuracy']:.4f}, "
            f"1/eps_B(50%) {m['rejection_50']:.1f}"
        )
    else:
        metrics = f"test {setup.kind.headline(m)}"
    click.echo(
        f"{mode}: {res.n_labels} labels, {res.steps} steps (best at {res.best_step}"
        f"{', stopped early' if res.stopped_early else ''}); {metrics}; "
        f"{res.wall_s:.1f}s; run directory {res.run_dir}"
    )


def _study_task_options(func: Callable) -> Callable:
    return _task_options(func, required=False)


@click.command("label-efficiency")
@_study_task_options
@_data_options
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Study directory.")
@click.option(
    "--scale",
    type=click.Choice(["ci", "cpu", "cpu-hybrid", "gpu"]),
    help="Run the whole hard-task study at this preset: generate, pretrain on the "
    "unlabelled pool, study every --task (comma list; default tth_vs_ttbar,vh_vs_vz_bb). "
    "Needs no --pretrained or data options.",
)
@click.option(
    "--ablation",
    is_flag=True,
    help="With --scale: also pretrain with one objective at a time (contrastive only, "
    "masked-object only) and compare at 10% of the labels.",
)
@click.option(
    "--cells",
    type=click.Path(file_okay=False),
    help="With --scale: where finished cells go (default OUT/cells), e.g. "
    "benchmarks/results/label_efficiency_cells; reruns resume from them.",
)
@click.option(
    "--results-dir",
    type=click.Path(file_okay=False),
    help="With --scale: where each task's summary JSON goes (default OUT).",
)
@click.option(
    "--commit-cells", is_flag=True, help="With --scale: git-commit each cell as it finishes."
)
@click.option("--modes", help="Comma-separated modes (default: the task config's).")
@click.option("--labels", "labels_", help="Comma-separated label counts, e.g. 100,1000,all.")
@click.option("--seeds", help="Comma-separated seeds, e.g. 0,1,2.")
@click.option("--no-reuse", is_flag=True, help="Retrain runs already completed in --out.")
@fail_cleanly
def label_efficiency_cmd(
    pretrained: str,
    task_path: str,
    tokens: str | None,
    allow_modified_weights: bool,
    max_steps: int | None,
    device: str | None,
    shards: str | None,
    fileset: str | None,
    max_events_per_dataset: int | None,
    out: str,
    modes: str | None,
    labels_: str | None,
    seeds: str | None,
    no_reuse: bool,
    scale: str | None,
    ablation: bool,
    cells: str | None,
    results_dir: str | None,
    commit_cells: bool,
) -> None:
    """Linear probe vs fine-tuning vs from scratch (and the BDT references) over label
    counts x seeds; with --scale, the whole hard-task study from generation on."""
    from jetfm_coffea.finetune import label_efficiency as run_study

    if scale is not None:
        from jetfm_coffea.pipelines.campaign import DEFAULT_TASKS, run_campaign

        extra = [n for n, v in (("--pretrained", pretrained), ("--shards", shards),
                                ("--fileset", fileset), ("--modes", modes),
                                ("--labels", labels_), ("--seeds", seeds)) if v]  # fmt: skip
        if extra:
            raise click.UsageError(f"--scale runs a preset; drop {', '.join(extra)}")
        tasks = task_path.split(",") if task_path else list(DEFAULT_TASKS)
        summary = run_campaign(scale, out, tasks=tasks, log=click.echo, ablate=ablation,
                               cells=cells, results_dir=results_dir,
                               commit_cells=commit_cells)  # fmt: skip
        click.echo((Path(out) / "summary.md").read_text())
        if not summary["within_budget"]:
            click.echo(f"note: the run took longer than the {scale} preset's budget")
        return
    if ablation or cells or results_dir or commit_cells:
        raise click.UsageError("--ablation, --cells, --results-dir, --commit-cells need --scale")
    if pretrained is None or task_path is None:
        raise click.UsageError("give --pretrained and --task (or --scale to run a preset)")

    task, pre, data = _load(
        pretrained,
        task_path,
        tokens,
        max_steps,
        device,
        shards=shards,
        fileset=fileset,
        max_events_per_dataset=max_events_per_dataset,
        allow_modified_weights=allow_modified_weights,
    )
    result = run_study(
        task,
        pre,
        data,
        out,
        modes=modes.split(",") if modes else None,
        labels=[_labels(v) for v in labels_.split(",")] if labels_ else None,
        seeds=[int(v) for v in seeds.split(",")] if seeds else None,
        reuse=not no_reuse,
        log=click.echo,
    )
    click.echo(result.files["markdown"].read_text())
    click.echo(f"results in {Path(out)}: " + ", ".join(p.name for p in result.files.values()))


@click.command("evaluate")
@click.argument("run", type=click.Path(exists=True, file_okay=False))
@_data_options
@click.option(
    "--split",
    type=click.Choice(["test", "val", "train", "all"]),
    default="test",
    show_default=True,
    help="Events of the task's hash split to evaluate on.",
)
@click.option("--out", type=click.Path(file_okay=False), help="Output folder (default RUN/eval).")
@click.option("--device", default="cpu", show_default=True)
@fail_cleanly
def evaluate_cmd(
    run: str,
    shards: str | None,
    fileset: str | None,
    max_events_per_dataset: int | None,
    split: str,
    out: str | None,
    device: str,
) -> None:
    """Metrics, ROC, confusion matrix and calibration of one classifier run."""
    from jetfm_coffea.finetune import evaluate_run, load_labelled
    from jetfm_coffea.finetune.evaluate import load_classifier
    from jetfm_coffea.finetune.task_types import task_type_for

    _, configs, task = load_classifier(run)
    data = load_labelled(
        shards=shards,
        fileset=fileset,
        token_config=configs.tokens,
        max_events_per_dataset=max_events_per_dataset or task.max_events_per_dataset,
        value_branches=task_type_for(task).value_branches(),
    )
    result = evaluate_run(run, data, split=split, out=out, device=device)
    click.echo(Path(result["out"], "metrics.md").read_text())
    click.echo(f"plots and metrics.json in {result['out']}")
