"""A store holds one event selection per dataset, even with builds running at once (issue 30)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jetfm_coffea.cluster import Execution
from jetfm_coffea.errors import ConfigError
from jetfm_coffea.jobs.shards import build_store
from jetfm_coffea.shards.claims import claim_path, read_claim
from jetfm_coffea.shards.shard import open_shard
from jetfm_coffea.shards.store import open_store, scan_shards
from jetfm_coffea.shards.verification import verify

from .conftest import GOLDEN_2012

REPO = Path(__file__).resolve().parents[2]


def _selection(store: Path, path: str) -> tuple:
    sel = open_shard(store, path).attrs["selection"]
    return (sel["lumi_mask"] or {}).get("sha256"), sel["disabled"]


def test_two_builds_with_different_selections_at_once_do_not_mix(tmp_path, singlemu):
    """Real processes: one with the golden JSON, one with --no-lumi-mask, started together."""
    store = tmp_path / "store"
    common = [sys.executable, "-m", "jetfm_coffea", "build-shards", str(singlemu)]
    common += ["--out", str(store), "--chunksize", "2500", "--executor", "iterative"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    runs = {
        "masked": [*common, "--lumi-mask", GOLDEN_2012],
        "unmasked": [*common, "--no-lumi-mask"],
    }
    procs = {
        k: subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for k, cmd in runs.items()
    }
    done = {k: (p.wait(timeout=300), p.communicate()) for k, p in procs.items()}
    codes = {k: rc for k, (rc, _) in done.items()}
    assert sorted(codes.values()) == [0, 1], done
    loser = next(k for k, rc in codes.items() if rc)
    assert "another event selection" in done[loser][1][1]
    assert "Traceback" not in done[loser][1][1]
    on_disk = scan_shards(store)
    assert len(on_disk) == 4
    assert len({_selection(store, p) for p in on_disk}) == 1  # one selection, on disk too
    winner_disabled = loser == "masked"
    assert _selection(store, on_disk[0])[1] is winner_disabled
    report = verify(store)
    assert report.ok and report.n_shards == 4
    assert open_store(store).n_events == report.n_events


@pytest.mark.filterwarnings("ignore:Performed attempt:UserWarning")  # coffea retries the chunk
def test_a_claim_changed_during_a_build_stops_it_at_the_first_commit(tmp_path, singlemu):
    """The selection is checked again when each shard is committed, not only when planning."""
    store = tmp_path / "store"
    fileset = {"mu": {"files": {str(singlemu): "Events"}, "metadata": {"is_data": True}}}

    def another_build_claims_meanwhile(chunks, todo):
        claim = json.loads(claim_path(store, "mu").read_text())
        claim["signature"]["lumi_mask_disabled"] = not claim["signature"]["lumi_mask_disabled"]
        claim_path(store, "mu").write_text(json.dumps(claim))

    # coffea wraps a worker's error (ConfigError) in a plain Exception quoting it
    with pytest.raises(Exception, match=r"dataset 'mu' .*refusing to commit shard shards/mu/"):
        build_store(
            fileset,
            store,
            execution=Execution(executor="iterative", chunksize=5000),
            lumi_mask=GOLDEN_2012,
            on_plan=another_build_claims_meanwhile,
        )
    assert scan_shards(store) == []  # nothing of this build reached the store
    assert read_claim(store, "mu")["lumi_mask_disabled"] is True


def test_a_build_with_another_selection_during_a_build_is_refused(tmp_path, singlemu):
    """Interleaved: build B (no lumi mask) runs after A (golden JSON) planned, before A writes.

    Both plan an empty store, so a check at planning alone lets both through (the store
    then holds B's unmasked shards under A's masked build); the claim refuses B.
    """
    store = tmp_path / "store"
    fileset = {"mu": {"files": {str(singlemu): "Events"}, "metadata": {"is_data": True}}}
    kwargs = {"execution": Execution(executor="iterative", chunksize=5000)}
    refused = []

    def build_b_meanwhile(chunks, todo):
        assert len(todo) == 2 and scan_shards(store) == []
        try:
            build_store(fileset, store, no_lumi_mask=True, **kwargs)
        except ConfigError as err:
            refused.append(str(err))

    a = build_store(fileset, store, lumi_mask=GOLDEN_2012, on_plan=build_b_meanwhile, **kwargs)
    assert len(refused) == 1 and "dataset 'mu' is built with another event selection" in refused[0]
    assert a.shards_written == 2 and a.manifest_shards == 2
    sha = read_claim(store, "mu")["lumi_mask_sha256"]
    assert {_selection(store, p) for p in scan_shards(store)} == {(sha, False)}
    assert verify(store).ok


def test_a_build_with_the_same_selection_during_a_build_is_allowed(tmp_path, singlemu):
    """Same-selection concurrency stays allowed: the second build finds the shards in place."""
    store = tmp_path / "store"
    fileset = {"mu": {"files": {str(singlemu): "Events"}, "metadata": {"is_data": True}}}
    kwargs = {
        "execution": Execution(executor="iterative", chunksize=5000),
        "lumi_mask": GOLDEN_2012,
    }
    inner = []

    def same_build_meanwhile(chunks, todo):
        inner.append(build_store(fileset, store, **kwargs))

    outer = build_store(fileset, store, on_plan=same_build_meanwhile, **kwargs)
    assert inner[0].shards_written == 2 and outer.shards_written == 0
    assert outer.shards_existing == 2 and outer.manifest_events == inner[0].manifest_events
    assert verify(store).ok
