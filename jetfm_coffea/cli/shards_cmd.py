"""``jetfm build-shards`` and ``jetfm shards info|verify|migrate``."""

from __future__ import annotations

import contextlib
import json
import sys

import click

from jetfm_coffea.cli.common import execution_options, lumi_options
from jetfm_coffea.cluster import Execution
from jetfm_coffea.errors import EXIT_OK, EXIT_PARTIAL

__all__ = ["build_shards_cmd", "shards_group"]


def _console():
    from rich.console import Console

    return Console(stderr=False)


@click.command("build-shards")
@click.argument("fileset", type=click.Path(dir_okay=False))
@click.option(
    "--config",
    "config",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="YAML with 'tokens:' (TokenConfig) and 'augment:' sections (default: default tokens).",
)
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Store.")
@execution_options(skip_bad_files=False)  # bad files: skipped
@click.option(
    "--skip-bad-files/--no-skip-bad-files",
    default=False,
    show_default=True,
    help="Unusable input files are always skipped and listed (stderr, --json); without "
    f"this flag a build that skipped any exits with status {EXIT_PARTIAL}, with it 0.",
)
@click.option("--overwrite", is_flag=True, help="Rewrite complete shards instead of skipping.")
@click.option(
    "--blind",
    "blind",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="YAML of signal regions kept out of the shards (default: the config's 'blinding:').",
)
@lumi_options
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def build_shards_cmd(
    fileset: str,
    config: str | None,
    out: str,
    execution: Execution,
    skip_bad_files: bool,
    overwrite: bool,
    blind: str | None,
    lumi_mask: str | None,
    no_lumi_mask: bool,
    as_json: bool,
) -> None:
    """Build a pretraining shard store from FILESET (coffea JSON fileset or a ROOT file).

    Collision data keep only their certified luminosity sections; events in the blinded
    signal regions never reach a shard. Exit status: 0 all inputs built (or skipping
    allowed by --skip-bad-files), 1 nothing could be built (no store is made) or an
    error, 3 some files skipped (each listed on stderr with its reason).
    """
    from rich.table import Table

    from jetfm_coffea.errors import JetFMError
    from jetfm_coffea.jobs.shards import build_store, load_build_config
    from jetfm_coffea.selection.blinding import load_blinding

    console = _console()
    try:
        token_config, pipeline = load_build_config(config)
        blinding = load_blinding(blind or config, token_config)

        def on_plan(chunks, todo):
            if not as_json:
                console.print(
                    f"[bold]{len(chunks)}[/] chunks planned, [bold]{len(todo)}[/] to write "
                    f"({len(chunks) - len(todo)} already complete) -> {out}"
                )

        # coffea draws its progress bar on stdout even with status=False: keep --json clean
        redirect = contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
        with redirect:
            summary = build_store(
                fileset,
                out,
                token_config=token_config,
                augmentation=pipeline,
                execution=execution,
                if_exists="overwrite" if overwrite else "skip",
                status=not as_json,
                on_plan=on_plan,
                lumi_mask=lumi_mask,
                no_lumi_mask=no_lumi_mask,
                blinding=blinding,
            )
    except JetFMError as err:
        raise click.ClickException(str(err)) from err
    status = EXIT_PARTIAL if summary.skipped_files and not skip_bad_files else EXIT_OK
    if as_json:
        click.echo(json.dumps({**summary.as_dict(), "exit_status": status}, indent=1))
        _report_skipped(summary.skipped_files, status)
        sys.exit(status)
    table = Table(title=f"jetfm build-shards: {summary.store}", show_header=False)
    table.add_row("files", str(summary.files))
    table.add_row("chunks (shards)", str(summary.chunks))
    table.add_row("events in", f"{summary.events_in:,}")
    table.add_row("events written", f"{summary.events_written:,}")
    table.add_row("events already present", f"{summary.events_existing:,}")
    for view, n in summary.views_written.items():
        table.add_row(f"events written, view {view}", f"{n:,}")
    table.add_row(
        "shards written / present", f"{summary.shards_written} / {summary.shards_existing}"
    )
    table.add_row("objects dropped (non-finite or pT < 0)", f"{summary.objects_dropped:,}")
    table.add_row(
        "manifest", f"{summary.manifest_shards} shards, {summary.manifest_events:,} events"
    )
    for name, sel in summary.selection.items():
        cert, blinded = sel["certified"], sel["blinding"]
        if cert:
            table.add_row(
                f"{name}: certified lumi",
                f"{cert['events_kept']:,} kept, {cert['events_dropped']:,} dropped "
                f"({cert['lumisections_kept']:,} / {cert['lumisections_dropped']:,} lumi sections)",
            )
        if sel["lumi_mask_disabled"]:
            table.add_row(f"{name}: certified lumi", "NOT applied (--no-lumi-mask)")
        if blinded:
            for region, n in blinded["regions"].items():
                table.add_row(f"{name}: blinded {region}", f"{n:,} events removed")
    table.add_row("time", f"{summary.elapsed_s:.1f} s")
    console.print(table)
    _report_skipped(summary.skipped_files, status)
    sys.exit(status)


def _report_skipped(skipped: list[tuple[str, str]], status: int) -> None:
    """Every skipped file with its reason, on stderr (stdout stays the summary)."""
    for path, reason in skipped:
        click.echo(f"skipped {path}: {reason}", err=True)
    if skipped:
        allowed = " (allowed by --skip-bad-files)" if status == EXIT_OK else ""
        click.echo(f"{len(skipped)} input file(s) skipped; exit status {status}{allowed}", err=True)


@click.group("shards")
def shards_group() -> None:
    """Inspect and verify pretraining shard stores."""


@shards_group.command("info")
@click.argument("store", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True)
def shards_info_cmd(store: str, as_json: bool) -> None:
    """Summarise STORE: schema, token layout, views, datasets, events, size on disk."""
    from collections import Counter

    from rich.table import Table

    from jetfm_coffea.errors import JetFMError
    from jetfm_coffea.selection.datasheet import data_sheet, format_data_sheet
    from jetfm_coffea.shards.store import open_store

    try:
        st = open_store(store)
    except JetFMError as err:
        raise click.ClickException(str(err)) from err
    size = st.disk_bytes()
    per_dataset = Counter()
    for r in st.records:
        per_dataset[r.dataset] += r.n_events
    doc = {
        "store": str(st.root),
        "schema_version": st.description["schema_version"],
        "n_shards": len(st),
        "n_events": st.n_events,
        "n_tokens": st.n_tokens,
        "n_features": st.n_features,
        "feature_names": st.feature_names,
        "n_views": st.n_views,
        "token_config_hash": st.description["token_config_hash"],
        "augmentation": {k: v for k, v in st.augmentation.items() if k != "pipeline"},
        "datasets": dict(per_dataset),
        "bytes_on_disk": size,  # the shards: arrays and their metadata
        "bytes_per_event": size / st.n_events if st.n_events else None,
        "data_sheet": data_sheet(st.manifest, st.description),
    }
    if as_json:
        click.echo(json.dumps(doc, indent=1))
        return
    table = Table(title=f"shard store {st.root}", show_header=False)
    for key, value in doc.items():
        if key == "datasets":
            for name, n in value.items():
                table.add_row(f"dataset {name}", f"{n:,} events")
        elif key == "bytes_per_event" and value is not None:
            table.add_row(key, f"{value:.1f}")
        elif key == "data_sheet":
            continue
        else:
            table.add_row(key, str(value))
    console = _console()
    console.print(table)
    from rich.markup import escape

    console.print("[bold]data sheet[/]")
    for line in format_data_sheet(doc["data_sheet"]):
        console.print(escape(line), soft_wrap=True)


@shards_group.command("verify")
@click.argument("store", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--rebuild-manifest",
    is_flag=True,
    help="Write a new manifest from the shards that pass (the old one is kept as a backup).",
)
@click.option("--json", "as_json", is_flag=True)
def shards_verify_cmd(store: str, rebuild_manifest: bool, as_json: bool) -> None:
    """Check checksums, counts, schema and manifest of STORE; list every problem.

    Exit status 1 if any error is found. Nothing is ever deleted.
    """
    from jetfm_coffea.shards.verification import verify

    report = verify(store, rebuild_manifest=rebuild_manifest)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "store": report.store,
                    "ok": report.ok,
                    "n_shards_ok": report.n_shards,
                    "n_events_ok": report.n_events,
                    "manifest_rebuilt": report.manifest_rebuilt,
                    "problems": [p.__dict__ for p in report.problems],
                },
                indent=1,
            )
        )
    else:
        from rich.markup import escape

        console = _console()
        for p in report.problems:
            color = "red" if p.severity == "error" else "yellow"
            console.print(
                f"[{color}]{p.severity}[/] " + escape(f"[{p.kind}] {p.shard}: {p.message}"),
                soft_wrap=True,
            )
        state = "[green]OK[/]" if report.ok else f"[red]{len(report.errors)} error(s)[/]"
        console.print(
            f"{state}: {report.n_shards} good shards, {report.n_events:,} events"
            + (" (manifest rebuilt)" if report.manifest_rebuilt else "")
        )
    sys.exit(0 if report.ok else 1)


@shards_group.command("migrate")
@click.argument("store", type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="New 2.0.0 store.")
@click.option("--json", "as_json", is_flag=True)
def shards_migrate_cmd(store: str, out: str, as_json: bool) -> None:
    """Convert the schema 1.0.0 STORE into a 2.0.0 store at --out (same events, verified).

    The old store is read (every shard's sha256 checked) and never changed.
    """
    from jetfm_coffea.errors import JetFMError
    from jetfm_coffea.shards.migrate import migrate_store

    try:
        summary = migrate_store(store, out)
    except JetFMError as err:
        raise click.ClickException(str(err)) from err
    if as_json:
        click.echo(json.dumps(summary.as_dict(), indent=1))
        return
    per_event = lambda n: n / max(summary.n_events, 1)  # noqa: E731
    click.echo(
        f"migrated {summary.n_shards} shards, {summary.n_events:,} events, "
        f"{summary.n_views} stored views: {per_event(summary.bytes_before):.0f} -> "
        f"{per_event(summary.bytes_after):.0f} bytes/event; verified: {summary.out}"
    )
