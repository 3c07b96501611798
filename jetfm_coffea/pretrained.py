"""Released pretrained encoders, ready to fine-tune (``builtin:<name>`` on the command line).

::

    import jetfm_coffea.pretrained as pretrained

    pretrained.available()           # {name: release card}
    encoder = pretrained.load("tiny-ssl")   # a PretrainedEncoder, files checked
    # jetfm finetune --pretrained builtin:tiny-ssl --task tth_vs_ttbar ...

Each released encoder is a pretraining run directory shipped with the package, with its
model card, training curves and the event keys of its pretraining pool, and a release
card (``release.json``: size, objectives, steps, pool, date, code version and the
SHA-256 of every file, checked before anything is read; see
:mod:`jetfm_coffea.model.released`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jetfm_coffea.finetune.trainer import PretrainedEncoder, load_pretrained
from jetfm_coffea.model.released import BUILTIN_PREFIX, released, released_path

__all__ = ["available", "describe", "load", "path"]


def available() -> dict[str, dict[str, Any]]:
    """Every released encoder's release card, by name."""
    return released()


def path(name: str) -> Path:
    """The checked run directory of the released encoder ``name``."""
    return released_path(name)


def load(name: str) -> PretrainedEncoder:
    """The released encoder ``name`` (its files checked against its release card, its
    weights against its run's recorded hash), ready for fine-tuning."""
    return load_pretrained(f"{BUILTIN_PREFIX}{name.removeprefix(BUILTIN_PREFIX)}")


def describe(card: dict[str, Any]) -> str:
    """One line of a release card: name, size, pool, objectives, steps, date."""
    pool = card.get("pool", {})
    real = pool.get("real_events", 0)
    return (
        f"{card['name']}: {card['size']} ({card['parameters']:,} parameters), "
        f"objectives {'+'.join(card['objectives'])}, {card['steps']:,} steps x "
        f"{card['batch_size']} events, pool {pool.get('events', 0):,} events "
        f"({real:,} real, {len(pool.get('processes', []))} generated processes), "
        f"{card['date']}"
    )
