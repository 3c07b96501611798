"""Released pretrained encoders: pretraining run directories shipped with the package.

Each released encoder is a pretraining run directory under
``jetfm_coffea/_data/pretrained/<name>/`` (weights, configs, ``run.json``,
``MODEL_CARD.md``, the training curves ``metrics.jsonl`` and the pool's event keys
``pool_events.npz``) plus its release card ``release.json``: name, size, objectives,
steps, batch, date, the pool it was pretrained on (processes, events, real events and
their luminosity mask), the code version and the SHA-256 of every file of the
directory.  ``builtin:<name>`` names one wherever a run directory is taken
(``--pretrained builtin:tiny-ssl``); :func:`released_path` checks every file against
the card before anything is read, so a released encoder loads with the same
verification as any run directory plus its card's.

Writing one: :func:`release` copies a finished pretraining run into the package data and
writes its card (``benchmarks/release_encoder.py``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from jetfm_coffea.atomic import atomic_write_text
from jetfm_coffea.digest import file_sha256
from jetfm_coffea.errors import ConfigError, ModelFileError
from jetfm_coffea.model import rundir

__all__ = [
    "BUILTIN_PREFIX",
    "RELEASED_FILES",
    "RELEASE_CARD",
    "release",
    "released",
    "released_path",
    "released_root",
    "resolve_run",
]

#: Prefix naming a released encoder where a run directory is expected.
BUILTIN_PREFIX = "builtin:"
#: The release card of a released encoder (in its folder).
RELEASE_CARD = "release.json"
#: The files of a run directory a release ships (``pool_events.npz``: the event keys of
#: its pretraining pool, so that fine-tuning refuses to test on them).
RELEASED_FILES: tuple[str, ...] = (
    rundir.WEIGHTS,
    rundir.MODEL_CONFIG,
    rundir.TOKEN_CONFIG,
    rundir.RUN_INFO,
    rundir.MODEL_CARD,
    rundir.RUN_CONFIG,
    rundir.AUGMENT_CONFIG,
    rundir.METRICS,
    rundir.POOL_EVENTS,
)


def released_root() -> Path:
    """The folder of the released encoders (package data)."""
    return Path(__file__).resolve().parents[1] / "_data" / "pretrained"


def released() -> dict[str, dict[str, Any]]:
    """Every released encoder's card, by name (sorted)."""
    root = released_root()
    cards = sorted(root.glob(f"*/{RELEASE_CARD}")) if root.is_dir() else []
    return {p.parent.name: json.loads(p.read_text()) for p in cards}


def released_path(name: str) -> Path:
    """The run directory of the released encoder ``name``, every file checked against
    its card (:class:`ConfigError` listing the names for an unknown one,
    :class:`ModelFileError` naming a file that is missing or whose hash differs)."""
    name = name.removeprefix(BUILTIN_PREFIX)
    known = released()
    if name not in known:
        raise ConfigError(
            f"no released encoder {name!r}; released: {', '.join(known) or 'none'} "
            "(`jetfm pretrained list`)"
        )
    folder = released_root() / name
    for rel, want in known[name]["files"].items():
        path = folder / rel
        if not path.is_file():
            raise ModelFileError(str(path), f"missing; its release card {RELEASE_CARD} lists it")
        got = file_sha256(path)
        if got != want:
            raise ModelFileError(
                str(path),
                f"SHA-256 {got[:16]}... differs from {want[:16]}... in its release card "
                f"{folder / RELEASE_CARD}; reinstall the package",
            )
    return folder


def resolve_run(spec: str | Path) -> Path:
    """``builtin:<name>`` -> the released encoder's checked folder; anything else a path."""
    text = str(spec)
    if text.startswith(BUILTIN_PREFIX):
        return released_path(text)
    return Path(spec)


def release(run: str | Path, name: str, card: dict[str, Any], root: Path | None = None) -> Path:
    """Copy the pretraining run ``run`` into the package data as ``name`` with its release
    ``card`` (name, size, objectives, steps, pool, ... ; the files' SHA-256 are added)."""
    src = Path(run)
    missing = [f for f in RELEASED_FILES if not (src / f).is_file()]
    if missing:
        raise ConfigError(f"{src}: not a finished pretraining run (missing {missing})")
    if not name or "/" in name or name.startswith("."):
        raise ConfigError(f"invalid release name {name!r}")
    dest = (root or released_root()) / name
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for f in RELEASED_FILES:
        shutil.copy2(src / f, dest / f)
    files = {f: file_sha256(dest / f) for f in RELEASED_FILES}
    text = json.dumps({**card, "name": name, "files": files}, indent=1, sort_keys=True)
    atomic_write_text(dest / RELEASE_CARD, text + "\n")
    return dest
