"""ScoreAnalysisProcessor through Runner (iterative, futures, dask) and apply_to_fileset."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from jetfm_coffea.cluster import Execution, dask_client
from jetfm_coffea.jobs.execution import run_coffea
from jetfm_coffea.processors.analysis import ID_FIELDS, ScoreAnalysisProcessor, finalize_analysis
from jetfm_coffea.score import JetFMScorer
from tests.score.conftest import open_events

CHUNK = 4_000  # three chunks; a slim file (86 branches) keeps preprocessing fast


@pytest.fixture(scope="module")
def fileset(singlemu):
    return {"singlemu": {"files": {str(singlemu): "Events"}}}


@pytest.fixture(scope="module")
def cut(tiny_run, singlemu_events):
    scorer = JetFMScorer(tiny_run, device="cpu")
    return float(np.median(scorer(singlemu_events).score_signal.to_numpy()))


@pytest.fixture(scope="module")
def outputs(tiny_run, fileset, cut):
    # CPU whatever is visible: the futures executor forks, and a forked child cannot use
    # the CUDA context of its parent
    proc = ScoreAnalysisProcessor(tiny_run, cut=cut, return_scores=True, device="cpu")
    out = {}
    out["iterative"], _ = run_coffea(
        proc, fileset, Execution(executor="iterative", chunksize=CHUNK), status=False
    )
    out["futures"], _ = run_coffea(
        proc, fileset, Execution(executor="futures", chunksize=CHUNK), status=False
    )
    with dask_client(workers=2) as client:  # one LocalCluster for the module
        address = client.scheduler.address
        out["dask"], _ = run_coffea(
            proc,
            fileset,
            Execution(executor="dask", scheduler=address, chunksize=CHUNK),
            status=False,
        )
        raw, _ = run_coffea(
            proc, fileset, Execution(dask_mode=True, scheduler=address, chunksize=CHUNK)
        )
    out["dask-mode"] = finalize_analysis(raw, proc)
    return out


def test_cut_and_histograms(outputs, cut, singlemu):
    res = outputs["iterative"]["singlemu"]
    flow = res["cutflow"]
    assert flow["events"] == 10_000 and flow["nonfinite_scores"] == 0
    scores = res["scores"].score_signal.to_numpy()
    assert 2_000 < flow["pass"] == int((scores > cut).sum()) < 8_000  # cut near the median
    assert res["score"].sum().value == 10_000
    events = open_events(singlemu)
    jets = res["jet_pt"]
    n_with_jet = int(ak.sum(ak.num(events.Jet.pt) > 0))
    assert jets[{"stage": "all"}].sum(flow=True).value == n_with_jet
    assert 0 < jets[{"stage": "pass"}].sum(flow=True).value < n_with_jet
    mass = {s: res["dimuon_mass"][{"stage": s}].sum(flow=True).value for s in ("all", "pass")}
    assert mass["pass"] <= mass["all"]
    assert res["model"]["signal"] == "signal" and len(res["model"]["hash"]) == 64
    got = res["scores"]
    ids = np.stack([ak.to_numpy(got[f]).astype(np.int64) for f in ID_FIELDS], axis=1)
    want = np.stack([ak.to_numpy(events[f]).astype(np.int64) for f in ID_FIELDS], axis=1)
    want = want[np.lexsort(want.T[::-1])]
    np.testing.assert_array_equal(ids, want)  # every event once, in id order


@pytest.mark.parametrize("mode", ["futures", "dask", "dask-mode"])
def test_every_executor_agrees(outputs, mode):
    ref, other = outputs["iterative"], outputs[mode]
    assert set(other) == set(ref) == {"singlemu"}
    for ds in ref:
        assert other[ds]["cutflow"] == ref[ds]["cutflow"]
        for name in ("jet_pt", "dimuon_mass", "score"):
            np.testing.assert_allclose(other[ds][name].values(), ref[ds][name].values())
        # bit for bit: the scorer's default (one thread, scoped) is the same everywhere
        np.testing.assert_array_equal(
            other[ds]["scores"].score_signal.to_numpy(),
            ref[ds]["scores"].score_signal.to_numpy(),
        )
        assert other[ds]["model"] == ref[ds]["model"]


def test_without_a_model_only_observables(fileset):
    out, _ = run_coffea(
        ScoreAnalysisProcessor(), fileset, Execution(executor="iterative"), status=False
    )
    assert set(out["singlemu"]) == {"cutflow", "jet_pt", "dimuon_mass"}
    assert out["singlemu"]["jet_pt"][{"stage": "pass"}].sum().value == 0
