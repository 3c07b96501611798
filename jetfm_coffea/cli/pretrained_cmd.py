"""``jetfm pretrained``: the released pretrained encoders shipped with the package."""

from __future__ import annotations

import click

__all__ = ["pretrained_group"]


@click.group("pretrained")
def pretrained_group() -> None:
    """Released pretrained encoders (use one with --pretrained builtin:NAME)."""


@pretrained_group.command("list")
def pretrained_list_cmd() -> None:
    """One line per released encoder: size, objectives, steps, pool, date."""
    from jetfm_coffea.pretrained import available, describe

    cards = available()
    if not cards:
        click.echo("no released encoders in this installation")
    for card in cards.values():
        click.echo(describe(card))
