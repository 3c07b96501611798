"""``jetfm pretrain`` and ``jetfm plot-training``."""

from __future__ import annotations

import os
from pathlib import Path

import click

from jetfm_coffea.cli.common import lumi_options

__all__ = ["plot_training_cmd", "pretrain_cmd"]


@click.command("pretrain")
@click.option("--shards", type=click.Path(), help="Zarr shard store to train on.")
@click.option(
    "--events",
    type=click.Path(exists=True, dir_okay=False),
    help="NanoAOD ROOT file or fileset JSON (tokens are built on the fly).",
)
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run directory.")
@click.option("--resume", is_flag=True, help="Continue from the newest checkpoint in --out.")
@click.option("--steps", type=int, help="Override train.steps.")
@click.option("--size", type=click.Choice(["tiny", "small", "base"]), help="Model size preset.")
@click.option("--batch-size", type=int, help="Override train.batch_size (events per rank).")
@click.option("--max-events", type=int, help="With --events: use at most this many events.")
@click.option("--device", help="auto (default), cpu, cuda.")
@click.option(
    "--augment",
    "augment_path",
    type=click.Path(exists=True, dir_okay=False),
    help="Augmentation pipeline YAML of the fresh views (the build-shards 'augment:' "
    "format; a build config with an 'augment:' section works too). Default: the standard "
    "pipeline.",
)
@click.option(
    "--views",
    type=click.Choice(["fresh", "stored", "resim", "resim+physics"]),
    help="fresh (default): new physics views every step, made on the training device; "
    "stored: the views in the shards; resim: the re-simulated siblings of each hard event "
    "(a store of 'jetfm generate --resim K' samples); resim+physics: fresh physics views "
    "of the siblings.",
)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@lumi_options
def pretrain_cmd(
    shards: str | None,
    events: str | None,
    config_path: str | None,
    out: str,
    resume: bool,
    steps: int | None,
    size: str | None,
    batch_size: int | None,
    max_events: int | None,
    device: str | None,
    augment_path: str | None,
    views: str | None,
    no_progress: bool,
    lumi_mask: str | None,
    no_lumi_mask: bool,
) -> None:
    """Self-supervised pretraining of the event encoder (DDP under torchrun)."""
    from jetfm_coffea.errors import JetFMError
    from jetfm_coffea.model.rundir import RUN_CONFIG
    from jetfm_coffea.tokens.config import load_token_config
    from jetfm_coffea.train.config import load_pretrain_config
    from jetfm_coffea.train.data import open_data
    from jetfm_coffea.train.loop import pretrain as run_pretrain

    try:
        source = config_path
        if resume and config_path is None and (Path(out) / RUN_CONFIG).is_file():
            source = str(Path(out) / RUN_CONFIG)
        cfg = load_pretrain_config(
            source,
            **{
                "augment": _read_augment(augment_path) if augment_path else None,
                "views": views,
                "train.steps": steps,
                "model.size": size,
                "train.batch_size": batch_size,
                "train.device": device,
                "train.progress": False if no_progress else None,
            },
        )
        tokens = load_token_config(cfg.tokens) if cfg.tokens is not None else None

        def data(rank: int, world_size: int):
            return open_data(
                shards=shards,
                events=events,
                token_config=tokens,
                max_events=max_events,
                batch_size=cfg.train.batch_size,
                seed=cfg.train.seed,
                rank=rank,
                world_size=world_size,
                lumi_mask=lumi_mask,
                no_lumi_mask=no_lumi_mask,
                views=cfg.views,
            )

        result = run_pretrain(cfg, data, out, resume=resume, keep_model=False)
    except JetFMError as err:
        raise click.ClickException(str(err)) from err
    if int(os.environ.get("RANK", "0")) == 0:
        last = result.last_metrics
        click.echo(
            f"{result.steps} steps done, loss {last.get('loss', float('nan')):.4f}; "
            f"run directory {result.run_dir}"
        )


def _read_augment(path: str) -> dict:
    """The pipeline of an augmentation YAML (or of the 'augment:' section of a build config)."""
    from jetfm_coffea.config_base import config_data

    data = config_data(path, what="augmentation config")
    if "augment" in data and "steps" not in data:
        return config_data(data["augment"], what=f"augmentation config {path}")
    return data


@click.command("plot-training")
@click.argument("run", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "png", type=click.Path(dir_okay=False), help="PNG (default RUN/loss.png).")
def plot_training_cmd(run: str, png: str | None) -> None:
    """Loss curves (and collapse monitors) of a pretraining run as a PNG."""
    from jetfm_coffea.errors import JetFMError
    from jetfm_coffea.train.plot import plot_run

    try:
        path = plot_run(run, png)
    except JetFMError as err:
        raise click.ClickException(str(err)) from err
    click.echo(str(path))
