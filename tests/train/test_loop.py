"""The training loop on real tokens: learning, exact resume, DDP, bad input, run directory."""

from __future__ import annotations

import copy
import json
import os
import socket

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from jetfm_coffea.errors import NonFiniteLossError, TokenConfigMismatchError, TrainingError
from jetfm_coffea.tokens import TokenConfig
from jetfm_coffea.train import (
    TensorEventDataset,
    load_pretrain_config,
    load_run,
    pretrain,
    read_metrics,
)
from jetfm_coffea.train.views import OBJECT_KEYS

MICRO = {
    "size": "custom",
    "overrides": {
        "dim": 16,
        "heads": 2,
        "layers": 1,
        "pair_hidden": 8,
        "proj_dim": 8,
        "dropout": 0.1,
    },
}


def _cfg(steps: int, **extra):
    base = {
        "model": copy.deepcopy(MICRO),  # overrides below must not change MICRO
        "train": {
            "steps": steps,
            "batch_size": 32,
            "progress": False,
            "log_every": 2,
            "monitor_every": 2,
            "checkpoint_every": 1000,
            "device": "cpu",  # CPU numbers whatever GPU is visible (gpu tests say cuda)
        },
        "optim": {"warmup_steps": 2, "lr": 3e-3},
    }
    for key, value in extra.items():
        section, _, leaf = key.partition("__")
        base.setdefault(section, {})[leaf] = value
    return load_pretrain_config(base)


def _data(tokens, n=600, batch_size=32, **kw):
    return TensorEventDataset.from_event_tokens(
        _slice(tokens, n), TokenConfig(), batch_size=batch_size, seed=3, **kw
    )


def _slice(tokens, n):
    from dataclasses import fields, replace

    objects = tokens.objects
    objects = replace(objects, **{f.name: getattr(objects, f.name)[:n] for f in fields(objects)})
    return replace(
        tokens,
        tokens=tokens.tokens[:n],
        mask=tokens.mask[:n],
        run=tokens.run[:n],
        luminosityBlock=tokens.luminosityBlock[:n],
        event=tokens.event[:n],
        objects=objects,
    )


def test_losses_decrease_on_real_tokens(real_tokens, tmp_path):
    cfg = load_pretrain_config(
        {
            "model": {"size": "tiny"},
            "train": {"steps": 30, "batch_size": 64, "progress": False, "log_every": 5},
            "optim": {"warmup_steps": 3, "lr": 2e-3},
        }
    )
    res = pretrain(cfg, _data(real_tokens, 3000, 64), tmp_path / "run")
    first, last = np.mean(res.losses[:5]), np.mean(res.losses[-5:])
    assert last < 0.7 * first, (first, last)
    records = read_metrics(tmp_path / "run")
    assert {"ntxent", "masked_mse", "masked_type", "events_per_s", "eff_rank", "emb_std"} <= set(
        records[-1]
    )
    assert records[-1]["eff_rank"] > 1.5  # not collapsed


def test_resume_is_exact(real_tokens, tmp_path):
    n_steps, k = 8, 3
    # 200 events / 32 per batch = 6 batches per epoch: the resumed part crosses an epoch
    straight = pretrain(_cfg(n_steps), _data(real_tokens, 200), tmp_path / "a")
    first = pretrain(_cfg(n_steps), _data(real_tokens, 200), tmp_path / "b", stop_at=k)
    assert first.steps == k
    rest = pretrain(_cfg(n_steps), _data(real_tokens, 200), tmp_path / "b", resume=True)
    assert rest.steps == n_steps
    assert straight.losses == first.losses + rest.losses  # bitwise equal
    wa = load_file(str(tmp_path / "a" / "model.safetensors"))
    wb = load_file(str(tmp_path / "b" / "model.safetensors"))
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key
    with pytest.raises(TrainingError, match="already holds a run"):
        pretrain(_cfg(n_steps), _data(real_tokens, 200), tmp_path / "a")


def test_prefetch_changes_nothing_but_speed(real_tokens, tmp_path):
    """Batches read ahead in a thread: the same steps, bitwise, and resumable mid-way."""
    ref = pretrain(_cfg(6, train__prefetch=0), _data(real_tokens, 200), tmp_path / "a")
    first = pretrain(_cfg(6, train__prefetch=3), _data(real_tokens, 200), tmp_path / "b", stop_at=2)
    rest = pretrain(
        _cfg(6, train__prefetch=1), _data(real_tokens, 200), tmp_path / "b", resume=True
    )
    assert first.losses + rest.losses == ref.losses


def test_prefetch_resume_is_exact_when_fed_by_the_shard_loader(real_tokens, tmp_path):
    """The read-ahead thread runs ahead of the shard loader; resume is still bit-exact.

    In-process loader: with DataLoader workers the loader's own mid-epoch resume is not
    bit-exact (already before the read-ahead thread existed; reported with issue 14).
    """
    from jetfm_coffea.shards import create_store, write_manifest, write_shard
    from jetfm_coffea.shards.writer import ShardSource
    from jetfm_coffea.train.data import shards_source

    store = tmp_path / "store"
    create_store(store, TokenConfig())
    n = len(real_tokens)
    write_shard(store, real_tokens, ShardSource("d", "f.root", "u", 0, n), TokenConfig())
    write_manifest(store)

    def data(r, w):
        return shards_source(store, batch_size=32, seed=4, rank=r, world_size=w)

    ref = pretrain(_cfg(6, train__prefetch=0), data, tmp_path / "a")
    first = pretrain(_cfg(6, train__prefetch=2), data, tmp_path / "b", stop_at=3)
    rest = pretrain(_cfg(6, train__prefetch=2), data, tmp_path / "b", resume=True)
    assert first.losses + rest.losses == ref.losses


def test_grouped_encoding_trains_the_same_model(real_tokens, tmp_path):
    """Events encoded in groups of similar length: the same losses (no dropout to differ)."""
    runs = [
        pretrain(
            _cfg(
                4,
                train__group_tokens=grouped,
                model__overrides={**MICRO["overrides"], "dropout": 0},
            ),
            _data(real_tokens, 200),
            tmp_path / str(grouped),
        )
        for grouped in (False, True)
    ]
    np.testing.assert_allclose(runs[1].losses, runs[0].losses, rtol=1e-4)


def test_loader_errors_reach_the_loop(real_tokens, tmp_path):
    class Broken(TensorEventDataset):
        def __iter__(self):
            yield from super().__iter__()
            raise OSError("shard 3 of store s: truncated chunk")

    data = _data(real_tokens, 100)
    arrays = data.arrays
    broken = Broken(arrays["tokens"], arrays["mask"], objects=arrays["objects"], batch_size=32)
    with pytest.raises(OSError, match="shard 3 of store s: truncated chunk"):
        pretrain(_cfg(8), broken, tmp_path / "broken")


def test_run_directory_loads_back(real_tokens, tmp_path):
    cfg = _cfg(2, objective__supervised_weight=0.5)
    labels = (real_tokens.mask[:200].sum(1) > 3).astype(np.int64)
    labels[::7] = -1
    data = _data(real_tokens, 200, label=labels)
    val = {
        "tokens": torch.as_tensor(real_tokens.tokens[200:400]),
        "mask": torch.as_tensor(real_tokens.mask[200:400]),
        "label": torch.as_tensor((real_tokens.mask[200:400].sum(1) > 3).astype(np.int64)),
    }
    res = pretrain(cfg, data, tmp_path / "run", validation=val)
    run = tmp_path / "run"
    for name in (
        "config.yaml",
        "model.safetensors",
        "token_config.yaml",
        "metrics.jsonl",
        "MODEL_CARD.md",
        "run.json",
        "model_config.json",
    ):
        assert (run / name).is_file(), name
    assert (run / "config.yaml").read_text().startswith(f"# hash: {cfg.hash()}")
    card = (run / "MODEL_CARD.md").read_text()  # the run directory's one card writer
    assert "## Model files" in card and "pair_version 2" in card
    assert "supervised" in read_metrics(run)[-1]
    model, configs = load_run(run)
    # the recorded k-NN accuracy is that of the saved encoder on the validation events,
    # recomputed here (leave-one-out cosine k-NN, majority vote, ties to the lower label)
    with torch.no_grad():
        z = model.encoder(val["tokens"], val["mask"]).embedding.numpy().astype(np.float64)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    sim = z @ z.T
    np.fill_diagonal(sim, -np.inf)
    k = cfg.validation.k
    neighbours = np.argsort(-sim, axis=1)[:, :k]
    y = val["label"].numpy()
    votes = np.stack([np.bincount(row, minlength=2) for row in y[neighbours]])
    knn = (votes.argmax(1) == y).mean()
    assert read_metrics(run)[-1]["knn_acc"] == pytest.approx(knn, abs=2.5 / len(y))
    assert set(model.heads) == {"projection", "decoder", "classifier"}
    assert configs.tokens.hash() == TokenConfig().hash()
    assert configs.info["status"] == "completed" and configs.info["steps_done"] == 2
    x, m = torch.as_tensor(real_tokens.tokens[:5]), torch.as_tensor(real_tokens.mask[:5])
    res.model.eval()
    torch.testing.assert_close(model.embed(x, m), res.model.embed(x, m))
    bare, _ = load_run(run, heads=False)
    assert len(bare.heads) == 0
    # pickles are refused
    (run / "model.safetensors").rename(run / "model.pt")
    with pytest.raises(TrainingError, match="pickles"):
        load_run(run)


def test_non_finite_loss_stops_with_checkpoint(real_tokens, tmp_path):
    tokens = real_tokens.tokens[:200].copy()
    tokens[:, 0, 0] = np.where(real_tokens.mask[:200, 0], np.nan, 0.0)  # poison every batch
    data = TensorEventDataset(
        tokens,
        real_tokens.mask[:200],
        run=real_tokens.run[:200],
        luminosityBlock=real_tokens.luminosityBlock[:200],
        event=real_tokens.event[:200],
        objects=np.stack([getattr(real_tokens.objects, k)[:200] for k in OBJECT_KEYS], -1),
        batch_size=32,
    )
    with pytest.raises(NonFiniteLossError, match=r"step 1 on batch 32 events, run \d+") as err:
        pretrain(_cfg(4), data, tmp_path / "run")
    assert err.value.checkpoint and os.path.exists(err.value.checkpoint)
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["status"].startswith("failed: non-finite")


def test_bad_input(real_tokens, tmp_path):
    with pytest.raises(TrainingError, match="no training batch"):
        pretrain(_cfg(2), _data(real_tokens, 10), tmp_path / "empty")
    other = TokenConfig(max_tokens=12).model_dump(mode="json")
    with pytest.raises(TokenConfigMismatchError, match="max_tokens"):
        pretrain(
            _cfg(2, tokens=None).model_copy(update={"tokens": other}),
            _data(real_tokens, 100),
            tmp_path / "mismatch",
        )
    with pytest.raises(TrainingError, match="no checkpoint"):
        pretrain(_cfg(2), _data(real_tokens, 100), tmp_path / "nothing", resume=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, tokens, mask, events, objects, out, results, device="cpu"):
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    data = TensorEventDataset(tokens, mask, event=events, objects=objects, batch_size=16, seed=5)
    seen = []

    class Recording:
        """Wraps the rank's source to record which events it trained on."""

        def __init__(self, inner):
            self.inner, self.token_config = inner, inner.token_config

        def __iter__(self):
            for b in self.inner:
                seen.append(b["event"].clone())
                yield b

        def __len__(self):
            return len(self.inner)

        def set_epoch(self, e):
            self.inner.set_epoch(e)

        def state_dict(self):
            return self.inner.state_dict()

        def load_state_dict(self, s):
            self.inner.load_state_dict(s)

    res = pretrain(_cfg(3, train__device=device), lambda r, w: Recording(data.shard(r, w)), out)
    results[rank] = {
        "device": str(next(res.model.parameters()).device),
        "weights": {k: v.clone() for k, v in res.model.state_dict().items()},
        "events": torch.cat(seen),
    }


@pytest.mark.slow
def test_ddp_two_cpu_ranks_gloo(real_tokens, tmp_path, monkeypatch, request):
    import torch.multiprocessing as mp

    # spawned ranks unpickle _ddp_worker by module name (tests.train.test_loop): the
    # repository root must be importable in them, also when the package is installed
    monkeypatch.syspath_prepend(str(request.config.rootpath))

    manager = mp.Manager()
    results = manager.dict()
    mp.spawn(
        _ddp_worker,
        args=(
            2,
            _free_port(),
            real_tokens.tokens[:200],
            real_tokens.mask[:200],
            np.arange(200),
            np.stack([getattr(real_tokens.objects, k)[:200] for k in OBJECT_KEYS], -1),
            str(tmp_path / "ddp"),
            results,
        ),
        nprocs=2,
    )
    r0, r1 = results[0], results[1]
    assert not set(r0["events"].tolist()) & set(r1["events"].tolist())  # disjoint data
    for key, value in r0["weights"].items():
        assert torch.equal(value, r1["weights"][key]), key  # gradients were synchronised
    info = json.loads((tmp_path / "ddp" / "run.json").read_text())
    assert info["world_size"] == 2 and info["status"] == "completed"
    manager.shutdown()


@pytest.mark.gpu
def test_bf16_cuda_path(real_tokens, tmp_path):
    cfg = _cfg(3, train__device="cuda")
    res = pretrain(cfg, _data(real_tokens, 200), tmp_path / "gpu")
    assert json.loads((tmp_path / "gpu" / "run.json").read_text())["precision"] == "bf16"
    assert all(np.isfinite(res.losses))


@pytest.mark.gpu
@pytest.mark.slow
def test_ddp_auto_device_with_more_ranks_than_gpus(real_tokens, tmp_path, monkeypatch, request):
    """2 ranks on a machine with fewer GPUs than ranks: 'auto' keeps both on the CPU (Gloo)."""
    import torch.multiprocessing as mp

    if torch.cuda.device_count() >= 2:
        pytest.skip("needs a machine with fewer GPUs than ranks (1 GPU)")
    monkeypatch.syspath_prepend(str(request.config.rootpath))
    manager = mp.Manager()
    results = manager.dict()
    objects = np.stack([getattr(real_tokens.objects, k)[:200] for k in OBJECT_KEYS], -1)
    args = (2, _free_port(), real_tokens.tokens[:200], real_tokens.mask[:200], np.arange(200))
    args = (*args, objects, str(tmp_path / "ddp"), results, "auto")
    mp.spawn(_ddp_worker, args=args, nprocs=2)
    assert [results[r]["device"] for r in (0, 1)] == ["cpu", "cpu"]
    for key, value in results[0]["weights"].items():
        assert torch.equal(value, results[1]["weights"][key]), key
    manager.shutdown()


@pytest.mark.gpu
def test_prefetch_and_groups_on_cuda_match_the_plain_loop(real_tokens, tmp_path):
    """Pinned memory, side-stream copies and grouped encoding on the GPU: the same steps."""
    no_dropout = {**MICRO["overrides"], "dropout": 0.0}
    runs = {}
    for name, extra in {
        "plain": {"train__prefetch": 0, "train__group_tokens": False},
        "fast": {"train__prefetch": 2, "train__group_tokens": True},
    }.items():
        cfg = _cfg(
            4, train__device="cuda", train__precision="fp32", model__overrides=no_dropout, **extra
        )
        runs[name] = pretrain(cfg, _data(real_tokens, 200), tmp_path / name)
    np.testing.assert_allclose(runs["fast"].losses, runs["plain"].losses, rtol=1e-4)
    run = json.loads((tmp_path / "fast" / "run.json").read_text())
    assert run["device"] == "cuda" and run["precision"] == "fp32"


@pytest.mark.gpu
def test_cuda_prefetcher_delivers_the_batches_in_order():
    from jetfm_coffea.train.prefetch import prefetch

    device = torch.device("cuda", 0)
    batches = [{"x": torch.randn(1000, 23, 9), "i": torch.tensor([i])} for i in range(6)]
    got = list(prefetch(((b, i) for i, b in enumerate(batches)), device, depth=2))
    assert [i for _, i in got] == list(range(6))
    for (b, _), ref in zip(got, batches, strict=True):
        assert b["x"].device == device
        assert torch.equal(b["x"].cpu(), ref["x"])
