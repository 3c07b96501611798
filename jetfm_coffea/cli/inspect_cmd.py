"""``jetfm inspect``: events, tokens per event, per-collection counts and the cutflow."""

from __future__ import annotations

import click
from rich.table import Table

from jetfm_coffea.cli.common import (
    console,
    execution_options,
    fail_cleanly,
    lumi_options,
    report_bad_files,
)

__all__ = ["inspect_cmd"]


@click.command("inspect")
@click.argument("source", metavar="FILE_OR_FILESET")
@click.option("--config", type=click.Path(exists=True), help="token config YAML")
@execution_options
@lumi_options
@fail_cleanly
def inspect_cmd(
    source,
    config,
    execution,
    skip_bad_files,
    lumi_mask,
    no_lumi_mask,
):
    """Tokenize FILE_OR_FILESET (a NanoAOD file or a coffea JSON fileset) and summarise it."""
    from jetfm_coffea.jobs.inspect import run_inspection

    output, report = run_inspection(
        source,
        config,
        execution=execution,
        skip_bad_files=skip_bad_files,
        lumi_mask=lumi_mask,
        no_lumi_mask=no_lumi_mask,
    )
    console.print(
        f"[bold]mode[/]: {report.mode}   files: {report.files}   entries: {report.events}"
    )
    report_bad_files(report.bad_files)
    for dataset, result in output.items():
        cutflow = result["cutflow"]
        hist = result["multiplicity"]
        events = max(cutflow["events"], 1)
        table = Table(title=f"{dataset}: {cutflow['events']} events")
        table.add_column("collection")
        table.add_column("tokens", justify="right")
        table.add_column("per event", justify="right")
        table.add_column("events with ≥1", justify="right")
        for name in hist.axes["collection"]:
            counts = hist[{"collection": name}].values()
            with_any = counts[1:].sum()
            tokens = cutflow[f"tokens_{name}"]
            table.add_row(name, str(tokens), f"{tokens / events:.2f}", f"{with_any:.0f}")
        console.print(table)
        flow = Table(title="cutflow")
        flow.add_column("step")
        flow.add_column("count", justify="right")
        for step in ("events", "certified_lumi", "events_with_tokens", "tokens"):
            if step in cutflow:
                flow.add_row(step.replace("_", " "), str(cutflow[step]))
        flow.add_row("nonfinite dropped", str(cutflow["nonfinite_dropped"]))
        console.print(flow)
        console.print(f"tokens per event: mean {cutflow['tokens'] / events:.2f}")
    if not output:
        console.print("[red]no events were read[/]")
