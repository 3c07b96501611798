"""Atomic checkpoints: weights as safetensors, the rest as plain tensors/dicts (weights_only).

A checkpoint of step N is ``checkpoints/step-N.safetensors`` (model weights) plus
``checkpoints/step-N.state.pt`` (optimizer, scheduler, per-rank RNG and loader
states, counters), each written atomically (:mod:`jetfm_coffea.atomic`);
``checkpoints/latest.json`` is replaced last and is the commit point, so a crash
during a write leaves the previous checkpoint valid.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file

from jetfm_coffea.atomic import atomic_path, atomic_write_text
from jetfm_coffea.errors import TrainingError
from jetfm_coffea.model.rundir import save_weights

__all__ = [
    "get_rng_state",
    "latest_checkpoint",
    "load_checkpoint",
    "save_checkpoint",
    "set_rng_state",
]

KEEP = 2  # checkpoints kept on disk


def get_rng_state() -> dict[str, Any]:
    """torch (CPU and CUDA), numpy and python RNG states as weights_only-loadable objects."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`get_rng_state`."""
    torch.set_rng_state(state["torch"])
    npst = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            npst["keys"].numpy().astype(np.uint32),
            npst["pos"],
            npst["has_gauss"],
            npst["cached_gaussian"],
        )
    )
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    run_dir: Path,
    step: int,
    weights: dict[str, torch.Tensor],
    state: dict[str, Any],
    metadata: dict[str, str],
) -> Path:
    """Write checkpoint ``step`` atomically; returns the path of its weights."""
    ckdir = Path(run_dir) / "checkpoints"
    ckdir.mkdir(parents=True, exist_ok=True)
    stem = f"step-{step:08d}"
    wpath = ckdir / f"{stem}.safetensors"
    spath = ckdir / f"{stem}.state.pt"
    save_weights(wpath, weights, metadata)
    with atomic_path(spath) as tmp:
        torch.save({**state, "step": step}, tmp)
    pointer = {"step": step, "weights": wpath.name, "state": spath.name}
    atomic_write_text(ckdir / "latest.json", json.dumps(pointer))
    old = sorted(ckdir.glob("step-*.safetensors"))[:-KEEP]
    for w in old:
        w.unlink(missing_ok=True)
        w.with_name(w.name.replace(".safetensors", ".state.pt")).unlink(missing_ok=True)
    return wpath


def latest_checkpoint(run_dir: Path) -> dict[str, Any] | None:
    """The pointer of the newest complete checkpoint, or None."""
    pointer = Path(run_dir) / "checkpoints" / "latest.json"
    if not pointer.is_file():
        return None
    return json.loads(pointer.read_text())


def load_checkpoint(run_dir: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(weights, state)`` of the newest checkpoint; state loaded with ``weights_only=True``."""
    pointer = latest_checkpoint(run_dir)
    if pointer is None:
        raise TrainingError(f"no checkpoint in {run_dir} to resume from")
    ckdir = Path(run_dir) / "checkpoints"
    try:
        weights = load_file(str(ckdir / pointer["weights"]))
        state = torch.load(ckdir / pointer["state"], map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as err:
        raise TrainingError(f"cannot read checkpoint {pointer} in {ckdir}: {err}") from err
    return weights, state
