"""``jetfm demo``: the main job, end to end on built-in data."""

from __future__ import annotations

import click

from jetfm_coffea.cli.common import console, fail_cleanly

__all__ = ["demo_cmd"]


@click.command("demo")
@click.option("--workdir", default="jetfm-demo", show_default=True, type=click.Path())
@click.option("--events", default=3000, show_default=True, help="events per labelled sample")
@click.option("--steps", default=None, type=int, help="pretraining steps (default: the plan's)")
@click.option("--workers", default=2, show_default=True, help="local worker processes")
@click.option("--scheduler", default=None, help="existing dask scheduler address")
@click.option(
    "--views",
    type=click.Choice(["fresh", "stored"]),
    default="fresh",
    show_default=True,
    help="pretrain on fresh physics views every step, or on 2 views stored in the shards",
)
@fail_cleanly
def demo_cmd(workdir, events, steps, workers, scheduler, views):
    """Generate -> shards -> pretrain -> fine-tune -> score -> report (resumable)."""
    from jetfm_coffea.pipelines.demo import run_demo
    from jetfm_coffea.pipelines.demo_plan import DemoPlan

    overrides = {"events": events, "workers": workers, "views": views}
    if steps is not None:
        overrides["pretrain_steps"] = steps
    run_demo(workdir, DemoPlan(**overrides), scheduler=scheduler, console=console)
