"""JetFMScorer: same tensors as the shard path, same numbers as the model, every mode."""

from __future__ import annotations

import pickle

import awkward as ak
import dask_awkward as dak
import numpy as np
import pytest
import torch

from jetfm_coffea.errors import ConfigError
from jetfm_coffea.finetune.testing import make_classifier_run
from jetfm_coffea.runtime import resolve_device
from jetfm_coffea.score import (
    JetFMScorer,
    ModelFileError,
    ScoreInputError,
    count_nonfinite,
    load_model,
    read_model_info,
)
from jetfm_coffea.tokens import TokenConfig, build_tokens
from jetfm_coffea.train import load_run
from tests.score.conftest import open_events

TOKEN_BRANCHES = {
    # the ttbar 2015 file, default token config: kinematics, ID cuts, first b-tag present
    "run", "luminosityBlock", "event",
    "nJet", "Jet_pt", "Jet_eta", "Jet_phi", "Jet_mass", "Jet_btagDeepFlavB",
    "nMuon", "Muon_pt", "Muon_eta", "Muon_phi", "Muon_mass", "Muon_charge", "Muon_tightId",
    "nElectron", "Electron_pt", "Electron_eta", "Electron_phi", "Electron_mass",
    "Electron_charge",
    "nPhoton", "Photon_pt", "Photon_eta", "Photon_phi",
    "MET_pt", "MET_phi",
}  # fmt: skip


def _model_outputs(run, tokens, mask):
    """Reference: the model of load_run on the full padded shard tensors, one batch."""
    model, _ = load_run(run)
    with torch.no_grad():
        emb = model.encoder(torch.from_numpy(tokens), torch.from_numpy(mask)).embedding
        probs = torch.softmax(model.heads["classifier"](emb), dim=-1)
    return probs.numpy(), emb.numpy()


def test_inputs_are_the_shard_tensors(tiny_run, ttbar_events, ttbar2015):
    scorer = JetFMScorer(tiny_run)
    shard = build_tokens(ttbar_events, scorer.token_config)
    (tokens, mask, event, scored), _ = scorer.prepare_awkward(ttbar_events)
    assert ak.to_numpy(scored).all()
    np.testing.assert_array_equal(ak.to_numpy(tokens).reshape(shard.tokens.shape), shard.tokens)
    np.testing.assert_array_equal(ak.to_numpy(mask), shard.mask)
    np.testing.assert_array_equal(ak.to_numpy(event), shard.event)
    (dtokens, dmask, _, _), _ = scorer.prepare_awkward(open_events(ttbar2015, "dask"))
    np.testing.assert_array_equal(dtokens.compute().to_numpy(), ak.to_numpy(tokens))
    np.testing.assert_array_equal(dmask.compute().to_numpy(), shard.mask)


def test_scores_equal_model_outputs(tiny_run, singlemu_events):
    scorer = JetFMScorer(tiny_run, embedding=True, batch_size=300, device="cpu")
    out = scorer(singlemu_events)
    assert out.fields == ["score_background", "score_signal", "embedding", "n_tokens"]
    shard = build_tokens(singlemu_events, scorer.token_config)
    probs, emb = _model_outputs(tiny_run, shard.tokens, shard.mask)
    np.testing.assert_allclose(out.score_background.to_numpy(), probs[:, 0], atol=2e-6)
    np.testing.assert_allclose(out.score_signal.to_numpy(), probs[:, 1], atol=2e-6)
    np.testing.assert_allclose(out.embedding.to_numpy(), emb, atol=2e-5)
    np.testing.assert_array_equal(out.n_tokens.to_numpy(), shard.counts)


def test_batch_size_does_not_change_scores(tiny_run, ttbar_events):
    a = JetFMScorer(tiny_run, batch_size=7, device="cpu")(ttbar_events)
    b = JetFMScorer(tiny_run, batch_size=100_000, device="cpu")(ttbar_events)
    np.testing.assert_allclose(a.score_signal.to_numpy(), b.score_signal.to_numpy(), atol=1e-6)


def test_dask_equals_eager_and_reads_only_token_columns(tiny_run, ttbar2015):
    scorer = JetFMScorer(tiny_run)
    log: list = []
    eager = scorer(open_events(ttbar2015, access_log=log))
    assert {a.branch for a in log} == TOKEN_BRANCHES
    lazy = scorer(open_events(ttbar2015, "dask", steps_per_file=3))
    assert lazy.npartitions == 3
    ((_, columns),) = dak.necessary_columns(lazy).items()
    assert set(columns) == TOKEN_BRANCHES
    computed = lazy.compute()
    np.testing.assert_allclose(
        computed.score_signal.to_numpy(), eager.score_signal.to_numpy(), atol=1e-6
    )
    assert computed.layout.parameters["jetfm_model_hash"] == scorer.model_hash


def test_unrelated_columns_do_not_run_the_model(tiny_run, ttbar2015):
    events = open_events(ttbar2015, "dask")
    scores = JetFMScorer(tiny_run)(events)

    def has_model(collection):
        return any("JetFMScorer" in name for name in collection.dask.layers)

    assert has_model(scores.score_signal)
    # the recommended use: scores as their own array; a jet sum never sees the model
    assert not has_model(dak.sum(events.Jet.pt, axis=1))
    # the pitfall the API avoids: after assigning, every column of events carries it
    events["JetFM"] = scores
    assert has_model(dak.sum(events.Jet.pt, axis=1))


def test_columns_carry_model_hash_and_version(tiny_run, ttbar_events):
    scorer = JetFMScorer(tiny_run)
    out = scorer(ttbar_events)
    info = read_model_info(tiny_run)
    for params in (out.layout.parameters, out.score_signal.layout.parameters):
        assert params["jetfm_model_hash"] == info.model_hash == scorer.model_hash
        assert params["jetfm_model_version"] == info.model_version
        assert params["jetfm_token_config_hash"] == TokenConfig().hash()


def test_pickles_without_the_model_and_loads_once_per_process(tiny_run, ttbar_events):
    scorer = JetFMScorer(tiny_run)
    scorer(ttbar_events[:5])
    assert scorer._model is not None
    blob = pickle.dumps(scorer)
    assert len(blob) < 50_000  # configs and hashes, no weights
    clone = pickle.loads(blob)
    assert clone._model is None
    clone(ttbar_events[:5])
    assert clone.model[0] is scorer.model[0]  # the per-process cache


def test_empty_chunk_and_events_without_tokens(make_nanoaod):
    path = make_nanoaod(
        {
            # event 2 has nothing that passes: a 5 GeV jet, a soft muon, no electron/photon
            "Jet": {"pt": [[50.0, 30.0], [5.0]], "eta": [[0.1, -1.0], [0.0]],
                    "phi": [[0.0, 2.0], [1.0]], "mass": [[5.0, 4.0], [1.0]],
                    "btagDeepFlavB": [[0.9, 0.1], [0.0]]},
            "Muon": {"pt": [[], [3.0]], "eta": [[], [0.0]], "phi": [[], [0.0]],
                     "mass": [[], [0.1]], "charge": [[], [1.0]], "tightId": [[], [True]]},
            "Electron": {"pt": [[], []], "eta": [[], []], "phi": [[], []], "mass": [[], []],
                         "charge": [[], []]},
            "Photon": {"pt": [[], []], "eta": [[], []], "phi": [[], []], "mass": [[], []]},
        },
        2,
    )  # fmt: skip
    cfg = {"collections": [c for c in TokenConfig().model_dump()["collections"][:4]]}
    run = make_classifier_run(path.parent / "nomet", token_config=TokenConfig(**cfg), seed=3)
    events = open_events(path)
    out = JetFMScorer(run, device="cpu")(events)
    assert out.n_tokens.to_numpy().tolist() == [2, 0]
    assert np.isfinite(out.score_signal.to_numpy()).all()
    shard = build_tokens(events, TokenConfig(**cfg))
    probs, _ = _model_outputs(run, shard.tokens, shard.mask)
    np.testing.assert_allclose(out.score_signal.to_numpy(), probs[:, 1], atol=2e-6)
    scorer = JetFMScorer(run, embedding=True)
    empty = scorer(events[:0])
    assert len(empty) == 0 and empty.fields == scorer.fields


def test_kfold_applies_each_model_to_its_own_events(fold_runs, singlemu_events):
    kfold = JetFMScorer(fold_runs, device="cpu")
    out = kfold(singlemu_events).score_signal.to_numpy()
    event = singlemu_events.event.to_numpy()
    even = event % 2 == 0
    assert 0 < even.sum() < len(event)
    alone = [
        JetFMScorer(r, device="cpu")(singlemu_events).score_signal.to_numpy() for r in fold_runs
    ]
    np.testing.assert_allclose(out[even], alone[0][even], atol=2e-6)
    np.testing.assert_allclose(out[~even], alone[1][~even], atol=2e-6)
    assert not np.allclose(alone[0], alone[1])
    params = kfold.parameters()
    assert params["jetfm_fold_hashes"] == [read_model_info(r).model_hash for r in fold_runs]


def test_missing_collection_names_model_and_file(tiny_run, make_nanoaod):
    path = make_nanoaod({"MET_pt": [10.0], "MET_phi": [0.1]}, 1, name="nojets.root")
    with pytest.raises(
        ScoreInputError, match=r"model .*tiny needs branches missing in .*nojets\.root: Jet_pt"
    ) as err:
        JetFMScorer(tiny_run)(open_events(path))
    for name in ("Jet_mass", "Muon_tightId", "Electron_pt", "Photon_pt"):  # all at once
        assert name in str(err.value)


def _skim(source, path, branches, collections):
    """Write the listed branches of a NanoAOD file to a new NanoAOD file (uproot)."""
    import uproot

    with uproot.open(source) as f:
        tree = f["Events"]
        keep = [b for b in branches if b in tree and not b.startswith("n")]
        arrays = tree.arrays(keep)
    out = {}
    for b in keep:
        name, _, field = b.partition("_")
        if name in collections:
            out.setdefault(name, {})[field] = arrays[b]
        else:
            out[b] = arrays[b]
    out = {k: ak.zip(v) if isinstance(v, dict) else v for k, v in out.items()}
    with uproot.recreate(path) as f:
        tree = f.mktree(
            "Events", {k: v.type for k, v in out.items()}, counter_name=lambda n: f"n{n}"
        )
        tree.extend(out)
    return path


def test_required_branches_suffice_and_a_skim_missing_some_lists_them_all(
    tiny_run, ttbar2015, ttbar_events, tmp_path
):
    scorer = JetFMScorer(tiny_run)
    need = scorer.required_branches
    assert need[:3] == ["run", "luminosityBlock", "event"]
    assert {"nJet", "Jet_pt", "Jet_eta", "MET_pt", "MET_phi", "Photon_pt"} <= set(need)
    jagged = {c.name for c in scorer.token_config.collections if c.kind != "met"}
    skim = _skim(ttbar2015, tmp_path / "skim.root", need + scorer.optional_branches, jagged)
    np.testing.assert_array_equal(
        scorer(open_events(skim)).score_signal.to_numpy(),
        scorer(ttbar_events).score_signal.to_numpy(),
    )
    less = [b for b in need if not b.startswith("Photon") and b != "MET_phi"]
    bad = _skim(ttbar2015, tmp_path / "less.root", less, jagged)
    listed = r"Photon_pt.*Photon_mass, MET_phi \(collections MET, Photon\)"
    with pytest.raises(ScoreInputError, match=listed):
        scorer(open_events(bad))


def test_a_collection_instead_of_the_event_record_is_one_clear_error(tiny_run, ttbar_events):
    with pytest.raises(ScoreInputError, match=r"scores the event record \(events\), not one"):
        JetFMScorer(tiny_run)(ttbar_events.Jet)


def test_tampered_corrupt_or_pickled_models_are_refused(tmp_path, ttbar_events):
    run = make_classifier_run(tmp_path / "run", seed=99)  # not in this process's model cache
    scorer = JetFMScorer(run)
    with pytest.raises(ModelFileError, match="not the expected"):
        JetFMScorer(run, expected_hash="0" * 64)
    weights = run / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-4:] = b"\x00\x00\x80\x7f"  # a valid float32 (inf) in place of the last weight
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="SHA-256 changed"):
        scorer(ttbar_events[:3])  # the worker sees other bytes than the client hashed
    weights.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(ModelFileError, match="not a valid safetensors"):
        JetFMScorer(run, allow_modified_weights=True)  # else refused: not the recorded hash
    weights.unlink()
    torch.save({"x": torch.zeros(1)}, run / "model.pt")
    with pytest.raises(ModelFileError, match=r"model\.pt.*pickled weights are refused"):
        JetFMScorer(run)


def test_nonfinite_scores_are_counted(tmp_path, ttbar_events):
    from safetensors.torch import load_file

    from jetfm_coffea.model.rundir import save_run_weights

    run = make_classifier_run(tmp_path / "nan", seed=4)
    state = load_file(str(run / "model.safetensors"))
    state["heads.classifier.linear.bias"][:] = float("nan")
    info = read_model_info(run)
    meta = {"model_config_hash": info.model_config.hash()}
    save_run_weights(run, state, meta)
    out = JetFMScorer(run)(ttbar_events)
    assert int(count_nonfinite(out)) == len(ttbar_events) == 200


def test_heads_threads_and_device(tiny_run, tmp_path, ttbar_events):
    enc = make_classifier_run(tmp_path / "enc", seed=5)
    with pytest.raises(ConfigError, match="at least one model"):
        JetFMScorer([])
    assert str(resolve_device("auto")) == ("cuda:0" if torch.cuda.is_available() else "cpu")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)  # the analysis's own setting
        for asked, used in (("auto", 1), (2, 2)):
            scorer = JetFMScorer(enc, num_threads=asked)
            seen: list[int] = []
            hook = scorer.model[0].encoder.register_forward_pre_hook(
                lambda *_, seen=seen: seen.append(torch.get_num_threads())
            )
            scorer(ttbar_events[:3])
            hook.remove()
            assert seen and set(seen) == {used}  # the forward pass ran with these threads
            assert torch.get_num_threads() == 3  # and the process-wide count is restored
    finally:
        torch.set_num_threads(before)


def test_embedding_only_without_classifier(tmp_path, ttbar_events):
    from safetensors.torch import load_file

    from jetfm_coffea.model.rundir import save_run_weights

    run = make_classifier_run(tmp_path / "bare", seed=6)
    state = {k: v for k, v in load_file(str(run / "model.safetensors")).items()
             if not k.startswith("heads.")}  # fmt: skip
    save_run_weights(run, state, {})
    with pytest.raises(ConfigError, match="no scored head"):
        JetFMScorer(run)
    out = JetFMScorer(run, scores=False, embedding=True)(ttbar_events)
    assert out.fields == ["embedding", "n_tokens"]
    assert out.embedding.to_numpy().shape == (200, 48)


def test_precision_is_fp32_unless_bf16_is_asked_for(tiny_run, ttbar_events):
    fp32 = JetFMScorer(tiny_run, device="cpu")(ttbar_events)
    assert fp32.layout.parameters["jetfm_precision"] == "fp32"
    bf16 = JetFMScorer(tiny_run, device="cpu", precision="bf16")(ttbar_events)
    assert bf16.layout.parameters["jetfm_precision"] == "bf16"
    diff = np.abs(bf16.score_signal.to_numpy() - fp32.score_signal.to_numpy())
    assert 0 < diff.max() < 5e-2  # bf16 really ran, and is close
    with pytest.raises(ConfigError, match="precision 'auto'"):
        JetFMScorer(tiny_run, precision="auto")


@pytest.mark.gpu
def test_cuda_scores_match_cpu(tiny_run, singlemu_events):
    import torch

    cpu = JetFMScorer(tiny_run, device="cpu")(singlemu_events).score_signal.to_numpy()
    torch.backends.cuda.matmul.allow_tf32 = True  # a process that enabled TF32 elsewhere
    try:
        gpu = JetFMScorer(tiny_run, device="cuda")(singlemu_events)  # fp32 by default
        np.testing.assert_allclose(gpu.score_signal.to_numpy(), cpu, atol=1e-5, rtol=0)
        assert torch.backends.cuda.matmul.allow_tf32  # restored after the forward pass
    finally:
        torch.backends.cuda.matmul.allow_tf32 = False
    bf16 = JetFMScorer(tiny_run, device="cuda", precision="bf16")(singlemu_events)
    np.testing.assert_allclose(bf16.score_signal.to_numpy(), cpu, atol=5e-2)


def test_carried_weights_score_on_a_cluster_without_the_model_directory(tmp_path, ttbar2015):
    """carry_weights=True: the weights travel in the pickled scorer, checked by hash on
    the workers; without it a worker that cannot see the directory fails clearly."""
    import pickle
    import shutil

    from jetfm_coffea.cluster import Execution, dask_client
    from jetfm_coffea.jobs.execution import run_coffea
    from jetfm_coffea.processors.analysis import ScoreAnalysisProcessor

    run = make_classifier_run(tmp_path / "run", seed=23)  # no worker has it cached
    carried = ScoreAnalysisProcessor(run, return_scores=True, device="cpu", carry_weights=True)
    plain = ScoreAnalysisProcessor(run, return_scores=True, device="cpu")
    want = JetFMScorer(run, device="cpu")(open_events(ttbar2015)).score_signal.to_numpy()
    size = len(pickle.dumps(carried)) - len(pickle.dumps(plain))
    assert size >= (run / "model.safetensors").stat().st_size  # the bytes travel
    shutil.move(run, tmp_path / "elsewhere")  # no shared filesystem from here on
    fileset = {"ttbar": {"files": {str(ttbar2015): "Events"}}}
    with dask_client(workers=1) as client:
        address = client.scheduler.address
        with pytest.raises(ModelFileError, match=r"cannot read.*carry_weights=True"):
            run_coffea(
                plain, fileset, Execution(executor="dask", scheduler=address, chunksize=1000)
            )
        out, _ = run_coffea(
            carried, fileset, Execution(executor="dask", scheduler=address, chunksize=1000)
        )
        np.testing.assert_array_equal(
            np.sort(out["ttbar"]["scores"].score_signal.to_numpy()), np.sort(want)
        )
    info = carried.scorer.infos[0]
    bad = bytearray(carried.scorer.carried[0])
    bad[-4:] = b"\x00\x00\x80\x7f"
    with pytest.raises(ModelFileError, match="SHA-256"):
        load_model(info, "cpu", bytes(bad))  # what a worker does with altered bytes
