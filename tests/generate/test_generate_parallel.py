"""Generation spread over jobs: futures and dask give the same events; resume; markers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import uproot
from click.testing import CliRunner

from jetfm_coffea.cli import main
from jetfm_coffea.cluster import Execution
from jetfm_coffea.errors import ConfigError
from jetfm_coffea.generate import generate
from jetfm_coffea.generate import run as gen_run

BRANCHES = ["event", "luminosityBlock", "Jet_pt", "Muon_pt", "MET_pt"]


def _events(files):
    return uproot.concatenate([{str(f): "Events"} for f in files], BRANCHES, library="np")


def _same(a, b):
    for key in BRANCHES:
        if a[key].dtype == object:
            assert all(np.array_equal(x, y) for x, y in zip(a[key], b[key], strict=True)), key
        else:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """36 diboson events in 3 files, one process (the reference)."""
    out = tmp_path_factory.mktemp("serial")
    return generate("diboson", 36, seed=4, out=out, events_per_file=12, batch_size=6)


def test_dask_and_futures_give_the_serial_events(serial, tmp_path):
    ref = _events(serial.files)
    for executor in ("iterative", "futures", "dask"):
        seen: list[int] = []  # progress: per batch (here, pool), per file (dask)
        res = generate("diboson", 36, seed=4, out=tmp_path / executor,
                       execution=Execution(executor, workers=2), progress=seen.append,
                       events_per_file=12, batch_size=6)  # fmt: skip
        assert sum(seen) == 36 and len(seen) == (3 if executor == "dask" else 6), seen
        assert [f.name for f in res.files] == [f.name for f in serial.files]  # one file per job
        _same(_events(res.files), ref)
        assert res.xsec_pb == pytest.approx(serial.xsec_pb)
        markers = sorted(p.name for p in (tmp_path / executor).glob("*.done.json"))
        assert markers == [f.name + ".done.json" for f in serial.files]


def test_resume_generates_only_missing_chunks(serial, tmp_path, monkeypatch):
    out = tmp_path / "resume"
    first = generate("diboson", 36, seed=4, out=out, events_per_file=12, batch_size=6)
    first.files[1].unlink()
    calls = []
    real = gen_run._run_chunk

    def counting(chunk, report=None):
        calls.append(chunk.index)
        return real(chunk, report)

    monkeypatch.setattr(gen_run, "_run_chunk", counting)
    again = generate("diboson", 36, seed=4, out=out, events_per_file=12, batch_size=6,
                     resume=True)  # fmt: skip
    assert calls == [1]
    _same(_events(again.files), _events(serial.files))
    assert again.n_events == 36
    # an edited marker (other settings) is not trusted: that chunk is made again
    marker = out / (first.files[0].name + ".done.json")
    done = json.loads(marker.read_text())
    done["signature"]["settings"].append("Tune:pp = 5")
    marker.write_text(json.dumps(done))
    calls.clear()
    generate("diboson", 36, seed=4, out=out, events_per_file=12, batch_size=6, resume=True)
    assert calls == [0]
    # without resume everything is made again
    calls.clear()
    generate("diboson", 36, seed=4, out=out, events_per_file=12, batch_size=6)
    assert calls == [0, 1, 2]


def test_interrupted_run_keeps_finished_chunks_for_resume(serial, tmp_path, monkeypatch):
    out = tmp_path / "interrupted"
    real = gen_run.simulate
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:  # chunk 1, second batch
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(gen_run, "simulate", flaky)
    with pytest.raises(KeyboardInterrupt):
        generate("diboson", 36, seed=4, out=out, events_per_file=12, batch_size=6)
    left = sorted(p.name for p in out.iterdir())
    assert left == [serial.files[0].name, serial.files[0].name + ".done.json"]
    monkeypatch.setattr(gen_run, "simulate", real)
    res = generate("diboson", 36, seed=4, out=out, events_per_file=12, batch_size=6,
                   resume=True)  # fmt: skip
    _same(_events(res.files), _events(serial.files))


def test_bad_executor_arguments(tmp_path):
    with pytest.raises(ConfigError, match="unknown executor 'mpi'; choose from iterative"):
        generate("diboson", 5, out=tmp_path, execution=Execution("mpi"))
    with pytest.raises(ConfigError, match="needs executor 'dask'"):
        generate("diboson", 5, out=tmp_path, execution=Execution(scheduler="tcp://127.0.0.1:1"))
    with pytest.raises(ConfigError, match="dask mode is for coffea jobs"):
        generate("diboson", 5, out=tmp_path, execution=Execution(dask_mode=True))
    res = CliRunner().invoke(
        main, ["generate", "-p", "diboson", "-n", "5", "-o", str(tmp_path), "--scheduler", "x"]
    )
    assert res.exit_code != 0 and "needs executor 'dask'" in res.output
    assert not list(tmp_path.glob("*.root"))
