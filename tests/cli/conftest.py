"""Real CMS events rewritten the ways a careless or unlucky user's inputs come (issue 30)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

#: The jagged collections the default token config reads, and the fields copied of each.
COLLECTIONS = ("Jet", "Muon", "Electron", "Photon")
FIELDS = ("pt", "eta", "phi", "mass", "charge", "tightId", "btagDeepFlavB")
EVENT_BRANCHES = ("run", "luminosityBlock", "event", "genWeight", "MET_pt", "MET_phi")


def read_columns(src: Path, n_events: int | None = None) -> dict[str, ak.Array]:
    """The branches the default tokens (and the score analysis) need, of ``src``'s Events."""
    with uproot.open(src) as fh:
        tree = fh["Events"]
        keys = [k for k in EVENT_BRANCHES if k in tree]
        for name in COLLECTIONS:
            keys.append(f"n{name}")
            keys += [f"{name}_{f}" for f in FIELDS if f"{name}_{f}" in tree]
        arrays = tree.arrays(keys, entry_stop=n_events)
    return {k: arrays[k] for k in keys}


def write_columns(
    columns: dict[str, ak.Array], path: Path, *, rntuple: bool = False, tree: str = "Events"
) -> Path:
    """Write flat NanoAOD branches as a TTree (``nX`` counters) or as an RNTuple."""
    with uproot.recreate(path) as fh:
        if rntuple:  # the same fields, counters included, in one RNTuple
            fh.mkrntuple(tree, ak.zip(columns, depth_limit=1))
            return path
        branches: dict[str, object] = {}
        for key, values in columns.items():
            name = key.split("_", 1)[0]
            if name in COLLECTIONS:
                continue
            if key.startswith("n") and key[1:] in COLLECTIONS:
                continue
            branches[key] = ak.to_numpy(values)
        for name in COLLECTIONS:
            fields = {k.split("_", 1)[1]: v for k, v in columns.items() if k.startswith(f"{name}_")}
            if fields:
                branches[name] = ak.zip(fields)
        types = {k: v.type if isinstance(v, ak.Array) else v.dtype for k, v in branches.items()}
        out = fh.mktree(tree, types, counter_name=lambda name: f"n{name}")
        out.extend(branches)
    return path


@pytest.fixture(scope="session")
def ttbar_columns(ttbar2015) -> dict[str, ak.Array]:
    """The needed branches of the 200 real simulated ttbar events of 2015."""
    return read_columns(ttbar2015)


@pytest.fixture
def rewrite(tmp_path, ttbar_columns) -> Callable[..., Path]:
    """``rewrite(name, drop=(), edit=None, rntuple=False, tree="Events")``: the ttbar
    events written again, without the collections ``drop``, after ``edit(columns)``."""

    def make(
        name: str,
        drop: tuple[str, ...] = (),
        edit: Callable[[dict], None] | None = None,
        rntuple: bool = False,
        tree: str = "Events",
    ) -> Path:
        columns = {
            k: v
            for k, v in ttbar_columns.items()
            if k not in drop and k.split("_", 1)[0] not in drop and k[1:] not in drop
        }
        if edit is not None:
            edit(columns)
        return write_columns(columns, tmp_path / name, rntuple=rntuple, tree=tree)

    return make


def set_first(values: ak.Array, value: float, every: int = 1) -> ak.Array:
    """``values`` (jagged) with the first object of every ``every``-th event set to ``value``."""
    counts = ak.num(values)
    flat = np.asarray(ak.flatten(values), np.float32).copy()
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    events = np.flatnonzero(np.asarray(counts) > 0)[::every]
    flat[starts[events]] = value
    return ak.unflatten(flat, counts)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A tiny encoder + 2-class classification head (random weights, real layout)."""
    from jetfm_coffea.finetune.testing import make_classifier_run

    return make_classifier_run(tmp_path_factory.mktemp("runs") / "tiny", "tiny", seed=1)
