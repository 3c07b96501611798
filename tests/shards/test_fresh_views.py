"""Fresh physics views in pretraining, on real 2012 data from shard stores.

Views are a pure function of (pipeline seed, run, luminosityBlock, event, epoch, view):
different every epoch, equal across chunkings, batch sizes, worker counts and ranks;
boosts, rotations and reflections keep every mass and pair mass; a run killed with
SIGKILL and resumed ends with the weights of an uninterrupted one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from jetfm_coffea.augment import standard_pipeline
from jetfm_coffea.shards import open_loader
from jetfm_coffea.train.views import make_views

PIPELINE = standard_pipeline(views=2, seed=17)  # rotations, boosts, reflection, smearing, dropout


def _views_by_event(store, token_config, epoch, **loader_kw):
    """Every event's fresh views, padded to the token config's width, in event-id order."""
    width = token_config.n_tokens
    ids, views, masks = [], [], []
    ranks = loader_kw.pop("ranks", 1)
    for rank in range(ranks):
        loader = open_loader(store, load_objects=True, rank=rank, world_size=ranks, **loader_kw)
        loader.set_epoch(epoch)
        for batch in loader:
            v, m = make_views(batch, PIPELINE, token_config, epoch, 2)
            pad = width - v.shape[2]
            views.append(torch.nn.functional.pad(v, (0, 0, 0, pad)))
            masks.append(torch.nn.functional.pad(m, (0, pad)))
            ids.append(torch.stack([batch[k] for k in ("run", "luminosityBlock", "event")], 1))
    ids = torch.cat(ids)
    order = np.lexsort(ids.numpy().T[::-1])
    return ids[order], torch.cat(views)[order], torch.cat(masks)[order]


def test_views_depend_on_event_and_epoch_only(singlemu_store, plain_store, token_config):
    ids, ref, ref_mask = _views_by_event(singlemu_store, token_config, 1, batch_size=500, seed=1)
    assert len(ids) == 10_000 and len(set(map(tuple, ids.tolist()))) == 10_000
    others = {
        "other chunking (5 shards of 2000)": (plain_store, {"batch_size": 500, "seed": 1}),
        "batch size 777, another shuffle": (singlemu_store, {"batch_size": 777, "seed": 4}),
        "2 workers": (singlemu_store, {"batch_size": 300, "num_workers": 2, "seed": 2}),
        "2 ranks": (singlemu_store, {"batch_size": 256, "ranks": 2, "seed": 3}),
    }
    for what, (store, kw) in others.items():
        got_ids, got, got_mask = _views_by_event(store, token_config, 1, **kw)
        assert torch.equal(got_ids, ids), what
        assert torch.equal(got_mask, ref_mask), what
        assert torch.equal(got, ref), what
    _, later, later_mask = _views_by_event(singlemu_store, token_config, 2, batch_size=500)
    valid = ref_mask & later_mask
    assert not torch.equal(later, ref)  # fresh every epoch
    assert (later[valid] != ref[valid]).any(-1).float().mean() > 0.9
    # the two views of one epoch differ as well
    assert (ref[:, 0][valid[:, 0] & valid[:, 1]] != ref[:, 1][valid[:, 0] & valid[:, 1]]).any()


def _four_vectors(tokens: torch.Tensor, names: list[str]) -> dict[str, torch.Tensor]:
    f = {n: tokens[..., i].double() for i, n in enumerate(names)}
    pt = torch.exp(f["log_pt"])
    px, py = pt * f["cos_phi"], pt * f["sin_phi"]
    pz = pt * torch.sinh(f["eta"])
    mass = torch.expm1(f["log_m"])
    e = torch.sqrt(px**2 + py**2 + pz**2 + mass**2)
    return {"px": px, "py": py, "pz": pz, "e": e, "mass": mass, "type_id": f["type_id"]}


def test_masses_and_pair_masses_are_kept_on_real_data(singlemu_store, token_config):
    """Boosts, rotations and eta reflection: masses and pair masses equal to float32 rounding."""
    exact = {
        "views": 2,
        "seed": 3,
        "steps": [
            {"name": "rotate_phi"},
            {"name": "boost_z", "max_rapidity": 0.5},
            {"name": "boost_transverse", "max_beta": 0.1},
            {"name": "reflect_eta", "probability": 0.5},
        ],
    }
    names = token_config.feature_names
    met = float(token_config.collection("MET").type_id)
    batch = next(iter(open_loader(singlemu_store, batch_size=4000, load_objects=True, seed=0)))
    views, view_mask = make_views(batch, exact, token_config, epoch=3, n_views=2)
    orig = _four_vectors(batch["tokens"], names)
    visible = batch["mask"] & (orig["type_id"] != met)
    n_pairs = 0
    for v in range(2):
        view = _four_vectors(views[:, v], names)
        both = visible & view_mask[:, v]  # objects still inside the acceptance after the boost
        assert both.sum() > 0.9 * visible.sum()
        torch.testing.assert_close(view["mass"][both], orig["mass"][both], rtol=2e-6, atol=1e-6)
        assert not torch.allclose(view["px"][both], orig["px"][both])  # the view did move
        for i in range(4):
            for j in range(i + 1, 4):
                pair = both[:, i] & both[:, j]
                m2 = {}
                for name, p in (("orig", orig), ("view", view)):
                    s = {k: p[k][:, i] + p[k][:, j] for k in ("px", "py", "pz", "e")}
                    m2[name] = (s["e"] ** 2 - s["px"] ** 2 - s["py"] ** 2 - s["pz"] ** 2)[pair]
                m_orig, m_view = m2["orig"].clamp_min(0).sqrt(), m2["view"].clamp_min(0).sqrt()
                heavy = m_orig > 1.0  # pairs above 1 GeV (collinear pairs cancel to noise)
                torch.testing.assert_close(m_view[heavy], m_orig[heavy], rtol=2e-5, atol=0)
                n_pairs += int(heavy.sum())
    assert n_pairs > 5000


def _pretrain_cmd(store, out, steps):
    config = out.parent / f"{out.name}.yaml"
    config.write_text(
        "model:\n  size: custom\n  overrides: {dim: 16, heads: 2, layers: 1, pair_hidden: 8,"
        f" proj_dim: 8}}\ntrain:\n  steps: {steps}\n  batch_size: 128\n  checkpoint_every: 3\n"
        "  log_every: 1\noptim:\n  warmup_steps: 2\n"
    )
    return [
        sys.executable,
        "-m",
        "jetfm_coffea",
        "pretrain",
        "--shards",
        str(store),
        "--config",
        str(config),
        "--out",
        str(out),
        "--no-progress",
    ]


@pytest.mark.slow
def test_kill_9_and_resume_gives_the_uninterrupted_weights(singlemu_store, tmp_path):
    steps = 60  # 10,000 events / 128 = 78 batches: one epoch, views of epoch 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    straight = tmp_path / "straight"
    subprocess.run(_pretrain_cmd(singlemu_store, straight, steps), check=True, env=env)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_pretrain_cmd(singlemu_store, killed, steps), env=env)
    deadline = time.monotonic() + 300
    while not (killed / "checkpoints" / "latest.json").is_file():  # a complete checkpoint
        assert proc.poll() is None and time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert '"status": "completed"' not in (killed / "run.json").read_text()
    subprocess.run([*_pretrain_cmd(singlemu_store, killed, steps), "--resume"], check=True, env=env)
    a = load_file(str(straight / "model.safetensors"))
    b = load_file(str(killed / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_cli_augment_file_is_used_and_recorded(plain_store, tmp_path):
    import json

    import yaml
    from click.testing import CliRunner

    from jetfm_coffea.augment import load_pipeline
    from jetfm_coffea.cli import main

    augment = {"views": 2, "seed": 99, "steps": [{"name": "rotate_phi"}, {"name": "boost_z"}]}
    (tmp_path / "aug.yaml").write_text(yaml.safe_dump({"augment": augment}))
    out = tmp_path / "run"
    args = [*_pretrain_cmd(plain_store, out, 2)[3:], "--augment", str(tmp_path / "aug.yaml")]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    info = json.loads((out / "run.json").read_text())
    expected = load_pipeline(augment).hash()
    assert info["views"]["mode"] == "fresh" and info["views"]["pipeline_hash"] == expected
    assert expected in (out / "MODEL_CARD.md").read_text()
    assert yaml.safe_load((out / "augment_config.yaml").read_text())["seed"] == 99
    # stored views from a store without any: a clear error, not a silent fallback
    res = CliRunner().invoke(main, [*args[:-2], "--views", "stored", "--out", str(tmp_path / "s")])
    assert res.exit_code != 0 and "views: fresh" in res.output


@pytest.mark.gpu
def test_fresh_views_on_cuda_equal_cpu(singlemu_store, token_config):
    """The views made on the training GPU are the CPU's to float32 rounding (1e-5)."""
    batch = next(iter(open_loader(singlemu_store, batch_size=2000, load_objects=True, seed=0)))
    cpu_views, cpu_mask = make_views(batch, PIPELINE, token_config, 5, 2)
    gpu = {k: v.cuda(non_blocking=True) for k, v in batch.items()}
    gpu_views, gpu_mask = make_views(gpu, PIPELINE, token_config, 5, 2)
    assert gpu_views.device.type == "cuda"
    assert torch.equal(gpu_mask.cpu(), cpu_mask)
    torch.testing.assert_close(gpu_views.cpu(), cpu_views, rtol=1e-5, atol=1e-5)
