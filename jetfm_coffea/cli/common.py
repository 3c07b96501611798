"""Options and helpers shared by the ``jetfm`` subcommands."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from typing import Any

import click
from rich.console import Console

from jetfm_coffea.cluster import EXECUTORS, Execution
from jetfm_coffea.errors import JetFMError

__all__ = [
    "RUN_DIR",
    "RunDir",
    "console",
    "execution_options",
    "fail_cleanly",
    "finite_float",
    "lumi_options",
    "report_bad_files",
]

console = Console(stderr=False)


class RunDir(click.ParamType):
    """A run directory, or ``builtin:NAME``: a released encoder (checked when loaded)."""

    name = "RUN_DIR|builtin:NAME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if text.startswith("builtin:"):
            from jetfm_coffea.model.released import released

            names = released()
            if text.removeprefix("builtin:") not in names:
                self.fail(
                    f"no released encoder {text.removeprefix('builtin:')!r}; released: "
                    f"{', '.join(names) or 'none'} (jetfm pretrained list)", param, ctx,
                )  # fmt: skip
            return text
        return click.Path(exists=True, file_okay=False).convert(value, param, ctx)


#: The parameter type of ``--pretrained`` and of run-directory arguments.
RUN_DIR = RunDir()


#: The one default execution (every command and job): coffea's iterative executor.
DEFAULT = Execution()


def execution_options(
    func: Callable | None = None,
    *,
    skip_bad_files: bool = True,
) -> Any:
    """The execution options of every command that runs coffea.

    ``--executor iterative|futures|dask`` (coffea Runner, virtual mode), ``--dask-mode``
    (``apply_to_fileset`` with dask-awkward), ``--scheduler``, ``--workers``,
    ``--chunksize`` and (with ``skip_bad_files``) ``--skip-bad-files``. The command
    receives them as one ``execution``
    (:class:`~jetfm_coffea.cluster.Execution`, the defaults its own) and
    ``skip_bad_files``. Use bare (``@execution_options``) or called.
    """

    def decorate(command: Callable) -> Callable:
        @functools.wraps(command)
        def with_execution(*args: Any, **kwargs: Any) -> Any:
            names = ("executor", "dask_mode", "workers", "scheduler", "chunksize")
            kwargs["execution"] = Execution(**{n: kwargs.pop(n) for n in names})
            return command(*args, **kwargs)

        options = [
            click.option(
                "--executor",
                default=DEFAULT.executor,
                show_default=True,
                type=click.Choice(EXECUTORS),
                help="coffea Runner executor (virtual mode)",
            ),
            click.option(
                "--dask-mode",
                "dask_mode",
                is_flag=True,
                help="run with coffea's apply_to_fileset and dask-awkward instead of the Runner",
            ),
            click.option(
                "--scheduler",
                default=None,
                help="address of an existing dask scheduler (default: a LocalCluster for the run)",
            ),
            click.option(
                "--workers",
                type=click.IntRange(min=1),
                default=DEFAULT.workers,
                show_default=True,
                help="local worker processes",
            ),
            click.option(
                "--chunksize",
                type=click.IntRange(min=1),
                default=DEFAULT.chunksize,
                show_default=True,
                help="events per coffea chunk",
            ),
        ]
        if skip_bad_files:
            options.append(
                click.option(
                    "--skip-bad-files/--no-skip-bad-files",
                    default=False,
                    show_default=True,
                    help="skip unreadable files (reported) instead of stopping",
                )
            )
        wrapped: Callable = with_execution
        for option in reversed(options):
            wrapped = option(wrapped)
        return wrapped

    return decorate(func) if func is not None else decorate


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

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except JetFMError as err:
            raise click.ClickException(f"{type(err).__name__}: {err}") from err

    return wrapper


def finite_float(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """Click callback: refuse ``nan`` and ``inf`` (a cut on NaN selects nothing, silently)."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number", ctx, param)
    return value


def report_bad_files(bad_files: Iterable[Any]) -> None:
    """Every file a run skipped (``--skip-bad-files``), with its reason, on stderr."""
    for bad in bad_files:
        click.echo(f"skipped {bad.path} ({bad.dataset}): {bad.reason}", err=True)
