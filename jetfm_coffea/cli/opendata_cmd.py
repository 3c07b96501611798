"""``jetfm opendata``: browse the CMS Open Data catalogue and write coffea filesets."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from jetfm_coffea.errors import JetFMError

__all__ = ["opendata_group"]


def _console(stderr: bool = False) -> Console:
    """A rich console; wide enough for dataset names when output is not a terminal."""
    console = Console(stderr=stderr)
    return console if console.is_terminal else Console(stderr=stderr, width=160)


def _domain_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Show domain errors (unknown names, missing cross-sections...) as clean CLI errors."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (JetFMError, ImportError) as err:
            raise click.ClickException(str(err)) from err

    return wrapper


def _events(n: int | None) -> str:
    return "?" if n is None else f"{n:,}"


@click.group("opendata")
def opendata_group() -> None:
    """CMS Open Data catalogue: list datasets, show one, write coffea filesets."""


@opendata_group.command("list")
@click.option("--year", type=int, default=None, help="Only datasets of this year.")
@click.option("--data/--mc", "is_data", default=None, help="Only collision data / simulation.")
@click.option("--grep", "contains", default=None, help="Only names containing this text.")
@click.option("--with-files", is_flag=True, help="Only datasets whose file URLs are listed.")
@click.option("--json", "as_json", is_flag=True, help="Print the names as a JSON list.")
@_domain_errors
def opendata_list_cmd(
    year: int | None, is_data: bool | None, contains: str | None, with_files: bool, as_json: bool
) -> None:
    """List the catalogue's datasets."""
    from jetfm_coffea.opendata import load_catalogue

    selected = load_catalogue().select(
        year=year, is_data=is_data, contains=contains, with_files=True if with_files else None
    )
    if as_json:
        click.echo(json.dumps([ds.name for ds in selected]))
        return
    table = Table(title=f"CMS Open Data catalogue ({len(selected)} datasets)")
    for col, justify in (
        ("name", "left"),
        ("year", "right"),
        ("√s TeV", "right"),
        ("kind", "left"),
        ("record", "right"),
        ("events", "right"),
        ("files", "right"),
        ("urls", "center"),
    ):
        table.add_column(col, justify=justify, no_wrap=col == "name")
    for ds in selected:
        table.add_row(
            ds.name,
            str(ds.year),
            f"{ds.sqrts_tev:g}",
            "data" if ds.is_data else "MC",
            ",".join(str(r) for r in ds.record_ids),
            _events(ds.nevents),
            str(ds.nfiles),
            "yes" if ds.has_files else "no",
        )
    _console().print(table)


@opendata_group.command("show")
@click.argument("name")
@click.option("--files", "show_files", is_flag=True, help="List every file URL.")
@_domain_errors
def opendata_show_cmd(name: str, show_files: bool) -> None:
    """Show one dataset (or a shipped golden JSON) in detail."""
    from jetfm_coffea.opendata import load_catalogue
    from jetfm_coffea.opendata.errors import UnknownDatasetError

    catalogue = load_catalogue()
    console = _console()
    if name in catalogue.lumimasks:
        mask = catalogue.lumimasks[name]
        table = Table(title=f"golden JSON {name}", show_header=False)
        for key in ("record_id", "year", "sqrts_tev", "bytes", "adler32", "sha256", "url"):
            table.add_row(key, str(getattr(mask, key)))
        table.add_row("path", str(mask.path))
        table.add_row("sources", ", ".join(mask.sources))
        console.print(table)
        return
    try:
        ds = catalogue.get(name)
    except UnknownDatasetError as err:
        raise UnknownDatasetError(name, [*catalogue.datasets, *catalogue.lumimasks]) from err
    table = Table(title=ds.name, show_header=False)
    rows: list[tuple[str, Any]] = [
        ("title", ds.title),
        ("record ids", ", ".join(str(r) for r in ds.record_ids)),
        ("doi", ds.doi),
        ("CMS dataset", "\n".join(ds.cms_datasets) or None),
        ("year / era", f"{ds.year}" + (f" {ds.era}" if ds.era else "")),
        ("√s", f"{ds.sqrts_tev:g} TeV"),
        ("kind", "collision data" if ds.is_data else "simulation"),
        ("format", ds.data_format),
        ("process", ds.process + (f" ({ds.variation})" if ds.variation else "")),
        ("events", _events(ds.nevents)),
        ("files", f"{ds.nfiles} ({'URLs listed' if ds.has_files else 'URLs not listed'})"),
        ("tree", ds.treename),
    ]
    if ds.is_data:
        rows.append(("golden JSON", ds.golden_json))
        rows.append(("certified at production", ds.certified_at_production))
    else:
        rows.append(("cross-section", None if ds.xsec_pb is None else f"{ds.xsec_pb:g} pb"))
        rows.append(("cross-section source", ds.xsec_source))
    rows.append(("sources", "\n".join(f"{t}: {catalogue.sources[t]}" for t in ds.sources)))
    rows.append(("notes", ds.notes))
    for key, value in rows:
        if value is not None:
            table.add_row(key, str(value))
    console.print(table)
    if show_files and ds.has_files:
        # plain lines: URLs are long and meant to be copied
        for f in ds.files:
            click.echo(" ".join([f.url, *f.mirrors, f"events={_events(f.nevents)}"]))


def _parse_xsec(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict:
    out = {}
    for item in values:
        name, sep, value = item.partition("=")
        try:
            out[name] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=PB, got {item!r}", ctx=ctx, param=param)
    return out


@opendata_group.command("fileset")
@click.argument("names", nargs=-1, required=True)
@click.option("--max-files", type=click.IntRange(min=1), default=None, help="Files per dataset.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the fileset here (default: print it as JSON).",
)
@click.option(
    "--protocol",
    type=click.Choice(["root", "https"]),
    default=None,
    help="Use root:// or https:// URLs (default: each file's primary URL).",
)
@click.option("--require-xsec", is_flag=True, help="Fail for simulation without cross-section.")
@click.option(
    "--xsec",
    multiple=True,
    callback=_parse_xsec,
    metavar="NAME=PB",
    help="Cross-section (pb) to use for a simulated dataset; repeatable.",
)
@click.option("--check", is_flag=True, help="Open every file; report and drop unreachable ones.")
@click.option("--strict", is_flag=True, help="With --check: fail if any file is unreachable.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="With --check: seconds per remote request.",
)
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    default=2,
    show_default=True,
    help="With --check: extra attempts on network errors.",
)
@_domain_errors
def opendata_fileset_cmd(
    names: tuple[str, ...],
    max_files: int | None,
    out: Path | None,
    protocol: str | None,
    require_xsec: bool,
    xsec: dict[str, float],
    check: bool,
    strict: bool,
    timeout: float,
    retries: int,
) -> None:
    """Write a coffea fileset for the datasets NAMES (with their metadata)."""
    from jetfm_coffea.opendata import ReadOptions, build_fileset, check_fileset, write_fileset

    fileset = build_fileset(
        names, max_files=max_files, protocol=protocol, require_xsec=require_xsec, xsec=xsec
    )
    err = _console(stderr=True)
    if check:

        def report(r: Any) -> None:
            status = "[green]ok[/]" if r.ok else "[red]unreachable[/]"
            detail = f"{_events(r.nevents)} events" if r.ok else r.error
            err.print(f"{status} {r.url}: {detail}", highlight=False, soft_wrap=True)

        fileset, reports = check_fileset(
            fileset,
            skip_bad=not strict,
            options=ReadOptions(timeout=timeout, retries=retries),
            on_report=report,
        )
        bad = [r for r in reports if not r.ok]
        if bad:
            err.print(f"[yellow]{len(bad)} of {len(reports)} files unreachable: skipped[/]")
    if out is None:
        click.echo(json.dumps(fileset, indent=2))
        return
    write_fileset(fileset, out)
    table = Table(title=f"fileset written to {out}")
    for col in ("dataset", "files", "events", "kind", "xsec / golden JSON"):
        table.add_column(col, no_wrap=col == "dataset")
    for name, entry in fileset.items():
        meta = entry["metadata"]
        extra = meta.get("golden_json") if meta["is_data"] else meta.get("xsec")
        table.add_row(
            name,
            str(len(entry["files"])),
            _events(meta["nevents"]),
            "data" if meta["is_data"] else "MC",
            "-" if extra is None else str(extra),
        )
    _console().print(table)
