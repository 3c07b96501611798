"""Options and helpers shared by the ``jetfm`` subcommands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from rich.console import Console

from jetfm_coffea.errors import JetFMError

__all__ = ["console", "execution_options", "fail_cleanly", "lumi_options"]

console = Console(stderr=False)


def execution_options(func: Callable) -> Callable:
    """``--executor``, ``--scheduler``, ``--workers``, ``--chunksize``, ``--skip-bad-files``."""
    options = [
        click.option(
            "--executor",
            type=click.Choice(["iterative", "futures", "dask", "dask-mode"]),
            default="iterative",
            show_default=True,
            help="coffea Runner executor (virtual mode), or 'dask-mode' for apply_to_fileset",
        ),
        click.option(
            "--scheduler",
            default=None,
            help="address of an existing dask scheduler (default: a LocalCluster for the run)",
        ),
        click.option("--workers", default=2, show_default=True, help="local worker processes"),
        click.option(
            "--chunksize", default=200_000, show_default=True, help="events per coffea chunk"
        ),
        click.option(
            "--skip-bad-files/--no-skip-bad-files",
            default=False,
            show_default=True,
            help="skip unreadable files (reported) instead of stopping",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def lumi_options(func: Callable) -> Callable:
    """``--lumi-mask FILE`` and ``--no-lumi-mask`` (see :mod:`jetfm_coffea.selection.lumi`)."""
    options = [
        click.option(
            "--lumi-mask",
            "lumi_mask",
            default=None,
            metavar="FILE",
            help="golden JSON (path, or a name `jetfm opendata show` lists) for every dataset "
            "that is not simulation; default: each dataset's 'golden_json' metadata",
        ),
        click.option(
            "--no-lumi-mask",
            "no_lumi_mask",
            is_flag=True,
            help="read collision data without a certified-luminosity mask (recorded)",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def fail_cleanly(func: Callable) -> Callable:
    """Turn domain errors into a one-line message and exit status 1."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except JetFMError as err:
            raise click.ClickException(f"{type(err).__name__}: {err}") from err

    return wrapper
