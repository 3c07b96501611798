"""The LocalCluster helper: quiet beside another cluster."""

from __future__ import annotations

import socket
import warnings

from jetfm_coffea.cluster import dask_client


def test_local_cluster_beside_another_prints_no_port_warning():
    """distributed's default HTTP port 8787 taken (as by another cluster): no warning."""
    blocker = socket.socket()
    try:
        blocker.bind(("127.0.0.1", 8787))
        blocker.listen()
    except OSError:
        pass  # already taken by someone else: the situation under test anyway
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with dask_client(workers=1) as client:
                assert client.submit(sum, [1, 2]).result() == 3
        assert not [w for w in caught if "already in use" in str(w.message)]
    finally:
        blocker.close()


class _JetSum:
    """A processor whose output is not keyed by dataset (as the AGC's): events, jet-pT sum."""

    def __new__(cls):
        from coffea import processor

        class JetSum(processor.ProcessorABC):
            def process(self, events):
                import awkward as ak
                import dask_awkward as dak

                lib = dak if type(events).__module__.startswith("dask_awkward") else ak
                return {"events": lib.num(events.event, axis=0), "jet_pt": lib.sum(events.Jet.pt)}

            def postprocess(self, accumulator):
                return accumulator

        return JetSum()


def test_dask_mode_merges_like_runner_and_status_false_draws_no_bar(ttbar_v5, ttbar2015, capfd):
    from jetfm_coffea.cluster import Execution
    from jetfm_coffea.jobs.execution import run_coffea

    fileset = {
        "ttbar_v5": {"files": {str(ttbar_v5): "Events"}},
        "ttbar": {"files": {str(ttbar2015): "Events"}},
    }
    capfd.readouterr()
    runner, _ = run_coffea(
        _JetSum(), fileset, Execution(executor="futures", chunksize=400), status=False
    )
    shown = capfd.readouterr()
    assert "Processing" not in shown.out + shown.err  # coffea's futures bar ignores status
    assert runner["events"] == 1_200
    with dask_client(workers=1) as client:
        merged, _ = run_coffea(
            _JetSum(),
            fileset,
            Execution(dask_mode=True, scheduler=client.scheduler.address, chunksize=400),
        )
    assert merged["events"] == runner["events"]  # one merged output, not one per dataset
    assert abs(merged["jet_pt"] - runner["jet_pt"]) < 1e-6 * runner["jet_pt"]
