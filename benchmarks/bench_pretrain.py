"""Pretraining throughput: events/s and step time per model size (CPU; GPU when available).

Runs the real training loop (``jetfm_coffea.train.pretrain``) on real CMS tokens
(2012 SingleMu, default token config) into a temporary run directory and reads its
metrics: events/s, step time, and the fraction of wall time spent waiting for the
loader (on GPU the loop syncs once per step, so 1 - loader wait is GPU-busy time).
On CUDA it also estimates the model FLOP utilisation against the bf16 dense peak.

    python benchmarks/bench_pretrain.py --sizes tiny,small --out bench.json

The GPU check of fresh physics views (issue 14; about 2 minutes of GPU time): the step
rate with views made on the device over the step rate with the same views stored,
``small`` model, batch 4096 (target >= 0.9)::

    python benchmarks/bench_pretrain.py --device cuda --sizes small --compare-views
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from jetfm_coffea._resources import testdata_dir
from jetfm_coffea.model import build_model, count_parameters, model_config_for
from jetfm_coffea.tokens import TokenConfig, build_tokens
from jetfm_coffea.train import TensorEventDataset, load_pretrain_config, pretrain, read_metrics
from jetfm_coffea.train.views import OBJECT_KEYS, make_views

PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}  # dense, per GPU


def real_tokens(n: int):
    from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

    path = testdata_dir() / "cms" / "Run2012B_SingleMu_10000.root"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        events = NanoEventsFactory.from_root(
            {str(path): "Events"}, schemaclass=NanoAODSchema, mode="virtual"
        ).events()
        tk = build_tokens(events, TokenConfig())
    reps = -(-n // len(tk))
    cat = {k: np.concatenate([getattr(tk, k)] * reps)[:n] for k in ("tokens", "mask", "event")}
    objects = np.stack([getattr(tk.objects, k) for k in OBJECT_KEYS], -1)  # for fresh views
    cat["objects"] = np.concatenate([objects] * reps)[:n]
    return cat


def flops_per_event(size: str, mean_tokens: float, n_views: int = 2) -> float:
    """Training FLOPs per event (forward+backward = 3x forward), approximate."""
    cfg = model_config_for(size=size)
    model = build_model(cfg)
    n_matmul = sum(p.numel() for n, p in model.encoder.named_parameters() if p.ndim == 2)
    t = mean_tokens + 1  # class token
    fwd = 2 * n_matmul * t + 4 * cfg.layers * t * t * cfg.dim
    return 3 * fwd * (n_views + 1)  # views + masked copy go through the encoder


def stored_views(data: dict, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Epoch-0 views of every event (what a store built with the same pipeline holds)."""
    config = TokenConfig()
    pipeline = load_pretrain_config(None).augment
    views, masks = [], []
    for i in range(0, len(data["mask"]), chunk):
        batch = {k: torch.as_tensor(data[k][i : i + chunk]) for k in ("objects", "mask")}
        for k in ("run", "luminosityBlock"):
            batch[k] = torch.zeros(len(batch["mask"]), dtype=torch.int64)
        batch["event"] = torch.as_tensor(data["event"][i : i + chunk].astype(np.int64))
        v, m = make_views(batch, pipeline, config, 0, 2)
        views.append(v.numpy())
        masks.append(m.numpy())
    return np.concatenate(views), np.concatenate(masks)


def run(
    size: str, steps: int, warmup: int, batch: int, device: str, data, views: str = "fresh"
) -> dict:
    cfg = load_pretrain_config(
        {
            "views": views,
            "model": {"size": size},
            "train": {
                "steps": warmup + steps,
                "batch_size": batch,
                "log_every": warmup,
                "monitor_every": 10**6,
                "checkpoint_every": 10**6,
                "progress": False,
                "device": device,
            },
            "optim": {"warmup_steps": 2},
        }
    )
    extra = {"views": data["views"], "view_mask": data["view_mask"]} if views == "stored" else {}
    ds = TensorEventDataset(
        data["tokens"],
        data["mask"],
        event=data["event"],
        objects=data["objects"],
        batch_size=batch,
        **extra,
    )
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        pretrain(cfg, ds, Path(tmp) / "run", keep_model=False)
        wall = time.perf_counter() - t0
        recs = [r for r in read_metrics(Path(tmp) / "run") if "events_per_s" in r][1:]
    eps = statistics.mean(r["events_per_s"] for r in recs)
    step = statistics.mean(r["step_time_s"] for r in recs)
    wait = statistics.mean(r["loader_wait_frac"] for r in recs)
    out = {
        "size": size,
        "views": views,
        "params": count_parameters(build_model(model_config_for(size=size))),
        "device": device,
        "batch": batch,
        "steps_timed": steps,
        "events_per_s": eps,
        "step_time_ms": 1e3 * step,
        "loader_wait_frac": wait,
        "busy_frac": 1 - wait,
        "wall_s": wall,
    }
    if device.startswith("cuda"):
        mean_tokens = float(data["mask"].sum(1).mean())
        compacted = float(np.ceil(data["mask"].sum(1).max() / 4) * 4)
        name = torch.cuda.get_device_name()
        peak = next((v for k, v in PEAK_BF16.items() if k in name), None)
        achieved = eps * flops_per_event(size, compacted)
        out.update(
            {
                "gpu": name,
                "model_tflops": achieved / 1e12,
                "mfu": achieved / peak if peak else None,
                "mean_valid_tokens": mean_tokens,
                "padded_tokens": compacted,
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=None, help="comma list (default: tiny,small on CPU)")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--out", default="bench_pretrain.json")
    ap.add_argument(
        "--compare-views",
        action="store_true",
        help="time every size with fresh views (made on the device) and with stored views "
        "(the same epoch-0 views, precomputed), and report the step-rate ratio",
    )
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    gpu = args.device.startswith("cuda")
    sizes = (args.sizes or ("small,base" if gpu else "tiny,small")).split(",")
    batch = args.batch_size or (4096 if gpu else 256)
    n = batch * (args.steps + args.warmup + 1)
    data = real_tokens(n)
    modes = ["fresh", "stored"] if args.compare_views else ["fresh"]
    if args.compare_views:
        data["views"], data["view_mask"] = stored_views(data)
    results = [
        run(s, args.steps, args.warmup, batch, args.device, data, mode)
        for s in sizes
        for mode in modes
    ]
    ratios = {}
    if args.compare_views:  # fresh-view step rate / stored-view step rate, per size
        rate = {(r["size"], r["views"]): r["events_per_s"] for r in results}
        ratios = {s: rate[(s, "fresh")] / rate[(s, "stored")] for s in sizes}
    meta = {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "tokens_per_event_padded": int(data["mask"].shape[1]),
        "mean_valid_tokens": float(data["mask"].sum(1).mean()),
    }
    doc = {"meta": meta, "results": results, "fresh_over_stored": ratios}
    Path(args.out).write_text(json.dumps(doc, indent=1))
    cols = [
        "size",
        "views",
        "params",
        "device",
        "batch",
        "events_per_s",
        "step_time_ms",
        "busy_frac",
    ]
    if gpu:
        cols += ["model_tflops", "mfu"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in results:
        cells = [
            f"{r[c]:,.3g}"
            if isinstance(r[c], float)
            else f"{r[c]:,}"
            if isinstance(r[c], int)
            else str(r[c])
            for c in cols
        ]
        print("| " + " | ".join(cells) + " |")
    for size, ratio in ratios.items():
        print(f"| {size}: fresh-view / stored-view step rate | {ratio:.3f} |")
    print(f"\n{meta}")


if __name__ == "__main__":
    main()
