"""``jetfm generate``: Pythia 8 events through the parametric detector into NanoAOD files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from jetfm_coffea.cli.common import DEFAULT
from jetfm_coffea.cluster import EXECUTORS, Execution
from jetfm_coffea.errors import JetFMError

__all__ = ["generate_cmd"]


def _progress(total: int, description: str) -> tuple[Any, Any]:
    """A rich progress bar and its task."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=False,
    )
    task = progress.add_task(description, total=total)
    return progress, task


@click.command("generate")
@click.option(
    "--process",
    "-p",
    "process",
    help="Process name: ttbar, wjets, zjets, qcd, hbb, diboson, tth, vz_bb, st_t, st_s, "
    "ggh, vbfh, gjets, znunu (jetfm_coffea.generate.PROCESSES).",
)
@click.option(
    "--events",
    "-n",
    "n_events",
    type=int,
    default=1000,
    show_default=True,
    help="Number of events.",
)
@click.option(
    "--sqrts",
    type=int,
    default=13000,
    show_default=True,
    help="Centre-of-mass energy in GeV: 8000, 13000 or 13600.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Random seed.")
@click.option(
    "--out",
    "-o",
    "out",
    type=click.Path(file_okay=False),
    default="generated",
    show_default=True,
    help="Output folder (ROOT files and fileset JSON).",
)
@click.option(
    "--workers",
    "-j",
    type=int,
    default=1,
    show_default=True,
    help="Workers: the sample is cut into at least this many files, run in parallel by "
    "--executor futures or dask.",
)
@click.option(
    "--executor",
    type=click.Choice(EXECUTORS),
    default=DEFAULT.executor,
    show_default=True,
    help="iterative: the files one after the other here; futures: a process pool of "
    "--workers here; dask: a LocalCluster of --workers processes, or the cluster at "
    "--scheduler.",
)
@click.option("--scheduler", help="dask scheduler address (with --executor dask).")
@click.option(
    "--resume",
    is_flag=True,
    help="Keep the files an identical earlier run finished; generate only the rest.",
)
@click.option("--pthat-min", type=float, default=None, help="Minimum p̂T in GeV (qcd, wjets).")
@click.option("--pthat-max", type=float, default=None, help="Maximum p̂T in GeV.")
@click.option(
    "--pfcands/--no-pfcands",
    default=False,
    show_default=True,
    help="Also write the smeared particle-flow candidates (PFCands).",
)
@click.option(
    "--pythia",
    "pythia_extra",
    multiple=True,
    metavar="SETTING",
    help="Extra Pythia setting, e.g. '24:onPosIfAny = 11 13' (repeatable).",
)
@click.option(
    "--resim",
    type=int,
    default=None,
    metavar="K",
    help="Re-simulation (RS3L): shower, hadronise and simulate every hard event K >= 2 "
    "times (branches resim_group, resim_copy).",
)
@click.option(
    "--resim-variations",
    type=click.Path(dir_okay=False),
    default=None,
    help="YAML of per-copy Pythia settings for --resim (copies: [{setting: value}, ...]).",
)
@click.option(
    "--validate",
    is_flag=True,
    help="Generate the validation samples and write a plot report into --out.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def generate_cmd(
    process: str | None,
    n_events: int,
    sqrts: int,
    seed: int,
    out: str,
    workers: int,
    executor: str,
    scheduler: str | None,
    resume: bool,
    pthat_min: float | None,
    pthat_max: float | None,
    pfcands: bool,
    pythia_extra: tuple[str, ...],
    resim: int | None,
    resim_variations: str | None,
    validate: bool,
    quiet: bool,
) -> None:
    """Generate events with Pythia 8 + FastJet + a parametric CMS-like detector.

    Writes NanoAOD-format ROOT files and a coffea fileset JSON into --out, e.g.

    \b
        jetfm generate --process ttbar --events 10000 --out gen -j 2 --executor futures
        jetfm generate -p tth -n 200000 -j 64 --executor dask --scheduler tcp://host:8786
        jetfm generate -p ttbar -n 5000 --resim 4 --resim-variations shower.yaml

    With --validate, generates ttbar, wjets, zjets (13 TeV) and zjets (8 TeV) samples of
    --events each, plus tth, hbb and vz_bb samples of a quarter of that, and writes plots
    plus summary.md/summary.json (Z peak, top mass, W mT edge, jet multiplicities, truth
    b b-bar masses of H and Z, 8 TeV dimuon spectrum against real 2012 CMS data).
    """
    from rich.console import Console
    from rich.table import Table

    try:
        if validate:
            from jetfm_coffea.generate.validate import run_validation, validation_plan

            total = sum(n for *_, n in validation_plan(n_events))
            progress, task = _progress(total, "validation samples")
            with progress:
                progress.disable = quiet
                summary = run_validation(
                    out, n_events=n_events, seed=seed,
                    execution=Execution(executor, workers=workers, scheduler=scheduler),
                    progress=lambda k: progress.advance(task, k),
                )  # fmt: skip
            table = Table(title="jetfm generate --validate")
            for col in ("check", "value", "pass"):
                table.add_column(col)
            for name, check in summary["checks"].items():
                value = check["value"]
                shown = (
                    ", ".join(f"{k}={v:.2f}" for k, v in value.items())
                    if isinstance(value, dict)
                    else f"{value:.2f}"
                )
                table.add_row(name, shown, "yes" if check["pass"] else "NO")
            Console(quiet=quiet).print(table)
            click.echo(str(Path(out) / "summary.md"))
            if not summary["all_pass"]:
                raise click.ClickException("some validation checks failed; see summary.md")
            return
        if process is None:
            raise click.UsageError("--process is required (unless --validate is given)")
        from jetfm_coffea.generate.resim import validate_resim
        from jetfm_coffea.generate.run import generate, validate_request

        if resim is not None:
            validate_resim(resim, resim_variations, seed)
        elif resim_variations is not None:
            raise click.UsageError("--resim-variations needs --resim K")
        validate_request(
            process, n_events, sqrts, seed, out, workers, pthat_min, pthat_max, pythia_extra
        )
        execution = Execution(executor, workers=workers, scheduler=scheduler)
        total = n_events * (resim or 1)
        progress, task = _progress(total, f"{process} @ {sqrts / 1000:g} TeV")
        progress.disable = quiet
        with progress:
            result = generate(
                process, n_events, sqrts=sqrts, seed=seed, out=out, execution=execution,
                pthat_min=pthat_min, pthat_max=pthat_max, pfcands=pfcands,
                pythia_extra=pythia_extra, progress=lambda k: progress.advance(task, k),
                resume=resume, resim=resim, resim_variations=resim_variations,
            )  # fmt: skip
            progress.update(task, completed=total)
    except JetFMError as err:
        raise click.ClickException(str(err)) from err
    table = Table(title=f"jetfm generate: {result.dataset}")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_row("events", f"{result.n_events}")
    table.add_row("cross-section", f"{result.xsec_pb:.4g} ± {result.xsec_err_pb:.2g} pb")
    table.add_row("class label", f"{result.label}")
    table.add_row("time", f"{result.wall_time_s:.1f} s ({result.events_per_second:.1f} ev/s)")
    table.add_row("files", f"{len(result.files)} in {Path(out)}")
    table.add_row("fileset", str(result.fileset_path))
    Console(quiet=quiet).print(table)
