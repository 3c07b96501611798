"""RNTuple NanoAOD through inspect, build-shards and score: the same numbers as the TTree.

The same 200 real simulated ttbar events (2015 CMS Open Data, the branches the tokens
and the score analysis read) are written by uproot once as a TTree and once as an
RNTuple; every stage must give identical results on both.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from jetfm_coffea.cli import main
from jetfm_coffea.cluster import Execution
from jetfm_coffea.errors import EXIT_OK


@pytest.fixture
def twins(rewrite):
    return rewrite("ttree.root"), rewrite("rntuple.root", rntuple=True)


def test_the_twins_differ_only_in_format(twins):
    import uproot

    kinds = []
    for path in twins:
        with uproot.open(path) as fh:
            kinds.append(fh.classname_of("Events"))
    assert kinds == ["TTree", "ROOT::RNTuple"]


def test_inspect_gives_the_same_cutflow(twins):
    from jetfm_coffea.jobs.inspect import run_inspection

    flows = []
    for path in twins:
        out, report = run_inspection(str(path), execution=Execution(executor="iterative"))
        assert report.files == 1 and report.events == 200
        ((_, result),) = out.items()
        flows.append(result["cutflow"])
    assert flows[0] == flows[1] and flows[0]["events"] == 200 and flows[0]["tokens"] > 500


def _shard_arrays(store):
    from jetfm_coffea.shards.store import open_store

    st = open_store(store)
    assert len(st.records) == 1
    import zarr

    group = zarr.open_group(str(st.root / st.records[0].path), mode="r")
    return {name: np.asarray(arr[:]) for name, arr in group.arrays()} | {
        f"objects/{name}": np.asarray(arr[:]) for name, arr in group["objects"].arrays()
    }


def test_build_shards_writes_the_same_events(twins, tmp_path):
    stores = []
    for i, path in enumerate(twins):
        out = tmp_path / f"s{i}"
        args = ["build-shards", str(path), "--out", str(out), "--executor", "iterative", "--json"]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == EXIT_OK, result.output
        summary = json.loads(result.stdout)
        assert summary["events_written"] == 200 and not summary["skipped_files"]
        stores.append(_shard_arrays(out))
    tree, rntuple = stores
    assert sorted(tree) == sorted(rntuple) and "objects/pt" in tree
    for name in tree:
        np.testing.assert_array_equal(tree[name], rntuple[name], err_msg=name)


def test_score_gives_the_same_scores(twins, tiny_run):
    from jetfm_coffea.jobs.score import run_score_analysis

    scores = []
    for path in twins:
        out, _, _ = run_score_analysis(
            str(path),
            [str(tiny_run)],
            execution=Execution(executor="iterative"),
            return_scores=True,
            device="cpu",
        )
        ((_, result),) = out.items()
        assert result["cutflow"]["events"] == 200
        scores.append(result["scores"])
    tree, rntuple = scores
    for field in tree.fields:
        if field.startswith("score"):
            np.testing.assert_array_equal(np.asarray(tree[field]), np.asarray(rntuple[field]))
    assert any(f.startswith("score") for f in scores[0].fields)
