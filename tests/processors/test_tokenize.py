"""TokenizeProcessor: every execution mode gives the same numbers on the same real files."""

from __future__ import annotations

import numpy as np
import pytest

from jetfm_coffea.cluster import Execution
from jetfm_coffea.errors import InputFileError
from jetfm_coffea.jobs.execution import run_coffea
from jetfm_coffea.processors.tokenize import TokenizeProcessor, finalize_output

CHUNK = 4_000  # several chunks per file, so merging is exercised


@pytest.fixture(scope="module")
def fileset(singlemu, ttbar2015):
    # files of different NanoAOD versions go to different datasets: coffea's dask mode
    # cannot merge their forms within one dataset
    return {
        "singlemu": {"files": {str(singlemu): "Events"}},
        "ttbar": {"files": {str(ttbar2015): "Events"}},
    }


@pytest.fixture(scope="module")
def outputs(fileset):
    """Every mode once; the dask ones attach to an already running cluster by address."""
    from distributed import LocalCluster

    proc = TokenizeProcessor()
    out = {}
    for executor in ("iterative", "futures"):
        out[executor], _ = run_coffea(
            proc, fileset, Execution(executor=executor, workers=2, chunksize=CHUNK), status=False
        )
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        out["dask"], report = run_coffea(
            proc,
            fileset,
            Execution(executor="dask", scheduler=address, chunksize=CHUNK),
            status=False,
        )
        assert report.mode == "virtual/dask"
        raw, _ = run_coffea(
            proc, fileset, Execution(dask_mode=True, scheduler=address, chunksize=CHUNK)
        )
    out["dask-mode"] = finalize_output(raw, proc.token_config)
    return out


def test_cutflow_counts(outputs):
    flow = outputs["iterative"]["singlemu"]["cutflow"]
    assert flow["events"] == 10_000
    assert flow["tokens_MET"] == 10_000
    assert flow["tokens"] == sum(v for k, v in flow.items() if k.startswith("tokens_"))
    assert outputs["iterative"]["ttbar"]["cutflow"]["events"] == 200


@pytest.mark.parametrize("mode", ["futures", "dask", "dask-mode"])
def test_modes_agree(outputs, mode):
    ref = outputs["iterative"]
    other = outputs[mode]
    assert set(other) == set(ref)
    for dataset in ref:
        assert other[dataset]["cutflow"] == ref[dataset]["cutflow"]
        assert other[dataset]["multiplicity"] == ref[dataset]["multiplicity"]
        a, b = ref[dataset]["tokens"], other[dataset]["tokens"]
        np.testing.assert_array_equal(a.tokens, b.tokens)
        np.testing.assert_array_equal(a.mask, b.mask)
        np.testing.assert_array_equal(a.event, b.event)


def test_multiplicity_histogram(outputs):
    h = outputs["iterative"]["singlemu"]["multiplicity"]
    assert h[{"collection": "MET"}].values()[1] == 10_000
    jets = h[{"collection": "Jet"}].values()
    tokens = outputs["iterative"]["singlemu"]["tokens"]
    per_event = ((tokens.tokens[..., -1] == 1) & tokens.mask).sum(axis=1)
    np.testing.assert_array_equal(jets[: per_event.max() + 1], np.bincount(per_event))


def test_bad_file_stops_or_is_skipped(tmp_path, singlemu):
    bad = tmp_path / "broken.root"
    bad.write_bytes(b"root" * 100)
    fileset = {"d": {"files": {str(singlemu): "Events", str(bad): "Events"}}}
    with pytest.raises(InputFileError, match=r"broken\.root"):
        run_coffea(TokenizeProcessor(), fileset, Execution(executor="iterative"), status=False)
    out, report = run_coffea(
        TokenizeProcessor(),
        fileset,
        Execution(executor="iterative"),
        skip_bad_files=True,
        status=False,
    )
    assert [b.path for b in report.bad_files] == [str(bad)]
    assert out["d"]["cutflow"]["events"] == 10_000
