"""Triton: the exported model repository, and scoring through a REAL Triton server.

The server is the ``tritonserver`` binary bundled with ``nvidia-pytriton``, started by
the ``triton_server`` fixture (``triton_harness.py``) from a virtual environment of its
own (pytriton needs numpy < 2), built once into ``~/.cache/jetfm-triton-venv``; it
serves every model of the exported repository by running its ``1/model.onnx`` with
onnxruntime (see ``triton_server.py``). When the environment cannot be built or the
server cannot start, the server tests skip and say why.
"""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest
from click.testing import CliRunner

from jetfm_coffea.cli import main
from jetfm_coffea.errors import ConfigError
from jetfm_coffea.score import JetFMScorer, read_model_info
from jetfm_coffea.score.errors import ScoringServerError
from jetfm_coffea.score.export import export_model
from jetfm_coffea.score.triton import parse_server
from jetfm_coffea.tokens import build_tokens

from .conftest import open_events
from .triton_harness import TritonUnavailable, free_ports, serve

tritonclient = pytest.importorskip("tritonclient.grpc", reason="the triton extra is not installed")


@pytest.fixture(scope="session")
def repo(tiny_run, fold_runs, tmp_path_factory):
    """A Triton repository with the tiny model (``jetfm``) and two k-fold models."""
    repo = tmp_path_factory.mktemp("triton") / "repo"
    args = ["export", str(tiny_run), "--format", "triton", "--out", str(repo)]
    result = CliRunner().invoke(main, [*args, "--max-batch-size", "64"])
    assert result.exit_code == 0, result.output
    for i, run in enumerate(fold_runs):
        export_model(run, repo, formats=("triton",), triton_name=f"fold{i}")
    return repo


@pytest.fixture(scope="session")
def triton_server(repo):
    """``triton+grpc://127.0.0.1:PORT``: a real Triton server serving ``repo``."""
    try:
        with serve(repo) as url:
            yield url
    except TritonUnavailable as err:
        pytest.skip(str(err))


def test_repository_layout_and_config(repo, tiny_run):
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    folder = repo / "jetfm"
    config = text_format.Parse(
        (folder / "config.pbtxt").read_text(), model_config_pb2.ModelConfig()
    )
    info = read_model_info(tiny_run)
    f = len(info.token_config.features)
    assert config.name == "jetfm" and config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == 64
    assert list(config.dynamic_batching.preferred_batch_size) == [64]  # 256, 1024 > 64
    inputs = {i.name: (i.data_type, list(i.dims)) for i in config.input}
    fp32, boolean = model_config_pb2.TYPE_FP32, model_config_pb2.TYPE_BOOL
    # with max_batch_size Triton prepends the batch axis: [-1, -1, F] and [-1, -1]
    assert inputs == {"tokens": (fp32, [-1, f]), "mask": (boolean, [-1])}
    outputs = {o.name: list(o.dims) for o in config.output}
    assert outputs == {"scores": [2], "embedding": [info.embedding_dim]}
    assert config.parameters["jetfm_model_hash"].string_value == info.model_hash
    assert (folder / "1" / "model.onnx").read_bytes() == (folder / "model.onnx").read_bytes()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["files"]["config.pbtxt"]["role"] == "triton_config"
    assert info.model_hash in (folder / "MODEL_CARD.md").read_text()
    assert read_model_info(folder).model_hash == info.model_hash  # also an export
    fold = text_format.Parse(
        (repo / "fold0" / "config.pbtxt").read_text(), model_config_pb2.ModelConfig()
    )
    assert list(fold.dynamic_batching.preferred_batch_size) == [256, 1024]


def test_server_urls_are_checked(repo):
    assert parse_server("triton+grpc://h:8001/jetfm/2").version == "2"
    for bad in ("grpc://h:8001/m", "triton+grpc://h/m", "triton+grpc://h:1/"):
        with pytest.raises(ConfigError, match="triton"):
            JetFMScorer(repo / "jetfm", server=bad)


def test_unreachable_server_is_a_clear_error(repo):
    (port,) = free_ports(1)
    url = f"triton+grpc://127.0.0.1:{port}/jetfm"
    t0 = time.perf_counter()
    with pytest.raises(
        ScoringServerError, match=rf"{re.escape(url)}: could not .* after 2 attempts"
    ):
        JetFMScorer(repo / "jetfm", server=url, server_retries=1)
    assert time.perf_counter() - t0 < 30


def _onnx_reference(folder, events):
    """The served ONNX run in this process by onnxruntime on the padded shard tensors."""
    ort = pytest.importorskip("onnxruntime")
    shard = build_tokens(events, read_model_info(folder).token_config)
    session = ort.InferenceSession(str(folder / "1" / "model.onnx"))
    return session.run(None, {"tokens": shard.tokens, "mask": shard.mask})


def test_scores_through_triton_equal_in_process(triton_server, repo, tiny_run, ttbar_events):
    """Through Triton == the same ONNX in this process, and == the in-process torch
    model, within 1e-5 for every event (scores and embeddings)."""
    remote_scorer = JetFMScorer(
        repo / "jetfm", server=f"{triton_server}/jetfm", embedding=True, batch_size=1000
    )
    remote = remote_scorer(ttbar_events)
    assert remote.layout.parameters["jetfm_server"] == f"{triton_server}/jetfm"
    assert remote.layout.parameters["jetfm_model_hash"] == read_model_info(tiny_run).model_hash
    scores, embedding = _onnx_reference(repo / "jetfm", ttbar_events)
    np.testing.assert_allclose(remote.score_signal.to_numpy(), scores[:, 1], atol=1e-5, rtol=0)
    np.testing.assert_allclose(remote.embedding.to_numpy(), embedding, atol=1e-5, rtol=0)
    local = JetFMScorer(tiny_run, embedding=True)(ttbar_events)
    np.testing.assert_array_equal(remote.n_tokens.to_numpy(), local.n_tokens.to_numpy())
    for name in ("score_signal", "embedding"):
        np.testing.assert_allclose(
            remote[name].to_numpy(), local[name].to_numpy(), atol=1e-5, rtol=0
        )
    # dask mode goes through the same client
    path = ttbar_events.attrs["@events_factory"].file_handle.file_path
    dask_scores = remote_scorer(open_events(path, mode="dask")).compute()
    np.testing.assert_allclose(
        dask_scores.score_signal.to_numpy(), remote.score_signal.to_numpy(), atol=1e-6, rtol=0
    )


def test_kfold_through_triton(triton_server, repo, fold_runs, ttbar_events):
    remote = JetFMScorer(
        [repo / "fold0", repo / "fold1"],
        server=[f"{triton_server}/fold0", f"{triton_server}/fold1"],
    )(ttbar_events)
    even = ttbar_events.event.to_numpy() % 2 == 0  # fold 0 scores even event numbers
    want = np.where(
        even,
        _onnx_reference(repo / "fold0", ttbar_events)[0][:, 1],
        _onnx_reference(repo / "fold1", ttbar_events)[0][:, 1],
    )
    np.testing.assert_allclose(remote.score_signal.to_numpy(), want, atol=1e-5, rtol=0)


def test_served_model_with_another_hash_is_refused(triton_server, fold_runs):
    url = f"{triton_server}/jetfm"  # serves the tiny model, not fold 0
    with pytest.raises(ScoringServerError, match=r"serves model hash [0-9a-f]{64}, not"):
        JetFMScorer(fold_runs[0], server=url)


def test_cli_score_with_server(triton_server, repo, ttbar2015, tmp_path):
    out = tmp_path / "out"
    args = ["score", str(ttbar2015), "--model", str(repo / "jetfm"), "--out", str(out)]
    result = CliRunner().invoke(main, [*args, "--server", f"{triton_server}/jetfm"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["events"] == 200
