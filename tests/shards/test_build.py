"""Building stores: executors, dask mode, resume after a real SIGKILL, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import uproot
from click.testing import CliRunner

from jetfm_coffea.cli import main
from jetfm_coffea.cluster import Execution
from jetfm_coffea.jobs.shards import build_store, plan_chunks
from jetfm_coffea.shards import SCHEMA_VERSION, open_store, scan_shards, verify

REPO = Path(__file__).resolve().parents[2]


def _checksums(store) -> dict[str, str]:
    return {r.path: r.checksum for r in open_store(store).records}


def _all_ids(store) -> list[tuple[int, int]]:
    out = []
    for shard in open_store(store):
        out.extend(
            zip(shard.read("luminosityBlock").tolist(), shard.read("event").tolist(), strict=True)
        )
    return out


def test_rerun_skips_complete_shards(tmp_path, singlemu_store, singlemu):
    shards = scan_shards(singlemu_store)
    mtimes = {p: (singlemu_store / p / "zarr.json").stat().st_mtime_ns for p in shards}
    fileset = {"singlemu": {"files": {str(singlemu): "Events"}, "metadata": {"label": 3}}}
    from tests.shards.conftest import AUGMENT

    summary = build_store(
        fileset,
        singlemu_store,
        execution=Execution(executor="iterative", chunksize=2500),
        augmentation=AUGMENT,
    )
    assert summary.events_written == 0 and summary.shards_existing == 4
    assert summary.events_in == summary.events_existing == 10_000
    assert {p: (singlemu_store / p / "zarr.json").stat().st_mtime_ns for p in shards} == mtimes


def test_modes_and_executors_write_identical_shards(tmp_path, ttbar2015):
    fileset = {"ttbar": {"files": [str(ttbar2015)], "metadata": {"label": 1}}}
    aug = {"views": 2}
    ref = build_store(
        fileset,
        tmp_path / "iter",
        execution=Execution(executor="iterative", chunksize=100),
        augmentation=aug,
    )
    assert ref.events_written == 200 and ref.views_written == {"0": 200, "1": 200}
    dask_mode = build_store(
        fileset,
        tmp_path / "dask",
        execution=Execution(dask_mode=True, workers=1, chunksize=100),
        augmentation=aug,
    )
    assert dask_mode.events_written == 200 and dask_mode.shards_written == 2
    assert _checksums(tmp_path / "iter") == _checksums(tmp_path / "dask")
    # genWeight of simulation becomes the weight
    with uproot.open(ttbar2015) as fh:
        gen = fh["Events"]["genWeight"].array(library="np")
    weights = np.concatenate([s.read("weight") for s in open_store(tmp_path / "iter")])
    np.testing.assert_array_equal(weights, gen.astype(np.float32))


# distributed's in-process cluster leaves a listening socket to the garbage collector
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_dask_executor_on_a_scheduler(tmp_path, singlemu):
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        summary = build_store(
            str(singlemu),
            tmp_path / "s",
            execution=Execution(
                executor="dask", scheduler=cluster.scheduler_address, chunksize=5000
            ),
        )
    import gc

    gc.collect()  # release the cluster's sockets under this test's warning filters
    assert summary.events_written == 10_000 and summary.shards_written == 2
    assert verify(tmp_path / "s").ok


def test_bad_files_are_skipped_with_reasons(tmp_path, ttbar2015):
    junk = tmp_path / "junk.root"
    junk.write_bytes(b"not a root file")
    fileset = {"d": {"files": [str(ttbar2015), str(junk), str(tmp_path / "gone.root")]}}
    summary = build_store(
        fileset, tmp_path / "s", execution=Execution(executor="iterative", chunksize=1000)
    )
    reasons = dict(summary.skipped_files)
    assert "not a readable ROOT file" in reasons[str(junk)]
    assert reasons[str(tmp_path / "gone.root")] == "file does not exist"
    assert summary.events_written == 200


def test_resume_after_sigkill(tmp_path, singlemu):
    """Kill a real build part-way (SIGKILL), rerun: every event exactly once."""
    out = tmp_path / "store"
    cmd = [
        sys.executable, "-m", "jetfm_coffea", "build-shards", str(singlemu),
        "--out", str(out), "--executor", "iterative", "--chunksize", "1000", "--json",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(scan_shards(out)) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written = scan_shards(out)
    assert 3 <= len(written) < 10, "the build was not killed part-way"
    assert not (out / "manifest.json").exists()

    result = CliRunner().invoke(
        main,
        [
            "build-shards",
            str(singlemu),
            "--out",
            str(out),
            "--executor",
            "iterative",
            "--chunksize",
            "1000",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["shards_existing"] == len(written), (summary, written)
    assert summary["shards_written"] == 10 - len(written)
    assert summary["manifest_events"] == 10_000

    with uproot.open(singlemu) as fh:
        tree = fh["Events"]
        expected = list(
            zip(
                tree["luminosityBlock"].array(library="np").tolist(),
                tree["event"].array(library="np").tolist(),
                strict=True,
            )
        )
    got = _all_ids(out)
    assert len(got) == 10_000 and sorted(got) == sorted(expected)
    report = verify(out)
    assert report.ok and all(p.kind == "temporary" for p in report.problems)


def test_plan_is_even_and_complete(singlemu):
    fileset = {"d": {"files": {str(singlemu): "Events"}, "metadata": {}}}
    chunks, skipped = plan_chunks(fileset, 3000)
    assert not skipped and [c.entry_stop - c.entry_start for c in chunks] == [3333, 3333, 3334]
    assert chunks[0].entry_start == 0 and chunks[-1].entry_stop == 10_000


def test_plan_reads_the_header_like_a_full_open(tmp_path, singlemu):
    """Planning's entries and uuid equal a full uproot open, and an object that is neither
    a TTree nor an RNTuple is named, with its class, as the skip reason."""
    with uproot.open(singlemu) as fh:
        n, uuid = fh["Events"].num_entries, str(fh.file.uuid)
    other = tmp_path / "hist.root"
    with uproot.recreate(other) as fh:
        fh["Events"] = np.histogram(np.arange(10.0), bins=5)
    fileset = {"d": {"files": {str(singlemu): "Events", str(other): "Events"}, "metadata": {}}}
    chunks, skipped = plan_chunks(fileset, 100_000)
    assert [(c.entry_start, c.entry_stop, c.uuid) for c in chunks] == [(0, n, uuid)]
    assert skipped == [(str(other), "'Events' is a TH1D, not a TTree or an RNTuple")]


def test_cli_info_and_verify(singlemu_store, tmp_path):
    runner = CliRunner()
    info = runner.invoke(main, ["shards", "info", str(singlemu_store), "--json"])
    assert info.exit_code == 0, info.output
    doc = json.loads(info.output)
    assert (
        doc["n_events"] == 10_000
        and doc["n_views"] == 2
        and doc["schema_version"] == SCHEMA_VERSION
    )
    assert 0 < doc["bytes_per_event"] < 200  # ragged objects + 2 stored views (1.0.0: 291)
    ok = runner.invoke(main, ["shards", "verify", str(singlemu_store)])
    assert ok.exit_code == 0 and "OK" in ok.output
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(singlemu_store, broken)
    victim = open_store(broken).records[0].path
    shutil.rmtree(broken / victim)
    bad = runner.invoke(main, ["shards", "verify", str(broken)])
    assert bad.exit_code == 1 and victim in bad.output and "missing" in bad.output
    failed = runner.invoke(main, ["shards", "info", str(broken)])
    assert failed.exit_code != 0 and victim in failed.output


def test_build_config_yaml(tmp_path, ttbar2015):
    config = tmp_path / "build.yaml"
    config.write_text("tokens:\n  max_tokens: 12\naugment:\n  views: 1\n  seed: 3\n")
    result = CliRunner().invoke(
        main,
        [
            "build-shards",
            str(ttbar2015),
            "--config",
            str(config),
            "--out",
            str(tmp_path / "s"),
            "--executor",
            "iterative",
        ],
    )
    assert result.exit_code == 0, result.output
    st = open_store(tmp_path / "s")
    assert st.n_tokens == 12 and st.n_views == 1 and st.augmentation["seed"] == 3


@pytest.mark.parametrize("section", ["tokens: {max_tokens: 0}", "colour: red"])
def test_bad_build_config(tmp_path, nano_dimuon, section):
    config = tmp_path / "bad.yaml"
    config.write_text(section + "\n")
    result = CliRunner().invoke(
        main,
        ["build-shards", str(nano_dimuon), "--config", str(config), "--out", str(tmp_path / "s")],
    )
    assert result.exit_code != 0 and "Error" in result.output


def test_ragged_store_without_views_is_compact(plain_store):
    """Real 2012 events: at most 120 bytes per event without stored views (1.0.0: 142)."""
    store = open_store(plain_store)
    assert store.n_views == 0
    assert store.disk_bytes() / store.n_events <= 120
