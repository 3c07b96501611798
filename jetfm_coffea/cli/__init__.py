"""The ``jetfm`` command line: one click group, subcommands loaded lazily.

Each subcommand lives in its own module; ``COMMANDS`` maps the command name to
``"module:attribute"`` so that ``jetfm --help`` does not import torch or coffea. For the
same reason a command imports its implementation (jobs, training, plotting) inside its
function: those function-local imports defer heavy dependencies, none dodges an import
cycle (``tests/test_architecture.py`` refuses cycles, function-local imports included).
"""

from __future__ import annotations

import importlib

import click

from jetfm_coffea import __version__

__all__ = ["COMMANDS", "main"]

COMMANDS: dict[str, str] = {
    "augment-check": "jetfm_coffea.cli.augment_cmd:augment_check_cmd",
    "demo": "jetfm_coffea.cli.demo_cmd:demo_cmd",
    "evaluate": "jetfm_coffea.cli.finetune_cmd:evaluate_cmd",
    "finetune": "jetfm_coffea.cli.finetune_cmd:finetune_cmd",
    "generate": "jetfm_coffea.cli.generate_cmd:generate_cmd",
    "inspect": "jetfm_coffea.cli.inspect_cmd:inspect_cmd",
    "label-efficiency": "jetfm_coffea.cli.finetune_cmd:label_efficiency_cmd",
    "opendata": "jetfm_coffea.cli.opendata_cmd:opendata_group",
    "pretrain": "jetfm_coffea.cli.pretrain_cmd:pretrain_cmd",
    "pretrained": "jetfm_coffea.cli.pretrained_cmd:pretrained_group",
    "plot-training": "jetfm_coffea.cli.pretrain_cmd:plot_training_cmd",
    "build-shards": "jetfm_coffea.cli.shards_cmd:build_shards_cmd",
    "shards": "jetfm_coffea.cli.shards_cmd:shards_group",
    "score": "jetfm_coffea.cli.score_cmd:score_cmd",
    "export": "jetfm_coffea.cli.score_cmd:export_cmd",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported only when used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="jetfm")
@click.option(
    "--plugin",
    "plugins",
    multiple=True,
    metavar="MODULE",
    envvar="JETFM_PLUGINS",
    help="Import MODULE before the command: it registers pretraining objectives, "
    "augmentations, ... (repeatable; JETFM_PLUGINS: space-separated modules).",
)
def main(plugins: tuple[str, ...]) -> None:
    """jetfm-coffea: NanoAOD -> event tokens -> shards -> foundation model -> coffea columns."""
    for name in plugins:
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise click.ClickException(f"--plugin {name}: cannot import it: {err}") from err
